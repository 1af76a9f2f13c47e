package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/routing"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// logged logs a pending delivery of one change to receiver and sets its timer an hour out, so
// a test can tell whether a stage cancelled or moved it.
func (f *fixture) logged(t *testing.T, id, receiverName string) *deliveries.Record {
	t.Helper()
	c := escalationChange("r.t.T-1.1", 1, openState, map[string]string{"rule": "r"})
	data, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	rec := deliveries.NewRecord("acme", id, receiverName, "k", map[string]string{"tenant": "acme"},
		[]*tpv1.EscalationChange{c}, [][]byte{data}, f.now())
	if _, err := f.store.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := f.queue.Schedule(context.Background(), deliveryTimer("acme", id), f.now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return rec
}

// settle is the stages that record a verdict, as the dispatcher has them.
func (f *fixture) settle() stages[*delivery] {
	m, _ := NewMetrics(nil)
	return stages[*delivery]{deadLetterStage{pub: f.js}, outcomeStage{store: f.store, timers: f.queue, metrics: m, now: f.now}}
}

// deadLetters reads the DEADLETTER stream.
func (f *fixture) deadLetters(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	st, err := f.js.Stream(ctx, stream.DeadletterName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// get reads a delivery back from the log.
func (f *fixture) get(t *testing.T, id string) *deliveries.Record {
	t.Helper()
	rec, err := f.store.Get(context.Background(), "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// hasTimer reports whether the delivery's timer is set, and when it is due.
func (f *fixture) hasTimer(t *testing.T, id string) (time.Time, bool) {
	t.Helper()
	at, ok, err := f.queue.Due(context.Background(), deliveryTimer("acme", id))
	if err != nil {
		t.Fatal(err)
	}
	return at, ok
}

// A delivery gets its receiver's sender; one whose receiver left the routing file or was
// disabled fails for good, dead-lettered, its timer cancelled.
func TestReceiverStage(t *testing.T) {
	tests := []struct {
		name        string
		receiver    string
		disable     bool
		wantReason  string
		wantAttempt string
	}{
		{"configured", "hook", false, "", ""},
		{"gone from the routing file", "old-hook", false, "receiver old-hook is no longer in the routing file", "receiver not configured"},
		{"disabled", "hook", true, "receiver disabled: endpoint gone (410)", "receiver disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "1h")
			ctx := context.Background()
			ss := f.d.Routing().senders["hook"]
			if tt.disable {
				if err := f.store.Disable(ctx, "hook", deliveries.Disabled{Reason: "endpoint gone (410)", Fingerprint: ss.fingerprint}); err != nil {
					t.Fatal(err)
				}
			}
			rec := f.logged(t, "g.1", tt.receiver)
			s := receiverStage{routing: f.d.Routing, store: f.store, now: f.now, settle: f.settle()}
			out, err := s.exec(ctx, quiet, []*delivery{{rec: rec}})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantReason == "" {
				if len(out) != 1 || out[0].sender != ss || len(f.deadLetters(t)) != 0 {
					t.Errorf("configured receiver: passed on %d, sender %p (want %p)", len(out), out[0].sender, ss)
				}
				return
			}
			got := f.get(t, "g.1")
			if len(out) != 0 || got.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED || got.Reason != tt.wantReason ||
				len(got.Attempts) != 1 || got.Attempts[0].Error != tt.wantAttempt {
				t.Errorf("passed on %d; logged %v %q %+v", len(out), got.Status, got.Reason, got.Attempts)
			}
			if dl := f.deadLetters(t); len(dl) != 1 || dl[0].Header.Get("Ticketpulse-Reason") != tt.wantReason {
				t.Errorf("dead letters: %v", dl)
			}
			if _, ok := f.hasTimer(t, "g.1"); ok {
				t.Error("a failed delivery still has a timer")
			}
		})
	}
}

// The lease moves the delivery's timer past the attempt's timeout; when it cannot, the slot
// the delivery holds is given back.
func TestLeaseStage(t *testing.T) {
	f := newFixture(t, "1h")
	ctx := context.Background()
	ss := f.d.Routing().senders["hook"]
	d := &delivery{rec: f.logged(t, "g.1", "hook"), sender: ss}
	if out, err := (slotStage{timers: f.queue, busy: time.Second, now: f.now}).exec(ctx, quiet, []*delivery{d}); err != nil || len(out) != 1 {
		t.Fatalf("slot: %v", err)
	}
	if out, err := (leaseStage{timers: f.queue, now: f.now}).exec(ctx, quiet, []*delivery{d}); err != nil || len(out) != 1 {
		t.Fatalf("lease: %v", err)
	}
	if wait := f.due(t, deliveryTimer("acme", "g.1")); wait != 2*time.Second+5*time.Second {
		t.Errorf("leased for %s, want the 2s timeout and 5s", wait)
	}
	closed := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	closed.Close()
	down := timers.New(closed, timers.Options{Prefix: "tp:notify:"})
	if out, err := (leaseStage{timers: down, now: f.now}).exec(ctx, quiet, []*delivery{d}); err == nil || len(out) != 0 {
		t.Fatalf("lease on a closed Redis client: %d passed on, %v", len(out), err)
	}
	if n := len(ss.slots); n != 0 {
		t.Errorf("%d slots still taken after the lease failed", n)
	}
}

// An attempt in the background is known as in flight and holds its slot until it is done; its
// errors are logged.
func TestBackgroundStage(t *testing.T) {
	proceed := make(chan struct{})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	bg := &backgroundStage{next: stageFunc[*delivery](func([]*delivery) ([]*delivery, error) {
		<-proceed
		return nil, errors.New("store down")
	})}
	released := make(chan struct{})
	d := &delivery{rec: &deliveries.Record{Tenant: "acme", ID: "g.1"}, release: func() { close(released) }}
	out, err := bg.exec(context.Background(), log, []*delivery{d})
	if err != nil || len(out) != 1 || d.release != nil {
		t.Fatalf("exec = %d, %v; the slot must pass to the attempt", len(out), err)
	}
	if !bg.busy(deliveryTimer("acme", "g.1")) {
		t.Error("the attempt is not known as in flight")
	}
	select {
	case <-released:
		t.Fatal("the slot was given back before the attempt ended")
	default:
	}
	close(proceed)
	bg.wait()
	<-released
	if bg.busy(deliveryTimer("acme", "g.1")) {
		t.Error("the attempt is still known as in flight after it ended")
	}
	if !strings.Contains(logs.String(), `msg="record delivery attempt" delivery=g.1 err="store down"`) {
		t.Errorf("log: %s", logs.String())
	}
}

// The rate stage spaces a receiver's attempts by its limiter.
func TestRateStage(t *testing.T) {
	ss := &sendState{limiter: rate.NewLimiter(rate.Every(50*time.Millisecond), 1)}
	start := time.Now()
	for range 3 {
		if _, err := (rateStage{}).exec(context.Background(), quiet, []*delivery{{rec: &deliveries.Record{}, sender: ss}}); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 90*time.Millisecond {
		t.Errorf("3 attempts at 20/s with a burst of 1 passed within %s", took)
	}
}

// A logged delivery becomes its message, with an id stable across attempts; changes that do
// not decode fail it for good.
func TestComposeStage(t *testing.T) {
	f := newFixture(t, "1h")
	ctx := context.Background()
	rec := f.logged(t, "g.1", "hook")
	rec.Reminder = true
	out, err := composeStage{now: f.now, settle: f.settle()}.exec(ctx, quiet, []*delivery{{rec: rec}})
	if err != nil || len(out) != 1 {
		t.Fatalf("compose: %d, %v", len(out), err)
	}
	n := out[0].note
	if n.ID != "acme.g.1" || n.Receiver != "hook" || n.GroupKey != "k" || n.GroupLabels["tenant"] != "acme" || !n.Reminder ||
		!n.At.Equal(f.now()) || len(n.Changes) != 1 || n.Changes[0].GetEscalation().GetId() != "r.t.T-1.1" {
		t.Errorf("notification %+v", n)
	}
	bad := f.logged(t, "g.2", "hook")
	bad.Data = [][]byte{{0xff}}
	if out, err := (composeStage{now: f.now, settle: f.settle()}).exec(ctx, quiet, []*delivery{{rec: bad}}); err != nil || len(out) != 0 {
		t.Fatalf("undecodable: %d passed on, %v", len(out), err)
	}
	if got := f.get(t, "g.2"); got.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED || got.Reason != "undecodable changes" {
		t.Errorf("undecodable delivery logged %v %q", got.Status, got.Reason)
	}
	if len(f.deadLetters(t)) != 1 {
		t.Error("the undecodable delivery was not dead-lettered")
	}
}

// A test send goes through the send stage alone: one request, its result reported, nothing
// logged.
func TestTestSendUsesTheSendStage(t *testing.T) {
	f := newFixture(t, "1h")
	ctx := context.Background()
	a, ok, err := f.d.Test(ctx, "hook", "acme", false)
	if err != nil || ok || a.GetStatusCode() != 500 || a.GetError() == "" || !a.GetAt().AsTime().Equal(f.now()) || f.hits.Load() != 1 {
		t.Fatalf("Test = %v, %v, %v with %d requests", a, ok, err, f.hits.Load())
	}
	if list, _, err := f.store.List(ctx, "acme", deliveries.Filter{}, 10, ""); err != nil || len(list) != 0 {
		t.Errorf("a test send was logged: %v %v", list, err)
	}
	if _, _, err := f.d.Test(ctx, "nobody", "acme", false); !errors.Is(err, ErrUnknownReceiver) {
		t.Errorf("unknown receiver: %v", err)
	}
}

// routedOnly limits a test send to the receivers the tenant's escalations can be routed to;
// any other is refused exactly as an unknown one, before it reaches the receiver.
func TestTestSendRoutedOnly(t *testing.T) {
	f := newFixture(t, "1h")
	ctx := context.Background()
	acmeOnly, err := routing.ParseMatcher(`tenant="acme"`)
	if err != nil {
		t.Fatal(err)
	}
	old := f.d.Routing().Config
	cfg := &routing.Config{File: old.File, Receivers: old.Receivers, ReceiverOrder: old.ReceiverOrder,
		Root: &routing.Route{Receiver: "elsewhere", Path: "route",
			Routes: []*routing.Route{{Receiver: "hook", Matchers: routing.Matchers{acmeOnly}, Path: "route.routes[0]"}}}}
	rt, err := NewRouting(cfg, receiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.d.SetRouting(rt)
	_, _, err = f.d.Test(ctx, "hook", "globex", true)
	_, _, unknown := f.d.Test(ctx, "nobody", "globex", true)
	if !errors.Is(err, ErrUnknownReceiver) || err.Error() != `unknown receiver: "hook"` ||
		strings.Replace(unknown.Error(), "nobody", "hook", 1) != err.Error() || f.hits.Load() != 0 {
		t.Fatalf("globex's test send to acme's receiver: %v (unknown: %v), %d requests", err, unknown, f.hits.Load())
	}
	for _, c := range []struct {
		tenant     string
		routedOnly bool
	}{{"acme", true}, {"globex", false}} {
		before := f.hits.Load()
		if a, _, err := f.d.Test(ctx, "hook", c.tenant, c.routedOnly); err != nil || a.GetStatusCode() != 500 || f.hits.Load() != before+1 {
			t.Errorf("Test(hook, %s, %v) = %v, %v with %d requests", c.tenant, c.routedOnly, a, err, f.hits.Load()-before)
		}
	}
}

// The retry stage judges an attempt by its result.
func TestRetryStage(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name         string
		give         receiver.Result
		created      time.Duration // before now
		wantStatus   tpv1.DeliveryStatus
		wantReason   string
		wantDisabled bool
	}{
		{"delivered", receiver.Result{Status: 200}, 0, tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, "", false},
		{"gone", receiver.Result{Status: 410, Err: boom, Gone: true}, 0, tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED,
			"endpoint gone (410): receiver hook disabled until its address changes", true},
		{"retry", receiver.Result{Status: 503, Err: boom, Retryable: true}, 0, tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING,
			"attempt 1 failed (boom); next at ", false},
		{"deadline", receiver.Result{Status: 503, Err: boom, Retryable: true}, time.Hour, tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED,
			"deadline 20s passed after 1 attempts; last: boom", false},
		{"not retryable", receiver.Result{Status: 400, Err: boom}, 0, tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED, "not retryable: boom", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "20s")
			ctx := context.Background()
			ss := f.d.Routing().senders["hook"]
			rec := &deliveries.Record{Tenant: "acme", ID: "g.1", Receiver: "hook", Created: f.now().Add(-tt.created)}
			d := &delivery{rec: rec, sender: ss, result: tt.give, attempt: deliveries.Attempt{At: f.now(), Status: tt.give.Status}}
			if tt.give.Err != nil {
				d.attempt.Error = tt.give.Err.Error()
			}
			m, _ := NewMetrics(nil)
			out, err := retryStage{store: f.store, metrics: m, backoff: backoff{base: time.Second, max: time.Minute}}.exec(ctx, quiet, []*delivery{d})
			if err != nil || len(out) != 1 {
				t.Fatalf("exec: %d, %v", len(out), err)
			}
			if d.status != tt.wantStatus || !strings.HasPrefix(d.reason, tt.wantReason) || (tt.wantReason == "") != (d.reason == "") {
				t.Errorf("verdict %v %q, want %v %q", d.status, d.reason, tt.wantStatus, tt.wantReason)
			}
			if tt.wantStatus == tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING {
				if wait := d.next.Sub(f.now()); wait < 500*time.Millisecond || wait > time.Second {
					t.Errorf("first retry in %s, want within [500ms, 1s]", wait)
				}
			}
			dis, err := f.store.IsDisabled(ctx, "hook", ss.fingerprint)
			if err != nil || (dis != nil) != tt.wantDisabled {
				t.Errorf("receiver disabled: %+v, %v; want %v", dis, err, tt.wantDisabled)
			}
		})
	}
}

// Attempt n waits between half and all of base·2^(n-1), never more than max.
func TestBackoffWait(t *testing.T) {
	b := backoff{base: time.Second, max: 10 * time.Second}
	tests := []struct {
		give     int
		low, top time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{5, 5 * time.Second, 10 * time.Second},
		{80, 5 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		for range 50 {
			if w := b.wait(tt.give); w < tt.low || w > tt.top {
				t.Fatalf("wait(%d) = %s, want within [%s, %s]", tt.give, w, tt.low, tt.top)
			}
		}
	}
}

// The outcome stage logs the attempt with its verdict and sets the timer by it.
func TestOutcomeStage(t *testing.T) {
	tests := []struct {
		name      string
		give      tpv1.DeliveryStatus
		wantTimer bool
	}{
		{"delivered", tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, false},
		{"retry", tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING, true},
		{"failed", tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "1h")
			rec := f.logged(t, "g.1", "hook")
			next := f.now().Add(3 * time.Second)
			d := &delivery{rec: rec, attempt: deliveries.Attempt{At: f.now(), Status: 503}, status: tt.give, reason: "why", next: next}
			m, _ := NewMetrics(nil)
			if _, err := (outcomeStage{store: f.store, timers: f.queue, metrics: m, now: f.now}).exec(context.Background(), quiet, []*delivery{d}); err != nil {
				t.Fatal(err)
			}
			got := f.get(t, "g.1")
			wantReason := "why"
			if tt.give == tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED {
				wantReason = ""
			}
			if got.Status != tt.give || got.Reason != wantReason || len(got.Attempts) != 1 || got.Attempts[0].Status != 503 {
				t.Errorf("logged %v %q %+v", got.Status, got.Reason, got.Attempts)
			}
			at, ok := f.hasTimer(t, "g.1")
			if ok != tt.wantTimer || (ok && !at.Equal(next)) {
				t.Errorf("timer %v at %s, want %v at %s", ok, at, tt.wantTimer, next)
			}
		})
	}
}

// A failed delivery is dead-lettered with its reason and every attempt; others pass
// untouched.
func TestDeadLetterStage(t *testing.T) {
	f := newFixture(t, "1h")
	ctx := context.Background()
	rec := f.logged(t, "g.1", "hook")
	rec.Attempts = []deliveries.Attempt{{At: f.now(), Status: 503, Error: "first"}}
	s := deadLetterStage{pub: f.js}
	ok := &delivery{rec: rec, status: tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED}
	if out, err := s.exec(ctx, quiet, []*delivery{ok}); err != nil || len(out) != 1 || len(f.deadLetters(t)) != 0 {
		t.Fatalf("a delivered delivery: %d passed on, %v, %d dead letters", len(out), err, len(f.deadLetters(t)))
	}
	failed := &delivery{rec: rec}
	failed.fail(deliveries.Attempt{At: f.now(), Status: 400, Error: "second"}, "not retryable: second")
	if out, err := s.exec(ctx, quiet, []*delivery{failed}); err != nil || len(out) != 1 {
		t.Fatalf("a failed delivery: %d passed on, %v", len(out), err)
	}
	dl := f.deadLetters(t)
	if len(dl) != 1 {
		t.Fatalf("%d dead letters", len(dl))
	}
	m := dl[0]
	if m.Subject != "deadletter.notify.acme" || m.Header.Get("Ticketpulse-Reason") != "not retryable: second" ||
		m.Header.Get("Ticketpulse-Delivery") != "g.1" || m.Header.Get(jetstream.MsgIDHeader) != "notify-acme-g.1" {
		t.Errorf("dead letter %s %v", m.Subject, m.Header)
	}
	var body struct {
		ID       string   `json:"id"`
		Status   string   `json:"status"`
		Reason   string   `json:"reason"`
		Changes  []string `json:"changes"`
		Attempts []struct {
			Error string `json:"error"`
		} `json:"attempts"`
	}
	if err := json.Unmarshal(m.Data, &body); err != nil {
		t.Fatal(err)
	}
	if body.ID != "g.1" || body.Status != "failed" || body.Reason != "not retryable: second" || len(body.Changes) != 1 ||
		len(body.Attempts) != 2 || body.Attempts[0].Error != "first" || body.Attempts[1].Error != "second" {
		t.Errorf("dead letter body %s", m.Data)
	}
}

// A batch is logged as a delivery made at the time it was taken. A batch logged before (a
// flush that crashed after logging) goes on while its delivery is pending and not in flight
// here; otherwise the group's outbox is cleared and it stops.
func TestRecordStage(t *testing.T) {
	tests := []struct {
		name     string
		before   tpv1.DeliveryStatus // 0: not logged before
		inFlight bool
		wantOn   bool
	}{
		{"new", 0, false, true},
		{"logged, pending", tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING, false, true},
		{"logged, in flight", tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING, true, false},
		{"logged, delivered", tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "1h")
			ctx := context.Background()
			c := escalationChange("r.t.T-1.1", 1, openState, map[string]string{"rule": "r"})
			if err := f.d.Handle(ctx, []*tpv1.EscalationChange{c}); err != nil {
				t.Fatal(err)
			}
			key, _ := f.d.Routing().Config.Root.GroupKey(Labels(c))
			gid := deliveries.GroupID("hook", key)
			created := f.now()
			f.advance(30 * time.Second)
			b, err := f.store.Take(ctx, "acme", gid, f.now())
			if err != nil || b == nil {
				t.Fatal(b, err)
			}
			if tt.before != 0 {
				rec := deliveries.NewRecord("acme", b.DeliveryID(), "hook", b.Key, b.GroupLabels, b.Changes, b.Data, created)
				rec.Status = tt.before
				if _, err := f.store.Create(ctx, rec); err != nil {
					t.Fatal(err)
				}
			}
			bg := &backgroundStage{}
			if tt.inFlight {
				bg.inflight.Store(deliveryTimer("acme", b.DeliveryID()), true)
			}
			out, err := recordStage{store: f.store, bg: bg}.exec(ctx, quiet, []*delivery{{batch: b, taken: f.now()}})
			if err != nil || (len(out) == 1) != tt.wantOn {
				t.Fatalf("passed on %d, %v; want on: %v", len(out), err, tt.wantOn)
			}
			again, err := f.store.Take(ctx, "acme", gid, f.now())
			if err != nil || (again != nil) != tt.wantOn {
				t.Errorf("outbox still there: %v (%v); want %v", again != nil, err, tt.wantOn)
			}
			if !tt.wantOn {
				return
			}
			want := f.now()
			if tt.before != 0 {
				want = created
			}
			if rec := out[0].rec; rec.ID != b.DeliveryID() || !rec.Created.Equal(want) || rec.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING {
				t.Errorf("delivery %s created %s (want %s), %v", rec.ID, rec.Created, want, rec.Status)
			}
		})
	}
}
