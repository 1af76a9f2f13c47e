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

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/tenants"
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
	fs.String("admin-addr", "", "")
	tenantsFile := fs.String("tenants-file", "", "")
	exit := fs.Bool("fake-exit", false, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *exit {
		fmt.Println("fake service: refusing to start")
		return 3
	}
	// As the real services do, refuse a tenants file the platform's parser refuses.
	if _, err := tenants.Load(*tenantsFile, os.Getenv, tenants.SourcesParser[tenants.NoSources](nil)); err != nil {
		fmt.Println("fake service:", err)
		return 4
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
	checkTenants(t, env["TENANTS_FILE"], env["API_KEY_FILE"])
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

// checkTenants asserts the stack's tenants file names the benchmark's tenants with a rate limit
// that does not bind, and accepts the key in the key file, a private file, as an operator's.
func checkTenants(t *testing.T, tenantsFile, keyFile string) {
	t.Helper()
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("API key file %q: %v", keyFile, err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("API key file has mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(b))
	cfg, err := tenants.Load(tenantsFile, os.Getenv, tenants.SourcesParser[tenants.NoSources](nil))
	if err != nil {
		t.Fatalf("tenants file %q: %v", tenantsFile, err)
	}
	if len(cfg.Operators) != 1 || !cfg.Operators[0].Hash.Equal(auth.HashKey(key)) || cfg.Operators[0].Revoked {
		t.Fatalf("the tenants file's operators %+v do not accept the key in %s", cfg.Operators, keyFile)
	}
	for _, id := range []string{Tenant, OverloadTenant} {
		ten, ok := cfg.Tenant(id)
		if !ok {
			t.Fatalf("tenant %s missing from the tenants file", id)
		}
		if ten.RateLimit.EventsPerSecond != benchRate || ten.RateLimit.Burst != benchRate {
			t.Fatalf("tenant %s rate limit %+v, want %d/s bursts of %d", id, ten.RateLimit, benchRate, benchRate)
		}
	}
}
