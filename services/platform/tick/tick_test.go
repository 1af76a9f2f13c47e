package tick

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestEveryWaitsAnIntervalAndStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- Every(ctx, 20*time.Millisecond, func(context.Context) {
			if calls.Add(1) == 3 {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Every = %v; want nil after the context ended", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("f ran %d times; want 3 (none after the cancel)", n)
	}
}

func TestEveryDoesNotCallBeforeTheFirstTick(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	if err := Every(ctx, time.Hour, func(context.Context) { called = true }); err != nil || called {
		t.Fatalf("Every on an ended context = %v, called %v; want nil, false", err, called)
	}
}

func TestNowAndEveryCallsAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls int
	err := NowAndEvery(ctx, time.Hour, func(context.Context) {
		calls++
		cancel()
	})
	if err != nil || calls != 1 {
		t.Fatalf("NowAndEvery = %v after %d calls; want nil after 1", err, calls)
	}
}
