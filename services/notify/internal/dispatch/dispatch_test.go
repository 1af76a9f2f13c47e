package dispatch

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/delivered"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/routing"
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

// fixture is a dispatcher on real Redis and NATS with a clock the test moves.
type fixture struct {
	d      *Dispatcher
	store  *deliveries.Store
	once   *delivered.Store
	rdb    redis.UniversalClient
	queue  *timers.Queue
	js     jetstream.JetStream
	clock  atomic.Int64
	hits   atomic.Int64
	status atomic.Int64
}

func (f *fixture) now() time.Time { return time.Unix(0, f.clock.Load()) }

func (f *fixture) advance(d time.Duration) { f.clock.Add(int64(d)) }

func newFixture(t *testing.T, deadline string) *fixture {
	t.Helper()
	f := &fixture{}
	f.clock.Store(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).UnixNano())
	f.status.Store(500)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f.hits.Add(1)
		w.WriteHeader(int(f.status.Load()))
	}))
	t.Cleanup(srv.Close)
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a test key of some length"))
	cfg, err := routing.Parse("routing.yaml", t.TempDir(), []byte(fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: SECRET}]}
    limits: {timeout: 2s, deadline: %s}
route:
  receiver: hook
  group_wait: 30s
`, srv.URL, deadline)), func(string) string { return secret })
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRouting(cfg, receiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rdb := testenv.Redis(t)
	f.rdb = rdb
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, stream.Deadletter(1))
	f.js = js
	f.store = deliveries.New(rdb, time.Hour, 100)
	f.queue = timers.New(rdb, timers.Options{Prefix: "tp:notify:"})
	if f.once, err = delivered.Open(context.Background(), js, time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	f.d = New(f.store, f.once, f.queue, js, rt, f.now, Options{}, quiet)
	return f
}

// fire claims what is due at the fixture's clock, handles it and waits for the sends.
func (f *fixture) fire(t *testing.T) int {
	t.Helper()
	cs, err := f.queue.Claim(context.Background(), f.now())
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range f.d.Fire(context.Background(), cs) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.queue.Done(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	f.d.Wait()
	return len(cs)
}

func (f *fixture) due(t *testing.T, id string) time.Duration {
	t.Helper()
	at, ok, err := f.queue.Due(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("no timer %q: %v", id, err)
	}
	return at.Sub(f.now())
}

// Retries follow exponential backoff with jitter, timed on a fake clock, until the deadline.
func TestBackoffUntilTheDeadline(t *testing.T) {
	f := newFixture(t, "20s")
	ctx := context.Background()
	c := &tpv1.EscalationChange{Kind: tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, Sequence: 1, At: timestamppb.New(f.now()),
		Escalation: &tpv1.Escalation{Id: "r.t.T-1.1", Tenant: "acme", Rule: "r", SubjectKind: "ticket", State: tpv1.EscalationState_ESCALATION_STATE_OPEN,
			Labels: map[string]string{"tenant": "acme", "rule": "r"}}}
	if err := f.d.Handle(ctx, []*tpv1.EscalationChange{c}); err != nil {
		t.Fatal(err)
	}
	key, _ := f.d.Routing().Config.Root.GroupKey(Labels(c))
	gid := deliveries.GroupID("hook", key)
	if wait := f.due(t, groupTimer("acme", gid)); wait != 30*time.Second {
		t.Fatalf("group send planned in %s, want the 30s group_wait", wait)
	}
	if n := f.fire(t); n != 0 {
		t.Fatalf("%d timers fired before group_wait", n)
	}
	f.advance(30 * time.Second)
	f.fire(t)
	if f.hits.Load() != 1 {
		t.Fatalf("%d requests after the group send", f.hits.Load())
	}
	list, _, err := f.store.List(ctx, "acme", deliveries.Filter{}, 10, "")
	if err != nil || len(list) != 1 {
		t.Fatal(err, list)
	}
	id := list[0].ID
	// Attempt n waits between half and all of 1s·2^(n-1).
	for n := 1; n <= 4; n++ {
		base := time.Second << (n - 1)
		wait := f.due(t, deliveryTimer("acme", id))
		if wait < base/2 || wait > base {
			t.Errorf("after attempt %d the retry waits %s, want within [%s, %s]", n, wait, base/2, base)
		}
		f.advance(wait)
		f.fire(t)
		if got := f.hits.Load(); got != int64(n+1) {
			t.Fatalf("%d requests after retry %d", got, n)
		}
	}
	// 1+2+4+8 = up to 15 s of waits so far; the next (up to 16 s) would pass the 20 s deadline
	// unless jitter kept it short, so move the clock past it.
	f.advance(20 * time.Second)
	for range 3 {
		f.fire(t)
	}
	rec, err := f.store.Get(ctx, "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED {
		t.Fatalf("after the deadline: status %v, reason %q", rec.Status, rec.Reason)
	}
	if _, ok, _ := f.queue.Due(ctx, deliveryTimer("acme", id)); ok {
		t.Error("a failed delivery still has a timer")
	}
}

// A receiver at its concurrency cap makes its deliveries wait, without an attempt.
func TestBusyReceiverWaits(t *testing.T) {
	f := newFixture(t, "1h")
	ss := f.d.Routing().senders["hook"]
	ss.slots <- struct{}{}
	ss.slots <- struct{}{} // the default cap is 2
	rec := deliveries.NewRecord("acme", "g.1", "hook", "k", nil, nil, nil, f.now())
	if _, err := f.store.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := f.d.start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if wait := f.due(t, deliveryTimer("acme", "g.1")); wait != 250*time.Millisecond || f.hits.Load() != 0 {
		t.Errorf("busy receiver: retry in %s, %d requests", wait, f.hits.Load())
	}
}

// A group whose escalations stay open is reminded every repeat_interval; once they are
// resolved, the reminders stop.
func TestRemindersUntilResolved(t *testing.T) {
	f := newFixture(t, "1h")
	f.status.Store(200)
	ctx := context.Background()
	mk := func(kind tpv1.ChangeKind, seq int64, state tpv1.EscalationState) *tpv1.EscalationChange {
		return &tpv1.EscalationChange{Kind: kind, Sequence: seq, At: timestamppb.New(f.now()),
			Escalation: &tpv1.Escalation{Id: "r.t.T-1.1", Tenant: "acme", Rule: "r", SubjectKind: "ticket", State: state,
				Labels: map[string]string{"tenant": "acme", "rule": "r"}}}
	}
	open := tpv1.EscalationState_ESCALATION_STATE_OPEN
	if err := f.d.Handle(ctx, []*tpv1.EscalationChange{mk(tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1, open)}); err != nil {
		t.Fatal(err)
	}
	f.advance(30 * time.Second)
	f.fire(t) // the group's send
	f.fire(t) // the reminder timer looks: not yet
	delivered := func() []*deliveries.Record {
		list, _, err := f.store.List(ctx, "acme", deliveries.Filter{Status: tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED}, 50, "")
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	if n := len(delivered()); n != 1 {
		t.Fatalf("%d deliveries after the first send", n)
	}
	// The default repeat_interval is 4h.
	f.advance(4 * time.Hour)
	f.fire(t)
	list := delivered()
	if len(list) != 2 || !list[0].Reminder || list[0].Changes[0] != "r.t.T-1.1#1" {
		t.Fatalf("after 4h: %+v", list)
	}
	f.fire(t) // plans the next reminder
	f.advance(4 * time.Hour)
	f.fire(t)
	if n := len(delivered()); n != 3 {
		t.Fatalf("%d deliveries after 8h, want a second reminder", n)
	}
	// Resolved: sent as a change, then no more reminders.
	if err := f.d.Handle(ctx, []*tpv1.EscalationChange{mk(tpv1.ChangeKind_CHANGE_KIND_RESOLVED, 2, tpv1.EscalationState_ESCALATION_STATE_RESOLVED)}); err != nil {
		t.Fatal(err)
	}
	f.advance(5 * time.Minute)
	f.fire(t)
	f.advance(5 * time.Hour)
	for range 3 {
		f.fire(t)
	}
	list = delivered()
	if len(list) != 4 || list[0].Reminder || list[0].Changes[0] != "r.t.T-1.1#2" {
		t.Fatalf("after the resolution: %d deliveries, newest %+v", len(list), list[0])
	}
}
