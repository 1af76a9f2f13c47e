package tenants

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// FuzzLoad feeds arbitrary files to the loader. It must not panic; it must answer either a
// usable Config or Problems with real line numbers; and no secret it resolved may appear in an
// error unless the input itself holds that text.
func FuzzLoad(f *testing.F) {
	seeds := []string{
		"tenants:\n  acme:\n    sources:\n      zendesk: {secrets: [{env: ZD}, {file: secret.txt}], tolerance: 2m}\n",
		"defaults: {tolerance: 1m, rate_limit: {events_per_second: 1.5, burst: 2}}\ntenants:\n  a: {rate_limit: {burst: 3}}\n",
		"tenants:\n  acme:\n    sources:\n      chatwoot: {secrets: [{env: CW}], allow_unsigned_with_token: {env: TOKEN}}\n" +
			"      freshdesk: {url_token: {env: TOKEN}, basic_auth: {user: tp, password: {env: PASS}}}\n" +
			"      generic: {secrets: [{env: GENERIC}]}\n      helpscout: {secrets: [{env: ZD}]}\n",
		"tenants:\n  acme:\n    sources:\n      zammad: {secrets: &s [{env: ZD}]}\n      intercom: {secrets: *s}\n",
		"tenants:\n  acme:\n    sources:\n      typeform: {secrets: [{env: ZD}], ticket_field: ticket_id, score_question: csat, scale: nps}\n" +
			"      surveymonkey: {api_key: k, secrets: [{env: ZD}], ticket_field: t, agent_field: a, score_question: \"1\", scale: 1-10}\n" +
			"      qualtrics: {url_token: {env: TOKEN}, ticket_field: t, score_question: QID1, comment_question: QID2, scale: thumbs}\n",
		"tenants:\n  acme:\n    sources:\n      salesforce: {url_token: {env: TOKEN}, organization_id: 00D5g000004XyZaEAK, statuses: {Done: solved}}\n" +
			"      hubspot: {secrets: [{env: CW}], target_url: https://x.example.com/h, portal_ids: [1, 2], statuses: {\"4\": closed}}\n",
		"tenants:\n  acme:\n    sources:\n      five9: {url_token: {env: TOKEN}, ticket_field: ticket_id}\n" +
			"      genesys: {secrets: [{env: ZD}]}\n      ringcentral: {secrets: [{env: CW}]}\n",
		"tenants:\n  Acme: {sources: {jira: {}}}\n  acme: {sources: {zendesk: {secrets: [x, {value: y}, {}]}}}\n",
		"tenants: [a\n", "---\n---\n", "", "~", "tenants:\n  acme: *x\n", "tenants:\n  \"\": {}\n  a.b: {}\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("sekrit-file\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse("tenants.yaml", dir, data, getenv(testEnv))
		if err == nil {
			for id, tn := range cfg.Tenants {
				if !idtoken.ValidTenant(id) || tn.ID != id || tn.RateLimit.EventsPerSecond <= 0 || tn.RateLimit.Burst <= 0 {
					t.Fatalf("accepted tenant %q: %+v", id, tn)
				}
				for name, sc := range tn.Sources {
					if sc.Source != name || sc.Tenant != id || sc.Check() != nil {
						t.Fatalf("accepted source %s/%s: %v", id, name, sc.Check())
					}
				}
			}
			return
		}
		var probs Problems
		if !errors.As(err, &probs) || len(probs) == 0 || cfg != nil {
			t.Fatalf("error %T %v with config %v", err, err, cfg)
		}
		// YAML breaks lines at \r and a few Unicode separators too; any of them may count.
		lines := 2
		for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
			lines += bytes.Count(data, []byte(br))
		}
		for _, p := range probs {
			if p.File != "tenants.yaml" || p.Line < 1 || p.Line > lines || p.Reason == "" {
				t.Fatalf("problem %+v (the input has %d lines)", p, lines-1)
			}
		}
		for _, v := range append(mapValues(testEnv), "sekrit-file") {
			if v != "" && strings.Contains(err.Error(), v) && !bytes.Contains(data, []byte(v)) {
				t.Fatalf("secret %q leaked into:\n%v", v, err)
			}
		}
	})
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
