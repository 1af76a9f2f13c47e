package timers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

var (
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	t0    = time.UnixMilli(1_750_000_000_000) // an injected clock: these tests never wait for it
)

func newQueue(rdb redis.UniversalClient, o Options) *Queue {
	if o.Logger == nil {
		o.Logger = quiet
	}
	return New(rdb, o)
}

// otherClient is a second connection pool to the same server, as another replica would have.
func otherClient(t testing.TB, rdb *redis.Client) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func ids(cs []Claimed) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	slices.Sort(out)
	return out
}

func claim(t *testing.T, q *Queue, now time.Time) []Claimed {
	t.Helper()
	cs, err := q.Claim(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func leased(t *testing.T, rdb *redis.Client, q *Queue) int64 {
	t.Helper()
	var n int64
	for _, k := range q.shards {
		c, err := rdb.ZCard(context.Background(), k.lease).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

func pending(t *testing.T, q *Queue) int64 {
	t.Helper()
	n, err := q.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestScheduleClaimDone(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	q := newQueue(rdb, Options{})
	if err := q.ScheduleMany(ctx, []Timer{{ID: "a", Due: t0}, {ID: "b", Due: t0.Add(time.Minute)}, {ID: "c", Due: t0.Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if n := pending(t, q); n != 3 {
		t.Fatalf("pending %d, want 3", n)
	}
	cs := claim(t, q, t0)
	if got := ids(cs); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("claimed %q, want a and c (b is not due)", got)
	}
	for _, c := range cs {
		want := map[string]time.Time{"a": t0, "c": t0.Add(-time.Hour)}[c.ID]
		if !c.Due.Equal(want) || c.Redelivered {
			t.Fatalf("claim %+v: want due %v, not redelivered", c, want)
		}
	}
	if again := claim(t, q, t0); len(again) != 0 {
		t.Fatalf("leased timers claimed again: %q", ids(again))
	}
	if n := pending(t, q); n != 1 {
		t.Fatalf("pending %d, want 1", n)
	}
	if n := leased(t, rdb, q); n != 2 {
		t.Fatalf("leased %d, want 2", n)
	}
	if err := q.Done(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if n := leased(t, rdb, q); n != 0 {
		t.Fatalf("leased %d after Done, want 0", n)
	}
	if got := ids(claim(t, q, t0.Add(time.Minute-time.Millisecond))); len(got) != 0 {
		t.Fatalf("claimed %q a millisecond early", got)
	}
	if got := ids(claim(t, q, t0.Add(time.Minute))); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("claimed %q, want b", got)
	}
	// Keys carry the prefix and one hash tag per shard.
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "tp:{tq:") {
			t.Errorf("key %q lacks the tp:{tq:<shard>} prefix", k)
		}
	}
}

func TestMoveAndCancel(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	q := newQueue(rdb, Options{})
	tests := []struct {
		name    string
		first   time.Duration // offsets from t0
		second  time.Duration
		cancel  bool
		claimAt time.Duration
		claimed bool
	}{
		{"moved later is not claimed at its old time", 0, time.Minute, false, 0, false},
		{"moved later is claimed at its new time", 0, time.Minute, false, time.Minute, true},
		{"moved earlier is claimed at its new time", time.Hour, time.Second, false, time.Second, true},
		{"moved earlier is not claimed before it", time.Hour, time.Second, false, time.Second - time.Millisecond, false},
		{"cancelled is never claimed", 0, 0, true, time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rdb.FlushAll(ctx)
			const id = "acme\x1fticket\x1fT-77"
			if err := q.Schedule(ctx, id, t0.Add(tc.first)); err != nil {
				t.Fatal(err)
			}
			want := t0.Add(tc.first)
			if tc.cancel {
				if err := q.Cancel(ctx, id, "never-scheduled"); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := q.Schedule(ctx, id, t0.Add(tc.second)); err != nil {
					t.Fatal(err)
				}
				want = t0.Add(tc.second)
			}
			due, ok, err := q.Due(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if ok == tc.cancel || (ok && !due.Equal(want)) {
				t.Fatalf("Due = %v, %v; want %v, %v", due, ok, want, !tc.cancel)
			}
			if n, want := pending(t, q), map[bool]int64{false: 1, true: 0}[tc.cancel]; n != want {
				t.Fatalf("pending %d, want %d (one pending due time per id)", n, want)
			}
			cs := claim(t, q, t0.Add(tc.claimAt))
			if got := len(cs) == 1; got != tc.claimed || len(cs) > 1 {
				t.Fatalf("claimed %q, want claimed=%v", ids(cs), tc.claimed)
			}
			if tc.claimed && !cs[0].Due.Equal(want) {
				t.Fatalf("claimed due %v, want %v", cs[0].Due, want)
			}
		})
	}
	t.Run("cancel leaves a claim in flight", func(t *testing.T) {
		rdb.FlushAll(ctx)
		q.Schedule(ctx, "x", t0)
		cs := claim(t, q, t0)
		if err := q.Cancel(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		if n := leased(t, rdb, q); n != 1 {
			t.Fatalf("leased %d, want 1", n)
		}
		if err := q.Done(ctx, cs); err != nil {
			t.Fatal(err)
		}
		if n := leased(t, rdb, q); n != 0 {
			t.Fatalf("leased %d, want 0", n)
		}
	})
	t.Run("empty calls are no-ops", func(t *testing.T) {
		if err := q.ScheduleMany(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := q.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		if err := q.Done(ctx, []Claimed{{ID: "not from Claim"}}); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := q.Due(ctx, "nothing"); ok || err != nil {
			t.Fatalf("Due of an unknown id: %v, %v", ok, err)
		}
	})
}

func TestScheduleEarlier(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	q := newQueue(rdb, Options{})
	q.ScheduleMany(ctx, []Timer{{ID: "sooner", Due: t0}, {ID: "later", Due: t0.Add(time.Hour)}})
	err := q.ScheduleEarlier(ctx, []Timer{
		{ID: "sooner", Due: t0.Add(time.Minute)},  // already due sooner: kept at t0
		{ID: "later", Due: t0.Add(time.Minute)},   // moved earlier
		{ID: "new", Due: t0.Add(2 * time.Minute)}, // added
		{ID: "twice", Due: t0.Add(3 * time.Minute)},
		{ID: "twice", Due: t0.Add(2 * time.Minute)}, // the earlier of the two wins
		{ID: "twice", Due: t0.Add(4 * time.Minute)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]time.Time{"sooner": t0, "later": t0.Add(time.Minute), "new": t0.Add(2 * time.Minute),
		"twice": t0.Add(2 * time.Minute)} {
		if due, ok, err := q.Due(ctx, id); err != nil || !ok || !due.Equal(want) {
			t.Errorf("Due(%q) = %v, %v, %v; want %v", id, due, ok, err, want)
		}
	}
}

func TestRescheduleWhileLeased(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	q := newQueue(rdb, Options{})
	q.Schedule(ctx, "a", t0)
	first := claim(t, q, t0)
	if len(first) != 1 {
		t.Fatalf("claimed %d, want 1", len(first))
	}
	// The handler is still running when the ticket changes and its timer moves.
	if err := q.Schedule(ctx, "a", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := q.Done(ctx, first); err != nil {
		t.Fatal(err)
	}
	if due, ok, _ := q.Due(ctx, "a"); !ok || !due.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after Done of the old claim: Due = %v, %v; want the new time pending", due, ok)
	}
	if cs := claim(t, q, t0.Add(30*time.Second)); len(cs) != 0 {
		t.Fatalf("claimed %q before the new due time", ids(cs))
	}
	cs := claim(t, q, t0.Add(time.Minute))
	if len(cs) != 1 || !cs[0].Due.Equal(t0.Add(time.Minute)) || cs[0].Redelivered {
		t.Fatalf("claimed %+v, want a due at its new time", cs)
	}

	// Rescheduled to the very same due time and claimed again in the same millisecond: the two
	// claims are still told apart, so the first Done does not release the second.
	rdb.FlushAll(ctx)
	q.Schedule(ctx, "b", t0)
	one := claim(t, q, t0)
	q.Schedule(ctx, "b", t0)
	two := claim(t, q, t0)
	if len(one) != 1 || len(two) != 1 || one[0].token == two[0].token {
		t.Fatalf("claims %+v and %+v, want two distinct claims", one, two)
	}
	q.Done(ctx, one)
	if n := leased(t, rdb, q); n != 1 {
		t.Fatalf("leased %d after the first Done, want the second claim kept", n)
	}
}

func TestLeaseExpiryRedelivery(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	opts := Options{Lease: time.Second}
	a := newQueue(rdb, opts)
	b := newQueue(otherClient(t, rdb), opts)
	a.Schedule(ctx, "x", t0)
	ca := claim(t, a, t0)
	if len(ca) != 1 {
		t.Fatalf("A claimed %d, want 1", len(ca))
	}
	// A dies without Done.
	if cs := claim(t, b, t0.Add(time.Second-time.Millisecond)); len(cs) != 0 {
		t.Fatalf("B claimed %q before the lease expired", ids(cs))
	}
	cb := claim(t, b, t0.Add(time.Second))
	if len(cb) != 1 || cb[0].ID != "x" || !cb[0].Redelivered || !cb[0].Due.Equal(t0) {
		t.Fatalf("B claimed %+v, want x redelivered with its original due time", cb)
	}
	// A's late Done must not release B's claim.
	if err := a.Done(ctx, ca); err != nil {
		t.Fatal(err)
	}
	if n := leased(t, rdb, a); n != 1 {
		t.Fatalf("leased %d after A's late Done, want B's claim kept", n)
	}
	if cs := claim(t, a, t0.Add(1500*time.Millisecond)); len(cs) != 0 {
		t.Fatalf("claimed %q during B's lease", ids(cs))
	}
	// B's lease expires too: redelivered again, still with the original due time.
	cc := claim(t, a, t0.Add(2*time.Second))
	if len(cc) != 1 || !cc[0].Redelivered || !cc[0].Due.Equal(t0) {
		t.Fatalf("third claim %+v", cc)
	}
	b.Done(ctx, cb)
	if n := leased(t, rdb, a); n != 1 {
		t.Fatalf("leased %d after B's late Done, want the third claim kept", n)
	}
	a.Done(ctx, cc)
	if n := leased(t, rdb, a); n != 0 {
		t.Fatalf("leased %d, want 0", n)
	}
}

func TestBatchLimit(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	q := newQueue(rdb, Options{Shards: 2, Batch: 3, Lease: time.Second})
	var ts []Timer
	for i := range 20 {
		ts = append(ts, Timer{ID: fmt.Sprintf("t%02d", i), Due: t0.Add(time.Duration(i) * time.Millisecond)})
	}
	q.ScheduleMany(ctx, ts)
	cs, full, err := q.claim(ctx, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 6 || !full {
		t.Fatalf("claimed %d (full %v), want 3 per shard and full", len(cs), full)
	}
	// Expired leases come first and count against the batch.
	cs, _, _ = q.claim(ctx, t0.Add(time.Minute+time.Second))
	redelivered := 0
	for _, c := range cs {
		if c.Redelivered {
			redelivered++
		}
	}
	if len(cs) != 6 || redelivered != 6 {
		t.Fatalf("claimed %d with %d redelivered, want the 6 expired leases", len(cs), redelivered)
	}
}

func TestBinarySafeIDs(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	q := newQueue(rdb, Options{})
	weird := []string{"", "\x00", "a\x00b", "acme\x1fticket\x1fT-77", "{tq:3}", "}{", "{", "a:b:c", "123:456:", ":",
		"ünïcødé ✓ 日本語 🎫", "\xff\xfe not utf-8", strings.Repeat("long", 1000)}
	var ts []Timer
	for i, id := range weird {
		ts = append(ts, Timer{ID: id, Due: t0.Add(time.Duration(i) * time.Second)})
	}
	if err := q.ScheduleMany(ctx, ts); err != nil {
		t.Fatal(err)
	}
	for _, tm := range ts {
		due, ok, err := q.Due(ctx, tm.ID)
		if err != nil || !ok || !due.Equal(tm.Due) {
			t.Fatalf("Due(%q) = %v, %v, %v; want %v", tm.ID, due, ok, err, tm.Due)
		}
	}
	cs := claim(t, q, t0.Add(time.Hour))
	got := map[string]time.Time{}
	for _, c := range cs {
		got[c.ID] = c.Due
	}
	for _, tm := range ts {
		if d, ok := got[tm.ID]; !ok || !d.Equal(tm.Due) {
			t.Errorf("id %q: claimed %v at %v, want %v", tm.ID, ok, d, tm.Due)
		}
	}
	if len(cs) != len(weird) {
		t.Fatalf("claimed %d, want %d", len(cs), len(weird))
	}
	if err := q.Done(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if n := leased(t, rdb, q); n != 0 {
		t.Fatalf("leased %d, want 0", n)
	}
	q.ScheduleMany(ctx, ts)
	if err := q.Cancel(ctx, weird...); err != nil {
		t.Fatal(err)
	}
	if n := pending(t, q); n != 0 {
		t.Fatalf("pending %d after cancelling all, want 0", n)
	}
}

func TestOptionsPrefixAndShards(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	q := newQueue(rdb, Options{Prefix: "tp:test:", Shards: 3})
	for i := range 50 {
		q.Schedule(ctx, fmt.Sprint(i), t0)
	}
	claim(t, q, t0)
	keys, _ := rdb.Keys(ctx, "*").Result()
	slices.Sort(keys)
	want := []string{"tp:test:{tq:0}:lease", "tp:test:{tq:0}:seq", "tp:test:{tq:1}:lease", "tp:test:{tq:1}:seq",
		"tp:test:{tq:2}:lease", "tp:test:{tq:2}:seq"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %q, want %q", keys, want)
	}
}

// TestMemoryPerTimer checks the budget of 200 bytes of Redis memory per pending timer.
func TestMemoryPerTimer(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	q := newQueue(rdb, Options{})
	const n = 100_000
	per, err := scheduleMeasured(ctx, rdb, q, n, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.1f bytes per pending timer", per.bytes)
	if per.bytes > 200 {
		t.Fatalf("%.1f bytes per pending timer, want at most 200", per.bytes)
	}
}

// runReplica runs q.Run in a goroutine and returns its stop function, which waits for Run.
func runReplica(t testing.TB, q *Queue, every time.Duration, now func() time.Time, h func(context.Context, []Claimed) []error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- q.Run(ctx, every, now, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTwoReplicasBurst(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	a := newQueue(rdb, Options{})
	b := newQueue(otherClient(t, rdb), Options{})
	const n = 10_000
	second := time.Now().Truncate(time.Second).Add(time.Second)
	ts := make([]Timer, n)
	for i := range ts {
		ts[i] = Timer{ID: fmt.Sprintf("acme\x1fticket\x1f%08d", i), Due: second.Add(time.Duration(i%1000) * time.Millisecond)}
	}
	if err := a.ScheduleMany(ctx, ts); err != nil {
		t.Fatal(err)
	}
	var fired sync.Map // id -> *atomic.Int32
	var total, dups atomic.Int64
	var maxDelay atomic.Int64
	handler := func(_ context.Context, cs []Claimed) []error {
		at := time.Now()
		for _, c := range cs {
			v, _ := fired.LoadOrStore(c.ID, new(atomic.Int32))
			if v.(*atomic.Int32).Add(1) > 1 {
				dups.Add(1)
			}
			if c.Redelivered {
				t.Errorf("%q redelivered", c.ID)
			}
			if d := int64(at.Sub(c.Due)); d > maxDelay.Load() {
				maxDelay.Store(d) // racy max across replicas is fine for a bound check
			}
			total.Add(1)
		}
		return nil
	}
	runReplica(t, a, 50*time.Millisecond, nil, handler)
	runReplica(t, b, 50*time.Millisecond, nil, handler)
	waitFor(t, time.Until(second.Add(6*time.Second)), "all timers to fire", func() bool { return total.Load() >= n })
	last := time.Now()
	time.Sleep(100 * time.Millisecond) // room for a duplicate to show up
	if dups.Load() != 0 || total.Load() != n {
		t.Fatalf("%d fires with %d duplicates, want %d exactly once", total.Load(), dups.Load(), n)
	}
	if over := last.Sub(second.Add(time.Second)); over > 5*time.Second {
		t.Fatalf("last fire %v after the due second", over)
	}
	t.Logf("max firing delay %v", time.Duration(maxDelay.Load()))
	if p := pending(t, a); p != 0 {
		t.Fatalf("pending %d", p)
	}
	if l := leased(t, rdb, a); l != 0 {
		t.Fatalf("leased %d after every claim was done", l)
	}
}

func TestReplicaKilledMidRun(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	const lease = 400 * time.Millisecond
	a := newQueue(rdb, Options{Lease: lease})
	b := newQueue(otherClient(t, rdb), Options{Lease: lease})
	var ts []Timer
	now := time.Now()
	for i := range 100 {
		ts = append(ts, Timer{ID: fmt.Sprint("t", i), Due: now.Add(-time.Second)})
	}
	a.ScheduleMany(ctx, ts)

	// A claims everything, then hangs in its handler until it is stopped.
	var got atomic.Int64
	stopA := runReplica(t, a, 10*time.Millisecond, nil, func(ctx context.Context, cs []Claimed) []error {
		got.Add(int64(len(cs)))
		<-ctx.Done()
		errs := make([]error, len(cs))
		for i := range errs {
			errs[i] = ctx.Err()
		}
		return errs
	})
	waitFor(t, 5*time.Second, "A to claim", func() bool { return got.Load() == 100 })
	stopA()
	stoppedAt := time.Now()

	var mu sync.Mutex
	seen := map[string]bool{}
	runReplica(t, b, 10*time.Millisecond, nil, func(_ context.Context, cs []Claimed) []error {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			if !c.Redelivered || seen[c.ID] {
				t.Errorf("%q: redelivered %v, seen before %v", c.ID, c.Redelivered, seen[c.ID])
			}
			seen[c.ID] = true
		}
		return nil
	})
	waitFor(t, 5*time.Second, "B to handle A's claims", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 100
	})
	if d := time.Since(stoppedAt); d > lease+time.Second {
		t.Errorf("redelivered %v after A stopped, lease %v", d, lease)
	}
	waitFor(t, time.Second, "B's Done", func() bool { return leased(t, rdb, b) == 0 })
}

// fakeClock is an injected clock that tests move forward.
type fakeClock struct{ ms atomic.Int64 }

func (c *fakeClock) now() time.Time       { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) add(d time.Duration)  { c.ms.Add(d.Milliseconds()) }
func newFakeClock(t time.Time) *fakeClock { c := &fakeClock{}; c.ms.Store(t.UnixMilli()); return c }

func TestRunHandlerResults(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	clock := newFakeClock(t0)
	var mu sync.Mutex
	var fires []string // "<id> <redelivered>"
	var delays []time.Duration
	q := newQueue(rdb, Options{Lease: time.Minute, OnFire: func(d time.Duration) {
		mu.Lock()
		delays = append(delays, d)
		mu.Unlock()
	}})
	failed := map[string]bool{}
	runReplica(t, q, 5*time.Millisecond, clock.now, func(_ context.Context, cs []Claimed) []error {
		mu.Lock()
		defer mu.Unlock()
		slices.SortFunc(cs, func(a, b Claimed) int { return strings.Compare(a.ID, b.ID) })
		errs := make([]error, len(cs))
		for i, c := range cs {
			fires = append(fires, fmt.Sprint(c.ID, " ", c.Redelivered))
			if c.ID == "bad" && !failed["bad"] {
				errs[i] = errors.New("downstream unavailable")
				failed["bad"] = true
			}
			if c.ID == "short" && !failed["short"] {
				failed["short"] = true
				return []error{} // the wrong length: the whole call is redelivered
			}
		}
		return errs
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(fires) }

	q.ScheduleMany(ctx, []Timer{{ID: "good", Due: t0.Add(-2 * time.Second)}, {ID: "bad", Due: t0}})
	waitFor(t, 5*time.Second, "first fires", func() bool { return count() == 2 })
	waitFor(t, time.Second, "Done of good only", func() bool { return leased(t, rdb, q) == 1 })
	clock.add(time.Minute)
	waitFor(t, 5*time.Second, "the redelivery of bad", func() bool { return count() == 3 })
	waitFor(t, time.Second, "Done of bad", func() bool { return leased(t, rdb, q) == 0 })

	q.Schedule(ctx, "short", clock.now())
	waitFor(t, 5*time.Second, "short", func() bool { return count() == 4 })
	clock.add(time.Minute)
	waitFor(t, 5*time.Second, "the redelivery of short", func() bool { return count() == 5 })
	waitFor(t, time.Second, "Done of short", func() bool { return leased(t, rdb, q) == 0 })

	mu.Lock()
	defer mu.Unlock()
	want := []string{"bad false", "good false", "bad true", "short false", "short true"}
	if !slices.Equal(fires, want) {
		t.Fatalf("fires %q, want %q", fires, want)
	}
	slices.Sort(delays)
	if want := []time.Duration{0, 0, 2 * time.Second, time.Minute, time.Minute}; !slices.Equal(delays, want) {
		t.Fatalf("OnFire delays %v, want %v", delays, want)
	}
}

func TestOverdueFireAtFirstPoll(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	q := newQueue(rdb, Options{})
	now := time.Now()
	q.ScheduleMany(ctx, []Timer{{ID: "a", Due: now.Add(-time.Hour)}, {ID: "b", Due: now.Add(-time.Minute)}, {ID: "c", Due: time.Unix(0, 0)}, {ID: "later", Due: now.Add(time.Hour)}})
	var got sync.Map
	// A poll interval of an hour: only the first poll can fire anything during the test.
	runReplica(t, q, time.Hour, nil, func(_ context.Context, cs []Claimed) []error {
		for _, c := range cs {
			got.Store(c.ID, true)
		}
		return nil
	})
	waitFor(t, 2*time.Second, "overdue timers", func() bool {
		_, a := got.Load("a")
		_, b := got.Load("b")
		_, c := got.Load("c")
		return a && b && c
	})
	if _, ok := got.Load("later"); ok {
		t.Fatal("a timer due in an hour fired")
	}
}

func TestRedisRestartWithAOF(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own redis-server")
	}
	srv, err := testenv.StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	q := newQueue(rdb, Options{Lease: 300 * time.Millisecond})
	start := time.Now()
	ts := make([]Timer, 1000)
	for i := range ts {
		ts[i] = Timer{ID: fmt.Sprintf("acme\x1fticket\x1f%08d", i), Due: start.Add(time.Duration(i) * time.Millisecond)}
	}
	if err := q.ScheduleMany(ctx, ts); err != nil {
		t.Fatal(err)
	}
	// Ten are claimed and in flight when Redis dies: their leases survive too.
	inFlight := claim(t, q, start.Add(9*time.Millisecond))
	if len(inFlight) != 10 {
		t.Fatalf("claimed %d, want 10", len(inFlight))
	}
	time.Sleep(1100 * time.Millisecond) // appendfsync everysec
	srv.Kill()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if n := pending(t, q); n != 990 {
		t.Fatalf("pending %d after restart, want 990", n)
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.FloatCmd, len(ts))
	for i, tm := range ts {
		cmds[i] = pipe.ZScore(ctx, q.shards[q.shardOf(tm.ID)].due, tm.ID)
	}
	pipe.Exec(ctx)
	for i, tm := range ts[10:] {
		if ms, err := cmds[10+i].Result(); err != nil || int64(ms) != tm.Due.UnixMilli() {
			t.Fatalf("%q after restart: %v, %v; want %d", tm.ID, ms, err, tm.Due.UnixMilli())
		}
	}
	// Redis lost its script cache: Run must still claim (and the leases expire meanwhile).
	var mu sync.Mutex
	seen := map[string]int{}
	redelivered := 0
	runReplica(t, q, 20*time.Millisecond, nil, func(_ context.Context, cs []Claimed) []error {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			seen[c.ID]++
			if c.Redelivered {
				redelivered++
			}
		}
		return nil
	})
	waitFor(t, 5*time.Second, "the timers to fire", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 1000 })
	mu.Lock()
	defer mu.Unlock()
	if redelivered != 10 {
		t.Fatalf("%d redelivered, want the 10 in flight", redelivered)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%q fired %d times", id, n)
		}
	}
}

// TestRunRidesOutRedisDown: Run keeps polling (with backoff) while Redis is down and fires once
// it is back, without returning.
func TestRunRidesOutRedisDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own redis-server")
	}
	srv, err := testenv.StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	var logged atomic.Int64
	var first atomic.Value
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		if logged.Add(1) == 1 {
			first.Store(string(p))
		}
		return len(p), nil
	}), nil))
	q := newQueue(rdb, Options{Logger: logger})
	fired := make(chan string, 1)
	runReplica(t, q, 10*time.Millisecond, nil, func(_ context.Context, cs []Claimed) []error {
		for _, c := range cs {
			fired <- c.ID
		}
		return nil
	})
	srv.Kill()
	waitFor(t, 5*time.Second, "Run to log the outage", func() bool { return logged.Load() > 0 })
	if msg := first.Load().(string); !strings.Contains(msg, "level=WARN") || !strings.Contains(msg, "claim timers") {
		t.Fatalf("logged %q", msg)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := q.Schedule(context.Background(), "after", time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-fired:
		if id != "after" {
			t.Fatalf("fired %q", id)
		}
	case <-time.After(maxBackoff + 2*time.Second):
		t.Fatal("no fire after Redis came back")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A Redis that lost its script cache (a restart) still hands out each due timer once, from
// every shard.
func TestClaimAfterScriptFlush(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	q := newQueue(rdb, Options{Shards: 4})
	var ts []Timer
	for i := range 20 {
		ts = append(ts, Timer{ID: fmt.Sprintf("t%02d", i), Due: t0})
	}
	if err := q.ScheduleMany(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if cs := claim(t, q, t0); len(cs) != len(ts) {
		t.Fatalf("claimed %d after SCRIPT FLUSH, want %d", len(cs), len(ts))
	}
	if again := claim(t, q, t0); len(again) != 0 {
		t.Fatalf("claimed again: %q", ids(again))
	}
}

// A timer planned with a trace is claimed with it, by a queue that keeps traces; the trace key
// expires a while after the timer was due, and one too long is not stored.
func TestPlanningTrace(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	q := newQueue(rdb, Options{Traces: true, Lease: time.Minute})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	due := time.Now().Add(-time.Second)
	if err := q.ScheduleEarlier(ctx, []Timer{{ID: "traced", Due: due, Trace: tp}, {ID: "plain", Due: due},
		{ID: "long", Due: due, Trace: strings.Repeat("x", 200)}}); err != nil {
		t.Fatal(err)
	}
	ttl, err := rdb.TTL(ctx, q.shards[q.shardOf("traced")].trace+"traced").Result()
	if err != nil || ttl <= 24*time.Hour || ttl > 24*time.Hour+time.Minute {
		t.Fatalf("trace key TTL %v (%v), want a lease and a day after due", ttl, err)
	}
	cs, err := q.Claim(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range cs {
		got[c.ID] = c.Trace
	}
	if len(got) != 3 || got["traced"] != tp || got["plain"] != "" || got["long"] != "" {
		t.Fatalf("claimed traces %q, want traced's only", got)
	}
	// A queue that does not keep traces stores none and reads none.
	plain := newQueue(rdb, Options{})
	if err := plain.ScheduleMany(ctx, []Timer{{ID: "untraced", Due: due, Trace: tp}}); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Exists(ctx, plain.shards[plain.shardOf("untraced")].trace+"untraced").Result(); err != nil || n != 0 {
		t.Fatalf("a queue without Traces stored a trace (%d, %v)", n, err)
	}
	if err := q.ScheduleMany(ctx, []Timer{{ID: "traced", Due: due, Trace: tp}}); err != nil {
		t.Fatal(err)
	}
	cs, err = plain.Claim(ctx, time.Now())
	if err != nil || len(cs) != 2 || cs[0].Trace != "" || cs[1].Trace != "" {
		t.Fatalf("claims %+v (%v), want untraced and traced, without their traces", cs, err)
	}
}
