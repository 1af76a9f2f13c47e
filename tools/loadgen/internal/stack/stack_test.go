package stack

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// The test binary doubles as the ingest and kpi binaries: started with fakeEnv set, it serves
// /readyz on -http-addr until SIGTERM, or exits at once when given -fake-exit.
const fakeEnv = "LOADGEN_STACK_FAKE_SERVICE"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		os.Exit(fakeService(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeService(args []string) int {
	fs := flag.NewFlagSet("fake", flag.ContinueOnError)
	addr := fs.String("http-addr", "", "")
	fs.String("nats-url", "", "")
	fs.String("redis-url", "", "")
	fs.String("grpc-addr", "", "")
	exit := fs.Bool("fake-exit", false, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *exit {
		fmt.Println("fake service: refusing to start")
		return 3
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: *addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })}
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		fmt.Println(err)
		return 1
	}
	return 0
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			out := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				k, v, _ := strings.Cut(line, "=")
				out[k] = v
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("env file %s not written: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}

func testConfig(t *testing.T) Config {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server and NATS; skipped in -short mode")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeEnv, "1")
	dir := t.TempDir()
	return Config{Dir: dir, Sync: "2m", IngestBin: self, KpiBin: self, EnvFile: filepath.Join(dir, "stack.env"),
		Lifetime: time.Minute, ReadyTimeout: 10 * time.Second}
}

func TestRunServesUntilStopped(t *testing.T) {
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	env := readEnv(t, cfg.EnvFile)

	for _, u := range []string{env["INGEST_URL"] + "/readyz", "http://" + env["KPI_HTTP"] + "/readyz"} {
		resp, err := http.Get(u)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", u, resp, err)
		}
		resp.Body.Close()
	}
	nc, err := nats.Connect(env["NATS_URL"])
	if err != nil {
		t.Fatalf("nats at %s: %v", env["NATS_URL"], err)
	}
	if _, err := nc.JetStream(); err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	nc.Close()
	opt, err := redis.ParseURL(env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s: %v", env["REDIS_URL"], err)
	}
	rdb.Close()
	pidText, err := os.ReadFile(filepath.Join(cfg.Dir, "stack.pids"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(pidText)) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	if len(pids) != 2 {
		t.Fatalf("pid file %q: want the two services", pidText)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := os.Stat(cfg.EnvFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("env file left behind: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Fatalf("service pid %d still running after the stack stopped", pid)
		}
	}
}

func TestRunFails(t *testing.T) {
	tests := []struct {
		name string
		give func(*Config)
		want []string
	}{
		{name: "service exits while starting", give: func(c *Config) { c.KpiArgs = []string{"-fake-exit"} },
			want: []string{"kpi exited while starting", "fake service: refusing to start"}},
		{name: "binary missing", give: func(c *Config) { c.IngestBin = filepath.Join(c.Dir, "nope") },
			want: []string{"service binary", "nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.give(&cfg)
			err := Run(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				t.Fatal("Run succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q lacks %q", err, w)
				}
			}
			if _, err := os.Stat(cfg.EnvFile); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("env file written by a failed stack: %v", err)
			}
		})
	}
}
