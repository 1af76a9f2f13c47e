package tenants

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestCRMSources(t *testing.T) {
	const good = `tenants:
  acme:
    sources:
      salesforce:
        url_token: {env: TOKEN}
        secrets: [{env: ZD}]
        organization_id: 00D5g000004XyZaEAK
        statuses: {"Waiting on Customer": pending, "Resolved": solved}
      hubspot:
        secrets: [{env: CW}]
        target_url: https://hooks.example.com/v1/tenants/acme/webhooks/hubspot
        portal_ids: [62515]
        statuses: {"1": new, "98765": on_hold}
`
	cfg, err := Load(writeTenants(t, good, nil), getenv(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := Source(cfg, "acme", "salesforce")
	if !ok {
		t.Fatal("no salesforce source")
	}
	if !slices.Equal(sf.CRM.Accounts, []string{"00D5g000004XyZaEAK"}) || sf.URLToken.IsZero() || len(sf.Secrets) != 1 ||
		!maps.Equal(sf.Statuses, map[string]string{"Waiting on Customer": "pending", "Resolved": "solved"}) {
		t.Errorf("salesforce %+v", sf)
	}
	hs, _ := Source(cfg, "acme", "hubspot")
	if !slices.Equal(hs.CRM.Accounts, []string{"62515"}) || hs.CRM.TargetURL != "https://hooks.example.com/v1/tenants/acme/webhooks/hubspot" ||
		!maps.Equal(hs.Statuses, map[string]string{"1": "new", "98765": "on_hold"}) || hs.Tolerance == 0 {
		t.Errorf("hubspot %+v", hs)
	}

	tests := []struct {
		name string
		give string
		want string
	}{
		{"salesforce without organisation", "      salesforce:\n        url_token: {env: TOKEN}\n", "missing organization_id"},
		{"salesforce without credential", "      salesforce:\n        organization_id: 00D5g000004XyZaEAK\n", "set url_token: (Outbound Messages), secrets: (Flow callouts) or both"},
		{"salesforce bad organisation", "      salesforce:\n        url_token: {env: TOKEN}\n        organization_id: acme\n", "not a 15 or 18 character Salesforce id"},
		{"salesforce basic auth", "      salesforce:\n        url_token: {env: TOKEN}\n        organization_id: 00D5g000004XyZaEAK\n        basic_auth: {user: a, password: {env: PASS}}\n", `unknown key "basic_auth"`},
		{"unknown status word", "      salesforce:\n        url_token: {env: TOKEN}\n        organization_id: 00D5g000004XyZaEAK\n        statuses: {Done: finished}\n", `unknown status "finished"`},
		{"hubspot without target URL", "      hubspot:\n        secrets: [{env: CW}]\n", "missing target_url"},
		{"hubspot without secret", "      hubspot:\n        target_url: https://x.example.com/h\n", "hubspot signs its deliveries; set secrets:"},
		{"hubspot portal not a number", "      hubspot:\n        secrets: [{env: CW}]\n        target_url: https://x.example.com/h\n        portal_ids: [acme]\n", `portal id "acme" is not a number`},
		{"hubspot url token", "      hubspot:\n        secrets: [{env: CW}]\n        target_url: https://x.example.com/h\n        url_token: {env: TOKEN}\n", `unknown key "url_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeTenants(t, "tenants:\n  acme:\n    sources:\n"+tt.give, nil), getenv(testEnv))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), leakMarker) {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}
