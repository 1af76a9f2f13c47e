package replayjob_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// redisJobs keeps jobs as a service does: a set of tenants and a state hash per tenant.
type redisJobs struct{ rdb redis.UniversalClient }

const jobsKey = "tp:{test}:jobs"

func stateKey(tenant string) string { return "tp:{" + tenant + ":test}" }

func (j redisJobs) Jobs(ctx context.Context) ([]string, error) {
	return j.rdb.SMembers(ctx, jobsKey).Result()
}

func (j redisJobs) Claim(ctx context.Context, tenant, owner string, lease time.Duration) (bool, error) {
	return replayjob.Claim(ctx, j.rdb, stateKey(tenant), owner, time.Now(), lease)
}

func (j redisJobs) Forget(ctx context.Context, tenant string) error {
	if j.rdb.HGet(ctx, stateKey(tenant), "phase").Val() != "" {
		return nil
	}
	return j.rdb.SRem(ctx, jobsKey, tenant).Err()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Loop resumes the job whose lease lapsed (only that one), forgets tenants without a job, logs
// a failed job under the runner's name, and returns only once its jobs stopped.
func TestRunnerLoop(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	past, future := replayjob.MS(time.Now().Add(-time.Second)), replayjob.MS(time.Now().Add(time.Minute))
	rdb.HSet(ctx, stateKey("lapsed"), "phase", "build", "owner", "crashed", "lease", past)
	rdb.HSet(ctx, stateKey("held"), "phase", "build", "owner", "other", "lease", future)
	rdb.HSet(ctx, stateKey("failing"), "phase", "build", "owner", "crashed", "lease", past)
	rdb.SAdd(ctx, jobsKey, "lapsed", "held", "failing", "finished")

	logs := &testenv.LogBuffer{}
	var runs sync.Map
	var stopped atomic.Bool
	var r *replayjob.Runner
	run := func(ctx context.Context, tenant string) error {
		n, _ := runs.LoadOrStore(tenant, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		if tenant == "failing" {
			rdb.HSet(ctx, stateKey(tenant), "phase", "")
			return errors.New("stream TICKETS: no responders")
		}
		if owner := rdb.HGet(ctx, stateKey(tenant), "owner").Val(); owner != r.Owner() {
			t.Errorf("job of %s runs with owner %q, want %q", tenant, owner, r.Owner())
		}
		<-ctx.Done()
		stopped.Store(true)
		return ctx.Err()
	}
	r = replayjob.NewRunner(ctx, "test rebuild", redisJobs{rdb}, run, time.Minute, 10*time.Millisecond,
		slog.New(slog.NewTextHandler(logs, nil)))
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Loop(loopCtx) }()

	waitFor(t, "the lapsed job to run and the finished tenants to be forgotten", func() bool {
		_, ok := runs.Load("lapsed")
		members := rdb.SMembers(ctx, jobsKey).Val()
		return ok && len(members) == 2 && !strings.Contains(strings.Join(members, ","), "finished") && !strings.Contains(strings.Join(members, ","), "failing")
	})
	r.Launch("lapsed") // already running here: not a second time
	time.Sleep(50 * time.Millisecond)
	if n, _ := runs.Load("lapsed"); n.(*atomic.Int32).Load() != 1 {
		t.Errorf("the lapsed job ran %d times, want once", n.(*atomic.Int32).Load())
	}
	if _, ok := runs.Load("held"); ok {
		t.Error("the job another replica holds ran here")
	}
	for _, want := range []string{`msg="test rebuild: resuming job" tenant=lapsed`, `msg="test rebuild" tenant=failing err="stream TICKETS: no responders"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil || !stopped.Load() {
			t.Errorf("Loop = %v, job stopped %v; want nil once the job stopped", err, stopped.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Loop did not return")
	}
	if strings.Contains(logs.String(), "context canceled") {
		t.Errorf("a job stopped by the end of Loop was logged as failing:\n%s", logs)
	}
}

// A Redis failure while listing or claiming is logged under the runner's name; Loop goes on.
func TestRunnerLoopRedisDown(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	logs := &testenv.LogBuffer{}
	r := replayjob.NewRunner(context.Background(), "test rebuild", redisJobs{dead}, func(context.Context, string) error { return nil },
		time.Minute, 10*time.Millisecond, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Loop(ctx) }()
	waitFor(t, "two failed listings", func() bool { return strings.Count(logs.String(), `msg="test rebuild: list jobs"`) >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Loop = %v", err)
	}
}
