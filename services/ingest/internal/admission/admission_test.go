package admission

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// clock is a settable time for the controller's readings.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	js    jetstream.JetStream
	cons  jetstream.Consumer
	ctl   *Controller
	clock *clock
	log   *bytes.Buffer
}

// setup runs NATS with TICKETS and kpi's durable consumer (nobody consuming), stores n events,
// and returns a controller bounding the backlog at 100 (soft mark 50) on a fake clock.
func setup(t *testing.T, n int) *fixture {
	t.Helper()
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, stream.Tickets(time.Hour, 1))
	ctx := context.Background()
	cons, err := js.CreateOrUpdateConsumer(ctx, stream.TicketsName, jetstream.ConsumerConfig{
		Durable: stream.KPIDurable, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{js: js, cons: cons, clock: &clock{t: time.Unix(1_800_000_000, 0)}, log: &bytes.Buffer{}}
	f.store(t, n)
	f.ctl, err = New(js, Config{Stream: stream.TicketsName, Consumers: []string{"missing", stream.KPIDurable},
		MaxBacklog: 100, SoftBacklog: 50, Refresh: 250 * time.Millisecond},
		slog.New(slog.NewTextHandler(f.log, nil)), noop.NewMeterProvider().Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	f.ctl.now = f.clock.now
	return f
}

func (f *fixture) store(t *testing.T, n int) {
	t.Helper()
	for range n {
		if _, err := f.js.Publish(context.Background(), stream.TicketSubject("acme", "ticket_created"), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	f.settled(t)
}

// settled waits until the consumer's pending count covers every stored message it has not had
// acknowledged: the server counts a consumer's pending messages asynchronously, so a reading
// taken right after a publish may lag behind it.
func (f *fixture) settled(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := f.js.Stream(ctx, stream.TicketsName)
		if err != nil {
			t.Fatal(err)
		}
		ci, err := f.cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := st.CachedInfo().State.LastSeq - ci.AckFloor.Stream
		if ci.NumPending+uint64(ci.NumAckPending) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer counts %d pending + %d unacknowledged, want %d in all", ci.NumPending, ci.NumAckPending, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) ack(t *testing.T, n int) {
	t.Helper()
	batch, err := f.cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(context.Background()); err != nil {
			t.Fatal(err)
		}
		got++
	}
	if got != n {
		t.Fatalf("acknowledged %d, want %d", got, n)
	}
	f.settled(t)
}

// Events admitted since a reading began count against the bound until a later reading sees
// them stored, so a stale reading never lets the backlog reach the bound.
func TestAdmitCountsEventsTheReadingHasNotSeen(t *testing.T) {
	f := setup(t, 90)
	f.ctl.Refresh(context.Background())
	steps := []struct {
		n    int
		want Reason
	}{{5, ""}, {4, ""}, {1, Backlog}, {1, Backlog}}
	for i, s := range steps {
		if got := f.ctl.Admit(s.n); got.Refused != s.want {
			t.Fatalf("step %d: Admit(%d) refused %q, want %q", i, s.n, got.Refused, s.want)
		}
	}
	// The 9 admitted are stored; the next reading sees them and nothing is unseen any more.
	f.store(t, 9)
	f.ctl.Done(9)
	f.clock.add(250 * time.Millisecond)
	f.ctl.Refresh(context.Background())
	if got := f.ctl.Admit(1); got.Refused != Backlog {
		t.Fatalf("at a backlog of 99, Admit(1) refused %q, want backlog", got.Refused)
	}
	f.ack(t, 10)
	f.clock.add(250 * time.Millisecond)
	f.ctl.Refresh(context.Background())
	if got := f.ctl.Admit(10); got.Refused != "" {
		t.Fatalf("at a backlog of 89, Admit(10) refused %q", got.Refused)
	}
}

// Between the soft mark and the bound the tenants' factor shrinks linearly; a refusal's
// Retry-After is the time the consumer needs, at its pace, to get back to the soft mark.
func TestFactorAndRetryAfter(t *testing.T) {
	f := setup(t, 200)
	ctx := context.Background()
	f.ctl.Refresh(ctx)
	if got := f.ctl.Admit(1); got.Refused != Backlog || got.RetryAfter != MaxRetryAfter {
		t.Fatalf("consumer not moving: %+v, want backlog refusal after %d s", got, MaxRetryAfter)
	}
	// 125 acknowledged in 10 s: 12.5/s, backlog 75.
	f.ack(t, 125)
	f.clock.add(10 * time.Second)
	f.ctl.Refresh(ctx)
	if got := f.ctl.Admit(1); got.Refused != "" || got.Factor != 0.5 {
		t.Fatalf("at a backlog of 75: %+v, want admitted with factor 0.5", got)
	}
	f.ctl.Done(1)
	f.store(t, 1)
	f.store(t, 29) // backlog 105 at the next reading
	f.clock.add(time.Second)
	f.ctl.Refresh(ctx) // no acks in this second: the pace halves to 6.25/s
	got := f.ctl.Admit(1)
	// (105 + 1 - 50) / 6.25 = 8.96 s
	if got.Refused != Backlog || got.RetryAfter != 9 {
		t.Fatalf("at a backlog of 105: %+v, want a backlog refusal after 9 s", got)
	}
}

// When JetStream state cannot be read for several refresh periods, admission fails open (and
// says so once); the next good reading applies the bound again.
func TestFailsOpenWhenStateIsUnreadable(t *testing.T) {
	f := setup(t, 100)
	ctx := context.Background()
	f.ctl.Refresh(ctx)
	if got := f.ctl.Admit(1); got.Refused != Backlog {
		t.Fatalf("at the bound: %+v, want a backlog refusal", got)
	}
	if err := f.js.DeleteStream(ctx, stream.TicketsName); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.clock.add(250 * time.Millisecond)
		f.ctl.Refresh(ctx)
	}
	if got := f.ctl.Admit(1); got.Refused != Backlog {
		t.Fatalf("a reading 750ms old: %+v, still want a backlog refusal", got)
	}
	for range 4 {
		f.clock.add(250 * time.Millisecond)
		f.ctl.Refresh(ctx)
	}
	if got := f.ctl.Admit(1); got.Refused != "" || got.Factor != 1 {
		t.Fatalf("no reading for 1.75s: %+v, want admitted unchecked", got)
	}
	if n := strings.Count(f.log.String(), "admission state unreadable"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, f.log.String())
	}
	if _, err := stream.Ensure(ctx, f.js, stream.Tickets(time.Hour, 1)); err != nil {
		t.Fatal(err)
	}
	f.clock.add(250 * time.Millisecond)
	f.ctl.Refresh(ctx)
	if !strings.Contains(f.log.String(), "admission state readable again") {
		t.Errorf("recovery not logged:\n%s", f.log.String())
	}
	if got := f.ctl.Admit(1); got.Refused != "" {
		t.Fatalf("after recovery with an empty stream: %+v, want admitted", got)
	}
}
