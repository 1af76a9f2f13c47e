package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const rulesYAML = `tenants:
  acme:
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
            ack_timeout: 10m
          - targets: [manager]
    sla_policies:
      - name: standard
        escalation: leads
        targets:
          urgent: {first_response: 1h, next_response: 1h, resolution: 8h}
    quality_rules:
      - name: bad-rating
        kind: bad_rating
        max_score: 2
        severity: critical
        escalation: leads
      - name: low-csat
        kind: kpi
        metric: csat_percent
        window: 24h
        below: 50
        min_sample: 3
        escalation: leads
`

// clock is the service's clock in a test: real time plus an offset the test moves forward, so
// a ten-minute acknowledgement timeout passes at once.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

type stack struct {
	natsURL  string
	redisURL string
	rdb      redis.UniversalClient
	js       jetstream.JetStream
	rules    string
	clock    *clock
	// tenants is the tenants file the service reads: acme and globex with their keys.
	tenants *servicetest.Tenants
}

func newStack(t *testing.T, redisAddr string) *stack {
	t.Helper()
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, stream.Tickets(0, 1), stream.KPI(1))
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(rulesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &stack{natsURL: url, js: js, rules: rulesFile, clock: &clock{}, tenants: servicetest.WriteTenants(t, nil)}
	if redisAddr == "" {
		s.rdb = testenv.Redis(t)
		s.redisURL = testenv.RedisURL(s.rdb)
	} else {
		s.rdb = redis.NewClient(&redis.Options{Addr: redisAddr})
		t.Cleanup(func() { s.rdb.Close() })
		s.redisURL = "redis://" + redisAddr + "/0"
	}
	return s
}

func (s *stack) common() service.Common {
	c := servicetest.Settings(s.natsURL, s.redisURL)
	c.TenantsFile = s.tenants.File
	return c
}

func (s *stack) config() Config {
	return Config{
		Common:    s.common(),
		RulesFile: s.rules, RulesReload: 100 * time.Millisecond,
		Consume:    consume.Settings{Durable: "escalation", BatchMax: 200, Linger: time.Millisecond, AckWait: 5 * time.Second},
		KPIDurable: "escalation-kpi",
		Timers:     timers.Settings{Poll: 20 * time.Millisecond, Lease: 2 * time.Second, Shards: 16},
		Parallel:   16, Retention: time.Hour, TicketRetention: time.Hour, WatchesPerTenant: 16,
		StreamReplicas: 1, TicketsFrom: "all",
	}
}

// start runs one replica of the service and returns its gRPC client, authenticated with acme's
// key of every scope, and a stop function.
func (s *stack) start(t *testing.T) (tpv1.EscalationServiceClient, func()) {
	t.Helper()
	r := s.run(t, s.config())
	return tpv1.NewEscalationServiceClient(r.DialAs(s.tenants.Acme)), r.Stop
}

// run runs one replica of the service with cfg.
func (s *stack) run(t *testing.T, cfg Config) *servicetest.Running {
	t.Helper()
	return servicetest.Start(t, func(ctx context.Context, h service.Hooks) error {
		return Deps{Hooks: h, Now: s.clock.now}.Run(ctx, cfg, quiet)
	})
}

var seq atomic.Int64

// publish stores acme's ticket events in TICKETS as ingest would.
func (s *stack) publish(t *testing.T, evs ...*tpv1.TicketEvent) {
	t.Helper()
	s.publishFor(t, "acme", evs...)
}

// publishFor stores tenant's ticket events in TICKETS as ingest would.
func (s *stack) publishFor(t *testing.T, tenant string, evs ...*tpv1.TicketEvent) {
	t.Helper()
	for _, ev := range evs {
		if ev.Id == "" {
			ev.Id = fmt.Sprintf("ev-%d", seq.Add(1))
		}
		ev.Tenant = tenant
		data, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: "tickets." + tenant + "." + strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_")), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, ev.Id)
		if _, err := s.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
}

func createdAgo(ticket string, now time.Time, ago time.Duration) *tpv1.TicketEvent {
	return &tpv1.TicketEvent{
		TicketId: ticket, Type: tpv1.EventType_EVENT_TYPE_TICKET_CREATED, OccurredAt: timestamppb.New(now.Add(-ago)),
		Actor: &tpv1.Actor{Id: "cust", Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER}, Priority: tpv1.Priority_PRIORITY_URGENT,
		TeamId: "billing", AssigneeId: "ana", Status: tpv1.TicketStatus_TICKET_STATUS_NEW,
	}
}

func reply(ticket string, at time.Time) *tpv1.TicketEvent {
	public := true
	return &tpv1.TicketEvent{
		TicketId: ticket, Type: tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, OccurredAt: timestamppb.New(at),
		Actor: &tpv1.Actor{Id: "ana", Kind: tpv1.ActorKind_ACTOR_KIND_AGENT}, Public: &public,
	}
}

// changes reads every message of the ESCALATIONS stream so far.
func (s *stack) changes(t *testing.T) []*tpv1.EscalationChange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := s.js.Stream(ctx, stream.EscalationsName)
	if err != nil {
		return nil
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*tpv1.EscalationChange
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		c := &tpv1.EscalationChange{}
		if err := proto.Unmarshal(m.Data, c); err != nil {
			t.Fatal(err)
		}
		wantID := fmt.Sprintf("acme/%s/%d", c.GetEscalation().GetId(), c.GetSequence())
		if m.Header.Get(jetstream.MsgIDHeader) != wantID || m.Subject != "escalations.acme."+c.GetEscalation().GetRule() {
			t.Errorf("change stored on %s with message id %q, want %q", m.Subject, m.Header.Get(jetstream.MsgIDHeader), wantID)
		}
		out = append(out, c)
	}
	return out
}

// waitFor polls cond for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func kindsOf(cs []*tpv1.EscalationChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, strings.TrimPrefix(c.GetKind().String(), "CHANGE_KIND_")+"/"+strings.TrimPrefix(c.GetEscalation().GetSeverity().String(), "SEVERITY_")+
			fmt.Sprintf("/%d", c.GetEscalation().GetLevel()))
	}
	return out
}

// A ticket's whole escalation life through the running service: at risk on arrival, breached
// by its timer, raised when nobody acknowledges, acknowledged over gRPC (which stops the
// raising), resolved by the agent's reply; every change published once and kept in the timeline.
func TestSLAEscalationLifecycle(t *testing.T) {
	s := newStack(t, "")
	client, _ := s.start(t)
	ctx := context.Background()
	watch, err := client.WatchEscalations(ctx, &tpv1.WatchEscalationsRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}

	// Created 59m58s ago against a 1h target: at risk now, breached two seconds later.
	s.publish(t, createdAgo("T-1", s.clock.now(), time.Hour-2*time.Second))
	waitFor(t, "trigger and breach", func() bool { return len(s.changes(t)) >= 2 })
	if got := kindsOf(s.changes(t)); !slices.Equal(got, []string{"TRIGGERED/WARNING/1", "UPDATED/CRITICAL/1"}) {
		t.Fatalf("changes %v", got)
	}
	first := s.changes(t)[0].GetEscalation()
	if first.GetRule() != "sla-first-response" || first.GetSubjectKind() != "ticket" || first.GetSubjectId() != "T-1" ||
		first.GetLabels()["targets"] != "team-lead" || first.GetLabels()["team"] != "billing" || first.GetLabels()["agent"] != "ana" ||
		first.GetLabels()["priority"] != "urgent" || !strings.Contains(first.GetSummary(), "first response SLA at risk") {
		t.Errorf("triggered escalation: %v", first)
	}
	for i := range 2 {
		got, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got.GetChange().GetSequence() != int64(i+1) || got.GetChange().GetEscalation().GetId() != first.GetId() {
			t.Errorf("watched change %d: %v", i, got.GetChange())
		}
	}

	// Ten minutes without acknowledgement: raised to the manager.
	s.clock.advance(10 * time.Minute)
	waitFor(t, "raise", func() bool { return len(s.changes(t)) >= 3 })
	raised := s.changes(t)[2]
	if raised.GetKind() != tpv1.ChangeKind_CHANGE_KIND_RAISED || raised.GetEscalation().GetLevel() != 2 || raised.GetEscalation().GetLabels()["targets"] != "manager" {
		t.Errorf("raised: %v", raised)
	}

	ack, err := client.AcknowledgeEscalation(ctx, &tpv1.AcknowledgeEscalationRequest{Tenant: "acme", Id: first.GetId(), Note: "calling the customer"})
	if err != nil {
		t.Fatal(err)
	}
	if ack.GetEscalation().GetState() != tpv1.EscalationState_ESCALATION_STATE_ACKNOWLEDGED {
		t.Errorf("acknowledged: %v", ack.GetEscalation())
	}
	if _, err := client.AcknowledgeEscalation(ctx, &tpv1.AcknowledgeEscalationRequest{Tenant: "acme", Id: first.GetId()}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("second acknowledgement: %v", err)
	}

	// The reply resolves it.
	s.publish(t, reply("T-1", s.clock.now()))
	waitFor(t, "resolution", func() bool { return len(s.changes(t)) >= 5 })
	want := []string{"TRIGGERED/WARNING/1", "UPDATED/CRITICAL/1", "RAISED/CRITICAL/2", "ACKNOWLEDGED/CRITICAL/2", "RESOLVED/CRITICAL/2"}
	if got := kindsOf(s.changes(t)); !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	got, err := client.GetEscalation(ctx, &tpv1.GetEscalationRequest{Tenant: "acme", Id: first.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	var timeline []string
	for _, e := range got.GetEscalation().GetTimeline() {
		timeline = append(timeline, strings.TrimPrefix(e.GetKind().String(), "CHANGE_KIND_")+" by "+e.GetActor()+" "+e.GetNote())
	}
	wantTimeline := []string{"TRIGGERED by system ", "UPDATED by system severity critical", "RAISED by system not acknowledged in time",
		"ACKNOWLEDGED by api-key:acme/all calling the customer", "RESOLVED by system condition cleared"}
	if !slices.Equal(timeline, wantTimeline) {
		t.Errorf("timeline %q\nwant %q", timeline, wantTimeline)
	}
	list, err := client.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "acme", TicketId: "T-1"})
	if err != nil || len(list.GetEscalations()) != 1 || list.GetEscalations()[0].GetState() != tpv1.EscalationState_ESCALATION_STATE_RESOLVED {
		t.Errorf("list: %v %v", err, list)
	}
	// It was raised to critical: the severity filter sees its severity now, not at trigger.
	for sev, want := range map[tpv1.Severity]int{tpv1.Severity_SEVERITY_CRITICAL: 1, tpv1.Severity_SEVERITY_WARNING: 0, tpv1.Severity_SEVERITY_UNSPECIFIED: 1} {
		list, err := client.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "acme", TicketId: "T-1", Severity: sev})
		if err != nil || len(list.GetEscalations()) != want {
			t.Errorf("list %s: %v, %d escalations, want %d", sev, err, len(list.GetEscalations()), want)
		}
	}
}

// Bad requests name the field and the reason.
func TestRequestErrors(t *testing.T) {
	s := newStack(t, "")
	client, _ := s.start(t)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		// The gate answers first: no credential is for a tenant "Acme". The handler's own check of
		// the tenant is in grpcapi's tests.
		{"bad tenant", func() error {
			_, err := client.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "Acme"})
			return err
		}, codes.PermissionDenied, "the credential is not for this tenant"},
		{"page size", func() error {
			_, err := client.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "acme", PageSize: 501})
			return err
		}, codes.InvalidArgument, "page_size: 501: want 0 (default 50) to 500"},
		{"severity", func() error {
			_, err := client.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "acme", Severity: tpv1.Severity(9)})
			return err
		}, codes.InvalidArgument, "severity: unknown severity 9"},
		{"page token", func() error {
			_, err := client.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "acme", PageToken: "nope"})
			return err
		}, codes.InvalidArgument, "page_token: not a token this service handed out"},
		{"time range", func() error {
			_, err := client.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "acme", Triggered: &tpv1.TimeRange{
				From: timestamppb.New(time.Unix(100, 0)), To: timestamppb.New(time.Unix(50, 0))}})
			return err
		}, codes.InvalidArgument, "triggered.to: must be after triggered.from"},
		{"bad id", func() error {
			_, err := client.GetEscalation(ctx, &tpv1.GetEscalationRequest{Tenant: "acme", Id: "x"})
			return err
		}, codes.InvalidArgument, `id: malformed escalation id: "x"`},
		{"unknown id", func() error {
			_, err := client.GetEscalation(ctx, &tpv1.GetEscalationRequest{Tenant: "acme", Id: "bad-rating.t.T-1.1"})
			return err
		}, codes.NotFound, "escalation not found"},
		{"long note", func() error {
			_, err := client.ResolveEscalation(ctx, &tpv1.ResolveEscalationRequest{Tenant: "acme", Id: "bad-rating.t.T-1.1", Note: strings.Repeat("n", 2049)})
			return err
		}, codes.InvalidArgument, "note: 2049 bytes, at most 2048 allowed"},
		{"resolve unknown id", func() error {
			_, err := client.ResolveEscalation(ctx, &tpv1.ResolveEscalationRequest{Tenant: "acme", Id: "bad-rating.t.T-1.1"})
			return err
		}, codes.NotFound, "ResolveEscalation: escalation not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code || !strings.Contains(status.Convert(err).Message(), tt.msg) {
				t.Errorf("got %v, want %s containing %q", err, tt.code, tt.msg)
			}
		})
	}
}

// Two replicas share the consumers and the timers: a burst of breaches due in the same second
// is handled once each, and a bad rating escalates with the customer's comment.
func TestTwoReplicasBurst(t *testing.T) {
	s := newStack(t, "")
	client, _ := s.start(t)
	s.start(t)
	const tickets = 300
	now := s.clock.now()
	var evs []*tpv1.TicketEvent
	for i := range tickets {
		// Every ticket breaches at the same instant, 1.5 s from now.
		evs = append(evs, createdAgo(fmt.Sprintf("B-%03d", i), now, time.Hour-1500*time.Millisecond))
	}
	s.publish(t, evs...)
	waitFor(t, "every trigger and breach", func() bool { return len(s.changes(t)) >= 2*tickets })
	time.Sleep(300 * time.Millisecond) // anything fired twice would show up by now
	perTicket := map[string][]string{}
	for _, c := range s.changes(t) {
		id := c.GetEscalation().GetSubjectId()
		perTicket[id] = append(perTicket[id], strings.TrimPrefix(c.GetKind().String(), "CHANGE_KIND_"))
	}
	if len(perTicket) != tickets {
		t.Errorf("%d tickets escalated, want %d", len(perTicket), tickets)
	}
	for id, kinds := range perTicket {
		if !slices.Equal(kinds, []string{"TRIGGERED", "UPDATED"}) {
			t.Errorf("%s: changes %v", id, kinds)
		}
	}
	// Listing pages through them all once.
	seen := map[string]bool{}
	tok := ""
	for {
		resp, err := client.ListEscalations(context.Background(), &tpv1.ListEscalationsRequest{Tenant: "acme", PageSize: 70, PageToken: tok,
			State: tpv1.EscalationState_ESCALATION_STATE_OPEN, Rule: "sla-first-response"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetEscalations() {
			if seen[e.GetId()] {
				t.Errorf("%s listed twice", e.GetId())
			}
			seen[e.GetId()] = true
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(seen) != tickets {
		t.Errorf("listed %d, want %d", len(seen), tickets)
	}
}

func TestBadRatingAndKPIRules(t *testing.T) {
	s := newStack(t, "")
	client, _ := s.start(t)
	ctx := context.Background()
	// A watcher of one rule sees that rule's changes only.
	watch, err := client.WatchEscalations(ctx, &tpv1.WatchEscalationsRequest{Tenant: "acme", Rule: "low-csat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}
	s.publish(t, &tpv1.TicketEvent{
		TicketId: "R-1", Type: tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, OccurredAt: timestamppb.New(s.clock.now()),
		Actor: &tpv1.Actor{Id: "cust", Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER}, AssigneeId: "bo",
		Satisfaction: &tpv1.Satisfaction{Score: 1, Comment: "three days and no answer"},
	})
	snapshot := func(pct float64, count int64) {
		snap := &tpv1.KpiSnapshot{Tenant: "acme", Scope: "agent", Id: "bo", ComputedAt: timestamppb.New(s.clock.now()),
			Windows: map[string]*tpv1.Kpis{"24h": {CsatPercent: pct, CsatCount: count}}}
		data, _ := proto.Marshal(snap)
		if _, err := s.js.Publish(ctx, "kpi.acme.agent.bo", data); err != nil {
			t.Fatal(err)
		}
	}
	snapshot(40, 2) // too few ratings to judge
	snapshot(33.3, 3)
	waitFor(t, "both escalations", func() bool { return len(s.changes(t)) >= 2 })
	byRule := map[string]*tpv1.Escalation{}
	for _, c := range s.changes(t) {
		byRule[c.GetEscalation().GetRule()] = c.GetEscalation()
	}
	bad := byRule["bad-rating"]
	if bad == nil || bad.GetSeverity() != tpv1.Severity_SEVERITY_CRITICAL || !strings.Contains(bad.GetSummary(), "three days and no answer") || bad.GetLabels()["agent"] != "bo" {
		t.Errorf("bad rating escalation: %v", bad)
	}
	low := byRule["low-csat"]
	if low == nil || low.GetSubjectKind() != "agent" || low.GetSubjectId() != "bo" || low.GetLabels()["agent"] != "bo" {
		t.Errorf("kpi escalation: %v", low)
	}
	// The agent's figures recover: resolved.
	snapshot(90, 10)
	waitFor(t, "kpi resolution", func() bool { return len(s.changes(t)) >= 3 })
	for _, want := range []tpv1.ChangeKind{tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, tpv1.ChangeKind_CHANGE_KIND_RESOLVED} {
		got, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got.GetChange().GetKind() != want || got.GetChange().GetEscalation().GetRule() != "low-csat" {
			t.Errorf("watched %v, want %v of low-csat (the bad rating is another rule)", got.GetChange(), want)
		}
	}
	if last := s.changes(t)[2]; last.GetKind() != tpv1.ChangeKind_CHANGE_KIND_RESOLVED || last.GetEscalation().GetRule() != "low-csat" {
		t.Errorf("after recovery: %v", last)
	}
	list, err := client.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "acme", AgentId: "bo", State: tpv1.EscalationState_ESCALATION_STATE_OPEN})
	if err != nil || len(list.GetEscalations()) != 1 || list.GetEscalations()[0].GetRule() != "bad-rating" {
		t.Errorf("open escalations of bo: %v %v", err, list)
	}
}

// Timers survive a restart of Redis (AOF) and of the service: a breach due while both were down
// fires when the service is back.
func TestTimersSurviveRestarts(t *testing.T) {
	rs, err := testenv.StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Kill)
	s := newStack(t, rs.Addr)
	_, stop := s.start(t)
	// At risk at once (warning published), breached in 3 s.
	s.publish(t, createdAgo("T-9", s.clock.now(), time.Hour-3*time.Second))
	waitFor(t, "trigger", func() bool { return len(s.changes(t)) >= 1 })
	stop()
	time.Sleep(1100 * time.Millisecond) // appendfsync everysec
	rs.Kill()
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the breach falls due while the service is down
	if n := len(s.changes(t)); n != 1 {
		t.Fatalf("%d changes while the service was down", n)
	}
	s.start(t)
	waitFor(t, "the overdue breach", func() bool { return len(s.changes(t)) >= 2 })
	if got := kindsOf(s.changes(t)); !slices.Equal(got, []string{"TRIGGERED/WARNING/1", "UPDATED/CRITICAL/1"}) {
		t.Errorf("changes %v", got)
	}
}

func TestBadRulesFileStopsTheService(t *testing.T) {
	s := newStack(t, "")
	if err := os.WriteFile(s.rules, []byte("tenants:\n  acme:\n    sla_policies:\n      - name: x\n        escalation: nowhere\n        targets: {urgent: {first_response: 1h}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), s.config(), quiet)
	if err == nil || !strings.Contains(err.Error(), s.rules+":5:") || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("Run = %v, want the file, line 5 and the unknown policy", err)
	}
}

// The addresses are the contract other services and the docs use; -h names every setting.
func TestDefaultsAndHelp(t *testing.T) {
	var cfg Config
	s := envflag.New(Name, "test", func(string) (string, bool) { return "", false })
	var help strings.Builder
	s.SetOutput(&help)
	cfg.Register(s)
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg.GRPCAddr != "127.0.0.1:9091" || cfg.HTTPAddr != "127.0.0.1:9191" {
		t.Fatalf("defaults %s %s", cfg.GRPCAddr, cfg.HTTPAddr)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	if cfg.HistoryHorizon != 24*time.Hour {
		t.Errorf("history horizon %v, want 24h", cfg.HistoryHorizon)
	}
	if cfg.WatermarkInterval != time.Second {
		t.Errorf("watermark interval %v, want 1s", cfg.WatermarkInterval)
	}
	s.PrintUsage(&help)
	for _, want := range []string{"TICKETPULSE_GRPC_ADDR", "TICKETPULSE_REDIS_URL", "EscalationService", "TICKETPULSE_RULES_FILE",
		"TICKETPULSE_TIMER_POLL", "TICKETPULSE_ESCALATION_RETENTION", "TICKETPULSE_KPI_DURABLE", "TICKETPULSE_TICKETS_FROM", "TICKETPULSE_WATCHES_PER_TENANT",
		"TICKETPULSE_HISTORY_HORIZON", "history_horizon", "TICKETPULSE_WATERMARK_INTERVAL"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h lacks %q", want)
		}
	}
}

// A tenant's live watches are capped per replica: one more is refused with ResourceExhausted
// while another tenant still gets its own, and closing a watch frees its place.
func TestWatchesPerTenantAreCapped(t *testing.T) {
	s := newStack(t, "")
	cfg := s.config()
	cfg.WatchesPerTenant = 2
	r := s.run(t, cfg)
	clients := map[string]tpv1.EscalationServiceClient{
		"acme":   tpv1.NewEscalationServiceClient(r.DialAs(s.tenants.Acme)),
		"globex": tpv1.NewEscalationServiceClient(r.DialAs(s.tenants.Globex)),
	}
	// watch opens a watch with the tenant's own key and reports whether the server established
	// it: a refused one ends without headers, and its status comes with the first Recv.
	watch := func(ctx context.Context, tenant string) error {
		w, err := clients[tenant].WatchEscalations(ctx, &tpv1.WatchEscalationsRequest{Tenant: tenant})
		if err != nil {
			return err
		}
		md, err := w.Header()
		if err == nil && md == nil {
			_, err = w.Recv()
		}
		return err
	}
	first, closeFirst := context.WithCancel(context.Background())
	defer closeFirst()
	second, closeSecond := context.WithCancel(context.Background())
	defer closeSecond()
	for _, ctx := range []context.Context{first, second} {
		if err := watch(ctx, "acme"); err != nil {
			t.Fatalf("watch within the cap: %v", err)
		}
	}
	third, closeThird := context.WithCancel(context.Background())
	defer closeThird()
	err := watch(third, "acme")
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "tenant acme has 2 watches open") {
		t.Fatalf("third watch of acme = %v; want ResourceExhausted naming the cap", err)
	}
	other, closeOther := context.WithCancel(context.Background())
	defer closeOther()
	if err := watch(other, "globex"); err != nil {
		t.Fatalf("another tenant's watch: %v", err)
	}
	closeFirst()
	waitFor(t, "the closed watch to free its place", func() bool {
		ctx, cancel := context.WithCancel(context.Background())
		if err := watch(ctx, "acme"); err != nil {
			cancel()
			return false
		}
		t.Cleanup(cancel) // established: open until the test ends, like the others
		return true
	})
}

func TestValidate(t *testing.T) {
	s := newStack(t, "")
	cfg := s.config()
	cfg.Timers.Poll, cfg.Timers.Lease, cfg.Parallel, cfg.Consume.Linger, cfg.TicketsFrom = 0, time.Millisecond, 0, -1, "yesterday"
	cfg.WatchesPerTenant, cfg.HistoryHorizon, cfg.WatermarkInterval = 0, -time.Second, -time.Second
	err := cfg.Validate()
	for _, want := range []string{"-watermark-interval -1s: must not be negative", "-timer-poll 0s: must be positive", "-timer-lease 1ms: must be at least 1s", "-parallel 0: must be at least 1",
		"-watches-per-tenant 0: must be at least 1", "-history-horizon -1s: must not be negative",
		"-batch-linger -1ns: must not be negative", `-tickets-from "yesterday": want all or new`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
}

// A replica that claimed due timers and died before handling them leaves them leased; once the
// lease runs out the surviving replica fires them, each once.
func TestTimersOfADeadReplicaFire(t *testing.T) {
	s := newStack(t, "")
	_, stop := s.start(t)
	const tickets = 50
	now := s.clock.now()
	for i := range tickets {
		// At risk at once, breached in two seconds.
		s.publish(t, createdAgo(fmt.Sprintf("D-%02d", i), now, time.Hour-2*time.Second))
	}
	waitFor(t, "the triggers", func() bool { return len(s.changes(t)) >= tickets })
	stop()

	// The dead replica: it claims every due timer the moment they are due, and never finishes.
	dead := timers.New(s.rdb, timers.Options{Shards: 16, Lease: 2 * time.Second})
	var claimed []timers.Claimed
	waitFor(t, "the dead replica's claims", func() bool {
		cs, err := dead.Claim(context.Background(), s.clock.now())
		if err != nil {
			t.Fatal(err)
		}
		claimed = append(claimed, cs...)
		return len(claimed) >= tickets
	})
	claimedAt := time.Now()
	s.start(t)
	waitFor(t, "the survivor firing them", func() bool { return len(s.changes(t)) >= 2*tickets })
	if waited := time.Since(claimedAt); waited < 1500*time.Millisecond {
		t.Errorf("fired %s after the claims, before their 2 s lease ran out", waited)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(s.changes(t)); n != 2*tickets {
		t.Errorf("%d changes, want %d: one trigger and one breach per ticket", n, 2*tickets)
	}
}

// A changed rules file is picked up while running; an invalid one is refused and the rules in
// force stay.
func TestRulesReload(t *testing.T) {
	s := newStack(t, "")
	s.start(t)
	rate := func(ticket string, score int32) *tpv1.TicketEvent {
		return &tpv1.TicketEvent{TicketId: ticket, Type: tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, OccurredAt: timestamppb.New(s.clock.now()),
			Actor: &tpv1.Actor{Id: "cust", Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER}, Satisfaction: &tpv1.Satisfaction{Score: score}}
	}
	// Under the first rules a 3 is not bad.
	s.publish(t, rate("R-1", 3))
	// Now it is; the file is replaced atomically, as deployment tools do.
	stricter := strings.Replace(rulesYAML, "max_score: 2", "max_score: 3", 1)
	replace := func(content string) {
		tmp := s.rules + ".new"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, s.rules); err != nil {
			t.Fatal(err)
		}
	}
	replace(stricter)
	waitFor(t, "the stricter rule", func() bool {
		s.publish(t, rate(fmt.Sprintf("R-%d", seq.Add(1)), 3))
		time.Sleep(100 * time.Millisecond)
		return len(s.changes(t)) > 0
	})
	if r := s.changes(t)[0].GetEscalation(); r.GetRule() != "bad-rating" || r.GetSubjectId() == "R-1" {
		t.Errorf("first escalation %v: R-1 was rated under the old rules", r)
	}
	// A broken file changes nothing: the stricter rule still applies.
	replace("tenants:\n  acme:\n    quality_rules: 7\n")
	time.Sleep(300 * time.Millisecond)
	before := len(s.changes(t))
	s.publish(t, rate("R-after", 3))
	waitFor(t, "a rating judged under the rules in force", func() bool { return len(s.changes(t)) > before })
}

// An undecodable message on TICKETS goes to DEADLETTER with the reason and blocks nothing.
func TestPoisonMessageIsDeadLettered(t *testing.T) {
	s := newStack(t, "")
	if _, err := stream.Ensure(context.Background(), s.js, stream.Deadletter(1)); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	if _, err := s.js.Publish(context.Background(), "tickets.acme.ticket_created", []byte("not protobuf \xff\xff")); err != nil {
		t.Fatal(err)
	}
	s.publish(t, createdAgo("T-5", s.clock.now(), 2*time.Hour))
	waitFor(t, "the good event judged", func() bool { return len(s.changes(t)) >= 1 })
	dl, err := s.js.Stream(context.Background(), stream.DeadletterName)
	if err != nil {
		t.Fatal(err)
	}
	var msg *jetstream.RawStreamMsg
	waitFor(t, "the dead letter", func() bool {
		msg, err = dl.GetLastMsgForSubject(context.Background(), "deadletter.escalation.unknown")
		return err == nil
	})
	if msg.Header.Get("Ticketpulse-Reason") != "undecodable" || msg.Header.Get("Ticketpulse-Subject") != "tickets.acme.ticket_created" ||
		!strings.Contains(msg.Header.Get("Ticketpulse-Error"), "invalid message") {
		t.Errorf("dead letter headers %v", msg.Header)
	}
}

// A replica process killed (SIGKILL) just as a burst of breaches falls due: whatever it had
// claimed is fired by the surviving replica once the lease runs out, each breach once.
func TestKilledReplicaProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the escalation binary")
	}
	s := newStack(t, "")
	bin := filepath.Join(t.TempDir(), "escalation")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ticketpulse/ticketpulse/services/escalation/cmd/escalation").CombinedOutput(); err != nil {
		t.Fatalf("build escalation: %v\n%s", err, out)
	}
	var ports [3]int
	for i := range ports {
		p, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "TICKETPULSE_NATS_URL="+s.natsURL, "TICKETPULSE_REDIS_URL="+s.redisURL,
		"TICKETPULSE_RULES_FILE="+s.rules, "TICKETPULSE_TENANTS_FILE="+s.tenants.File, "TICKETPULSE_TIMER_LEASE=2s", "TICKETPULSE_TIMER_POLL=20ms",
		fmt.Sprintf("TICKETPULSE_GRPC_ADDR=127.0.0.1:%d", ports[0]), "TICKETPULSE_HTTP_ADDR="+httpAddr, "TICKETPULSE_LOG_LEVEL=error",
		// Not the default admin port, which another process on the machine may hold.
		fmt.Sprintf("TICKETPULSE_ADMIN_ADDR=127.0.0.1:%d", ports[2]))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, "the replica process ready", func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	s.start(t)

	const tickets = 200
	due := s.clock.now().Add(3 * time.Second)
	var evs []*tpv1.TicketEvent
	for i := range tickets {
		evs = append(evs, createdAgo(fmt.Sprintf("K-%03d", i), due, time.Hour))
	}
	s.publish(t, evs...)
	waitFor(t, "every trigger", func() bool { return len(s.changes(t)) >= tickets })
	time.Sleep(time.Until(due.Add(30 * time.Millisecond)))
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every breach", func() bool { return len(s.changes(t)) >= 2*tickets })
	// When the killed process held claims, the last breach lands after their 2 s lease.
	t.Logf("every breach published %s after the deadline", time.Since(due).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	perTicket := map[string][]string{}
	for _, c := range s.changes(t) {
		id := c.GetEscalation().GetSubjectId()
		perTicket[id] = append(perTicket[id], strings.TrimPrefix(c.GetKind().String(), "CHANGE_KIND_"))
	}
	for id, kinds := range perTicket {
		if !slices.Equal(kinds, []string{"TRIGGERED", "UPDATED"}) {
			t.Errorf("%s: changes %v", id, kinds)
		}
	}
	if len(perTicket) != tickets {
		t.Errorf("%d tickets escalated, want %d", len(perTicket), tickets)
	}
}
