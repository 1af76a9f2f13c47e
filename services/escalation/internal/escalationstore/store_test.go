package escalationstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/judge"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

var (
	t0     = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ticket = Subject{Kind: Ticket, ID: "T-77 {x}.é"}
	leads  = &rulesfile.EscalationPolicy{Name: "leads", Levels: []rulesfile.Level{
		{Targets: []string{"team-lead"}, AckTimeout: 15 * time.Minute},
		{Targets: []string{"manager", "director"}, AckTimeout: 30 * time.Minute},
	}, Repeat: time.Hour}
)

const (
	open     = tpv1.EscalationState_ESCALATION_STATE_OPEN
	acked    = tpv1.EscalationState_ESCALATION_STATE_ACKNOWLEDGED
	resolved = tpv1.EscalationState_ESCALATION_STATE_RESOLVED
	warning  = tpv1.Severity_SEVERITY_WARNING
	critical = tpv1.Severity_SEVERITY_CRITICAL
)

func leadsPolicy(string) *rulesfile.EscalationPolicy { return leads }

func verdict(active bool, sev tpv1.Severity, version int64, at time.Time) Verdict {
	return Verdict{
		Tenant: "acme", Rule: "sla-first-response", Subject: ticket, Active: active, Severity: sev,
		Summary: "first response " + SeverityWord(sev), Facts: []judge.Fact{{Name: "target", Value: "30m0s"}},
		Labels: map[string]string{"team": "billing", "agent": "ana", "ticket": ticket.ID}, Policy: leads,
		Version: version, At: at,
	}
}

// kinds decodes the outbox into change kinds and checks the sequence numbers.
func kinds(t *testing.T, r *Record) []tpv1.ChangeKind {
	t.Helper()
	var out []tpv1.ChangeKind
	for _, p := range r.Outbox {
		c := &tpv1.EscalationChange{}
		if err := proto.Unmarshal(p.Data, c); err != nil {
			t.Fatal(err)
		}
		if c.GetSequence() != p.Seq || c.GetEscalation().GetId() != r.ID {
			t.Errorf("outbox entry seq %d holds change %d of %s", p.Seq, c.GetSequence(), c.GetEscalation().GetId())
		}
		out = append(out, c.GetKind())
	}
	return out
}

func TestLifecycle(t *testing.T) {
	rdb := testenv.Redis(t)
	s := New(rdb, time.Hour)
	ctx := context.Background()

	r, err := s.Reconcile(ctx, verdict(true, warning, 1, t0))
	if err != nil {
		t.Fatal(err)
	}
	wantID := "sla-first-response.t.T-77~20~7Bx~7D~2E~C3~A9.1"
	if r.ID != wantID || r.State != open || r.Level != 1 || r.Severity != warning || !r.RaiseAt.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("triggered: id %s state %v level %d severity %v raise %v", r.ID, r.State, r.Level, r.Severity, r.RaiseAt)
	}
	for k, v := range map[string]string{"tenant": "acme", "rule": "sla-first-response", "ticket": ticket.ID, "team": "billing",
		"agent": "ana", "severity": "warning", "level": "1", "targets": "team-lead"} {
		if r.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, r.Labels[k], v)
		}
	}
	if got := kinds(t, r); !slices.Equal(got, []tpv1.ChangeKind{tpv1.ChangeKind_CHANGE_KIND_TRIGGERED}) {
		t.Errorf("outbox %v", got)
	}

	// The same verdict again, later: no change to publish, one open escalation.
	r, err = s.Reconcile(ctx, verdict(true, warning, 1, t0.Add(time.Minute)))
	if err != nil || len(r.Outbox) != 1 || r.Seq != 1 {
		t.Fatalf("repeat: %v, outbox %d, seq %d", err, len(r.Outbox), r.Seq)
	}
	// Breached: the severity moves, which is published.
	r, err = s.Reconcile(ctx, verdict(true, critical, 1, t0.Add(5*time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Severity != critical || r.Labels["severity"] != "critical" || r.ID != wantID {
		t.Errorf("updated: %+v", r)
	}
	if got := kinds(t, r); !slices.Equal(got, []tpv1.ChangeKind{tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, tpv1.ChangeKind_CHANGE_KIND_UPDATED}) {
		t.Errorf("outbox %v", got)
	}
	if err := s.Published(ctx, "acme", r.Outbox); err != nil {
		t.Fatal(err)
	}
	// A verdict judged on fewer events is stale and changes nothing.
	if r, err = s.Reconcile(ctx, verdict(false, 0, 0, t0.Add(6*time.Minute))); err != nil || r.State != open || len(r.Outbox) != 0 {
		t.Fatalf("stale verdict: %v %+v", err, r)
	}
	// Raised without acknowledgement: level 2, then the last level repeats every hour.
	if r, err = s.Raise(ctx, "acme", wantID, leadsPolicy, t0.Add(14*time.Minute)); err != nil || r.Level != 1 {
		t.Fatalf("raise before the timeout: %v level %d", err, r.Level)
	}
	r, err = s.Raise(ctx, "acme", wantID, leadsPolicy, t0.Add(15*time.Minute))
	if err != nil || r.Level != 2 || r.Labels["targets"] != "manager,director" || !r.RaiseAt.Equal(t0.Add(45*time.Minute)) {
		t.Fatalf("raise: %v %+v", err, r)
	}
	r, err = s.Raise(ctx, "acme", wantID, leadsPolicy, t0.Add(45*time.Minute))
	if err != nil || r.Level != 2 || !r.RaiseAt.Equal(t0.Add(105*time.Minute)) {
		t.Fatalf("repeat of the last level: %v level %d raise %v", err, r.Level, r.RaiseAt)
	}
	// A second Raise for the same due time (a redelivered timer) changes nothing.
	if r, err = s.Raise(ctx, "acme", wantID, leadsPolicy, t0.Add(46*time.Minute)); err != nil || r.Seq != 4 {
		t.Fatalf("redelivered raise: %v seq %d", err, r.Seq)
	}
	// Acknowledged: raising stops.
	r, err = s.Acknowledge(ctx, "acme", wantID, "lea", "on it", t0.Add(50*time.Minute))
	if err != nil || r.State != acked || !r.RaiseAt.IsZero() {
		t.Fatalf("acknowledge: %v %+v", err, r)
	}
	if _, err := s.Acknowledge(ctx, "acme", wantID, "lea", "", t0.Add(51*time.Minute)); !errors.Is(err, ErrAcknowledged) {
		t.Errorf("second acknowledge: %v", err)
	}
	if r, err = s.Raise(ctx, "acme", wantID, leadsPolicy, t0.Add(3*time.Hour)); err != nil || r.Seq != 5 {
		t.Errorf("raise after ack: %v seq %d", err, r.Seq)
	}
	// The reply comes: the condition clears and the escalation is resolved by the system.
	r, err = s.Reconcile(ctx, verdict(false, 0, 2, t0.Add(time.Hour)))
	if err != nil || r.State != resolved || !r.ResolvedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("resolve: %v %+v", err, r)
	}
	wantTimeline := []string{"TRIGGERED system 1 warning", "UPDATED system 1 critical", "RAISED system 2 critical", "RAISED system 2 critical",
		"ACKNOWLEDGED lea 2 critical", "RESOLVED system 2 critical"}
	var timeline []string
	for _, e := range r.Timeline {
		timeline = append(timeline, fmt.Sprintf("%s %s %d %s", e.Kind.String()[len("CHANGE_KIND_"):], e.Actor, e.Level, SeverityWord(e.Severity)))
	}
	if !slices.Equal(timeline, wantTimeline) {
		t.Errorf("timeline\n%q\nwant\n%q", timeline, wantTimeline)
	}
	if _, err := s.Resolve(ctx, "acme", wantID, "lea", "", t0.Add(2*time.Hour)); !errors.Is(err, ErrResolved) {
		t.Errorf("resolve twice: %v", err)
	}
	if ttl := rdb.TTL(ctx, pointerKey("acme", "sla-first-response", ticket)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("resolved escalation TTL %v, want the retention", ttl)
	}

	// The condition again: a new escalation, not the old one reopened.
	r, err = s.Reconcile(ctx, verdict(true, critical, 3, t0.Add(2*time.Hour)))
	if err != nil || r.ID != "sla-first-response.t.T-77~20~7Bx~7D~2E~C3~A9.2" || r.Level != 1 || r.Seq != 1 {
		t.Fatalf("second escalation: %v %+v", err, r)
	}
	got, err := s.Get(ctx, "acme", wantID)
	if err != nil || got.State != resolved || len(got.Timeline) != 6 {
		t.Errorf("the first is still readable: %v %+v", err, got)
	}
	if ttl := rdb.TTL(ctx, recordKey("acme", "sla-first-response", ticket, 1)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("archived escalation TTL %v, want the retention", ttl)
	}
	if ttl := rdb.TTL(ctx, pointerKey("acme", "sla-first-response", ticket)).Val(); ttl != -1 {
		t.Errorf("pointer of an open escalation has TTL %v, want none", ttl)
	}
	// The changes of the first not yet published (3 to 6) go out before the trigger of the second.
	var pendingIDs []string
	for _, p := range r.Outbox {
		pendingIDs = append(pendingIDs, fmt.Sprintf("%s#%d", p.ID[len(p.ID)-1:], p.Seq))
	}
	if want := []string{"1#3", "1#4", "1#5", "1#6", "2#1"}; !slices.Equal(pendingIDs, want) {
		t.Errorf("outbox across escalations %v, want %v", pendingIDs, want)
	}
	if _, err := s.Get(ctx, "acme", "sla-first-response.t.T-78.1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := s.Acknowledge(ctx, "acme", "sla-first-response.t.T-78.1", "lea", "", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("acknowledge unknown: %v", err)
	}
	// A raise timer that outlived its escalation changes nothing and is no error.
	if r, err := s.Raise(ctx, "acme", "sla-first-response.t.T-78.1", leadsPolicy, t0.Add(time.Hour)); err != nil || r != nil {
		t.Errorf("raise unknown: %v %+v", err, r)
	}
}

// A verdict judged on fewer events than the ticket now holds is dropped: the replica that
// stored the newer event judges again.
func TestEventsGuard(t *testing.T) {
	rdb := testenv.Redis(t)
	s := New(rdb, time.Hour)
	ctx := context.Background()
	evKey := "tp:{acme:t:" + "T-77~20~7Bx~7D~2E~C3~A9" + "}:esc:ev"
	rdb.HSet(ctx, evKey, "e1", "x", "e2", "y")
	v := verdict(true, critical, 1, t0)
	v.EventsKey = evKey
	if r, err := s.Reconcile(ctx, v); err != nil || r != nil || s.Stale() != 1 {
		t.Fatalf("judged on 1 of 2 events: %v %+v stale %d", err, r, s.Stale())
	}
	v.Version = 2
	if r, err := s.Reconcile(ctx, v); err != nil || r == nil || r.State != open {
		t.Fatalf("judged on both: %v %+v", err, r)
	}
}

// Replicas judging the same ticket at once open one escalation and record one trigger.
func TestConcurrentReconcileOpensOne(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each replica has its own client, as separate processes would.
			s := New(rdb, time.Hour)
			if _, err := s.Reconcile(ctx, verdict(true, critical, 1, t0.Add(time.Duration(i)*time.Millisecond))); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := New(rdb, time.Hour)
	r, err := s.Current(ctx, "acme", "sla-first-response", ticket)
	if err != nil || r == nil || r.Seq != 1 || len(r.Outbox) != 1 || r.ID[len(r.ID)-2:] != ".1" {
		t.Fatalf("after 16 concurrent triggers: %v %+v", err, r)
	}
	if n := rdb.ZCard(ctx, IndexKey("acme")).Val(); n != 1 {
		t.Errorf("index holds %d escalations, want 1", n)
	}
}

func TestIDs(t *testing.T) {
	for _, s := range []Subject{{Ticket, "T-1"}, {Agent, "ana@example.com"}, {Team, "billing: EU"}, {Ticket, ""}, {Agent, "a.b.c"}} {
		id := ID("bad-rating", s, 12)
		rule, got, n, err := ParseID(id)
		if err != nil || rule != "bad-rating" || got != s || n != 12 {
			t.Errorf("ParseID(%q) = %q %v %d %v", id, rule, got, n, err)
		}
	}
	for _, bad := range []string{"", "x", "r.t.T-1", "r.t.T-1.0", "r.t.T-1.01", "r.x.T-1.1", "R.t.T-1.1", "r.t.a b.1", "r.t.T~2.1", "r.t.T-1.1.2"} {
		if _, _, _, err := ParseID(bad); !errors.Is(err, ErrBadID) {
			t.Errorf("ParseID(%q) = %v, want ErrBadID", bad, err)
		}
	}
}

func TestList(t *testing.T) {
	rdb := testenv.Redis(t)
	s := New(rdb, time.Hour)
	ctx := context.Background()
	// Twelve escalations, a minute apart, alternating agents; three share one instant; two
	// (one of them at the shared instant) are warnings, the rest critical.
	var all []string
	for i := range 12 {
		sev := critical
		if i == 4 || i == 10 {
			sev = warning
		}
		v := verdict(true, sev, 1, t0.Add(time.Duration(min(i, 9))*time.Minute))
		v.Subject = Subject{Kind: Ticket, ID: fmt.Sprintf("T-%02d", i)}
		v.Labels = map[string]string{"agent": []string{"ana", "bo"}[i%2], "team": "billing", "ticket": v.Subject.ID}
		if i == 5 {
			v.Rule = "bad-rating"
		}
		r, err := s.Reconcile(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r.ID)
	}
	if _, err := s.Resolve(ctx, "acme", all[3], "lea", "", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	collect := func(f Filter, size int) []string {
		t.Helper()
		var ids []string
		tok := ""
		for page := 0; ; page++ {
			recs, next, err := s.List(ctx, "acme", f, size, tok)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) > size {
				t.Fatalf("page of %d, size %d", len(recs), size)
			}
			for _, r := range recs {
				ids = append(ids, r.Subject.ID)
			}
			if next == "" {
				return ids
			}
			if page > 20 {
				t.Fatal("pagination does not end")
			}
			tok = next
		}
	}
	newestFirst := []string{"T-11", "T-10", "T-09", "T-08", "T-07", "T-06", "T-05", "T-04", "T-03", "T-02", "T-01", "T-00"}
	for _, size := range []int{1, 2, 3, 5, 12, 50} {
		if got := collect(Filter{}, size); !slices.Equal(got, newestFirst) {
			t.Errorf("page size %d lists %v", size, got)
		}
	}
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"agent", Filter{Agent: "bo"}, []string{"T-11", "T-09", "T-07", "T-05", "T-03", "T-01"}},
		{"rule", Filter{Rule: "bad-rating"}, []string{"T-05"}},
		{"resolved", Filter{State: resolved}, []string{"T-03"}},
		{"open and ana", Filter{State: open, Agent: "ana"}, []string{"T-10", "T-08", "T-06", "T-04", "T-02", "T-00"}},
		{"ticket", Filter{Ticket: "T-07"}, []string{"T-07"}},
		{"team", Filter{Team: "other"}, nil},
		{"warning", Filter{Severity: warning}, []string{"T-10", "T-04"}},
		{"critical and ana", Filter{Severity: critical, Agent: "ana"}, []string{"T-08", "T-06", "T-02", "T-00"}},
		{"time range", Filter{From: t0.Add(2 * time.Minute), To: t0.Add(4 * time.Minute)}, []string{"T-03", "T-02"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := collect(tt.f, 2); !slices.Equal(got, tt.want) {
				t.Errorf("listed %v, want %v", got, tt.want)
			}
		})
	}
	if _, _, err := s.List(ctx, "acme", Filter{}, 5, "garbage!"); !errors.Is(err, ErrBadPageToken) {
		t.Errorf("bad token: %v", err)
	}
	// An escalation that expired leaves the index when a listing meets it.
	rdb.Del(ctx, pointerKey("acme", "sla-first-response", Subject{Kind: Ticket, ID: "T-11"}))
	if got := collect(Filter{}, 50); len(got) != 11 || rdb.ZCard(ctx, IndexKey("acme")).Val() != 11 {
		t.Errorf("after expiry listed %d, index %d", len(got), rdb.ZCard(ctx, IndexKey("acme")).Val())
	}
}

// A read of several escalations whose first failure is a missing archive key (redis.Nil, all a
// pipeline reports) and a later command's real failure returns that failure: it used to panic
// on the failed command's empty reply (seen while a Redis Cluster failed over).
func TestGetManyReportsAFailureBehindAMissingKey(t *testing.T) {
	rdb := testenv.Redis(t)
	s := New(rdb, time.Hour)
	ctx := context.Background()
	missing, broken := Subject{Kind: Ticket, ID: "T-1"}, Subject{Kind: Ticket, ID: "T-2"}
	// The second's pointer is not a hash: its HMGET fails with WRONGTYPE.
	if err := rdb.Set(ctx, pointerKey("acme", "sla", broken), "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.getMany(ctx, "acme", []string{ID("sla", missing, 1), ID("sla", broken, 1)}, false)
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("getMany = %v, want the WRONGTYPE failure", err)
	}
}
