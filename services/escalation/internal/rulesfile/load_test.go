package rulesfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
)

// examplePath is the example docs/escalations.md and deployments point at, so it is kept valid by this test.
const examplePath = "../../../../deploy/escalation/rules.example.yaml"

func loadExample(t *testing.T) *Config {
	t.Helper()
	cfg, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(example):\n%v", err)
	}
	return cfg
}

func TestLoadExampleTenants(t *testing.T) {
	cfg := loadExample(t)
	if cfg.File != examplePath || len(cfg.Tenants) != 2 {
		t.Fatalf("File %q, %d tenants; want %q and acme, globex", cfg.File, len(cfg.Tenants), examplePath)
	}
	globex, ok := cfg.Tenant("globex")
	if !ok || globex.ID != "globex" || len(globex.Policies)+len(globex.Quality)+len(globex.Escalations) != 0 {
		t.Fatalf("globex = %+v; want a tenant without rules", globex)
	}
	if _, ok := cfg.Tenant("nobody"); ok {
		t.Error("Tenant(nobody) found")
	}
	if _, ok := (*Config)(nil).Tenant("acme"); ok {
		t.Error("a nil Config has tenants")
	}
}

func TestLoadExampleCalendar(t *testing.T) {
	acme, _ := loadExample(t).Tenant("acme")
	vip := acme.Policies[0]
	if vip.CalendarName != "berlin-office" || vip.Calendar == nil {
		t.Fatalf("vip calendar = %q, %v", vip.CalendarName, vip.Calendar)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, hour, min int) time.Time { return time.Date(2026, 11, day, hour, min, 0, 0, berlin) }
	tests := []struct {
		name  string
		start time.Time
		add   time.Duration
		want  time.Time
	}{
		// Friday 27 November 2026: 16:00-17:00 is one hour, Saturday 10:00 the next.
		{"friday afternoon runs into saturday", at(27, 16, 0), 2 * time.Hour, at(28, 11, 0)},
		{"saturday closes at 14:00, sunday is closed", at(28, 13, 0), 2 * time.Hour, at(30, 10, 0)},
		{"the lunch break does not count", at(30, 12, 0), time.Hour, at(30, 14, 0)},
		{"before opening counts from 09:00", at(30, 7, 0), 30 * time.Minute, at(30, 9, 30)},
		// Thursday 24 December; the 25th and 26th are holidays, the 27th a Sunday.
		{"christmas holidays are skipped", time.Date(2026, 12, 24, 16, 30, 0, 0, berlin), time.Hour,
			time.Date(2026, 12, 28, 9, 30, 0, 0, berlin)},
	}
	for _, tt := range tests {
		if got := vip.Calendar.Add(tt.start, tt.add); !got.Equal(tt.want) {
			t.Errorf("%s: Add(%v, %v) = %v, want %v", tt.name, tt.start, tt.add, got.In(berlin), tt.want)
		}
	}
}

func TestLoadExampleFridayToMonday(t *testing.T) {
	// Business hours as in the example but Monday to Friday only: 2h from Friday 16:00 is one
	// hour on Friday and one on Monday from 09:00.
	give := strings.Replace(readExample(t), `          sat: "10:00-14:00"              # a single range needs no list`+"\n", "", 1)
	cfg, err := Parse("rules.yaml", []byte(give))
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	c := cfg.Tenants["acme"].Policies[0].Calendar
	got := c.Add(time.Date(2026, 11, 27, 16, 0, 0, 0, berlin), 2*time.Hour)
	if want := time.Date(2026, 11, 30, 10, 0, 0, 0, berlin); !got.Equal(want) {
		t.Fatalf("Friday 16:00 + 2h = %v, want %v", got.In(berlin), want)
	}
}

func readExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoadExamplePolicies(t *testing.T) {
	acme, _ := loadExample(t).Tenant("acme")
	if len(acme.Policies) != 2 {
		t.Fatalf("%d policies; want vip and standard", len(acme.Policies))
	}
	vip, std := acme.Policies[0], acme.Policies[1]
	urgent, high := ticketpulsev1.Priority_PRIORITY_URGENT, ticketpulsev1.Priority_PRIORITY_HIGH
	pending, onHold := ticketpulsev1.TicketStatus_TICKET_STATUS_PENDING, ticketpulsev1.TicketStatus_TICKET_STATUS_ON_HOLD
	checks := []struct {
		name      string
		got, want any
	}{
		{"vip name", vip.Name, "vip"},
		{"vip priorities", vip.Match.Priorities, []ticketpulsev1.Priority{urgent, high}},
		{"vip teams", vip.Match.Teams, []string{"billing"}},
		{"vip channels", vip.Match.Channels, []string{"email"}},
		{"vip tags", vip.Match.Tags, []string{"vip"}},
		{"vip pause", vip.Pause, []ticketpulsev1.TicketStatus{pending, onHold}},
		{"vip at risk", vip.AtRisk, 0.8},
		{"vip escalation", vip.Escalation, "page-now"},
		{"vip urgent", vip.Targets[urgent], Targets{FirstResponse: 30 * time.Minute, NextResponse: time.Hour, Resolution: 8 * time.Hour}},
		{"vip targets", len(vip.Targets), 1},
		{"vip default", *vip.Default, Targets{FirstResponse: 4 * time.Hour, Resolution: 72 * time.Hour}},
		{"standard match", std.Match.Priorities == nil && std.Match.Teams == nil && std.Match.Tags == nil, true},
		{"standard pause", std.Pause, []ticketpulsev1.TicketStatus{pending}},
		{"standard at risk off", std.AtRisk, 0.0},
		{"standard low", std.Targets[ticketpulsev1.Priority_PRIORITY_LOW], Targets{Resolution: 5 * 24 * time.Hour}},
		{"standard high", std.Targets[high], Targets{FirstResponse: 2 * time.Hour, NextResponse: 4 * time.Hour}},
		{"standard default", std.Default == nil, true},
		{"standard is 24/7", std.Calendar == nil && std.CalendarName == "", true},
	}
	for _, c := range checks {
		if !equal(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadExampleEscalations(t *testing.T) {
	acme, _ := loadExample(t).Tenant("acme")
	def, ok := acme.EscalationPolicy("default")
	threeDays := 72 * time.Hour
	want := &EscalationPolicy{Name: "default", Repeat: time.Hour, HistoryHorizon: &threeDays, Levels: []Level{
		{Targets: []string{"team-lead"}, AckTimeout: 15 * time.Minute},
		{Targets: []string{"support-manager", "oncall@support"}, AckTimeout: 30 * time.Minute},
	}}
	if !ok || !equal(def, want) {
		t.Errorf("default = %+v, want %+v", def, want)
	}
	page, ok := acme.EscalationPolicy("page-now")
	want = &EscalationPolicy{Name: "page-now", Levels: []Level{{Targets: []string{"support-director"}}}}
	if !ok || !equal(page, want) {
		t.Errorf("page-now = %+v, want %+v", page, want)
	}
	if ep, ok := acme.EscalationPolicy("nope"); ok || ep != nil {
		t.Errorf("EscalationPolicy(nope) = %v, %v", ep, ok)
	}
}

func TestLoadExampleQualityRules(t *testing.T) {
	acme, _ := loadExample(t).Tenant("acme")
	f := func(v float64) *float64 { return &v }
	warning := ticketpulsev1.Severity_SEVERITY_WARNING
	want := []*QualityRule{
		{Name: "bad-rating", Kind: KindBadRating, Match: Match{Teams: []string{"billing"}}, MaxScore: 2,
			Severity: ticketpulsev1.Severity_SEVERITY_CRITICAL, Escalation: "default"},
		{Name: "reopened-twice", Kind: KindReopens, MinReopens: 2, Severity: ticketpulsev1.Severity_SEVERITY_INFO, Escalation: "default"},
		{Name: "low-resolution-rate", Kind: KindKPI, Scope: "agent", Metric: "resolution_rate", Window: "7d", Below: f(0.7),
			MinSample: 20, Severity: warning, Escalation: "default"},
		{Name: "slow-first-response", Kind: KindKPI, Scope: "team", Metric: "first_response_p90", Window: "24h", Above: f(7200),
			MinSample: 10, Severity: warning, Escalation: "default"},
		{Name: "csat-drop", Kind: KindKPIBaseline, Scope: "agent", Metric: "csat_percent", Window: "7d", Drop: 0.2,
			MinSample: 10, Severity: warning, Escalation: "default"},
	}
	if len(acme.Quality) != len(want) {
		t.Fatalf("%d rules, want %d", len(acme.Quality), len(want))
	}
	for i, w := range want {
		if got := acme.Quality[i]; !equal(got, w) {
			t.Errorf("rule %d = %+v\nwant %+v", i, got, w)
		}
		if r, ok := acme.Rule(w.Name); !ok || r != acme.Quality[i] {
			t.Errorf("Rule(%s) = %v, %v", w.Name, r, ok)
		}
	}
	if _, ok := acme.Rule(RuleFirstResponse); ok {
		t.Error("Rule(sla-first-response) found a quality rule")
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		give  string
		check func(t *testing.T, cfg *Config)
	}{
		{"empty tenants", "tenants: {}\n", func(t *testing.T, cfg *Config) {
			if len(cfg.Tenants) != 0 || cfg.Tenants == nil {
				t.Errorf("tenants = %v", cfg.Tenants)
			}
		}},
		{"null tenants and a null tenant", "tenants:\n", func(t *testing.T, cfg *Config) {
			if len(cfg.Tenants) != 0 {
				t.Errorf("tenants = %v", cfg.Tenants)
			}
		}},
		{"null tenant", "tenants:\n  acme:\n", func(t *testing.T, cfg *Config) {
			if a := cfg.Tenants["acme"]; a == nil || a.Escalations == nil || len(a.Policies) != 0 {
				t.Errorf("acme = %+v", a)
			}
		}},
		{"aliases, single values, zero last ack timeout, pausing never, numbers of seconds", `tenants:
  acme:
    escalation_policies:
      lead: {levels: [{targets: lead, ack_timeout: 0}]}
    sla_policies:
      - name: all
        match: {priority: urgent, team: "42", tag: vip}
        pause_statuses: []
        at_risk: 0.5
        escalation: lead
        targets: &t {default: {resolution: 1d}}
      - {name: again, escalation: lead, targets: *t, at_risk: "90%"}
    quality_rules:
      - {name: slow, kind: kpi, metric: resolution_p50, window: 30d, below: 90, escalation: lead}
      - {name: csat, kind: kpi, metric: csat_percent, window: 1h, below: 70%, escalation: lead}
      - {name: mean, kind: kpi, metric: csat_mean, window: 1h, above: 4.5, escalation: lead, scope: team}
      - {name: reopens, kind: kpi_baseline, metric: reopen_rate, window: 24h, drop: 0.5, escalation: lead}
      - {name: abandons, kind: kpi, metric: call_abandon_rate, window: 1h, above: 10%, escalation: lead, scope: queue}
`, func(t *testing.T, cfg *Config) {
			a := cfg.Tenants["acme"]
			all, again := a.Policies[0], a.Policies[1]
			checks := []struct {
				name      string
				got, want any
			}{
				{"level", a.Escalations["lead"].Levels, []Level{{Targets: []string{"lead"}}}},
				{"match", all.Match, Match{Priorities: []ticketpulsev1.Priority{ticketpulsev1.Priority_PRIORITY_URGENT},
					Teams: []string{"42"}, Tags: []string{"vip"}}},
				{"never pause", all.Pause, []ticketpulsev1.TicketStatus{}},
				{"at risk", all.AtRisk, 0.5},
				{"at risk percent", again.AtRisk, 0.9},
				{"aliased targets", *again.Default, Targets{Resolution: 24 * time.Hour}},
				{"default pause", again.Pause, slapolicy.DefaultPause()},
				{"seconds threshold", *a.Quality[0].Below, 90.0},
				{"percent threshold", *a.Quality[1].Below, 70.0},
				{"rating threshold", *a.Quality[2].Above, 4.5},
				{"team scope", a.Quality[2].Scope, "team"},
				{"queue scope", a.Quality[4].Scope, "queue"},
				{"default min sample", a.Quality[3].MinSample, int64(1)},
				{"drop", a.Quality[3].Drop, 0.5},
			}
			for _, c := range checks {
				if !equal(c.got, c.want) {
					t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("rules.yaml", []byte(tt.give))
			if err != nil {
				t.Fatalf("Parse:\n%v", err)
			}
			tt.check(t, cfg)
		})
	}
}

// history_horizon overrides -history-horizon per escalation policy: set, zero (raise every
// breach) and absent (the flag's) are three different answers of Horizon.
func TestParseHistoryHorizon(t *testing.T) {
	cfg, err := Parse("rules.yaml", []byte(`tenants:
  acme:
    escalation_policies:
      flag: {levels: [{targets: lead}]}
      week: {levels: [{targets: lead}], history_horizon: 7d}
      hours: {levels: [{targets: lead}], history_horizon: 90m}
      all: {levels: [{targets: lead}], history_horizon: 0}
      aliased: {levels: [{targets: lead}], history_horizon: &h 36h}
      again: {levels: [{targets: lead}], history_horizon: *h}
`))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	a := cfg.Tenants["acme"]
	const flag = 24 * time.Hour
	tests := []struct {
		give string
		want time.Duration
	}{
		{"flag", flag},
		{"week", 7 * 24 * time.Hour},
		{"hours", 90 * time.Minute},
		{"all", 0},
		{"aliased", 36 * time.Hour},
		{"again", 36 * time.Hour},
		{"removed by a reload", flag},
	}
	for _, tt := range tests {
		ep, _ := a.EscalationPolicy(tt.give)
		if got := ep.Horizon(flag); got != tt.want {
			t.Errorf("%s: Horizon(%v) = %v, want %v", tt.give, flag, got, tt.want)
		}
	}
	if h := a.Escalations["flag"].HistoryHorizon; h != nil {
		t.Errorf("flag: HistoryHorizon = %v, want nil (not set)", *h)
	}
	if h := a.Escalations["all"].HistoryHorizon; h == nil || *h != 0 {
		t.Errorf("all: HistoryHorizon = %v, want a set 0", h)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var probs Problems
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &probs) {
		t.Fatalf("Load of a missing file: %v; want a wrapped fs.ErrNotExist", err)
	}
}

// equal compares the values these tests build: plain data, slices and pointers to them.
func equal(a, b any) bool {
	switch a := a.(type) {
	case []ticketpulsev1.Priority:
		return slices.Equal(a, b.([]ticketpulsev1.Priority))
	case []ticketpulsev1.TicketStatus:
		bs := b.([]ticketpulsev1.TicketStatus)
		return slices.Equal(a, bs) && (a == nil) == (bs == nil)
	case []string:
		return slices.Equal(a, b.([]string))
	case []Level:
		return slices.EqualFunc(a, b.([]Level), func(x, y Level) bool {
			return x.AckTimeout == y.AckTimeout && slices.Equal(x.Targets, y.Targets)
		})
	case Match:
		m := b.(Match)
		return equal(a.Priorities, m.Priorities) && equal(a.Teams, m.Teams) && equal(a.Channels, m.Channels) && equal(a.Tags, m.Tags)
	case *EscalationPolicy:
		e := b.(*EscalationPolicy)
		return a != nil && a.Name == e.Name && a.Repeat == e.Repeat && equal(a.Levels, e.Levels) &&
			equalDuration(a.HistoryHorizon, e.HistoryHorizon)
	case *QualityRule:
		r := b.(*QualityRule)
		return a.Name == r.Name && a.Kind == r.Kind && equal(a.Match, r.Match) && a.Severity == r.Severity &&
			a.Escalation == r.Escalation && a.MaxScore == r.MaxScore && a.MinReopens == r.MinReopens &&
			a.Scope == r.Scope && a.Metric == r.Metric && a.Window == r.Window && equalPtr(a.Above, r.Above) &&
			equalPtr(a.Below, r.Below) && a.Drop == r.Drop && a.MinSample == r.MinSample
	}
	return a == b
}

func equalPtr(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func equalDuration(a, b *time.Duration) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
