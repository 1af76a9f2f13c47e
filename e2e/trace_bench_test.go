package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchTracingEvents is how many events one pipeline run carries: 5 per ticket, 100 a request.
const benchTracingEvents = 10000

// BenchmarkPipelineTracing runs the pipeline (ingest, kpi and escalation as processes, the
// events API in requests of 100 events, 4 at a time) until kpi and escalation acknowledged
// every event, with tracing off (no OTEL_* variable: spans only carry context) and on (every
// span sampled and exported over OTLP/HTTP to a collector stand-in that counts them), in
// alternating rounds. It reports the median throughput of each and their ratio. Run it alone:
//
//	go test -run '^$' -bench PipelineTracing -benchtime 1x ./e2e/
func BenchmarkPipelineTracing(b *testing.B) {
	if testing.Short() {
		b.Skip("starts the pipeline's processes; skipped in -short mode")
	}
	const rounds = 5
	var off, on, offCPU, onCPU []float64
	var exports, bytes int64
	for range b.N {
		for r := range rounds {
			rate, cpu := pipelineRun(b, nil, r)
			off, offCPU = append(off, rate), append(offCPU, cpu)
			c := newOTLPCollector(b, true)
			rate, cpu = pipelineRun(b, c, r)
			on, onCPU = append(on, rate), append(onCPU, cpu)
			exports, bytes = c.exports.Load(), c.bytes.Load()
		}
	}
	median := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	offRate, onRate := median(off), median(on)
	b.ReportMetric(offRate, "events/s-off")
	b.ReportMetric(onRate, "events/s-on")
	b.ReportMetric(onRate/offRate, "on/off")
	b.ReportMetric(median(offCPU), "cpu-ms/1k-events-off")
	b.ReportMetric(median(onCPU), "cpu-ms/1k-events-on")
	b.Logf("tracing off %v events/s, on %v events/s (the last run exported %d batches, %d KiB): throughput on/off = %.3f, cost %.1f %%",
		roundAll(off), roundAll(on), exports, bytes>>10, onRate/offRate, 100*(1-onRate/offRate))
	b.Logf("CPU of the three processes per 1000 events: off %v ms, on %v ms: on/off = %.3f",
		roundAll(offCPU), roundAll(onCPU), median(onCPU)/median(offCPU))
}

// processCPU is the user and system CPU time so far of the running processes started from
// binDir (this test's services), from /proc.
func processCPU(b *testing.B) time.Duration {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	var ticks int64
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", d.Name(), "exe"))
		if err != nil || !strings.HasPrefix(exe, binDir+string(filepath.Separator)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// After the command's closing parenthesis: state is field 3, utime 14 and stime 15.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(fields[11], 10, 64)
		s, _ := strconv.ParseInt(fields[12], 10, 64)
		ticks += u + s
	}
	// USER_HZ is 100 on Linux.
	return time.Duration(ticks) * 10 * time.Millisecond
}

func roundAll(xs []float64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x)
	}
	return out
}

// pipelineRun starts a fresh pipeline (tracing to c when not nil), sends benchTracingEvents
// events and returns events per second from the first request to the last acknowledgement, and
// the CPU milliseconds the pipeline's processes spent per 1000 events meanwhile.
func pipelineRun(b *testing.B, c *otlpCollector, round int) (float64, float64) {
	b.StopTimer()
	var env []string
	if c != nil {
		env = c.env()
	}
	// No rate limit in the way: the pipeline's own pace is measured.
	s := newStackWith(b, map[string]string{"acme": "    rate_limit: {events_per_second: 1000000, burst: 1000000}\n"})
	rules := filepath.Join(b.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(traceRules), 0o600); err != nil {
		b.Fatal(err)
	}
	redisDB := s.redisDB
	common := append([]string{"TICKETPULSE_NATS_URL=" + s.natsURL, "TICKETPULSE_TENANTS_FILE=" + s.tenants.File, "TICKETPULSE_STREAM_REPLICAS=1",
		"TICKETPULSE_RULES_FILE=" + rules}, env...)
	ingest := startIngest(b, s, env...)
	startService(b, "kpi", freeAddr(b), append(common, "TICKETPULSE_REDIS_URL="+redisDB(0), "TICKETPULSE_GRPC_ADDR="+freeAddr(b))...)
	startService(b, "escalation", freeAddr(b), append(common, "TICKETPULSE_REDIS_URL="+redisDB(1), "TICKETPULSE_GRPC_ADDR="+freeAddr(b))...)
	nc, err := nats.Connect(s.natsURL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}

	// Tickets answered in 10 minutes, hours ago: judged, never escalated.
	start := time.Now().UTC().Add(-6 * time.Hour)
	var requests [][]map[string]any
	for i := 0; i < benchTracingEvents/5; i += 20 {
		var evs []map[string]any
		for j := i; j < i+20; j++ {
			evs = append(evs, jsonEvents(fmt.Sprintf("b%d-T%d", round, j), start.Add(time.Duration(j)*time.Second))...)
		}
		requests = append(requests, evs)
	}
	work := make(chan []map[string]any)
	var wg sync.WaitGroup
	b.StartTimer()
	began, cpuBefore := time.Now(), processCPU(b)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for evs := range work {
				if status, body := postAs(b, ingest, "acme", s.tenants.AcmeEvents, evs); status != 202 {
					b.Errorf("POST: %d %s", status, body)
				}
			}
		}()
	}
	for _, r := range requests {
		work <- r
	}
	close(work)
	wg.Wait()
	deadline := time.Now().Add(3 * time.Minute)
	for !ticketsConsumed(b, js) {
		if time.Now().After(deadline) {
			b.Fatal("the pipeline did not consume every event within 3 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	took, cpu := time.Since(began), processCPU(b)-cpuBefore
	b.StopTimer()
	return float64(benchTracingEvents) / took.Seconds(), float64(cpu.Milliseconds()) * 1000 / benchTracingEvents
}
