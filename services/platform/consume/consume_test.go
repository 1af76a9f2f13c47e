package consume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// decode takes "<tenant>:<value>"; anything else is undecodable.
func decode(m jetstream.Msg) (string, string, error) {
	tenant, v, ok := strings.Cut(string(m.Data()), ":")
	if !ok {
		return "", "", errors.New("no tenant")
	}
	return tenant, v, nil
}

type run struct {
	js     jetstream.JetStream
	cancel context.CancelFunc
	done   chan error
	dead   atomic.Int64
}

func start(t *testing.T, js jetstream.JetStream, handle Handler[string], healthy func(context.Context) error) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{js: js, cancel: cancel, done: make(chan error, 1)}
	c := New(js, Config{Service: "test", Stream: "WORK", Durable: "test", Filter: "work.>", BatchMax: 10,
		Linger: time.Millisecond, AckWait: time.Second, SuspectAfter: 3}, decode, handle, healthy, quiet)
	c.OnDeadLetter = func() { r.dead.Add(1) }
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

func workStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, url := testenv.NATS(t)
	return testenv.JetStream(t, url, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}}, stream.Deadletter(1))
}

func publish(t *testing.T, js jetstream.JetStream, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if _, err := js.Publish(context.Background(), "work.x", []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func pending(t *testing.T, js jetstream.JetStream) (acked uint64) {
	t.Helper()
	c, err := js.Consumer(context.Background(), "WORK", "test")
	if err != nil {
		return 0
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.AckFloor.Stream
}

// A poison message is isolated and dead-lettered with its reason once it has failed alone
// SuspectAfter times while the store is healthy; the others are handled and acked.
func TestPoisonIsIsolated(t *testing.T) {
	js := workStream(t)
	var mu sync.Mutex
	handled := map[string]int{}
	r := start(t, js, func(_ context.Context, batch []Decoded[string]) error {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range batch {
			if d.Value == "poison" {
				return errors.New("cannot handle poison")
			}
		}
		for _, d := range batch {
			handled[d.Tenant+":"+d.Value]++
		}
		return nil
	}, func(context.Context) error { return nil })
	publish(t, js, "acme:a", "acme:poison", "acme:b", "undecodable", "acme:c")
	waitFor(t, "every good message handled and both bad ones dead-lettered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled["acme:a"] > 0 && handled["acme:b"] > 0 && handled["acme:c"] > 0 && r.dead.Load() == 2
	})
	waitFor(t, "everything acked", func() bool { return pending(t, js) == 5 })
	dl, err := js.Stream(context.Background(), stream.DeadletterName)
	if err != nil {
		t.Fatal(err)
	}
	for subject, reason := range map[string]string{"deadletter.test.acme": "handling failed", "deadletter.test.unknown": "undecodable"} {
		m, err := dl.GetLastMsgForSubject(context.Background(), subject)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		if m.Header.Get("Ticketpulse-Reason") != reason || m.Header.Get("Ticketpulse-Subject") != "work.x" || m.Header.Get("Ticketpulse-Error") == "" {
			t.Errorf("%s headers %v", subject, m.Header)
		}
	}
}

// While the store is down nothing is acked or dead-lettered; it is all handled once it is back.
func TestOutageRedeliversEverything(t *testing.T) {
	js := workStream(t)
	var down atomic.Bool
	down.Store(true)
	var handled atomic.Int64
	r := start(t, js, func(_ context.Context, batch []Decoded[string]) error {
		if down.Load() {
			return errors.New("store unreachable")
		}
		handled.Add(int64(len(batch)))
		return nil
	}, func(context.Context) error {
		if down.Load() {
			return errors.New("store unreachable")
		}
		return nil
	})
	publish(t, js, "acme:1", "acme:2", "acme:3")
	time.Sleep(4 * time.Second) // several redeliveries, beyond SuspectAfter
	if handled.Load() != 0 || r.dead.Load() != 0 || pending(t, js) != 0 {
		t.Fatalf("during the outage: handled %d, dead-lettered %d, acked to %d", handled.Load(), r.dead.Load(), pending(t, js))
	}
	down.Store(false)
	waitFor(t, "all three handled", func() bool { return handled.Load() == 3 && pending(t, js) == 3 })
	if r.dead.Load() != 0 {
		t.Errorf("%d dead-lettered after the outage", r.dead.Load())
	}
}

// A batch in hand when the service stops is finished and acked, not abandoned.
func TestStopFinishesTheBatchInHand(t *testing.T) {
	js := workStream(t)
	started := make(chan struct{})
	var finished atomic.Bool
	r := start(t, js, func(ctx context.Context, batch []Decoded[string]) error {
		close(started)
		time.Sleep(300 * time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		finished.Store(true)
		return nil
	}, func(context.Context) error { return nil })
	publish(t, js, "acme:1")
	<-started
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.done <- nil // for the cleanup
	if !finished.Load() || pending(t, js) != 1 {
		t.Errorf("stopped mid-batch: finished %v, acked to %d", finished.Load(), pending(t, js))
	}
}

// StartNew skips what a new durable would otherwise replay; an existing durable keeps its place.
func TestStartNew(t *testing.T) {
	js := workStream(t)
	publish(t, js, "acme:old-1", "acme:old-2")
	var mu sync.Mutex
	var seen []string
	handle := func(_ context.Context, batch []Decoded[string]) error {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range batch {
			seen = append(seen, d.Value)
		}
		return nil
	}
	runOnce := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		c := New(js, Config{Service: "test", Stream: "WORK", Durable: "test", Filter: "work.>", BatchMax: 10,
			Linger: time.Millisecond, AckWait: time.Second, StartNew: true}, decode, handle, func(context.Context) error { return nil }, quiet)
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	stop := runOnce()
	waitFor(t, "the consumer", func() bool { _, err := js.Consumer(context.Background(), "WORK", "test"); return err == nil })
	publish(t, js, "acme:new-1")
	waitFor(t, "new-1", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 1 })
	stop()
	// Stopped: what arrives meanwhile is handled when it comes back, StartNew or not.
	publish(t, js, "acme:while-down")
	stop = runOnce()
	defer stop()
	waitFor(t, "while-down", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if seen[0] != "new-1" || seen[1] != "while-down" {
		t.Errorf("handled %v, want new-1 then while-down (the old ones skipped)", seen)
	}
}

// On a cluster, a StartNew durable that changes leader before it delivered anything still
// starts where it was created: what was stored in between is handled, not skipped (a DeliverNew
// consumer's new leader would start after it).
func TestStartNewSurvivesLeaderChange(t *testing.T) {
	c := testenv.NATSCluster(t, 3)
	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js := testenv.JetStream(t, c.URL(), jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}, Replicas: 3}, stream.Deadletter(3))
	// A stream just created answers publishes once it has a leader.
	if _, err := c.WaitStreamLeader("WORK", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "acme:old-1")
	var mu sync.Mutex
	var seen []string
	handle := func(_ context.Context, batch []Decoded[string]) error {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range batch {
			seen = append(seen, d.Value)
		}
		return nil
	}
	cfg := Config{Service: "test", Stream: "WORK", Durable: "test", Filter: "work.>", BatchMax: 10,
		Linger: time.Millisecond, AckWait: time.Second, StartNew: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- New(js, cfg, decode, handle, func(context.Context) error { return nil }, quiet).Run(ctx)
	}()
	waitFor(t, "the consumer", func() bool { _, err := js.Consumer(context.Background(), "WORK", "test"); return err == nil })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Stored while no replica pulls, then the consumer's leader steps down before its first delivery.
	publish(t, js, "acme:new-1")
	cons, err := js.Consumer(context.Background(), "WORK", "test")
	if err != nil {
		t.Fatal(err)
	}
	var old string
	waitFor(t, "the consumer's leader", func() bool {
		info, err := cons.Info(context.Background())
		if err == nil && info.Cluster != nil {
			old = info.Cluster.Leader
		}
		return old != ""
	})
	if _, err := nc.Request("$JS.API.CONSUMER.LEADER.STEPDOWN.WORK.test", nil, 5*time.Second); err != nil {
		t.Fatalf("step down: %v", err)
	}
	waitFor(t, "a new consumer leader", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != old
	})
	ctx, cancel = context.WithCancel(context.Background())
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	go func() {
		done <- New(js, cfg, decode, handle, func(context.Context) error { return nil }, quiet).Run(ctx)
	}()
	waitFor(t, "new-1", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 1 })
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "new-1" {
		t.Errorf("handled %v, want only new-1", seen)
	}
}

// A poison message that arrives alone is dead-lettered too, once it has been delivered
// SuspectAfter times: being the only message of its batch does not keep it redelivered forever.
func TestLonePoisonIsDeadLettered(t *testing.T) {
	js := workStream(t)
	var attempts atomic.Int64
	r := start(t, js, func(_ context.Context, batch []Decoded[string]) error {
		attempts.Add(1)
		return errors.New("cannot handle poison")
	}, func(context.Context) error { return nil })
	publish(t, js, "acme:poison")
	waitFor(t, "the lone poison message dead-lettered", func() bool { return r.dead.Load() == 1 })
	waitFor(t, "it to be settled", func() bool { return pending(t, js) == 1 })
	if n := attempts.Load(); n < 3 {
		t.Errorf("dead-lettered after %d attempts; want at least SuspectAfter (3)", n)
	}
}

// A dependency that answers but cannot serve now (a timeout, Redis loading its data, a lost
// script cache) never dead-letters a message, however often it is delivered while the store's
// health check passes; once the dependency serves again the message is handled once.
func TestTransientFailuresAreNeverDeadLettered(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"deadline", fmt.Errorf("write batch: %w", context.DeadlineExceeded)},
		{"redis loading", fmt.Errorf("cas: %w", redisReply("LOADING Redis is loading the dataset in memory"))},
		{"noscript in a joined error", errors.Join(errors.New("apply"), redisReply("NOSCRIPT No matching script"))},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js := workStream(t)
			var failing atomic.Bool
			failing.Store(true)
			var handled atomic.Int64
			r := start(t, js, func(_ context.Context, batch []Decoded[string]) error {
				if failing.Load() {
					return tt.err
				}
				handled.Add(int64(len(batch)))
				return nil
			}, func(context.Context) error { return nil })
			publish(t, js, "acme:1", "acme:2")
			time.Sleep(4 * time.Second) // deliveries beyond SuspectAfter, health check passing
			if r.dead.Load() != 0 || handled.Load() != 0 {
				t.Fatalf("while failing with %v: dead-lettered %d, handled %d", tt.err, r.dead.Load(), handled.Load())
			}
			failing.Store(false)
			waitFor(t, "both handled once the dependency serves", func() bool { return handled.Load() == 2 && pending(t, js) == 2 })
			if r.dead.Load() != 0 {
				t.Errorf("%d dead-lettered", r.dead.Load())
			}
		})
	}
}

// redisReply is an error reply as go-redis returns it from a server.
type redisReply string

func (e redisReply) Error() string { return string(e) }
func (redisReply) RedisError()     {}

func TestTransient(t *testing.T) {
	tests := []struct {
		name string
		give error
		want bool
	}{
		{"nil", nil, false},
		{"a handler's own error", errors.New("cannot handle poison"), false},
		{"a script error", redisReply("ERR user_script:1: attempt to compare nil with number"), false},
		{"wrong type", redisReply("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{"deadline", context.DeadlineExceeded, true},
		{"wrapped cancel", fmt.Errorf("batch: %w", context.Canceled), true},
		{"loading", redisReply("LOADING Redis is loading the dataset in memory"), true},
		{"busy script", fmt.Errorf("eval: %w", redisReply("BUSY Redis is busy running a script")), true},
		{"readonly replica", redisReply("READONLY You can't write against a read only replica."), true},
		{"noscript joined", errors.Join(errors.New("x"), redisReply("NOSCRIPT No matching script")), true},
		{"text that only mentions LOADING", errors.New("LOADING is a word here"), false},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"nats timeout", fmt.Errorf("publish: %w", nats.ErrTimeout), true},
		{"pool timeout", redis.ErrPoolTimeout, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Transient(tt.give); got != tt.want {
				t.Errorf("Transient(%v) = %v; want %v", tt.give, got, tt.want)
			}
		})
	}
}

// Creating the durable while JetStream cannot answer (a cluster without quorum: two of three
// nodes down) is asked again instead of given up, and succeeds once the cluster is back: a
// service would otherwise exit and consume nothing until restarted.
func TestCreateWaitsForTheClusterToAnswer(t *testing.T) {
	c := testenv.NATSCluster(t, 3)
	setup := testenv.JetStream(t, c.URL(), jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}, Replicas: 3}, stream.Deadletter(3))
	if _, err := c.WaitStreamLeader("WORK", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	publish(t, setup, "acme:one")
	// The consumer's connection is to node 0 only, the one left running.
	nc, err := nats.Connect(c.URLs()[0], nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), "WORK")
	if err != nil {
		t.Fatal(err)
	}
	c.Stop(1)
	c.Stop(2)
	cfg := Config{Service: "test", Stream: "WORK", Durable: "test", Filter: "work.>", BatchMax: 10,
		Linger: time.Millisecond, AckWait: time.Second}
	cons := New(js, cfg, decode, func(context.Context, []Decoded[string]) error { return nil }, func(context.Context) error { return nil }, quiet)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type created struct {
		c   jetstream.Consumer
		err error
	}
	done := make(chan created, 1)
	go func() {
		c, err := cons.create(ctx, st, jetstream.ConsumerConfig{Durable: "test", FilterSubject: "work.>", AckPolicy: jetstream.AckExplicitPolicy})
		done <- created{c, err}
	}()
	// Several of its requests time out meanwhile.
	select {
	case r := <-done:
		t.Fatalf("create returned while the cluster had no quorum: %v", r.err)
	case <-time.After(3 * time.Second):
	}
	c.Restart(1)
	c.Restart(2)
	if _, err := c.WaitMetaLeader(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("create once the cluster is back: %v", r.err)
	}
	if info, err := r.c.Info(ctx); err != nil || info.NumPending != 1 {
		t.Fatalf("the durable: %+v, %v; want one message pending", info, err)
	}
}
