package routing

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

const reachFile = `receivers:
  - {name: default, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: acme-eq, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: not-acme, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: a-or-b, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: not-g, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: team-only, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: acme-deep, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: nested-no, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: after-continue, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: unused, slack: {url: {env: SLACK_BILLING_URL}}}
route:
  receiver: default
  routes:
    - matchers: ['tenant="acme"', 'severity="critical"']
      receiver: acme-eq
      continue: true
      routes:
        - {matchers: 'team="billing"', receiver: acme-deep}
        - {matchers: 'tenant="globex"', receiver: nested-no}
    - matchers: 'tenant!="acme"'
      receiver: not-acme
    - matchers: 'tenant=~"acme|beta"'
      receiver: a-or-b
    - matchers: 'tenant!~"g.*"'
      receiver: not-g
    - matchers: 'team="support"'
      receiver: team-only
    - matchers: ['tenant="globex"', 'rule="sla"']
      receiver: after-continue
`

func TestReceiversFor(t *testing.T) {
	cfg := parse(t, reachFile)
	tests := []struct {
		name, tenant string
		want         string // receivers, sorted
	}{
		// acme-eq: = beside another label's matcher, which could match; its children only when it
		// is reachable, where a nested tenant="globex" rules acme out. The routes after acme-eq,
		// which continues, are reachable too.
		{"acme", "acme", "a-or-b acme-deep acme-eq default not-g team-only"},
		// != and !~ rule globex in and out; none of acme-eq's subtree is reachable, not even its
		// tenant="globex" child.
		{"globex", "globex", "after-continue default not-acme team-only"},
		// =~ is anchored: "acme-eu" is neither acme nor acme|beta.
		{"a tenant like acme", "acme-eu", "default not-acme not-g team-only"},
		{"beta", "beta", "a-or-b default not-acme not-g team-only"},
		// The root's receiver and a route on team alone are open to every tenant.
		{"empty tenant", "", "default not-acme not-g team-only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cfg.ReceiversFor(tt.tenant)
			if s := strings.Join(slices.Sorted(maps.Keys(got)), " "); s != tt.want {
				t.Errorf("ReceiversFor(%q) = %s, want %s", tt.tenant, s, tt.want)
			}
			for name, ok := range got {
				if !ok {
					t.Errorf("ReceiversFor(%q) holds %s as false", tt.tenant, name)
				}
			}
			// Cached per routing file: the same answer, and the tree walk agrees.
			if again := cfg.ReceiversFor(tt.tenant); !maps.Equal(again, got) || !maps.Equal(cfg.Root.ReceiversFor(tt.tenant), got) {
				t.Errorf("ReceiversFor(%q) changed: %v then %v", tt.tenant, got, again)
			}
		})
	}
}

// A route with no receiver of its own takes its parent's, so a child reachable for the tenant
// allows the inherited receiver even when the parent's other children are not reachable.
func TestReceiversForInherited(t *testing.T) {
	cfg := parse(t, `receivers:
  - {name: default, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: shared, slack: {url: {env: SLACK_BILLING_URL}}}
route:
  receiver: default
  routes:
    - matchers: 'team="ops"'
      receiver: shared
      routes:
        - matchers: 'tenant="globex"'
`)
	for _, tenant := range []string{"acme", "globex"} {
		if got := cfg.ReceiversFor(tenant); len(got) != 2 || !got["default"] || !got["shared"] {
			t.Errorf("ReceiversFor(%q) = %v, want default and shared", tenant, got)
		}
	}
	var none *Config
	if got := none.ReceiversFor("acme"); len(got) != 0 {
		t.Errorf("no routing file: %v, want no receiver", got)
	}
}

// Whatever the other labels, Match never picks a receiver that ReceiversFor leaves out.
func TestReceiversForCoversMatch(t *testing.T) {
	values := map[string][]string{
		"tenant":       {"acme", "globex", "beta", "a", "b", "c", "acme-eu", ""},
		"team":         {"", "billing", "support", "t1", "deep", "finance"},
		"severity":     {"", "critical", "warning", "info"},
		"rule":         {"", "r", "sla", "reopened-twice"},
		"subject_kind": {"", "ticket", "agent", "team"},
	}
	for _, cfg := range []*Config{parse(t, reachFile), parse(t, treeFile), loadExample(t)} {
		n := 0
		for _, tenant := range values["tenant"] {
			allowed := cfg.ReceiversFor(tenant)
			for _, team := range values["team"] {
				for _, sev := range values["severity"] {
					for _, rule := range values["rule"] {
						for _, kind := range values["subject_kind"] {
							labels := map[string]string{"tenant": tenant, "team": team, "severity": sev, "rule": rule, "subject_kind": kind}
							for _, r := range cfg.Root.Match(labels) {
								n++
								if !allowed[r.Receiver] {
									t.Fatalf("%s: %v routes to %s, which ReceiversFor(%q) = %v leaves out", cfg.File, labels, r.Receiver, tenant, allowed)
								}
							}
						}
					}
				}
			}
		}
		if n == 0 {
			t.Fatalf("%s: nothing matched", cfg.File)
		}
	}
}
