package redisscript

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

// incr adds ARGV[1] to KEYS[1] and returns the new value: repeating a call shows in the result.
var incr = redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)

var echo = redis.NewScript(`return ARGV[1]`)

func TestRunAfterScriptFlush(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	for i, want := range []int64{2, 4, 6} {
		if i == 1 {
			if err := rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := Run(ctx, rdb, incr, []string{"tp:test:{n}"}, 2).Int64()
		if err != nil || got != want {
			t.Fatalf("call %d: %d, %v; want %d", i+1, got, err, want)
		}
	}
	if ok, err := incr.Exists(ctx, rdb).Result(); err != nil || !ok[0] {
		t.Errorf("script not cached after the fallback: %v %v", ok, err)
	}
}

// After SCRIPT FLUSH every script call of a pipeline fails with NOSCRIPT; each is sent again
// once, and nothing that succeeded (the plain commands) runs twice.
func TestExecAfterScriptFlush(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	if err := incr.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var a, b, e *redis.Cmd
	var plain *redis.IntCmd
	cmds, err := Exec(ctx, rdb, func(p redis.Pipeliner) {
		a = incr.EvalSha(ctx, p, []string{"tp:test:{a}"}, 1)
		plain = p.IncrBy(ctx, "tp:test:{plain}", 10)
		b = incr.EvalSha(ctx, p, []string{"tp:test:{b}"}, 5)
		e = echo.EvalSha(ctx, p, nil, "hello")
	}, incr, echo)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if len(cmds) != 4 {
		t.Fatalf("%d commands returned, want 4", len(cmds))
	}
	if got, err := a.Int64(); got != 1 || err != nil {
		t.Errorf("first call: %d, %v; want 1", got, err)
	}
	if got, err := b.Int64(); got != 5 || err != nil {
		t.Errorf("second call: %d, %v; want 5", got, err)
	}
	if got, err := e.Text(); got != "hello" || err != nil {
		t.Errorf("echo: %q, %v", got, err)
	}
	if got := plain.Val(); got != 10 {
		t.Errorf("plain command replied %d, want 10", got)
	}
	for key, want := range map[string]string{"tp:test:{a}": "1", "tp:test:{b}": "5", "tp:test:{plain}": "10"} {
		if got := rdb.Get(ctx, key).Val(); got != want {
			t.Errorf("%s = %q, want %q: a command ran twice or not at all", key, got, want)
		}
	}
	// Cached now: the next pipeline needs no fallback.
	if _, err := Exec(ctx, rdb, func(p redis.Pipeliner) { a = incr.EvalSha(ctx, p, []string{"tp:test:{a}"}, 1) }, incr); err != nil || a.Val() != int64(2) {
		t.Errorf("cached call: %v, %v", a.Val(), err)
	}
}

func TestExecErrors(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	fail := redis.NewScript(`return redis.error_reply('BROKEN on purpose')`)
	tests := []struct {
		name    string
		fill    func(p redis.Pipeliner)
		scripts []*redis.Script
		wantErr string
	}{
		{
			name:    "a script error is returned, not retried",
			fill:    func(p redis.Pipeliner) { fail.EvalSha(ctx, p, nil) },
			scripts: []*redis.Script{fail},
			wantErr: "BROKEN on purpose",
		},
		{
			name:    "a script not given cannot be loaded",
			fill:    func(p redis.Pipeliner) { echo.EvalSha(ctx, p, nil, "x") },
			wantErr: "not among the scripts given",
		},
		{
			name: "a plain command's error is returned",
			fill: func(p redis.Pipeliner) {
				p.Set(ctx, "tp:test:{s}", "text", 0)
				p.Incr(ctx, "tp:test:{s}")
			},
			wantErr: "not an integer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			_, err := Exec(ctx, rdb, tt.fill, tt.scripts...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Exec error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestExecDeadConnection(t *testing.T) {
	bad := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { bad.Close() })
	ctx := context.Background()
	cmd := Run(ctx, bad, incr, []string{"tp:test:{x}"}, 1)
	if cmd.Err() == nil {
		t.Fatal("a call on a dead connection succeeded")
	}
}
