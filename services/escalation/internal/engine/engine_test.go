package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
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

const testRules = `tenants:
  acme:
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
    sla_policies:
      - name: standard
        escalation: leads
        at_risk: off
        targets:
          default: {first_response: 1h}
`

// flaky publishes to JetStream but fails while down is set, as an unreachable server would.
type flaky struct {
	js   jetstream.JetStream
	down atomic.Bool
}

func (f *flaky) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if f.down.Load() {
		return nil, errors.New("nats: no responders available for request")
	}
	return f.js.PublishMsg(ctx, m, opts...)
}

// escalationsStream starts NATS with the ESCALATIONS stream.
func escalationsStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	_, url := testenv.NATS(t)
	return testenv.JetStream(t, url, stream.Escalations(1))
}

func ruleset(t testing.TB, yaml string) *atomic.Pointer[rulesfile.Config] {
	t.Helper()
	cfg, err := rulesfile.Parse("rules.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	ptr := &atomic.Pointer[rulesfile.Config]{}
	ptr.Store(cfg)
	return ptr
}

type fixture struct {
	rdb    redis.UniversalClient
	js     jetstream.JetStream
	pub    *flaky
	queue  *timers.Queue
	engine *Engine
	now    time.Time
}

func newFixture(t *testing.T, yaml string) *fixture {
	t.Helper()
	rdb := testenv.Redis(t)
	js := escalationsStream(t)
	ptr := ruleset(t, yaml)
	f := &fixture{rdb: rdb, js: js, pub: &flaky{js: js}, now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	f.queue = timers.New(rdb, timers.Options{Lease: time.Second})
	f.engine = New(rdb, escalationstore.New(rdb, time.Hour), f.queue, f.pub, ptr, func() time.Time { return f.now },
		Options{TicketRetention: time.Hour, RetryFlush: 5 * time.Second}, quiet)
	return f
}

func (f *fixture) stored(t *testing.T) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), stream.EscalationsName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func created(id, ticket string, at time.Time) *tpv1.TicketEvent {
	return &tpv1.TicketEvent{Id: id, Tenant: "acme", TicketId: ticket, Type: tpv1.EventType_EVENT_TYPE_TICKET_CREATED,
		OccurredAt: timestamppb.New(at), Actor: &tpv1.Actor{Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER}}
}

// A change that cannot be published stays in the escalation's outbox, a timer retries it, and
// a change published twice (a crash before the outbox was cleared) is stored once.
func TestUnpublishedChangesAreRetried(t *testing.T) {
	f := newFixture(t, testRules)
	ctx := context.Background()
	f.pub.down.Store(true)
	if err := f.engine.Tickets(ctx, []*tpv1.TicketEvent{created("e1", "T-1", f.now.Add(-2*time.Hour))}); err != nil {
		t.Fatalf("Tickets with NATS down: %v (the change is safe in the outbox, so the event is done)", err)
	}
	rec, err := f.engine.Store().Current(ctx, "acme", rulesfile.RuleFirstResponse, escalationstore.Subject{Kind: escalationstore.Ticket, ID: "T-1"})
	if err != nil || rec == nil || len(rec.Outbox) != 1 {
		t.Fatalf("escalation with NATS down: %v %+v", err, rec)
	}
	due, ok, err := f.queue.Due(ctx, escalationTimer("acme", rec.ID))
	if err != nil || !ok || !due.Equal(f.now.Add(5*time.Second)) {
		t.Fatalf("retry timer: %v %v %v, want now+5s", due, ok, err)
	}
	if n := f.stored(t); n != 0 {
		t.Fatalf("%d changes stored while down", n)
	}

	// The timer fires with NATS back: published, outbox cleared.
	f.pub.down.Store(false)
	f.now = f.now.Add(5 * time.Second)
	cs, err := f.queue.Claim(ctx, f.now)
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %v %v", cs, err)
	}
	if errs := f.engine.Fire(ctx, cs); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if n := f.stored(t); n != 1 {
		t.Errorf("%d changes stored, want 1", n)
	}
	rec, _ = f.engine.Store().Get(ctx, "acme", rec.ID)
	if len(rec.Outbox) != 0 {
		t.Errorf("outbox after publishing: %d", len(rec.Outbox))
	}

	// A replica that published but crashed before clearing the outbox publishes again: the
	// stream keeps one copy.
	dup, err := f.engine.Store().Reconcile(ctx, escalationstore.Verdict{Tenant: "acme", Rule: "other", Subject: escalationstore.Subject{Kind: escalationstore.Ticket, ID: "T-2"},
		Active: true, Severity: tpv1.Severity_SEVERITY_WARNING, Version: 1, At: f.now})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := f.engine.outbox.Publish(ctx, "acme", dup.Outbox); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.stored(t); n != 2 {
		t.Errorf("%d changes stored after a double publish, want 2", n)
	}
}

// Redis unreachable: the batch fails as a whole, so the consumer redelivers it.
func TestRedisDownFailsTheBatch(t *testing.T) {
	f := newFixture(t, testRules)
	broken := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer broken.Close()
	e := New(broken, escalationstore.New(broken, time.Hour), timers.New(broken, timers.Options{}), f.pub, f.engine.rules, time.Now, Options{TicketRetention: time.Hour}, quiet)
	if err := e.Tickets(context.Background(), []*tpv1.TicketEvent{created("e1", "T-1", f.now)}); err == nil {
		t.Fatal("Tickets succeeded without Redis")
	}
}

// Events of tenants without rules are not kept: nothing would ever judge them.
func TestTenantsWithoutRulesAreIgnored(t *testing.T) {
	f := newFixture(t, testRules)
	ev := created("e1", "T-1", f.now)
	ev.Tenant = "globex"
	if err := f.engine.Tickets(context.Background(), []*tpv1.TicketEvent{ev}); err != nil {
		t.Fatal(err)
	}
	if keys := f.rdb.Keys(context.Background(), "*").Val(); len(keys) != 0 {
		t.Errorf("keys written for a tenant without rules: %v", keys)
	}
}

// A timer whose id the engine cannot have written is dropped with a log line, not retried forever.
func TestMalformedTimerIsDropped(t *testing.T) {
	f := newFixture(t, testRules)
	errs := f.engine.Fire(context.Background(), []timers.Claimed{{ID: "garbage"}, {ID: "x" + sep + "acme" + sep + "y"}})
	for i, err := range errs {
		if err != nil {
			t.Errorf("timer %d: %v", i, err)
		}
	}
}

// A ticket's first response at 100 % of its target: the escalation is raised from a ticket
// timer, with the wake-up planned from the event.
func TestTicketTimerJudgesAtTheDeadline(t *testing.T) {
	f := newFixture(t, testRules)
	ctx := context.Background()
	if err := f.engine.Tickets(ctx, []*tpv1.TicketEvent{created("e1", "T-1", f.now.Add(-30*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	due, ok, err := f.queue.Due(ctx, ticketTimer("acme", "T-1"))
	if err != nil || !ok || !due.Equal(f.now.Add(30*time.Minute)) {
		t.Fatalf("ticket timer %v %v %v, want in 30m", due, ok, err)
	}
	f.now = due
	cs, err := f.queue.Claim(ctx, f.now)
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %v %v", cs, err)
	}
	if errs := f.engine.Fire(ctx, cs); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if n := f.stored(t); n != 1 {
		t.Errorf("%d changes, want the trigger", n)
	}
	// Fired again (a redelivered claim): nothing new.
	if errs := f.engine.Fire(ctx, cs); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if n := f.stored(t); n != 1 {
		t.Errorf("%d changes after a second firing, want 1", n)
	}
}
