package timers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// benchID is the shape of the service's ids: tenant, kind and ticket, unit-separated.
func benchID(i int) string { return fmt.Sprintf("acme\x1fticket\x1f%08d", i) }

func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}

type scheduleStats struct {
	bytes    float64       // Redis used_memory growth per pending timer
	perTimer time.Duration // ScheduleMany time per timer, in batches of 100
}

// scheduleMeasured schedules n timers due evenly over [from, from+spread) and measures their cost.
func scheduleMeasured(ctx context.Context, rdb *redis.Client, q *Queue, n int, from time.Time, spread time.Duration) (scheduleStats, error) {
	ts := make([]Timer, n)
	for i := range ts {
		ts[i] = Timer{ID: benchID(i), Due: from.Add(spread * time.Duration(i) / time.Duration(n))}
	}
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return scheduleStats{}, err
	}
	start := time.Now()
	for i := 0; i < n; i += 100 {
		if err := q.ScheduleMany(ctx, ts[i:min(i+100, n)]); err != nil {
			return scheduleStats{}, err
		}
	}
	took := time.Since(start)
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return scheduleStats{}, err
	}
	return scheduleStats{bytes: float64(after-before) / float64(n), perTimer: took / time.Duration(n)}, nil
}

// BenchmarkSchedule measures scheduling in ScheduleMany batches of 100; one op is one timer.
func BenchmarkSchedule(b *testing.B) {
	rdb := testenv.RedisSingle(b)
	ctx := context.Background()
	q := newQueue(rdb, Options{})
	ts := make([]Timer, b.N)
	due := time.Now().Add(time.Hour)
	for i := range ts {
		ts[i] = Timer{ID: benchID(i), Due: due.Add(time.Duration(i) * time.Millisecond)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		if err := q.ScheduleMany(ctx, ts[i:min(i+100, b.N)]); err != nil {
			b.Fatal(err)
		}
	}
}

// fireLog records every fire of a benchmark's replicas.
type fireLog struct {
	mu     sync.Mutex
	count  map[string]int
	delays []time.Duration
	last   time.Time
}

func newFireLog(n int) *fireLog {
	return &fireLog{count: make(map[string]int, n), delays: make([]time.Duration, 0, n)}
}

func (f *fireLog) handle(_ context.Context, cs []Claimed) []error {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		f.count[c.ID]++
		f.delays = append(f.delays, now.Sub(c.Due))
	}
	f.last = now
	return nil
}

func (f *fireLog) fired() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.delays)
}

// check fails unless each of the n ids fired exactly once.
func (f *fireLog) check(b *testing.B, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.count) != n || len(f.delays) != n {
		b.Fatalf("%d distinct ids fired %d times, want %d exactly once", len(f.count), len(f.delays), n)
	}
	for id, c := range f.count {
		if c != 1 {
			b.Fatalf("%q fired %d times", id, c)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// twoReplicas runs two queues, each on its own client as two processes would, until stop.
func twoReplicas(b *testing.B, addr string, h func(context.Context, []Claimed) []error) (stop func()) {
	var stops []func()
	for range 2 {
		c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
		b.Cleanup(func() { c.Close() })
		stops = append(stops, runReplica(b, newQueue(c, Options{}), 50*time.Millisecond, nil, h))
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// BenchmarkFiring100k schedules 100,000 timers due evenly over 20 s and fires them with two
// replicas polling every 50 ms. It runs once whatever b.N (about 23 s): the figures are the
// firing delay (handle time - due time), Redis memory per pending timer, and schedule cost.
func BenchmarkFiring100k(b *testing.B) {
	srv, err := testenv.StartRedis(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Kill)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, DisableIdentity: true})
	b.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	const n = 100_000
	from := time.Now().Add(2 * time.Second)
	st, err := scheduleMeasured(ctx, rdb, newQueue(rdb, Options{}), n, from, 20*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	if time.Now().After(from) {
		b.Fatal("scheduling took longer than the 2 s head start; the delays would be meaningless")
	}
	log := newFireLog(n)
	stop := twoReplicas(b, srv.Addr, log.handle)
	deadline := from.Add(30 * time.Second)
	for log.fired() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show up
	stop()
	log.check(b, n)
	d := slices.Clone(log.delays)
	slices.Sort(d)
	b.ReportMetric(ms(d[len(d)/2]), "p50-ms")
	b.ReportMetric(ms(d[len(d)*99/100]), "p99-ms")
	b.ReportMetric(ms(d[len(d)-1]), "max-ms")
	b.ReportMetric(st.bytes, "B/timer")
	b.ReportMetric(float64(st.perTimer.Nanoseconds()), "sched-ns/timer")
}

// BenchmarkBurst10k fires 10,000 timers all due at the same instant with two replicas; it
// reports how long after that instant the last one fired, and fails unless each fired once.
func BenchmarkBurst10k(b *testing.B) {
	rdb := testenv.RedisSingle(b)
	ctx := context.Background()
	const n = 10_000
	due := time.Now().Truncate(time.Second).Add(2 * time.Second)
	ts := make([]Timer, n)
	for i := range ts {
		ts[i] = Timer{ID: benchID(i), Due: due}
	}
	if err := newQueue(rdb, Options{}).ScheduleMany(ctx, ts); err != nil {
		b.Fatal(err)
	}
	log := newFireLog(n)
	stop := twoReplicas(b, rdb.Options().Addr, log.handle)
	for log.fired() < n && time.Now().Before(due.Add(10*time.Second)) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	stop()
	log.check(b, n)
	b.ReportMetric(ms(log.last.Sub(due)), "ms-to-last-fire")
}
