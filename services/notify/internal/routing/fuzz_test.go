package routing

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
)

// FuzzParse feeds arbitrary files to the loader. It must not panic; it must answer either a
// Config whose references all resolve, or Problems with real line numbers that quote no secret.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(treeFile))
	for _, tt := range rejectTests {
		f.Add([]byte(tt.give))
	}
	for _, s := range []string{"", "~", "route:\n", "route: &r {routes: [*r, *r]}\n",
		okReceiver + "route: &r {receiver: a, routes: [{routes: [*r]}]}\n",
		okReceiver + "route: {receiver: a, routes: [&c {matchers: 'a=\"b\"'}, *c, *c]}\n"} {
		f.Add([]byte(s))
	}
	dir := rejectDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("routing.yaml", dir, data, getenv)
		if err == nil {
			checkConfig(t, cfg)
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
			if p.File != "routing.yaml" || p.Line < 1 || p.Line > lines || p.Reason == "" {
				t.Fatalf("problem %+v (the input has %d lines)", p, lines-1)
			}
		}
		// The secrets the environment holds are never quoted (the input itself may say sekrit).
		if !bytes.Contains(data, []byte("sekrit")) && strings.Contains(err.Error(), "sekrit") {
			t.Fatalf("a secret leaked:\n%v", err)
		}
	})
}

// checkConfig asserts what every accepted file guarantees its users.
func checkConfig(t *testing.T, cfg *Config) {
	t.Helper()
	if len(cfg.Receivers) == 0 || len(cfg.Receivers) != len(cfg.ReceiverOrder) {
		t.Fatalf("receivers %v, order %v", cfg.Receivers, cfg.ReceiverOrder)
	}
	for _, name := range cfg.ReceiverOrder {
		rc := cfg.Receivers[name]
		if rc == nil || rc.Name != name || !namePattern.MatchString(name) {
			t.Fatalf("receiver %q: %+v", name, rc)
		}
		kinds := 0
		for _, set := range []bool{rc.Slack != nil, rc.Teams != nil, rc.Webhook != nil, rc.Email != nil} {
			if set {
				kinds++
			}
		}
		ok := kinds == 1
		switch rc.Kind {
		case receiver.KindSlack:
			ok = ok && rc.Slack != nil && httpURL(rc.Slack.URL)
		case receiver.KindTeams:
			ok = ok && rc.Teams != nil && httpURL(rc.Teams.URL)
		case receiver.KindWebhook:
			ok = ok && rc.Webhook != nil && httpURL(rc.Webhook.URL) && len(rc.Webhook.Secrets) > 0
		case receiver.KindEmail:
			e := rc.Email
			ok = ok && e != nil && len(e.To) > 0 && e.From != "" && e.Smarthost != "" && e.TLS != "" &&
				(e.Username == "") == (e.Password == "")
		default:
			ok = false
		}
		lim := rc.Limits
		if !ok || lim.Timeout <= 0 || lim.Deadline < lim.Timeout || lim.RatePerSecond <= 0 || lim.Burst < 1 || lim.Concurrency < 1 {
			t.Fatalf("accepted receiver %+v", rc)
		}
		if receiver.ParseTemplates(name, rc.Templates) != nil {
			t.Fatalf("accepted templates %+v", rc.Templates)
		}
	}
	r := cfg.Root
	if r == nil || r.Path != "route" || len(r.Matchers) != 0 || r.Continue {
		t.Fatalf("accepted root route %+v", r)
	}
	seen := map[string]bool{}
	for _, r := range walk(r) {
		if seen[r.Path] || cfg.Receivers[r.Receiver] == nil || r.GroupWait < 0 || r.GroupInterval < 1e9 ||
			r.RepeatInterval < 60e9 || (r.GroupByAll && r.GroupBy != nil) || (!r.GroupByAll && r.GroupBy == nil) ||
			(r.Quiet == nil) != (r.QuietName == "") {
			t.Fatalf("accepted route %+v", r)
		}
		seen[r.Path] = true
		for _, m := range r.Matchers {
			if again, err := ParseMatcher(m.String()); err != nil || again.String() != m.String() {
				t.Fatalf("matcher %s does not round-trip: %v", m, err)
			}
		}
	}
	for _, s := range cfg.Silences {
		if len(s.Matchers) == 0 || !s.Ends.After(s.Starts) || s.Comment == "" || s.Matchers.Matches(nil) {
			t.Fatalf("accepted silence %+v", s)
		}
	}
	for _, ir := range cfg.Inhibits {
		if len(ir.Source) == 0 || len(ir.Target) == 0 {
			t.Fatalf("accepted inhibit rule %+v", ir)
		}
	}
}
