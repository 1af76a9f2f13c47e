package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// compactionBenchEvents is the size of BenchmarkBytesPerEventWithCompaction: 1 M events, or
// TICKETPULSE_BENCH_COMPACTION_EVENTS for a quicker run.
func compactionBenchEvents(b *testing.B) int {
	n := 1_000_000
	if v := os.Getenv("TICKETPULSE_BENCH_COMPACTION_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("TICKETPULSE_BENCH_COMPACTION_EVENTS=%q: want a count of at least 1000", v)
		}
	}
	return n
}

// BenchmarkBytesPerEventWithCompaction measures Redis memory (used_memory) per stored event for
// the load generator's traffic of 28 days (500 agents in 25 teams), arriving live: in time order,
// in batches of 500, the write path's clock following the events, the rollup run every simulated
// hour. It runs the same traffic twice, without compaction and with it (7 days quiet, a pass
// every simulated hour), and reports both. Version marks older than two days are deleted before
// measuring, as their expiry would have in real time.
func BenchmarkBytesPerEventWithCompaction(b *testing.B) {
	rdb := testenv.Redis(b)
	n := compactionBenchEvents(b)
	end := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	g := newSimTraffic(1, 500, 25, n, end, 28*24*time.Hour)
	order := g.arrivals()
	b.ResetTimer()
	for range b.N {
		off := simulate(b, rdb, g, order, 0)
		on := simulate(b, rdb, g, order, 7*24*time.Hour)
		b.ReportMetric(off.perEvent, "B/event-compaction-off")
		b.ReportMetric(on.perEvent, "B/event-compaction-on")
		b.ReportMetric(float64(on.compacted)/float64(len(g.tickets))*100, "%tickets-compacted")
		b.ReportMetric(float64(on.tooLate), "events-too-late")
		b.Logf("%d events, %d tickets: %.1f B/event without compaction, %.1f with (%d tickets compacted, %d events too late)",
			g.events, len(g.tickets), off.perEvent, on.perEvent, on.compacted, on.tooLate)
	}
}

type simResult struct {
	perEvent           float64
	compacted, tooLate int
}

// simulate runs the traffic as kpi runs by default: without the drill-down index (-ticket-index).
func simulate(b *testing.B, rdb redis.UniversalClient, g *simTraffic, order []arrival, after time.Duration) simResult {
	return simulateIndex(b, rdb, g, order, after, false)
}

// BenchmarkTicketIndexBytes measures what the drill-down index (the per-scope index hashes, each
// ticket's row and the index cells of its applied contribution) costs in Redis: the traffic of
// BenchmarkBytesPerEventWithCompaction (its size, TICKETPULSE_BENCH_COMPACTION_EVENTS), with
// compaction after 7 days, run without the index and with it, the difference per ticket.
func BenchmarkTicketIndexBytes(b *testing.B) {
	rdb := testenv.Redis(b)
	n := compactionBenchEvents(b)
	end := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	g := newSimTraffic(1, 500, 25, n, end, 28*24*time.Hour)
	order := g.arrivals()
	b.ResetTimer()
	for range b.N {
		off := simulateIndex(b, rdb, g, order, 7*24*time.Hour, false)
		on := simulateIndex(b, rdb, g, order, 7*24*time.Hour, true)
		perTicket := (on.perEvent - off.perEvent) * float64(g.events) / float64(len(g.tickets))
		b.ReportMetric(off.perEvent, "B/event-index-off")
		b.ReportMetric(on.perEvent, "B/event-index-on")
		b.ReportMetric(perTicket, "index-B/ticket")
		b.Logf("%d events, %d tickets: %.1f B/event without the index, %.1f with: %.1f B per ticket",
			g.events, len(g.tickets), off.perEvent, on.perEvent, perTicket)
	}
}

func simulateIndex(b *testing.B, rdb redis.UniversalClient, g *simTraffic, order []arrival, after time.Duration, index bool) simResult {
	ctx := context.Background()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	before := usedMemory(b, rdb)
	clock := &simClock{t: time.UnixMilli(order[0].at)}
	w := NewWriter(rdb, sla, 0, quiet)
	w.SetTicketIndex(index)
	w.SetClock(clock.now)
	w.SetFileResolved(after > 0)
	r := NewRollup(rdb, 0)
	r.now = clock.now
	c := NewCompactor(rdb, w, after, 1000, quiet)
	c.SetClock(clock.now)
	var res simResult
	lastHour := clock.now().Unix() / 3600
	housekeeping := func() {
		if _, err := r.Pass(ctx); err != nil {
			b.Fatal(err)
		}
		for after > 0 {
			n, err := c.Pass(ctx)
			if err != nil {
				b.Fatal(err)
			}
			res.compacted += n.Compacted
			if !n.More {
				break
			}
		}
	}
	const batch = 500
	for start := 0; start < len(order); start += batch {
		part := order[start:min(start+batch, len(order))]
		index := map[int32]int{}
		var tickets []Ticket
		for _, a := range part {
			i, ok := index[a.ticket]
			if !ok {
				i = len(tickets)
				index[a.ticket] = i
				tickets = append(tickets, Ticket{Tenant: "acme", ID: g.tickets[a.ticket].id})
			}
			t := &g.tickets[a.ticket]
			tickets[i].Events = append(tickets[i].Events, t.events[a.event])
			tickets[i].IDs = append(tickets[i].IDs, t.ids[a.event])
		}
		clock.mu.Lock()
		clock.t = time.UnixMilli(part[len(part)-1].at).Add(time.Second)
		clock.mu.Unlock()
		out, err := w.Write(ctx, tickets)
		if err != nil {
			b.Fatal(err)
		}
		res.tooLate += out.TooLate
		if h := clock.now().Unix() / 3600; h != lastHour {
			lastHour = h
			housekeeping()
		}
	}
	housekeeping()
	today := clock.now().Unix() / 86400
	marks, err := rdb.Keys(ctx, "tp:*:m:*").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range marks {
		day, err := strconv.ParseInt(k[strings.LastIndex(k, ":")+1:], 10, 64)
		if err == nil && day < today-1 {
			rdb.Del(ctx, k)
		}
	}
	res.perEvent = float64(usedMemory(b, rdb)-before) / float64(g.events)
	memoryBreakdown(b, rdb, fmt.Sprintf("compaction after %s", after), g.events)
	return res
}

func usedMemory(b *testing.B, rdb redis.UniversalClient) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}
