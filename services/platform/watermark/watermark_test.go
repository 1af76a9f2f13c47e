package watermark_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
	"github.com/ticketpulse/ticketpulse/services/platform/watermark"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

// seen is what the test handler writes: the set of message numbers handled (idempotent).
const seen = "tp:test:seen"

type env struct {
	redis  *testenv.RedisServer
	rdb    *redis.Client
	js     jetstream.JetStream
	logs   *testenv.LogBuffer
	log    *slog.Logger
	reader *sdkmetric.ManualReader
	meter  *sdkmetric.MeterProvider
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s, rdb := testenv.NewRedis(t)
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}}, stream.Deadletter(1))
	e := &env{redis: s, rdb: rdb, js: js, logs: &testenv.LogBuffer{}, reader: sdkmetric.NewManualReader()}
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.meter = sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))
	return e
}

// publish sends messages numbered from..to ("acme:<n>") on work.x, and one on work.other (not
// matched by the durable's filter) every tenth.
func (e *env) publish(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := e.js.Publish(context.Background(), "work.x", []byte("acme:"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if _, err := e.js.Publish(context.Background(), "work.other", []byte("acme:other")); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func decode(m jetstream.Msg) (string, string, error) {
	tenant, v, ok := strings.Cut(string(m.Data()), ":")
	if !ok {
		return "", "", errors.New("no tenant")
	}
	return tenant, v, nil
}

// handle is the consumer's handler: it records each message's number in Redis.
func (e *env) handle(ctx context.Context, batch []consume.Decoded[string]) error {
	members := make([]any, len(batch))
	for i, d := range batch {
		members[i] = d.Value
	}
	return e.rdb.SAdd(ctx, seen, members...).Err()
}

// replay is handle for raw messages, as consume wires it.
func (e *env) replay(ctx context.Context, msgs []jetstream.Msg) error {
	var batch []consume.Decoded[string]
	for _, m := range msgs {
		_, v, err := decode(m)
		if err != nil {
			return err
		}
		batch = append(batch, consume.Decoded[string]{Msg: m, Value: v})
	}
	return e.handle(ctx, batch)
}

// consumeLive runs the durable "test" on work.x through consume until the test ends, with the
// watermark at interval (nil: none).
func (e *env) consumeLive(t *testing.T, wm *consume.Watermark) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := consume.New(e.js, consume.Config{Service: "test", Stream: "WORK", Durable: "test", Filter: "work.x", BatchMax: 20,
		Linger: time.Millisecond, AckWait: 5 * time.Second, SuspectAfter: 3, Watermark: wm}, decode, e.handle,
		func(ctx context.Context) error { return e.rdb.Ping(ctx).Err() }, e.log)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	eventually(t, "the durable", func() bool { _, err := e.info(); return err == nil })
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("consumer did not stop")
		}
	})
}

func (e *env) watcher(t *testing.T, cfg watermark.Config, replay watermark.Replay) *watermark.Watcher {
	t.Helper()
	cfg.Service, cfg.Stream, cfg.Durable, cfg.Filter = "test", "WORK", "test", "work.x"
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour // ticks come from Check
	}
	if replay == nil {
		replay = e.replay
	}
	w, err := watermark.New(e.js, e.rdb, cfg, replay, e.meter.Meter("test"), e.log)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// waitSeen waits until the handler recorded n messages.
func (e *env) waitSeen(t *testing.T, n int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d messages handled", n), func() bool { return e.rdb.SCard(context.Background(), seen).Val() == n })
}

// waitAcked waits until the durable acked every message published.
func (e *env) waitAcked(t *testing.T) {
	t.Helper()
	eventually(t, "every message acked", func() bool {
		info, err := e.info()
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
}

func (e *env) info() (*jetstream.ConsumerInfo, error) {
	c, err := e.js.Consumer(context.Background(), "WORK", "test")
	if err != nil {
		return nil, err
	}
	return c.Info(context.Background())
}

// ackFloor is the durable's ack floor (stream sequence).
func (e *env) ackFloor(t *testing.T) uint64 {
	t.Helper()
	info, err := e.info()
	if err != nil {
		t.Fatal(err)
	}
	return info.AckFloor.Stream
}

// wm is the stored watermark and gap.
func (e *env) wm(t *testing.T) (w, gap uint64) {
	t.Helper()
	h := e.hash(t)
	w, _ = strconv.ParseUint(h["w"], 10, 64)
	gap, _ = strconv.ParseUint(h["gap"], 10, 64)
	return w, gap
}

func (e *env) hash(t *testing.T) map[string]string {
	t.Helper()
	return e.rdb.HGetAll(context.Background(), watermark.Key("test", "test")).Val()
}

// want1toN says the handled set is exactly 1..n.
func (e *env) want1toN(t *testing.T, n int) {
	t.Helper()
	got := e.rdb.SMembers(context.Background(), seen).Val()
	set := map[string]bool{}
	for _, m := range got {
		set[m] = true
	}
	for i := 1; i <= n; i++ {
		if !set[strconv.Itoa(i)] {
			t.Errorf("message %d missing from the state", i)
		}
	}
	if len(got) != n {
		t.Errorf("state has %d members, want %d", len(got), n)
	}
}

// counter is a metric's value for durable "test".
func (e *env) counter(t *testing.T, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			}
			for _, p := range points {
				if v, ok := p.Attributes.Value("durable"); ok && v.AsString() == "test" {
					return p.Value
				}
			}
		}
	}
	return 0
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The scenario through consume: Redis is snapshotted mid-load, loading goes on, Redis
// restarts from the old copy; the next tick notices, and the state equals an undisturbed run.
func TestReplaysWhatRedisLost(t *testing.T) {
	e := newEnv(t)
	e.consumeLive(t, &consume.Watermark{Redis: e.rdb, Meter: e.meter.Meter("test"), Interval: 200 * time.Millisecond})
	e.publish(t, 1, 300)
	e.waitSeen(t, 300)
	e.waitAcked(t)
	floor := e.ackFloor(t)
	eventually(t, "watermark at the ack floor", func() bool { w, _ := e.wm(t); return w >= floor })
	snap := e.redis.Snapshot(t)
	snapW, _ := e.wm(t)
	e.publish(t, 301, 600)
	e.waitSeen(t, 600)
	e.waitAcked(t)
	replaysBefore := e.counter(t, "watermark_replays_total")

	e.redis.RestartFrom(t, snap)
	e.waitSeen(t, 600)
	floor = e.ackFloor(t)
	eventually(t, "the gap closed", func() bool { w, gap := e.wm(t); return gap == 0 && w >= floor })
	e.want1toN(t, 600)

	if got := e.counter(t, "watermark_replays_total"); got != replaysBefore+1 {
		t.Errorf("watermark_replays_total = %d, want %d", got, replaysBefore+1)
	}
	// The restore took back the 300 messages after the snapshot: they were replayed.
	if got := e.counter(t, "watermark_replayed_messages_total"); got < 300 {
		t.Errorf("watermark_replayed_messages_total = %d, want at least the 300 lost", got)
	}
	logs := e.logs.String()
	want := fmt.Sprintf(`level=WARN msg="watermark gap: redis may have lost acknowledged writes; replaying" durable=test from=%d`, snapW+1)
	if !strings.Contains(logs, want) || !strings.Contains(logs, `reason="redis restarted, failed over or went back"`) {
		t.Errorf("no gap warning %q in the log:\n%s", want, logs)
	}
}

// A loss that keeps the last watermark write (the restored copy holds exactly the watermark
// this process stored) is still noticed: Redis's run_id changed.
func TestLossAfterTheLastWatermarkWrite(t *testing.T) {
	e := newEnv(t)
	e.consumeLive(t, nil)
	w := e.watcher(t, watermark.Config{}, nil)
	ctx := context.Background()
	if st, err := w.Check(ctx); err != nil || st.Status != "ok" || st.Watermark != 0 {
		t.Fatalf("first tick on an empty stream: %+v, %v", st, err)
	}
	e.publish(t, 1, 50)
	e.waitSeen(t, 50)
	e.waitAcked(t)
	st, err := w.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Watermark != e.ackFloor(t) || st.Gap != 0 {
		t.Fatalf("first tick left %+v", st)
	}
	snap := e.redis.Snapshot(t)
	e.publish(t, 51, 120)
	e.waitSeen(t, 120)
	e.waitAcked(t)
	e.redis.RestartFrom(t, snap)

	st, err = w.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "drop" || !st.Mine || int64(st.Watermark) != st.Found {
		t.Errorf("tick after the restore: %+v, want a drop from the restored watermark", st)
	}
	e.want1toN(t, 120)
	if w, gap := e.wm(t); gap != 0 || w < st.AckFloor {
		t.Errorf("after the replay w=%d gap=%d, want w >= %d and no gap", w, gap, st.AckFloor)
	}
	// Nothing lost since: the next tick replays nothing.
	before := e.counter(t, "watermark_replays_total")
	if st, err := w.Check(ctx); err != nil || st.Status != "ok" || st.Gap != 0 {
		t.Errorf("quiet tick: %+v, %v", st, err)
	}
	if got := e.counter(t, "watermark_replays_total"); got != before {
		t.Errorf("a quiet tick counted a replay")
	}
}

// The handler's writes are lost with Redis emptied (missing watermark): ReplayAll handles the
// whole stream again, Adopt takes the ack floor, replays nothing and says so.
func TestMissingWatermark(t *testing.T) {
	tests := []struct {
		give       watermark.Policy
		wantSeen   int
		wantStatus string
		wantLog    string
	}{
		{give: watermark.ReplayAll, wantSeen: 80, wantStatus: "missing",
			wantLog: `reason="watermark missing (redis emptied or first start); policy replay-all"`},
		{give: watermark.Adopt, wantSeen: 0, wantStatus: "adopted",
			wantLog: `level=WARN msg="watermark missing; adopted the ack floor, nothing replayed" durable=test policy=adopt ack_floor=`},
	}
	for _, tt := range tests {
		t.Run(tt.give.String(), func(t *testing.T) {
			e := newEnv(t)
			e.consumeLive(t, nil)
			e.publish(t, 1, 80)
			e.waitSeen(t, 80)
			e.waitAcked(t)
			ctx := context.Background()
			if err := e.rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			w := e.watcher(t, watermark.Config{Missing: tt.give, BatchMax: 7}, nil)
			st, err := w.Check(ctx)
			if err != nil {
				t.Fatal(err)
			}
			floor := e.ackFloor(t)
			if st.Status != tt.wantStatus || st.Found != -1 || st.AckFloor != floor || floor < 87 {
				t.Errorf("tick: %+v, want status %s", st, tt.wantStatus)
			}
			if tt.wantSeen == 0 {
				if n := e.rdb.SCard(ctx, seen).Val(); n != 0 {
					t.Errorf("Adopt replayed %d messages", n)
				}
			} else {
				e.want1toN(t, tt.wantSeen)
			}
			if w, gap := e.wm(t); w != floor || gap != 0 {
				t.Errorf("w=%d gap=%d, want w=%d gap=0", w, gap, floor)
			}
			if !strings.Contains(e.logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, e.logs.String())
			}
		})
	}
}

// A replay ends when its context does, and leaves the gap open from the last batch it finished:
// the next process goes on from there.
func TestReplayStopsOnCancel(t *testing.T) {
	e := newEnv(t)
	e.consumeLive(t, nil)
	e.publish(t, 1, 100)
	e.waitSeen(t, 100)
	e.waitAcked(t)
	ctx := context.Background()
	if err := e.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	var batches atomic.Int64
	slow := func(ctx context.Context, msgs []jetstream.Msg) error {
		if batches.Add(1) == 3 {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}
		return e.replay(ctx, msgs)
	}
	w := e.watcher(t, watermark.Config{BatchMax: 10, Lease: 100 * time.Millisecond}, slow)
	start := time.Now()
	_, err := w.Check(cctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Check = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled replay took %s", d)
	}
	floor := e.ackFloor(t)
	if wm, gap := e.wm(t); gap != floor || wm < 20 || wm >= gap {
		t.Errorf("after the cancelled replay w=%d gap=%d, want the gap open up to %d from the 2 batches done", wm, gap, floor)
	}
	if n := e.rdb.SCard(ctx, seen).Val(); n != 20 {
		t.Errorf("%d messages replayed, want the 2 batches before the cancel", n)
	}
	// Another process takes over once the lease lapsed and goes on from w.
	time.Sleep(150 * time.Millisecond)
	var again atomic.Int64
	w2 := e.watcher(t, watermark.Config{}, func(ctx context.Context, msgs []jetstream.Msg) error {
		again.Add(int64(len(msgs)))
		return e.replay(ctx, msgs)
	})
	st, err := w2.Check(ctx)
	if err != nil || !st.Mine {
		t.Fatalf("second process: %+v, %v", st, err)
	}
	e.want1toN(t, 100)
	if _, gap := e.wm(t); gap != 0 {
		t.Errorf("gap %d still open", gap)
	}
	if n := again.Load(); n != 80 {
		t.Errorf("the second process replayed %d messages, want the 80 not done", n)
	}
}

// A failing replay batch is retried until it succeeds, never skipped.
func TestFailingReplayBatchIsRetried(t *testing.T) {
	e := newEnv(t)
	e.consumeLive(t, nil)
	e.publish(t, 1, 40)
	e.waitSeen(t, 40)
	e.waitAcked(t)
	ctx := context.Background()
	if err := e.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	flaky := func(ctx context.Context, msgs []jetstream.Msg) error {
		if n := calls.Add(1); n <= 3 {
			return errors.New("store refused the batch")
		}
		return e.replay(ctx, msgs)
	}
	w := e.watcher(t, watermark.Config{BatchMax: 10}, flaky)
	if _, err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	e.want1toN(t, 40)
	if got := calls.Load(); got != 3+4 {
		t.Errorf("replay called %d times, want 3 failures and 4 batches", got)
	}
	if !strings.Contains(e.logs.String(), `level=WARN msg="watermark replay batch failed; retrying" durable=test first=1 messages=10 attempt=3 err="store refused the batch"`) {
		t.Errorf("no retry warning in the log:\n%s", e.logs.String())
	}
}

// Two replicas sharing a durable: after a loss the first tick records the gap and replays it,
// the other sees no new loss and replays nothing.
func TestReplicasReplayOnce(t *testing.T) {
	e := newEnv(t)
	e.consumeLive(t, nil)
	ctx := context.Background()
	var replayedA, replayedB atomic.Int64
	counting := func(n *atomic.Int64) watermark.Replay {
		return func(ctx context.Context, msgs []jetstream.Msg) error {
			n.Add(int64(len(msgs)))
			return e.replay(ctx, msgs)
		}
	}
	a := e.watcher(t, watermark.Config{}, counting(&replayedA))
	b := e.watcher(t, watermark.Config{}, counting(&replayedB))
	e.publish(t, 1, 30)
	e.waitSeen(t, 30)
	e.waitAcked(t)
	for _, w := range []*watermark.Watcher{a, b} { // their first ticks
		if _, err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	snap := e.redis.Snapshot(t)
	e.publish(t, 31, 70)
	e.waitSeen(t, 70)
	e.waitAcked(t)
	e.redis.RestartFrom(t, snap)
	replayedA.Store(0)
	replayedB.Store(0)
	if st, err := a.Check(ctx); err != nil || st.Status != "drop" {
		t.Fatalf("first replica: %+v, %v", st, err)
	}
	if st, err := b.Check(ctx); err != nil || st.Status != "ok" || st.Mine {
		t.Fatalf("second replica: %+v, %v, want no new loss", st, err)
	}
	e.want1toN(t, 70)
	if replayedA.Load() < 40 || replayedB.Load() != 0 {
		t.Errorf("replayed %d by the first replica and %d by the second, want >= 40 and 0", replayedA.Load(), replayedB.Load())
	}
}

// A Watcher's first tick, Redis being the same run, replays what was delivered since the last
// recorded watermark (a process that stopped may not have recorded it) and logs it at INFO
// without counting a loss.
func TestStartReplaysSinceTheLastWatermark(t *testing.T) {
	e := newEnv(t)
	e.consumeLive(t, nil)
	ctx := context.Background()
	first := e.watcher(t, watermark.Config{}, nil)
	if _, err := first.Check(ctx); err != nil {
		t.Fatal(err)
	}
	e.publish(t, 1, 20)
	e.waitSeen(t, 20)
	e.waitAcked(t)
	if _, err := first.Check(ctx); err != nil {
		t.Fatal(err)
	}
	recorded, _ := e.wm(t)
	e.publish(t, 21, 30)
	e.waitSeen(t, 30)
	e.waitAcked(t)
	// Stands for writes of 21..30 that a restore kept out of sight of the run_id check.
	if err := e.rdb.SRem(ctx, seen, "21", "25", "30").Err(); err != nil {
		t.Fatal(err)
	}
	st, err := e.watcher(t, watermark.Config{}, nil).Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "start" || st.Found != int64(recorded) || st.Gap != e.ackFloor(t) {
		t.Errorf("first tick of a new Watcher: %+v, want a start replay from %d", st, recorded)
	}
	e.want1toN(t, 30)
	if got := e.counter(t, "watermark_replays_total"); got != 0 {
		t.Errorf("watermark_replays_total = %d after a start replay, want 0", got)
	}
	want := fmt.Sprintf(`level=INFO msg="watermark: replaying what was delivered since the last recorded watermark (start)" durable=test from=%d`, recorded+1)
	if !strings.Contains(e.logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, e.logs.String())
	}
}

// A tick that fails (no durable yet, Redis down) is logged when the failures start, not at
// every tick, and the recovery is logged once; Run stops with its context.
func TestRunLogsTickFailuresOnce(t *testing.T) {
	e := newEnv(t)
	w := e.watcher(t, watermark.Config{Interval: 10 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not stop")
		}
	}()
	noDurable := `level=WARN msg="watermark tick" durable=test failed_ticks=1 err="consumer test on WORK: nats: API error: code=404 err_code=10014 description=consumer not found"`
	eventually(t, "the failure logged", func() bool { return strings.Contains(e.logs.String(), noDurable) })
	time.Sleep(200 * time.Millisecond) // many more failed ticks
	if n := strings.Count(e.logs.String(), `msg="watermark tick"`); n != 1 {
		t.Errorf("%d failure lines, want 1:\n%s", n, e.logs.String())
	}
	e.consumeLive(t, nil)
	eventually(t, "the recovery logged", func() bool {
		return strings.Contains(e.logs.String(), `level=INFO msg="watermark ticks again" durable=test failed_ticks=`)
	})
	e.redis.Kill()
	eventually(t, "the Redis failure logged", func() bool {
		return strings.Contains(e.logs.String(), `level=WARN msg="watermark tick" durable=test failed_ticks=1 err="watermark tp:{wm}:test:test: dial tcp `+e.redis.Addr)
	})
	if err := e.redis.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second recovery logged", func() bool {
		return strings.Count(e.logs.String(), `msg="watermark ticks again"`) == 2
	})
}
