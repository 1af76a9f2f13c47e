package rulesfile

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// roundTrip checks that each tenant's YAML, loaded on its own, gives the same rules and the same
// YAML again.
func roundTrip(t *testing.T, cfg *Config) {
	t.Helper()
	for id, want := range cfg.Tenants {
		t.Run(id, func(t *testing.T) {
			data := cfg.TenantYAML(id)
			got, err := Parse("rules_yaml", data)
			if err != nil {
				t.Fatalf("loading the tenant's YAML:\n%v\n%s", err, data)
			}
			if len(got.Tenants) != 1 {
				t.Fatalf("%d tenants in\n%s", len(got.Tenants), data)
			}
			g, ok := got.Tenant(id)
			if !ok {
				t.Fatalf("no tenant %s in\n%s", id, data)
			}
			if !bytes.Equal(g.YAML, want.YAML) {
				t.Errorf("YAML not stable:\n%s\nthen\n%s", want.YAML, g.YAML)
			}
			if !reflect.DeepEqual(g, want) {
				t.Errorf("loaded back:\n%+v\nwant\n%+v", g, want)
			}
		})
	}
}

func TestTenantYAMLRoundTripsTheExample(t *testing.T) {
	cfg := loadExample(t)
	roundTrip(t, cfg)
	// Every rule kind, calendar and policy setting of the example is in acme's part.
	acme := string(cfg.TenantYAML("acme"))
	for _, want := range []string{"berlin-office", "follow-the-sun", "holidays", "page-now", "history_horizon: 3d",
		"kind: bad_rating", "kind: reopens", "kind: kpi", "kind: kpi_baseline", "at_risk: 80%", "pause_statuses"} {
		if !strings.Contains(acme, want) {
			t.Errorf("acme's YAML lacks %q:\n%s", want, acme)
		}
	}
	if strings.Contains(acme, "globex") {
		t.Errorf("acme's YAML holds another tenant:\n%s", acme)
	}
	if got := string(cfg.TenantYAML("globex")); got != "tenants:\n  globex: {} # a tenant without rules\n" {
		t.Errorf("globex's YAML %q", got)
	}
}

// A tenant the file has no rules for gets a file that loads as no rules; anchors another tenant
// defines are expanded, so the tenant's part stands alone.
func TestTenantYAMLStandsAlone(t *testing.T) {
	const file = `tenants:
  acme:
    escalation_policies:
      leads: &leads
        levels:
          - targets: [team-lead]
            ack_timeout: 10m
          - targets: ["oncall@support"]
    sla_policies:
      - name: "standard"
        escalation: leads
        targets: {default: {first_response: 4h}}
  globex:
    escalation_policies:
      leads: *leads
    quality_rules:
      - {name: reopened, kind: reopens, min_reopens: 1, escalation: leads, match: {tag: ["vip <script>", "ü ö"]}}
`
	cfg, err := Parse("rules.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cfg)
	globex := string(cfg.TenantYAML("globex"))
	if strings.Contains(globex, "*leads") || strings.Contains(globex, "&leads") || strings.Contains(globex, "acme") {
		t.Errorf("globex's YAML refers outside itself:\n%s", globex)
	}
	none, err := Parse("rules_yaml", cfg.TenantYAML("initech"))
	if err != nil {
		t.Fatal(err)
	}
	if tn, ok := none.Tenant("initech"); !ok || len(tn.Policies)+len(tn.Quality)+len(tn.Escalations) != 0 {
		t.Errorf("initech = %+v, want a tenant without rules", tn)
	}
}
