package rulesfile

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// FuzzParse feeds arbitrary files to the loader. It must not panic; it must answer either a
// Config whose references all resolve, or Problems with real line numbers.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, tt := range rejectTests {
		f.Add([]byte(tt.give))
	}
	for _, s := range []string{"", "~", "tenants:\n", "tenants: {a: *x}\n", "tenants: &t {a: {calendars: *t}}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("rules.yaml", data)
		if err == nil {
			checkConfig(t, cfg)
			// Each tenant's part, as GetRules hands it out, loads on its own.
			for id := range cfg.Tenants {
				if _, err := Parse("rules_yaml", cfg.TenantYAML(id)); err != nil {
					t.Fatalf("tenant %s's YAML does not load:\n%v\n%s", id, err, cfg.TenantYAML(id))
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
			if p.File != "rules.yaml" || p.Line < 1 || p.Line > lines || p.Reason == "" {
				t.Fatalf("problem %+v (the input has %d lines)", p, lines-1)
			}
		}
	})
}

// checkConfig asserts what every accepted file guarantees its users.
func checkConfig(t *testing.T, cfg *Config) {
	t.Helper()
	for id, tn := range cfg.Tenants {
		if !idtoken.ValidTenant(id) || tn.ID != id {
			t.Fatalf("accepted tenant %q: %+v", id, tn)
		}
		for name, ep := range tn.Escalations {
			if ep.Name != name || len(ep.Levels) == 0 || (ep.HistoryHorizon != nil && *ep.HistoryHorizon != 0 && *ep.HistoryHorizon < time.Minute) {
				t.Fatalf("accepted escalation policy %q: %+v", name, ep)
			}
			for i, lv := range ep.Levels {
				if len(lv.Targets) == 0 || (lv.AckTimeout <= 0 && i < len(ep.Levels)-1) {
					t.Fatalf("accepted level %d of %q: %+v", i, name, lv)
				}
			}
		}
		for _, p := range tn.Policies {
			_, known := tn.Escalations[p.Escalation]
			if !known || (p.CalendarName != "") != (p.Calendar != nil) || p.AtRisk < 0 || p.AtRisk >= 1 ||
				(len(p.Targets) == 0 && p.Default == nil) || p.Pause == nil {
				t.Fatalf("accepted SLA policy %+v", p)
			}
		}
		for _, r := range tn.Quality {
			_, known := tn.Escalations[r.Escalation]
			if !known || r.Name == "" {
				t.Fatalf("accepted quality rule %+v", r)
			}
			switch r.Kind {
			case KindBadRating:
				if r.MaxScore < 1 || r.MaxScore > 4 {
					t.Fatalf("accepted rule %+v", r)
				}
			case KindReopens:
				if r.MinReopens < 1 {
					t.Fatalf("accepted rule %+v", r)
				}
			case KindKPI, KindKPIBaseline:
				_, known := metrics[r.Metric]
				thresholds := 0
				if r.Above != nil {
					thresholds++
				}
				if r.Below != nil {
					thresholds++
				}
				if !known || r.MinSample < 1 || (r.Kind == KindKPI) != (thresholds == 1) || (r.Kind == KindKPIBaseline) != (r.Drop > 0) {
					t.Fatalf("accepted rule %+v", r)
				}
			default:
				t.Fatalf("accepted rule of kind %q", r.Kind)
			}
		}
	}
}
