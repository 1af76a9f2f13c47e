package routing

import (
	"maps"
	"strings"
	"testing"
	"time"
)

// parse loads a routing file that must be valid.
func parse(t *testing.T, text string) *Config {
	t.Helper()
	cfg, err := Parse("r.yaml", t.TempDir(), []byte(text), getenv)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return cfg
}

func paths(rs []*Route) string {
	ps := make([]string, len(rs))
	for i, r := range rs {
		ps[i] = r.Path
	}
	return strings.Join(ps, " ")
}

func TestMatchExample(t *testing.T) {
	root := loadExample(t).Root
	tests := []struct {
		name   string
		labels map[string]string
		want   string // paths of the routes, in order
		recv   string // receivers of the routes, in order
	}{
		{"nothing matches: the root's receiver", map[string]string{"tenant": "globex", "rule": "sla"},
			"route", "ops-teams"},
		{"no labels at all", nil, "route", "ops-teams"},
		{"continue: the leads and then acme's critical hook",
			map[string]string{"tenant": "acme", "team": "billing", "severity": "critical", "subject_kind": "ticket"},
			"route.routes[0] route.routes[1].routes[0]", "leads-mail supervisor-hook"},
		{"info is not for the leads; a ticket escalation stays on acme's route",
			map[string]string{"tenant": "acme", "team": "billing", "severity": "info", "subject_kind": "ticket"},
			"route.routes[1]", "billing-slack"},
		{"agent escalation: the child inherits the receiver",
			map[string]string{"tenant": "acme", "severity": "warning", "subject_kind": "agent"},
			"route.routes[1].routes[1]", "billing-slack"},
		{"a missing subject_kind is \"\", which !~ ticket|team takes",
			map[string]string{"tenant": "acme", "severity": "warning"},
			"route.routes[1].routes[1]", "billing-slack"},
		{"acme's route does not continue, so the reopened route is not tried",
			map[string]string{"tenant": "acme", "team": "finance", "severity": "warning", "subject_kind": "team", "rule": "reopened-twice"},
			"route.routes[0] route.routes[1]", "leads-mail billing-slack"},
		{"another tenant's reopened escalation", map[string]string{"tenant": "globex", "rule": "reopened-twice"},
			"route.routes[2]", "local-relay"},
		{"regexp is anchored: team billing-eu is not the leads'",
			map[string]string{"tenant": "acme", "team": "billing-eu", "severity": "critical"},
			"route.routes[1].routes[0]", "supervisor-hook"},
	}
	for _, tt := range tests {
		got := root.Match(tt.labels)
		recvs := make([]string, len(got))
		for i, r := range got {
			recvs[i] = r.Receiver
		}
		if paths(got) != tt.want || strings.Join(recvs, " ") != tt.recv {
			t.Errorf("%s: Match = %s (%s), want %s (%s)", tt.name, paths(got), strings.Join(recvs, " "), tt.want, tt.recv)
		}
	}
	if got := root.Routes[0].Match(map[string]string{"tenant": "globex"}); got != nil {
		t.Errorf("a route whose matchers fail returned %s", paths(got))
	}
}

const treeFile = `receivers:
  - {name: root, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: x, slack: {url: {env: SLACK_BILLING_URL}}}
  - {name: y, slack: {url: {env: SLACK_BILLING_URL}}}
route:
  receiver: root
  group_by: [tenant]
  group_wait: 1m
  group_interval: 2m
  repeat_interval: 3h
  routes:
    - matchers: 'tenant="a"'
      receiver: x
      group_by: ["..."]
      routes:
        - {matchers: 'team="t1"', continue: true, group_wait: 0s}
        - {matchers: 'severity="critical"', continue: true, receiver: y, repeat_interval: 1d}
        - {matchers: 'team=~"t.*"', group_interval: 1s, group_by: []}
        - matchers: 'team="t1"'
    - matchers: 'tenant=~"a|b"'
      receiver: y
      routes:
        - matchers: 'rule="r"'
          routes:
            - matchers: 'team="deep"'
`

func TestMatchTree(t *testing.T) {
	root := parse(t, treeFile).Root
	tests := []struct {
		labels map[string]string
		want   string
	}{
		// Two continuing children and the first non-continuing one; the fourth is never tried.
		{map[string]string{"tenant": "a", "team": "t1", "severity": "critical"},
			"route.routes[0].routes[0] route.routes[0].routes[1] route.routes[0].routes[2]"},
		// Only continuing children matched: the later siblings are still tried.
		{map[string]string{"tenant": "a", "team": "zz", "severity": "critical"}, "route.routes[0].routes[1]"},
		{map[string]string{"tenant": "a", "team": "t2"}, "route.routes[0].routes[2]"},
		// No child of routes[0] matches: routes[0] itself; its sibling is not tried.
		{map[string]string{"tenant": "a"}, "route.routes[0]"},
		{map[string]string{"tenant": "b", "rule": "r", "team": "deep"}, "route.routes[1].routes[0].routes[0]"},
		{map[string]string{"tenant": "b", "rule": "r"}, "route.routes[1].routes[0]"},
		{map[string]string{"tenant": "b", "rule": "s"}, "route.routes[1]"},
		{map[string]string{"tenant": "c"}, "route"},
	}
	for _, tt := range tests {
		if got := paths(root.Match(tt.labels)); got != tt.want {
			t.Errorf("Match(%v) = %s, want %s", tt.labels, got, tt.want)
		}
	}
}

func TestInheritance(t *testing.T) {
	root := parse(t, treeFile).Root
	const s, m, h = time.Second, time.Minute, time.Hour
	want := map[string]routeSummary{
		"route.routes[0].routes[0]": {Receiver: "x", GroupByAll: true, Wait: 0, Interval: 2 * m, Repeat: 3 * h},
		"route.routes[0].routes[1]": {Receiver: "y", GroupByAll: true, Wait: 1 * m, Interval: 2 * m, Repeat: 24 * h},
		"route.routes[0].routes[2]": {Receiver: "x", GroupBy: []string{}, Wait: 1 * m, Interval: 1 * s, Repeat: 3 * h},
		"route.routes[0].routes[3]": {Receiver: "x", GroupByAll: true, Wait: 1 * m, Interval: 2 * m, Repeat: 3 * h},
		// Inherited through two levels.
		"route.routes[1].routes[0].routes[0]": {Receiver: "y", GroupBy: []string{"tenant"}, Wait: 1 * m, Interval: 2 * m, Repeat: 3 * h},
	}
	n := 0
	for _, r := range walk(root) {
		w, ok := want[r.Path]
		if !ok {
			continue
		}
		n++
		got := summary(r)
		got.Path, got.Matchers, got.Continue, got.Children = "", "", false, 0
		if !equalSummary(got, w) {
			t.Errorf("%s: %+v, want %+v", r.Path, got, w)
		}
	}
	if n != len(want) {
		t.Errorf("found %d of %d routes", n, len(want))
	}
}

func equalSummary(a, b routeSummary) bool {
	return a.Receiver == b.Receiver && a.GroupByAll == b.GroupByAll && a.Wait == b.Wait && a.Interval == b.Interval &&
		a.Repeat == b.Repeat && strings.Join(a.GroupBy, ",") == strings.Join(b.GroupBy, ",") && (a.GroupBy == nil) == (b.GroupBy == nil)
}

func TestQuietHoursAcrossDST(t *testing.T) {
	cfg := loadExample(t)
	leads := cfg.Root.Routes[0]
	if leads.Quiet == nil || leads.QuietName != "Europe/Berlin quiet hours" {
		t.Fatalf("leads route quiet = %v %q", leads.Quiet, leads.QuietName)
	}
	utc := func(mo time.Month, d, h, min int) time.Time { return time.Date(2026, mo, d, h, min, 0, 0, time.UTC) }
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		// Quiet mon-fri before 08:00 and from 18:00, local time. Clocks go forward on Sunday
		// 29 March 2026 (CET, UTC+1 → CEST, UTC+2), back on Sunday 25 October 2026.
		{"Fri 27 Mar 06:30Z is 07:30 CET", utc(3, 27, 6, 30), true},
		{"Fri 27 Mar 07:00Z is 08:00 CET, the end is exclusive", utc(3, 27, 7, 0), false},
		{"Fri 27 Mar 06:59:59Z", utc(3, 27, 6, 59).Add(59 * time.Second), true},
		{"Fri 27 Mar 16:59Z is 17:59 CET", utc(3, 27, 16, 59), false},
		{"Fri 27 Mar 17:00Z is 18:00 CET", utc(3, 27, 17, 0), true},
		{"Sat 28 Mar noon: the weekend is quiet", utc(3, 28, 12, 0), true},
		{"Sun 29 Mar 01:30Z, just after the change", utc(3, 29, 1, 30), true},
		{"Mon 30 Mar 06:30Z is 08:30 CEST", utc(3, 30, 6, 30), false},
		{"Mon 30 Mar 05:30Z is 07:30 CEST", utc(3, 30, 5, 30), true},
		{"Mon 30 Mar 05:59Z is 07:59 CEST", utc(3, 30, 5, 59), true},
		{"Mon 30 Mar 06:00Z is 08:00 CEST", utc(3, 30, 6, 0), false},
		{"Mon 30 Mar 15:30Z is 17:30 CEST", utc(3, 30, 15, 30), false},
		{"Mon 30 Mar 16:00Z is 18:00 CEST", utc(3, 30, 16, 0), true},
		{"Fri 23 Oct 06:30Z is 08:30 CEST", utc(10, 23, 6, 30), false},
		{"Mon 26 Oct 06:30Z is 07:30 CET", utc(10, 26, 6, 30), true},
		{"Mon 26 Oct 07:00Z is 08:00 CET", utc(10, 26, 7, 0), false},
		{"Mon 30 Mar 23:59 local", time.Date(2026, 3, 30, 23, 59, 0, 0, berlin), true},
		{"Tue 31 Mar 00:00 local", time.Date(2026, 3, 31, 0, 0, 0, 0, berlin), true},
		{"Tue 31 Mar 12:00 local, given in another zone", time.Date(2026, 3, 31, 12, 0, 0, 0, berlin).In(time.FixedZone("X", -9*3600)), false},
	}
	for _, tt := range tests {
		if got := leads.QuietAt(tt.at); got != tt.want {
			t.Errorf("%s: QuietAt(%v) = %v, want %v", tt.name, tt.at.In(berlin), got, tt.want)
		}
	}
	if cfg.Root.QuietAt(utc(3, 28, 12, 0)) || cfg.Root.Routes[1].QuietAt(utc(3, 28, 12, 0)) {
		t.Error("routes without quiet_hours are never quiet (quiet hours are not inherited)")
	}
}

func TestQuietHoursOnTheDaysClocksChange(t *testing.T) {
	cfg := parse(t, `receivers: [{name: a, slack: {url: {env: SLACK_BILLING_URL}}}]
route:
  receiver: a
  quiet_hours: {time_zone: Europe/Berlin, hours: {sun: "00:00-03:00"}}
`)
	r := cfg.Root
	utc := func(mo time.Month, d, h, min int) time.Time { return time.Date(2026, mo, d, h, min, 0, 0, time.UTC) }
	tests := []struct {
		at   time.Time
		want bool
	}{
		// 29 March: 00:00 CET is 23:00Z the day before; 02:00-03:00 does not exist; 03:00 CEST
		// is 01:00Z. The wall-clock range is two real hours.
		{utc(3, 28, 22, 59), false},
		{utc(3, 28, 23, 0), true},
		{utc(3, 29, 0, 59), true},
		{utc(3, 29, 1, 0), false},
		// 25 October: 00:00 CEST is 22:00Z the day before; 02:00-03:00 happens twice; 03:00 CET
		// is 02:00Z. Four real hours.
		{utc(10, 24, 21, 59), false},
		{utc(10, 24, 22, 0), true},
		{utc(10, 25, 0, 30), true}, // 02:30 CEST
		{utc(10, 25, 1, 30), true}, // 02:30 CET
		{utc(10, 25, 1, 59), true},
		{utc(10, 25, 2, 0), false},
	}
	for _, tt := range tests {
		if got := r.QuietAt(tt.at); got != tt.want {
			t.Errorf("QuietAt(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestGroupKey(t *testing.T) {
	cfg := loadExample(t)
	root, leads, hook, relay := cfg.Root, cfg.Root.Routes[0], cfg.Root.Routes[1].Routes[0], cfg.Root.Routes[2]
	esc := map[string]string{"tenant": "acme", "rule": "sla-first-response", "team": "billing", "ticket": "T-1", "severity": "critical"}

	key, group := root.GroupKey(esc)
	if key != `route{"rule"="sla-first-response","tenant"="acme"}` ||
		!maps.Equal(group, map[string]string{"tenant": "acme", "rule": "sla-first-response"}) {
		t.Errorf("root: %s %v", key, group)
	}
	// Stable: the same labels in another map, or with other labels that are not grouped on.
	other := maps.Clone(esc)
	other["ticket"], other["severity"] = "T-2", "warning"
	if k, _ := root.GroupKey(other); k != key {
		t.Errorf("another ticket of the group: %s, want %s", k, key)
	}
	for range 20 {
		if k, _ := root.GroupKey(maps.Clone(esc)); k != key {
			t.Fatalf("unstable key %s", k)
		}
	}
	// Separate: another value, another route.
	other = maps.Clone(esc)
	other["rule"] = "sla-resolution"
	if k, _ := root.GroupKey(other); k == key {
		t.Error("another rule shares the group")
	}
	if k, _ := leads.GroupKey(esc); k == key || k != `route.routes[0]{"rule"="sla-first-response","team"="billing","tenant"="acme"}` {
		t.Errorf("leads: %s", k)
	}
	// A label the escalation does not have (or has empty) is left out.
	noTeam := map[string]string{"tenant": "acme", "rule": "r", "team": ""}
	if k, g := leads.GroupKey(noTeam); k != `route.routes[0]{"rule"="r","tenant"="acme"}` || len(g) != 2 {
		t.Errorf("leads without a team: %s %v", k, g)
	}
	// "...": every label, so each escalation is its own group.
	k1, g1 := hook.GroupKey(esc)
	k2, _ := hook.GroupKey(map[string]string{"tenant": "acme", "rule": "sla-first-response", "team": "billing", "ticket": "T-2", "severity": "critical"})
	if k1 == k2 || !maps.Equal(g1, esc) ||
		k1 != `route.routes[1].routes[0]{"rule"="sla-first-response","severity"="critical","team"="billing","tenant"="acme","ticket"="T-1"}` {
		t.Errorf("group by every label: %s %s %v", k1, k2, g1)
	}
	// group_by: [] puts everything in one group.
	if k, g := relay.GroupKey(esc); k != "route.routes[2]{}" || len(g) != 0 {
		t.Errorf("group_by []: %s %v", k, g)
	}
	// Quoting keeps values with separators from colliding.
	a, _ := hook.GroupKey(map[string]string{"tenant": `a","rule"="b`})
	b, _ := hook.GroupKey(map[string]string{"tenant": "a", "rule": "b"})
	if a == b {
		t.Errorf("values with separators collide: %s", a)
	}
}

func TestSilenced(t *testing.T) {
	cfg := loadExample(t)
	starts := time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC)
	ends := time.Date(2026, 12, 27, 0, 0, 0, 0, time.UTC)
	reopened := map[string]string{"tenant": "acme", "rule": "reopened-twice"}
	tests := []struct {
		name   string
		labels map[string]string
		at     time.Time
		want   bool
	}{
		{"before", reopened, starts.Add(-time.Nanosecond), false},
		{"at the start", reopened, starts, true},
		{"in the window", reopened, starts.Add(36 * time.Hour), true},
		{"just before the end", reopened, ends.Add(-time.Nanosecond), true},
		{"at the end", reopened, ends, false},
		{"the start in another zone", reopened, starts.In(time.FixedZone("X", 5*3600)), true},
		{"another rule", map[string]string{"tenant": "acme", "rule": "sla"}, starts.Add(time.Hour), false},
	}
	for _, tt := range tests {
		got := cfg.Silenced(tt.labels, tt.at)
		if (got != nil) != tt.want || (got != nil && got != cfg.Silences[0]) {
			t.Errorf("%s: Silenced = %v, want %v", tt.name, got, tt.want)
		}
	}

	cfg = parse(t, `receivers: [{name: a, slack: {url: {env: SLACK_BILLING_URL}}}]
route: {receiver: a}
silences:
  - {matchers: 'tenant="acme"', starts: 2026-01-01T00:00:00Z, ends: 2026-01-02T00:00:00Z, comment: first}
  - {matchers: 'tenant=~"ac.*"', starts: 2026-01-01T00:00:00Z, ends: 2026-02-01T00:00:00Z, comment: second}
`)
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if s := cfg.Silenced(map[string]string{"tenant": "acme"}, at); s == nil || s.Comment != "first" {
		t.Errorf("first active silence = %v", s)
	}
	if s := cfg.Silenced(map[string]string{"tenant": "acme"}, at.AddDate(0, 0, 5)); s == nil || s.Comment != "second" {
		t.Errorf("the second once the first ended = %v", s)
	}
	if s := cfg.Silenced(map[string]string{"tenant": "acme"}, at.AddDate(0, 2, 0)); s != nil {
		t.Errorf("after every silence = %v", s)
	}
}

func TestInhibited(t *testing.T) {
	cfg := loadExample(t)
	csat := map[string]string{"escalation_id": "e1", "tenant": "acme", "rule": "low-csat", "subject_kind": "agent", "agent": "a1"}
	ticket := map[string]string{"escalation_id": "e2", "tenant": "acme", "rule": "sla", "subject_kind": "ticket", "agent": "a1"}
	with := func(m map[string]string, kv ...string) map[string]string {
		m = maps.Clone(m)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "-" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name   string
		target map[string]string
		open   []map[string]string
		want   int // index in open of the inhibiting source, -1 for none
	}{
		{"inhibited by the agent's low CSAT", ticket, []map[string]string{csat}, 0},
		{"the first inhibiting source", ticket, []map[string]string{with(csat, "agent", "a2"), csat, with(csat, "escalation_id", "e3")}, 1},
		{"no open escalations", ticket, nil, -1},
		{"another agent", with(ticket, "agent", "a2"), []map[string]string{csat}, -1},
		{"another tenant", with(ticket, "tenant", "globex"), []map[string]string{csat}, -1},
		{"the target has no agent", with(ticket, "agent", "-"), []map[string]string{csat}, -1},
		{"the source has no agent", ticket, []map[string]string{with(csat, "agent", "-")}, -1},
		{"neither has an agent: equal, but not present", with(ticket, "agent", "-"), []map[string]string{with(csat, "agent", "-")}, -1},
		{"empty agents are missing ones", with(ticket, "agent", ""), []map[string]string{with(csat, "agent", "")}, -1},
		{"the target is not a ticket escalation", with(ticket, "subject_kind", "team"), []map[string]string{csat}, -1},
		{"the source is not an agent escalation", ticket, []map[string]string{with(csat, "subject_kind", "team")}, -1},
		{"the source's rule does not inhibit", ticket, []map[string]string{with(csat, "rule", "sla")}, -1},
		{"other source rule", ticket, []map[string]string{with(csat, "rule", "low-resolution-rate")}, 0},
	}
	for _, tt := range tests {
		rule, src := cfg.Inhibited(tt.target, tt.open)
		switch {
		case tt.want < 0 && (rule != nil || src != nil):
			t.Errorf("%s: inhibited by %v", tt.name, src)
		case tt.want >= 0 && (rule != cfg.Inhibits[0] || !maps.Equal(src, tt.open[tt.want])):
			t.Errorf("%s: Inhibited = %v, %v; want source %v", tt.name, rule, src, tt.open[tt.want])
		}
	}
}

func TestInhibitedNeverByItself(t *testing.T) {
	cfg := parse(t, `receivers: [{name: a, slack: {url: {env: SLACK_BILLING_URL}}}]
route: {receiver: a}
inhibit_rules:
  - source_matchers: 'severity="critical"'
    target_matchers: 'severity=~"critical|warning"'
    equal: [tenant]
`)
	crit := map[string]string{"escalation_id": "e1", "tenant": "acme", "severity": "critical"}
	crit2 := map[string]string{"escalation_id": "e2", "tenant": "acme", "severity": "critical"}
	warn := map[string]string{"escalation_id": "e3", "tenant": "acme", "severity": "warning"}
	if r, _ := cfg.Inhibited(crit, []map[string]string{crit}); r != nil {
		t.Error("an escalation inhibited itself (same escalation_id)")
	}
	noID := map[string]string{"tenant": "acme", "severity": "critical"}
	if r, _ := cfg.Inhibited(noID, []map[string]string{maps.Clone(noID)}); r != nil {
		t.Error("an escalation without id inhibited itself (same labels)")
	}
	if r, _ := cfg.Inhibited(crit, []map[string]string{crit2}); r != nil {
		t.Error("two escalations matching both sides inhibit each other")
	}
	if r, src := cfg.Inhibited(warn, []map[string]string{crit, crit2}); r == nil || src["escalation_id"] != "e1" {
		t.Errorf("warning not inhibited by the critical one: %v", src)
	}
	if r, _ := cfg.Inhibited(crit, []map[string]string{warn}); r != nil {
		t.Error("inhibited by an escalation that is no source")
	}
}
