package consumer

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func setup(t *testing.T) (jetstream.JetStream, context.Context) {
	t.Helper()
	_, url := testenv.NATS(t)
	return testenv.JetStream(t, url, stream.Tickets(0, 1), stream.Deadletter(1)), context.Background()
}

func run(t *testing.T, js jetstream.JetStream, rdb redis.UniversalClient) {
	t.Helper()
	w := store.NewWriter(rdb, func(string) contrib.SLA { return contrib.DefaultSLA() }, 0, quiet)
	c, err := New(js, Config{Durable: "kpi", BatchMax: 50, Linger: time.Millisecond, Workers: 2, AckWait: time.Second, SuspectAfter: 3},
		w, func(ctx context.Context) error { return rdb.Ping(ctx).Err() }, nil, noop.NewMeterProvider().Meter("test"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
}

func publish(t *testing.T, js jetstream.JetStream, id string, typ tpv1.EventType, minutes int, f func(*tpv1.TicketEvent)) {
	t.Helper()
	ev := &tpv1.TicketEvent{Id: id, Tenant: "acme", Source: "generic", TicketId: "T-1", Type: typ,
		OccurredAt: timestamppb.New(time.Date(2026, 2, 2, 9, minutes, 0, 0, time.UTC)),
		Actor:      &tpv1.Actor{Id: "ana", Kind: tpv1.ActorKind_ACTOR_KIND_AGENT}, AssigneeId: "ana"}
	if f != nil {
		f(ev)
	}
	data, _ := proto.Marshal(ev)
	if _, err := js.Publish(context.Background(), "tickets.acme.x", data, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
}

func assignedOnDay(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	day := time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC).Unix() / 86400
	h, err := rdb.HGetAll(context.Background(), bucket.HourKey("acme", bucket.Scope{Kind: bucket.Agent, ID: "ana"}, day)).Result()
	if err != nil {
		return -1
	}
	tot := bucket.NewTotals()
	if err := tot.AddHourHash(h, 0, 24); err != nil {
		t.Fatal(err)
	}
	return tot.C[bucket.Assigned]
}

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

func pending(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	c, err := js.Consumer(context.Background(), stream.TicketsName, "kpi")
	if err != nil {
		return 1
	}
	info, err := c.Info(context.Background())
	if err != nil {
		return 1
	}
	return info.NumPending + uint64(info.NumAckPending)
}

func TestUndecodableMessageIsDeadLetteredAndOthersProceed(t *testing.T) {
	js, ctx := setup(t)
	rdb := testenv.Redis(t)
	if _, err := js.Publish(ctx, "tickets.acme.agent_message", []byte("not a protobuf \xff\xff"), jetstream.WithMsgID("bad")); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "e1", tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, 0, nil)
	run(t, js, rdb)

	waitFor(t, "the good event to be counted", func() bool { return assignedOnDay(t, rdb) == 1 })
	waitFor(t, "every message to be settled", func() bool { return pending(t, js) == 0 })
	dl, err := js.Stream(ctx, stream.DeadletterName)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dl.GetLastMsgForSubject(ctx, "deadletter.kpi.unknown")
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if got := msg.Header.Get("Ticketpulse-Reason"); got != "undecodable" {
		t.Errorf("reason = %q", got)
	}
	if got := msg.Header.Get("Ticketpulse-Subject"); got != "tickets.acme.agent_message" {
		t.Errorf("original subject = %q", got)
	}
	if string(msg.Data) != "not a protobuf \xff\xff" {
		t.Errorf("dead letter lost the payload: %q", msg.Data)
	}
}

func TestEventWithoutTenantIsDeadLettered(t *testing.T) {
	js, ctx := setup(t)
	rdb := testenv.Redis(t)
	publish(t, js, "e1", tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, 0, func(ev *tpv1.TicketEvent) { ev.Tenant = "Bad Tenant" })
	run(t, js, rdb)
	dl, err := js.Stream(ctx, stream.DeadletterName)
	if err != nil {
		t.Fatal(err)
	}
	// The letter is waited for, not looked up once the consumer shows nothing pending: a message
	// waiting for a delayed redelivery is not counted as pending either.
	waitFor(t, "the dead letter", func() bool {
		_, err := dl.GetLastMsgForSubject(ctx, "deadletter.kpi.unknown")
		return err == nil
	})
	waitFor(t, "the message to be settled", func() bool { return pending(t, js) == 0 })
}

// While Redis is down nothing is acked or dead-lettered; when it is back every event is counted once.
func TestRedisOutageLosesNothing(t *testing.T) {
	js, ctx := setup(t)
	srv, err := testenv.StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, DisableIdentity: true, MaxRetries: 0, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	srv.Kill()
	publish(t, js, "e1", tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, 0, nil)
	publish(t, js, "e2", tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, 5, func(ev *tpv1.TicketEvent) { ev.TicketId = "T-2" })
	run(t, js, rdb)
	time.Sleep(3 * time.Second) // several deliveries fail meanwhile, past SuspectAfter
	if p := pending(t, js); p != 2 {
		t.Fatalf("during the outage %d messages are outstanding, want 2", p)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both events counted after the outage", func() bool { return assignedOnDay(t, rdb) == 2 })
	waitFor(t, "every message settled", func() bool { return pending(t, js) == 0 })
	dl, _ := js.Stream(ctx, stream.DeadletterName)
	if info, _ := dl.Info(ctx); info.State.Msgs != 0 {
		t.Fatalf("%d messages dead-lettered during an outage", info.State.Msgs)
	}
}
