package measure

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

func TestSummarise(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // reversed: Summarise must sort
	}
	tests := []struct {
		name string
		give []time.Duration
		want Quantiles
	}{
		{name: "empty", give: nil, want: Quantiles{}},
		{name: "one", give: ms(7), want: Quantiles{N: 1, P50: 7, P90: 7, P99: 7, Max: 7, Mean: 7}},
		{name: "nearest rank", give: ms(1, 2, 3, 4), want: Quantiles{N: 4, P50: 2, P90: 4, P99: 4, Max: 4, Mean: 2.5}},
		{name: "hundred", give: hundred, want: Quantiles{N: 100, P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarise(tt.give); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSlope(t *testing.T) {
	tests := []struct {
		name   string
		xs, ys []float64
		want   float64
	}{
		{name: "flat", xs: []float64{0, 1, 2, 3}, ys: []float64{5, 5, 5, 5}, want: 0},
		{name: "growing", xs: []float64{0, 1, 2, 3}, ys: []float64{0, 100, 200, 300}, want: 100},
		{name: "draining", xs: []float64{0, 1, 2}, ys: []float64{50, 30, 10}, want: -20},
		{name: "too few", xs: []float64{1}, ys: []float64{9}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Slope(tt.xs, tt.ys); math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("got %g, want %g", got, tt.want)
			}
		})
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		give float64
		want string
	}{
		{give: 0, want: "0"},
		{give: 999.4, want: "999"},
		{give: 1000, want: "1,000"},
		{give: 1234567.8, want: "1,234,568"},
		{give: -4200, want: "-4,200"},
		{give: math.NaN(), want: "n/a"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := Count(tt.give); got != tt.want {
				t.Fatalf("Count(%g) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    redisMemory
		wantErr bool
	}{
		{name: "info reply", give: "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nused_memory_dataset:524288\r\n", want: redisMemory{used: 1048576, dataset: 524288}},
		{name: "missing dataset", give: "# Memory\r\nused_memory:10\r\n", wantErr: true},
		{name: "garbled", give: "used_memory:ten\r\nused_memory_dataset:1\r\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMemory(tt.give)
			if (err != nil) != tt.wantErr || !tt.wantErr && got != tt.want {
				t.Fatalf("got %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestPosterRetries runs the poster against an HTTP server answering as ingest's contract says:
// 503 when JetStream did not store the batch (retry), 400 for a rejected batch (stop).
func TestPosterRetries(t *testing.T) {
	tests := []struct {
		name        string
		give        []int
		wantRetries int
		wantCode    int
	}{
		{name: "accepted at once", give: []int{202}, wantRetries: 0},
		{name: "503 then accepted", give: []int{503, 503, 202}, wantRetries: 2},
		{name: "429 then accepted", give: []int{429, 202}, wantRetries: 1},
		{name: "rejected", give: []int{400}, wantRetries: 0, wantCode: 400},
		{name: "unknown tenant", give: []int{503, 404}, wantRetries: 1, wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/tenants/acme/events" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Test") != "yes" ||
					r.Header.Get("Authorization") != "Bearer tpk_test" {
					t.Errorf("request %s %s %v", r.Method, r.URL.Path, r.Header)
				}
				code := tt.give[min(int(n.Add(1))-1, len(tt.give)-1)]
				w.WriteHeader(code)
				_, _ = w.Write([]byte(`{"error":"x"}`))
			}))
			defer srv.Close()
			p := newPoster(srv.URL, "acme", "tpk_test", http.Header{"X-Test": {"yes"}}, 1)
			defer p.close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			retries, err := p.post(ctx, []byte(`[]`))
			var se *StatusError
			gotCode := 0
			if errors.As(err, &se) {
				gotCode = se.Code
			} else if err != nil {
				t.Fatalf("post: %v", err)
			}
			if retries != tt.wantRetries || gotCode != tt.wantCode || permanent(err) != (tt.wantCode != 0) {
				t.Fatalf("retries %d, code %d (err %v); want %d, %d", retries, gotCode, err, tt.wantRetries, tt.wantCode)
			}
		})
	}
}

func TestJetStreamRaw(t *testing.T) {
	_, url := testenv.NATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	r, err := JetStreamRaw(ctx, nc, 3000, 250, 500, 5*time.Second)
	if err != nil {
		t.Fatalf("JetStreamRaw: %v", err)
	}
	if r.Ops != 3000 || r.PerSec <= 0 {
		t.Fatalf("rate %+v: want all 3000 acknowledged", r)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(ctx, RawStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("scratch stream left behind: %v", err)
	}
}

func TestRedisRaw(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	r, err := RedisRaw(ctx, rdb, 2, 50, 10, 300*time.Millisecond)
	if err != nil {
		t.Fatalf("RedisRaw: %v", err)
	}
	if r.Ops < 100 || r.Ops%50 != 0 {
		t.Fatalf("rate %+v: want whole pipelines of 50, at least two", r)
	}
	keys, err := rdb.Keys(ctx, RedisRawPrefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Fatalf("scratch keys left behind: %v %v", keys, err)
	}
}

func TestMarkdown(t *testing.T) {
	mk := func(label string, visible float64, drained bool) *Result {
		return &Result{
			Label:     label,
			Settings:  Settings{Agents: 500, Teams: 25, Events: 300000, Batch: 100, Posters: 8, Rate: 2000, RateSeconds: 20, ProbeRate: 5, ListPageSize: 500},
			JetStream: &Rate{PerSec: 100000},
			Redis:     &Rate{PerSec: 200000},
			Pipeline:  &Pipeline{VisibleRate: visible, IngestRate: 20000, Drained: drained, Post: Quantiles{N: 1, P50: 5, P99: 40}},
			Latency:   &Latency{AchievedRate: 1999, Probes: 100, Visible: Quantiles{N: 100, P50: 35, P99: 120}},
			Queries:   []Query{{Name: "GetAgentKpis 24h", Latency: Quantiles{N: 3, P50: 0.8, P99: 2}}},
			Memory:    &Memory{BytesPerEvent: 312, StreamPerMsg: 290},
		}
	}
	md := Markdown([]*Result{mk("sync 2m", 12000, true), mk("sync always", 3000, false)})
	for _, want := range []string{
		"| figure | sync 2m | sync always |",
		"| **pipeline, POST → KPI-visible (events/s)** | **12,000** | **3,000** (not drained: lower bound) |",
		"| pipeline ÷ raw JetStream publish | 0.120 | 0.030 |",
		"| pipeline ÷ raw Redis scripts | 0.060 | 0.015 |",
		"| **POST → KPI readable over gRPC at 2,000 events/s, p50 / p99 (ms)** | **35.0 / 120** | **35.0 / 120** |",
		"| GetAgentKpis 24h, p50 / p99 (ms) | 0.80 / 2.00 | 0.80 / 2.00 |",
		"| GetAgentKpis 30d, p50 / p99 (ms) | n/a | n/a |",
		"| Redis memory per stored event (used_memory, bytes) | 312 | 312 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}

func TestLagSummary(t *testing.T) {
	series := func(lags ...int64) []LagSample {
		out := make([]LagSample, len(lags))
		for i, l := range lags {
			out[i] = LagSample{At: float64(i), Lag: l}
		}
		return out
	}
	tests := []struct {
		name      string
		give      []LagSample
		rate      float64
		wantMax   int64
		wantTrend string
		wantKept  bool
	}{
		{name: "steady small backlog", give: series(0, 40, 60, 50, 45, 55), rate: 2000, wantMax: 60, wantTrend: "+8/s", wantKept: true},
		{name: "growing backlog", give: series(0, 500, 1000, 1500, 2000), rate: 2000, wantMax: 2000, wantTrend: "+500/s", wantKept: false},
		{name: "spike over two seconds of input", give: series(0, 4500, 0, 0), rate: 2000, wantMax: 4500, wantTrend: "-450/s", wantKept: false},
		{name: "too short for a trend", give: series(0, 30), rate: 2000, wantMax: 30, wantTrend: "n/a (phase too short)", wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := summariseLag(tt.give, 0, float64(len(tt.give)))
			kept, why := l.KeptUp(tt.rate)
			if l.Max != tt.wantMax || l.TrendString() != tt.wantTrend || kept != tt.wantKept {
				t.Fatalf("max %d trend %s kept %v (%s); want %d %s %v", l.Max, l.TrendString(), kept, why, tt.wantMax, tt.wantTrend, tt.wantKept)
			}
		})
	}
}

func TestWaitRollup(t *testing.T) {
	rdb := testenv.RedisSingle(t)
	ctx := context.Background()
	e := &env{cfg: Config{Tenant: "acme"}, rdb: rdb}
	today := time.Now().UTC().Unix() / 86400
	key := toPackKey("acme")
	if err := rdb.SAdd(ctx, key, today, today-1).Err(); err != nil {
		t.Fatal(err)
	}
	// The current week, month and year wait for their end too and count as settled.
	now := time.Now().UTC()
	thisYear := int64(now.Year() - 1970)
	for k, v := range map[string]int64{
		toSealKey("acme"):  (today + 3) / 7,
		toMonthKey("acme"): thisYear*12 + int64(now.Month()-1),
		toYearKey("acme"):  thisYear,
	} {
		if err := rdb.SAdd(ctx, k, v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.waitRollup(ctx, 100*time.Millisecond, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "1 ended days, weeks, months or years") {
		t.Fatalf("err = %v, want one ended day still queued", err)
	}
	// An ended year is waited for like an ended day.
	if err := rdb.SAdd(ctx, toYearKey("acme"), thisYear-1).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.waitRollup(ctx, 100*time.Millisecond, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "2 ended days, weeks, months or years") {
		t.Fatalf("err = %v, want an ended day and an ended year still queued", err)
	}
	// The rollup takes yesterday and last year off; today stays queued until it ends, and that
	// is settled.
	go func() {
		time.Sleep(300 * time.Millisecond)
		rdb.SRem(ctx, key, today-1)
		rdb.SRem(ctx, toYearKey("acme"), thisYear-1)
	}()
	if took, err := e.waitRollup(ctx, 100*time.Millisecond, 5*time.Second); err != nil || took < 250*time.Millisecond {
		t.Fatalf("waitRollup = %v, %v; want it to wait for yesterday to be rolled up", took, err)
	}
}

func TestMarkdownOverload(t *testing.T) {
	mk := func(label string, o *Overload) *Result {
		return &Result{Label: label, Settings: Settings{Batch: 100}, JetStream: &Rate{PerSec: 100000}, Overload: o}
	}
	ok := &Overload{Bound: 20000, Requests: 1000, TooMany: 150, Unavailable: 50, AcceptedEvents: 80000, StoredEvents: 80000,
		AcceptedRate: 25000, Drained: true, Lag: LagSummary{Max: 15000}, MaxRatio: 0.75}
	lost := &Overload{Bound: 20000, Requests: 10, AcceptedEvents: 900, StoredEvents: 1000, Drained: true, Lag: LagSummary{Max: 30000}, MaxRatio: 1.5}
	md := Markdown([]*Result{mk("bounded", ok), mk("broken", lost), mk("none", nil)})
	for _, want := range []string{
		"| **overload: kpi backlog max ÷ ingest's -max-backlog** | **0.750** (15,000 of 20,000) | **1.500** (30,000 of 20,000) | n/a |",
		"| overload: requests answered 429 / 503 (share refused) | 150 / 50 of 1,000 (0.200) | 0 / 0 of 10 (0.000) | n/a |",
		"| overload: accepted rate (events/s) | 25,000 (0.250 × raw JetStream) |",
		"| overload: accepted events stored once and processed by kpi | yes (80,000 accepted, 80,000 stored) | NO (900 accepted, 1,000 stored) | n/a |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}
