package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// benchBatches spreads ticket lives over agents and interleaves them the way a busy helpdesk does:
// each batch holds a few events of many tickets.
func benchBatches(n, batch int) [][]Ticket {
	const eventsPerTicket = 5
	tickets := n / eventsPerTicket
	lives := make([][]contrib.Event, tickets)
	for i := range lives {
		id := fmt.Sprintf("T-%d", i)
		lives[i] = life(id, fmt.Sprintf("agent-%d", i%500), fmt.Sprintf("team-%d", i%20), i%(60*24*30))
	}
	var out [][]Ticket
	var cur []Ticket
	size := 0
	// Round-robin over a window of open tickets so one batch touches ~batch distinct tickets.
	for base := 0; base < tickets; base += batch {
		end := min(base+batch, tickets)
		for step := 0; step < eventsPerTicket; step++ {
			for i := base; i < end; i++ {
				cur = append(cur, Ticket{Tenant: "acme", ID: fmt.Sprintf("T-%d", i), Events: lives[i][step : step+1]})
				size++
				if size == batch {
					out = append(out, cur)
					cur, size = nil, 0
				}
			}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// BenchmarkWritePath measures events/s through the whole write path (read, compute, CAS, apply,
// clear) in batches of 500, against a real Redis. It also reports the CPU time each event costs
// in redis-server and in the writer's own process (GC included): on a shared machine those move
// much less with other load than events/s does, and their sum is what the pipeline pays per
// event.
func BenchmarkWritePath(b *testing.B) {
	rdb := testenv.Redis(b)
	ctx := context.Background()
	batches := benchBatches(50_000, 500)
	w := NewWriter(rdb, sla, 0, quiet)
	// As kpi runs by default; TICKETPULSE_BENCH_TICKET_INDEX=1 measures it with -ticket-index.
	w.SetTicketIndex(os.Getenv("TICKETPULSE_BENCH_TICKET_INDEX") == "1")
	cpu := startCPUMeter(b, rdb)
	b.ResetTimer()
	events := 0
	start := time.Now()
	for i := 0; i < b.N; i++ {
		batch := batches[i%len(batches)]
		if i%len(batches) == 0 && i > 0 {
			b.StopTimer()
			rdb.FlushAll(ctx)
			b.StartTimer()
		}
		if _, err := w.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
		events += len(batch)
	}
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
	cpu.report(b, events)
}

// cpuMeter reads the CPU time used so far by redis-server (INFO cpu) and by this process.
type cpuMeter struct {
	rdb          redis.UniversalClient
	redis, local time.Duration
}

func startCPUMeter(b *testing.B, rdb redis.UniversalClient) *cpuMeter {
	m := &cpuMeter{rdb: rdb}
	m.redis, m.local = m.read(b)
	return m
}

func (m *cpuMeter) read(b *testing.B) (redisCPU, local time.Duration) {
	info, err := m.rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatalf("redis INFO cpu: %v", err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "used_cpu_user" && name != "used_cpu_sys") {
			continue
		}
		secs, err := strconv.ParseFloat(value, 64)
		if err != nil {
			b.Fatalf("redis INFO cpu %s=%q: %v", name, value, err)
		}
		redisCPU += time.Duration(secs * float64(time.Second))
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	local = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return redisCPU, local
}

// report adds redis-µs/event and writer-µs/event to the benchmark's figures.
func (m *cpuMeter) report(b *testing.B, events int) {
	if events == 0 {
		return
	}
	r, l := m.read(b)
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(events) }
	b.ReportMetric(per(r-m.redis), "redis-µs/event")
	b.ReportMetric(per(l-m.local), "writer-µs/event")
}

// BenchmarkRollup measures one full rollup pass (day totals of every ended day that got figures,
// week totals of those weeks and of the lookback weeks of every scope) over 50,000 events of 500
// agents in 20 teams spread over 30 days. Each pass starts from the hours alone: the totals of the
// previous pass are deleted and its queues filled again.
func BenchmarkRollup(b *testing.B) {
	rdb := testenv.Redis(b)
	ctx := context.Background()
	w := NewWriter(rdb, sla, 0, quiet)
	for _, batch := range benchBatches(50_000, 500) {
		if _, err := w.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	queues := map[string][]string{}
	for _, key := range []string{bucket.ToPackKey("acme"), bucket.ToSealKey("acme")} {
		queues[key] = rdb.SMembers(ctx, key).Val()
	}
	if _, err := NewRollup(rdb, 0).Pass(ctx); err != nil {
		b.Fatal(err)
	}
	totals := append(rdb.Keys(ctx, "tp:*:dt:*").Val(), rdb.Keys(ctx, "tp:*:wt:*").Val()...)
	if len(totals) == 0 {
		b.Fatal("the rollup derived no totals")
	}
	reset := func() {
		pipe := rdb.Pipeline()
		for _, k := range totals {
			pipe.Del(ctx, k)
		}
		for key, members := range queues {
			for _, m := range members {
				pipe.SAdd(ctx, key, m)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	written := 0
	var took time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reset()
		r := NewRollup(rdb, 0)
		b.StartTimer()
		start := time.Now()
		n, err := r.Pass(ctx)
		took += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		written += n.Days + n.Weeks
	}
	b.ReportMetric(float64(written)/took.Seconds(), "totals/s")
}

// BenchmarkRawLuaScripts is the stack's own limit for comparison: pipelined minimal scripts (one
// HINCRBY on three keys of one slot), 500 per round trip.
func BenchmarkRawLuaScripts(b *testing.B) {
	rdb := testenv.Redis(b)
	ctx := context.Background()
	s := redis.NewScript(`redis.call('HINCRBY', KEYS[1], ARGV[1], 1) redis.call('HINCRBY', KEYS[2], ARGV[1], 1) return redis.call('HINCRBY', KEYS[3], ARGV[1], 1)`)
	if err := s.Load(ctx, rdb).Err(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	scripts := 0
	for i := 0; i < b.N; i++ {
		pipe := rdb.Pipeline()
		for j := 0; j < 500; j++ {
			tag := fmt.Sprintf("{acme:a:agent-%d}", j%500)
			s.EvalSha(ctx, pipe, []string{"tp:" + tag + ":h", "tp:" + tag + ":d", "tp:" + tag + ":w"}, "fc")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		scripts += 500
	}
	b.ReportMetric(float64(scripts)/time.Since(start).Seconds(), "scripts/s")
}
