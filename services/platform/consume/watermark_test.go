package consume

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
	"github.com/ticketpulse/ticketpulse/services/platform/watermark"
)

// With a watermark, a replay (here: the watermark emptied, ReplayAll) handles every message
// again without acks; undecodable messages are passed over, and a message that keeps failing
// alone while the store is healthy is passed over after SuspectAfter tries with an error log,
// so the replay ends and the gap closes. Run stops the watermark with the consumer.
func TestWatermarkReplayPassesOverPoison(t *testing.T) {
	js := workStream(t)
	rdb := testenv.Redis(t)
	var logs testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var mu sync.Mutex
	handled := map[string]int{}
	handle := func(_ context.Context, batch []Decoded[string]) error {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range batch {
			if d.Value == "poison" {
				return errors.New("cannot handle poison")
			}
		}
		for _, d := range batch {
			handled[d.Value]++
		}
		return nil
	}
	count := func(v string) int { mu.Lock(); defer mu.Unlock(); return handled[v] }
	ctx, cancel := context.WithCancel(context.Background())
	c := New(js, Config{Service: "test", Stream: "WORK", Durable: "test", Filter: "work.>", BatchMax: 10,
		Linger: time.Millisecond, AckWait: time.Second, SuspectAfter: 3,
		Watermark: &Watermark{Redis: rdb, Meter: noop.NewMeterProvider().Meter("test"), Interval: 50 * time.Millisecond}},
		decode, handle, func(context.Context) error { return nil }, log)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not stop with its watermark")
		}
	}()
	publish(t, js, "acme:a", "acme:poison", "undecodable", "acme:b")
	waitFor(t, "everything acked", func() bool { return pending(t, js) == 4 })
	key := watermark.Key("test", "test")
	waitFor(t, "the watermark at the ack floor", func() bool { return rdb.HGet(context.Background(), key, "w").Val() == "4" })
	if count("a") != 1 || count("b") != 1 {
		t.Fatalf("live: a %d, b %d", count("a"), count("b"))
	}
	if err := rdb.Del(context.Background(), key).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay handled a and b again", func() bool { return count("a") >= 2 && count("b") >= 2 })
	waitFor(t, "the gap closed", func() bool {
		h := rdb.HGetAll(context.Background(), key).Val()
		return h["w"] == "4" && h["gap"] == "0"
	})
	want := `level=ERROR msg="watermark replay: message fails alone while the store is healthy; passed over" durable=test subject=work.x stream_seq=2 err="cannot handle poison"`
	if got := strings.Count(logs.String(), want); got != 1 {
		t.Errorf("%d error lines %q, want 1:\n%s", got, want, logs.String())
	}
}
