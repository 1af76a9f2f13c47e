package app

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/grpcapi"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// whatifRules: a 4h first response for every ticket, a reopen rule, and a KPI rule the what-if
// cannot simulate. One level, so what fired is only triggers.
const whatifRules = `tenants:
  acme:
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
    sla_policies:
      - name: standard
        at_risk: off
        escalation: leads
        targets:
          default: {first_response: 4h}
    quality_rules:
      - {name: reopened, kind: reopens, min_reopens: 1, escalation: leads}
      - {name: low-csat, kind: kpi, metric: csat_percent, window: 24h, below: 50, escalation: leads}
`

// weekTicket is one ticket of the week: created at its offset from the week's start, first
// answered after reply (0: never), reopened after reopen (0: never).
type weekTicket struct {
	id            string
	created       time.Duration
	reply, reopen time.Duration
}

// week is the tickets of a week, a new one every 12 hours, with odd ids. The replies straddle
// the targets the test simulates (1h, 4h, 5h30m); ticket 2 is answered in the very minute it
// was created (an equal timestamp); ticket 11 is solved and reopened.
func week() []weekTicket {
	replies := []time.Duration{30 * time.Minute, 2 * time.Hour, 0, 5 * time.Hour, 0, 45 * time.Minute, 3 * time.Hour, 6 * time.Hour,
		90 * time.Minute, 0, 59 * time.Minute, 4*time.Hour + 30*time.Minute, time.Hour, 3*time.Hour + 59*time.Minute}
	var out []weekTicket
	for i, r := range replies {
		tk := weekTicket{id: fmt.Sprintf("T %d/ü \"<script>\"", i), created: time.Duration(i) * 12 * time.Hour, reply: r}
		switch i {
		case 2:
			tk.reply = -1 // answered at its creation instant
		case 11:
			tk.reopen = 7 * time.Hour
		}
		out = append(out, tk)
	}
	return out
}

// answered is how long the first reply took; false when there is none.
func (tk weekTicket) answered() (time.Duration, bool) {
	switch {
	case tk.reply < 0:
		return 0, true
	case tk.reply == 0:
		return 0, false
	}
	return tk.reply, true
}

// breaches reports, computed from the events alone, whether the ticket breaches a first
// response target: no reply, or one at or after the deadline.
func (tk weekTicket) breaches(target time.Duration) bool {
	d, ok := tk.answered()
	return !ok || d >= target
}

// step is one instant of the week: its events, published when the test's clock reaches it.
type step struct {
	at  time.Time
	evs []*tpv1.TicketEvent
}

// keyspace is every Redis key with its serialised value.
func (s *stack) keyspace(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, k := range testenv.Keys(t, s.rdb, "*") {
		out[k] = s.rdb.Dump(ctx, k).Val()
	}
	return out
}

func rng(from, to time.Time) *tpv1.TimeRange {
	return &tpv1.TimeRange{From: timestamppb.New(from), To: timestamppb.New(to)}
}

// diffs are a response's escalations as "DIFFERENCE rule subject level".
func diffs(resp *tpv1.SimulateRulesResponse) []string {
	out := []string{}
	for _, e := range resp.GetEscalations() {
		out = append(out, fmt.Sprintf("%s %s %q L%d", strings.TrimPrefix(e.GetDifference().String(), "DIFFERENCE_"), e.GetRule(), e.GetSubjectId(), e.GetLevel()))
	}
	sort.Strings(out)
	return out
}

// The test: a week of a tenant's events lived through by the service (its clock moved
// from event to event and deadline to deadline), then the what-if with the loaded rules (all the
// same), a tightened first response target (the extra breaches ADDED, computed here from the
// events) and a loosened one (REMOVED); and nothing stored, scheduled or published by any of it.
func TestWhatIfWeek(t *testing.T) {
	s := newStack(t, "")
	if err := os.WriteFile(s.rules, []byte(whatifRules), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-8 * 24 * time.Hour).Truncate(time.Minute)
	setClock := func(at time.Time) { s.clock.offset.Store(int64(time.Until(at))) }
	setClock(start)
	client, _ := s.start(t)
	ctx := context.Background()

	tickets := week()
	byInstant := map[time.Time][]*tpv1.TicketEvent{}
	deadline := map[time.Time]bool{}
	var liveWant []string // what the live service fires, in its order
	type firing struct {
		at   time.Time
		what string
	}
	var firings []firing
	for _, tk := range tickets {
		c := start.Add(tk.created)
		byInstant[c] = append(byInstant[c], createdAgo(tk.id, c, 0))
		if d, ok := tk.answered(); ok {
			byInstant[c.Add(d)] = append(byInstant[c.Add(d)], reply(tk.id, c.Add(d)))
		}
		if tk.breaches(4 * time.Hour) {
			deadline[c.Add(4*time.Hour)] = true
			firings = append(firings, firing{c.Add(4 * time.Hour), fmt.Sprintf("SAME sla-first-response %q L1", tk.id)})
		}
		if tk.reopen > 0 {
			solved, reopened := c.Add(tk.reopen-time.Hour), c.Add(tk.reopen)
			byInstant[solved] = append(byInstant[solved], ev(tk.id, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, solved, setStatus(tpv1.TicketStatus_TICKET_STATUS_SOLVED)))
			byInstant[reopened] = append(byInstant[reopened], ev(tk.id, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, reopened, setStatus(tpv1.TicketStatus_TICKET_STATUS_OPEN)))
			firings = append(firings, firing{reopened, fmt.Sprintf("SAME reopened %q L1", tk.id)})
		}
	}
	var steps []step
	for at, evs := range byInstant {
		steps = append(steps, step{at, evs})
	}
	for at := range deadline {
		if _, ok := byInstant[at]; !ok {
			steps = append(steps, step{at: at})
		}
	}
	slices.SortFunc(steps, func(a, b step) int { return a.at.Compare(b.at) })
	for _, f := range firings {
		liveWant = append(liveWant, f.what)
	}
	sort.Strings(liveWant)

	listed := func() int {
		resp, err := client.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "acme", PageSize: 500})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetEscalations())
	}
	for _, st := range steps {
		setClock(st.at)
		if len(st.evs) > 0 {
			s.publish(t, st.evs...)
			s.waitAllAcked(t)
		}
		want := 0
		for _, f := range firings {
			if !f.at.After(st.at) {
				want++
			}
		}
		waitFor(t, fmt.Sprintf("%d escalations at %s", want, st.at.Sub(start)), func() bool { return listed() == want })
	}
	end := start.Add(7 * 24 * time.Hour)
	setClock(end.Add(time.Minute))
	week := rng(start, end)

	// GetRules hands out the file's part of acme, which loads back to the same rules.
	got, err := client.GetRules(ctx, &tpv1.GetRulesRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rulesfile.Parse("rules_yaml", []byte(got.GetRulesYaml()))
	if err != nil {
		t.Fatalf("GetRules' YAML does not load: %v\n%s", err, got.GetRulesYaml())
	}
	if tn, ok := cfg.Tenant("acme"); !ok || len(cfg.Tenants) != 1 || len(tn.Quality) != 2 || targetOf(tn.Policies[0]) != 4*time.Hour {
		t.Errorf("GetRules:\n%s", got.GetRulesYaml())
	}
	if got.GetVersion() != grpcapi.Version([]byte(got.GetRulesYaml())) || got.GetLoadedAt() == nil {
		t.Errorf("version %q, loaded at %v", got.GetVersion(), got.GetLoadedAt())
	}

	// The live service is left with nothing to do: every timer of the week has fired, so what
	// Redis holds now changes only if the simulations change it.
	waitFor(t, "every timer fired and its lease gone", func() bool {
		return len(testenv.Keys(t, s.rdb, "tp:{tq:*}:due"))+len(testenv.Keys(t, s.rdb, "tp:{tq:*}:lease")) == 0
	})
	before := s.keyspace(t)
	seq := s.lastSeq(t)
	nc, err := nats.Connect(s.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	published, err := nc.SubscribeSync("escalations.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	simulate := func(t *testing.T, yaml string) *tpv1.SimulateRulesResponse {
		t.Helper()
		var header metadata.MD
		resp, err := client.SimulateRules(ctx, &tpv1.SimulateRulesRequest{Tenant: "acme", RulesYaml: yaml, Range: week}, grpc.Header(&header))
		if err != nil {
			t.Fatal(err)
		}
		if note := strings.Join(header.Get(grpcapi.NotSimulatedHeader), ""); !strings.Contains(note, "low-csat") {
			t.Errorf("header %s: %q, want the KPI rule named", grpcapi.NotSimulatedHeader, note)
		}
		if resp.GetEventsReplayed() != int64(s.publishedEvents(tickets)) || resp.GetTruncated() {
			t.Errorf("replayed %d events (truncated %v), want %d", resp.GetEventsReplayed(), resp.GetTruncated(), s.publishedEvents(tickets))
		}
		return resp
	}
	check := func(t *testing.T, resp *tpv1.SimulateRulesResponse, want []string) {
		t.Helper()
		sort.Strings(want)
		if got := diffs(resp); !slices.Equal(got, want) {
			t.Errorf("simulated\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		var added, removed, same int32
		for _, w := range want {
			switch strings.Fields(w)[0] {
			case "ADDED":
				added++
			case "REMOVED":
				removed++
			case "SAME":
				same++
			}
		}
		if resp.GetAdded() != added || resp.GetRemoved() != removed || resp.GetSame() != same {
			t.Errorf("counts %d/%d/%d, want %d/%d/%d", resp.GetAdded(), resp.GetRemoved(), resp.GetSame(), added, removed, same)
		}
		for _, e := range resp.GetEscalations() {
			if (e.GetDifference() == tpv1.Difference_DIFFERENCE_ADDED) != (e.GetEscalationId() == "") || e.GetAt() == nil || e.GetSummary() == "" {
				t.Errorf("escalation %v", e)
			}
		}
	}

	t.Run("loaded rules: everything the same", func(t *testing.T) {
		resp := simulate(t, "")
		check(t, resp, slices.Clone(liveWant))
		if resp.GetRulesVersion() != got.GetVersion() {
			t.Errorf("rules version %q, want GetRules' %q", resp.GetRulesVersion(), got.GetVersion())
		}
	})
	t.Run("an unedited copy is the loaded rules", func(t *testing.T) {
		resp := simulate(t, got.GetRulesYaml())
		check(t, resp, slices.Clone(liveWant))
		if resp.GetRulesVersion() != got.GetVersion() {
			t.Errorf("rules version %q, want GetRules' %q", resp.GetRulesVersion(), got.GetVersion())
		}
	})
	t.Run("first response 4h to 1h: the tickets answered in 1h to 4h are added", func(t *testing.T) {
		want := slices.Clone(liveWant)
		for _, tk := range tickets {
			if tk.breaches(time.Hour) && !tk.breaches(4*time.Hour) {
				want = append(want, fmt.Sprintf("ADDED sla-first-response %q L1", tk.id))
			}
		}
		if len(want) != len(liveWant)+5 {
			t.Fatalf("the week has %d tickets answered in 1h to 4h, want 5", len(want)-len(liveWant))
		}
		resp := simulate(t, strings.Replace(got.GetRulesYaml(), "first_response: 4h", "first_response: 1h", 1))
		check(t, resp, want)
		if resp.GetRulesVersion() == got.GetVersion() {
			t.Error("edited rules have the loaded rules' version")
		}
	})
	t.Run("first response 4h to 5h30m: the tickets answered in 4h to 5h30m are removed", func(t *testing.T) {
		var want []string
		for _, w := range liveWant {
			removed := false
			for _, tk := range tickets {
				if strings.Contains(w, fmt.Sprintf("%q", tk.id)) && strings.Contains(w, "sla-first-response") && !tk.breaches(5*time.Hour+30*time.Minute) {
					removed = true
				}
			}
			if removed {
				w = "REMOVED" + strings.TrimPrefix(w, "SAME")
			}
			want = append(want, w)
		}
		check(t, simulate(t, strings.Replace(got.GetRulesYaml(), "first_response: 4h", "first_response: 5h30m", 1)), want)
	})

	if after := s.keyspace(t); !mapsEqual(before, after) {
		t.Errorf("Redis changed: %d keys before, %d after", len(before), len(after))
		for k := range before {
			if _, ok := after[k]; !ok {
				t.Errorf("gone: %q", k)
			}
		}
		for k := range after {
			if before[k] != after[k] {
				t.Errorf("new or changed: %q", k)
			}
		}
	}
	if after := s.lastSeq(t); after != seq {
		t.Errorf("ESCALATIONS went from sequence %d to %d", seq, after)
	}
	if msg, err := published.NextMsg(500 * time.Millisecond); err == nil {
		t.Errorf("published on %s during the simulations", msg.Subject)
	}

	t.Run("a range with no events", func(t *testing.T) {
		resp, err := client.SimulateRules(ctx, &tpv1.SimulateRulesRequest{Tenant: "acme", Range: rng(start.Add(-30*24*time.Hour), start.Add(-29*24*time.Hour))})
		if err != nil || resp.GetEventsReplayed() != 0 || len(resp.GetEscalations()) != 0 || resp.GetRulesVersion() != got.GetVersion() {
			t.Errorf("got %v, %v", resp, err)
		}
	})
}

func targetOf(p *rulesfile.Policy) time.Duration {
	tg, _ := p.TargetsFor(tpv1.Priority_PRIORITY_URGENT)
	return tg.FirstResponse
}

// publishedEvents is how many events the week's tickets have.
func (s *stack) publishedEvents(tickets []weekTicket) int {
	n := 0
	for _, tk := range tickets {
		n++
		if _, ok := tk.answered(); ok {
			n++
		}
		if tk.reopen > 0 {
			n += 2
		}
	}
	return n
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Bad requests name the field and the reason, and a caller without the scope or of another
// tenant is refused.
func TestWhatIfRequestErrors(t *testing.T) {
	s := newStack(t, "")
	if err := os.WriteFile(s.rules, []byte(whatifRules), 0o600); err != nil {
		t.Fatal(err)
	}
	r := s.run(t, s.config())
	client := tpv1.NewEscalationServiceClient(r.DialAs(s.tenants.Acme))
	ctx := context.Background()
	now := time.Now()
	day := rng(now.Add(-24*time.Hour), now)
	globex := strings.Replace(whatifRules, "  acme:", "  globex:", 1)
	tests := []struct {
		name string
		give *tpv1.SimulateRulesRequest
		code codes.Code
		msg  string
	}{
		{"syntax error", &tpv1.SimulateRulesRequest{Tenant: "acme", Range: day, RulesYaml: "tenants:\n  acme:\n    sla_policies: [\n"},
			codes.InvalidArgument, "rules_yaml: rules_yaml:4: "},
		{"strict loader", &tpv1.SimulateRulesRequest{Tenant: "acme", Range: day, RulesYaml: strings.Replace(whatifRules, "first_response: 4h", "first_response: 4 hours", 1)},
			codes.InvalidArgument, "rules_yaml: rules_yaml:12: tenants.acme.sla_policies[0].targets.default.first_response: "},
		{"wrong tenant in the yaml", &tpv1.SimulateRulesRequest{Tenant: "acme", Range: day, RulesYaml: globex},
			codes.InvalidArgument, `rules_yaml: must hold exactly the tenant "acme", holds "globex"`},
		{"two tenants in the yaml", &tpv1.SimulateRulesRequest{Tenant: "acme", Range: day, RulesYaml: whatifRules + strings.TrimPrefix(globex, "tenants:\n")},
			codes.InvalidArgument, `rules_yaml: must hold exactly the tenant "acme", holds "acme", "globex"`},
		{"too big", &tpv1.SimulateRulesRequest{Tenant: "acme", Range: day, RulesYaml: whatifRules + "#" + strings.Repeat("x", grpcapi.MaxRulesYAML)},
			codes.InvalidArgument, fmt.Sprintf("rules_yaml: %d bytes, at most 1048576 allowed", len(whatifRules)+1+grpcapi.MaxRulesYAML)},
		{"no range", &tpv1.SimulateRulesRequest{Tenant: "acme"}, codes.InvalidArgument, "range: from and to are required"},
		{"backwards", &tpv1.SimulateRulesRequest{Tenant: "acme", Range: rng(now, now)}, codes.InvalidArgument, "range.to: must be after range.from"},
		{"32 days", &tpv1.SimulateRulesRequest{Tenant: "acme", Range: rng(now.Add(-32*24*time.Hour), now)}, codes.InvalidArgument, "range: 768h0m0s long, at most 744h0m0s (31 days) allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.SimulateRules(ctx, tt.give)
			if st := status.Convert(err); st.Code() != tt.code || !strings.HasPrefix(st.Message(), tt.msg) {
				t.Errorf("got %v, want %s %q...", err, tt.code, tt.msg)
			}
		})
	}
	for _, c := range []struct {
		name, key string
		code      codes.Code
	}{{"missing scope", s.tenants.AcmeEvents, codes.PermissionDenied}, {"wrong tenant", s.tenants.Globex, codes.PermissionDenied}} {
		cl := tpv1.NewEscalationServiceClient(r.DialAs(c.key))
		if _, err := cl.GetRules(ctx, &tpv1.GetRulesRequest{Tenant: "acme"}); status.Code(err) != c.code {
			t.Errorf("GetRules, %s: %v", c.name, err)
		}
		if _, err := cl.SimulateRules(ctx, &tpv1.SimulateRulesRequest{Tenant: "acme", Range: day}); status.Code(err) != c.code {
			t.Errorf("SimulateRules, %s: %v", c.name, err)
		}
	}
	// A reload shows: the new rules, a new version, a later loaded_at.
	old, err := client.GetRules(ctx, &tpv1.GetRulesRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.rules, []byte(strings.Replace(whatifRules, "first_response: 4h", "first_response: 2h", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reloaded rules", func() bool {
		g, err := client.GetRules(ctx, &tpv1.GetRulesRequest{Tenant: "acme"})
		return err == nil && strings.Contains(g.GetRulesYaml(), "first_response: 2h") && g.GetVersion() != old.GetVersion() &&
			g.GetLoadedAt().AsTime().After(old.GetLoadedAt().AsTime())
	})

	// A tenant the rules file does not name has no rules, in a file SimulateRules takes back.
	ops := tpv1.NewEscalationServiceClient(r.DialAs(s.tenants.Operator))
	g, err := ops.GetRules(ctx, &tpv1.GetRulesRequest{Tenant: "globex"})
	if err != nil || g.GetRulesYaml() != "tenants:\n  globex: {}\n" {
		t.Fatalf("globex's rules: %v %v", g, err)
	}
	if _, err := ops.SimulateRules(ctx, &tpv1.SimulateRulesRequest{Tenant: "globex", RulesYaml: g.GetRulesYaml(), Range: day}); err != nil {
		t.Errorf("simulating globex's own rules: %v", err)
	}
}

// One simulation more than -simulations at once is refused; the running one finishes.
func TestWhatIfConcurrencyLimit(t *testing.T) {
	s := newStack(t, "")
	cfg := s.config()
	cfg.Simulations = 1
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hold := func(ctx context.Context) {
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	r := servicetest.Start(t, func(ctx context.Context, h service.Hooks) error {
		return Deps{Hooks: h, Now: s.clock.now, Simulating: hold}.Run(ctx, cfg, quiet)
	})
	client := tpv1.NewEscalationServiceClient(r.DialAs(s.tenants.Acme))
	ctx := context.Background()
	now := time.Now()
	req := &tpv1.SimulateRulesRequest{Tenant: "acme", Range: rng(now.Add(-time.Hour), now)}
	done := make(chan error, 1)
	go func() {
		_, err := client.SimulateRules(ctx, req)
		done <- err
	}()
	<-entered
	_, err := client.SimulateRules(ctx, req)
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || st.Message() != "SimulateRules: 1 simulations are running on this replica, the most allowed; retry later" {
		t.Errorf("second simulation: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("first simulation: %v", err)
	}
	if _, err := client.SimulateRules(ctx, req); err != nil {
		t.Errorf("after the first ended: %v", err)
	}
}

// A simulation past -simulate-timeout is answered DeadlineExceeded, and its slot is free again.
func TestWhatIfTimeout(t *testing.T) {
	s := newStack(t, "")
	cfg := s.config()
	cfg.Simulations, cfg.SimulateTimeout = 1, 300*time.Millisecond
	var calls atomic.Int32
	// The first call outlives its deadline; later ones go on at once.
	hold := func(ctx context.Context) {
		if calls.Add(1) == 1 {
			<-ctx.Done()
		}
	}
	r := servicetest.Start(t, func(ctx context.Context, h service.Hooks) error {
		return Deps{Hooks: h, Now: s.clock.now, Simulating: hold}.Run(ctx, cfg, quiet)
	})
	client := tpv1.NewEscalationServiceClient(r.DialAs(s.tenants.Acme))
	now := time.Now()
	req := &tpv1.SimulateRulesRequest{Tenant: "acme", Range: rng(now.Add(-time.Hour), now)}
	_, err := client.SimulateRules(context.Background(), req)
	if st := status.Convert(err); st.Code() != codes.DeadlineExceeded ||
		st.Message() != "SimulateRules: not done within 300ms (-simulate-timeout); simulate a shorter range" {
		t.Errorf("got %v", err)
	}
	if _, err := client.SimulateRules(context.Background(), req); err != nil {
		t.Errorf("after the timeout: %v", err)
	}
}
