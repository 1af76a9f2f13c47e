package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

var testSpec = Spec{Name: "test", HTTPAddr: "127.0.0.1:8080", GRPCAddr: "127.0.0.1:9090", GRPCServes: "health", Redis: true}

func testConfig(natsURL, redisAddr string) Common {
	return Common{NATSURL: natsURL, RedisURL: "redis://" + redisAddr + "/0", LogLevel: "info", LogFormat: "text",
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// recordingLogger logs every level to the test and to the returned record.
func recordingLogger(t *testing.T) (*slog.Logger, *logRecord) {
	rec := &logRecord{}
	return slog.New(slog.NewTextHandler(testWriter{t: t, rec: rec}, &slog.HandlerOptions{Level: slog.LevelDebug})), rec
}

type logRecord struct {
	mu sync.Mutex
	b  strings.Builder
}

func (r *logRecord) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.String()
}

type testWriter struct {
	t   *testing.T
	rec *logRecord
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	if w.rec != nil {
		w.rec.mu.Lock()
		w.rec.b.Write(p)
		w.rec.mu.Unlock()
	}
	return len(p), nil
}

// start serves a in the background; stop cancels it and returns what Serve returned.
func start(t *testing.T, cfg Common) (a *Service, stop func() error) {
	t.Helper()
	return startLogging(t, cfg, testLogger(t))
}

func startLogging(t *testing.T, cfg Common, log *slog.Logger) (a *Service, stop func() error) {
	t.Helper()
	return startSpec(t, testSpec, cfg, log, func(*Service) {})
}

// startSpec is start for spec's service, logging to log, with before run between New and Serve.
func startSpec(t *testing.T, spec Spec, cfg Common, log *slog.Logger, before func(*Service)) (a *Service, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, spec, cfg, Hooks{}, log)
	if err != nil {
		cancel()
		t.Fatalf("new: %v", err)
	}
	before(a)
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return within 5s of cancel")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return a, stop
}

// healthClient is a client of the health service at addr, closed when the test ends.
func healthClient(t *testing.T, addr string) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestServesHealthReadinessMetricsAndStops(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	rdb := testenv.RedisSingle(t)
	a, stop := start(t, testConfig(natsURL, rdb.Options().Addr))
	base, admin := "http://"+a.Addrs().HTTP, "http://"+a.Addrs().Admin

	// The service's own address serves the probes only; metrics and profiles are on the admin
	// address, which serves the probes too.
	tests := []struct {
		name       string
		give       string
		wantStatus int
		wantBody   string
	}{
		{name: "healthz", give: base + "/healthz", wantStatus: http.StatusOK, wantBody: `"status":"ok"`},
		{name: "readyz", give: base + "/readyz", wantStatus: http.StatusOK, wantBody: `"status":"ready"`},
		{name: "no metrics", give: base + "/metrics", wantStatus: http.StatusNotFound, wantBody: "404"},
		{name: "no pprof", give: base + "/debug/pprof/", wantStatus: http.StatusNotFound, wantBody: "404"},
		{name: "unknown path", give: base + "/nope", wantStatus: http.StatusNotFound, wantBody: "404"},
		{name: "admin healthz", give: admin + "/healthz", wantStatus: http.StatusOK, wantBody: `"status":"ok"`},
		{name: "admin readyz", give: admin + "/readyz", wantStatus: http.StatusOK, wantBody: `"status":"ready"`},
		{name: "admin metrics", give: admin + "/metrics", wantStatus: http.StatusOK, wantBody: "go_goroutines"},
		{name: "admin pprof", give: admin + "/debug/pprof/", wantStatus: http.StatusOK, wantBody: "goroutine"},
		{name: "admin pprof heap", give: admin + "/debug/pprof/heap?debug=1", wantStatus: http.StatusOK, wantBody: "heap profile"},
		{name: "admin pprof cmdline", give: admin + "/debug/pprof/cmdline", wantStatus: http.StatusOK, wantBody: "service.test"},
		{name: "admin unknown path", give: admin + "/nope", wantStatus: http.StatusNotFound, wantBody: "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, tt.give)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("GET %s = %d %q, want %d containing %q", tt.give, status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}

	t.Run("grpc health", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := healthClient(t, a.Addrs().GRPC).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("health check: %v", err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health = %v, want SERVING", resp.GetStatus())
		}
	})

	begin := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Serve after cancel = %v, want nil", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("stop took %v, want well under ShutdownGrace", d)
	}
	for _, addr := range []string{a.Addrs().HTTP, a.Addrs().GRPC, a.Addrs().Admin} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after stop", addr)
		}
	}
}

// An empty admin address turns the admin server off; the service's own address still has no
// metrics.
func TestAdminOff(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	cfg := testConfig(natsURL, testenv.RedisSingle(t).Options().Addr)
	cfg.AdminAddr = ""
	a, stop := start(t, cfg)
	if got := a.Addrs().Admin; got != "" {
		t.Fatalf("admin address %q, want none", got)
	}
	if status, body := get(t, "http://"+a.Addrs().HTTP+"/metrics"); status != http.StatusNotFound {
		t.Errorf("/metrics = %d %.100s, want 404", status, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Hooks.Listening gets every bound address, the admin one included.
func TestListeningHookHasEveryAddress(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan Addrs, 1)
	a, err := New(ctx, testSpec, testConfig(natsURL, testenv.RedisSingle(t).Options().Addr), Hooks{Listening: func(ad Addrs) { got <- ad }}, testLogger(t))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	ad := <-got
	if ad.HTTP == "" || ad.GRPC == "" || ad.Admin == "" || ad != a.Addrs() {
		t.Fatalf("Listening got %+v, want every address (%+v)", ad, a.Addrs())
	}
}

// /readyz names what fails by a fixed word; the error itself, which may carry addresses, is
// logged instead.
func TestReadyzReportsDependencyDown(t *testing.T) {
	tests := []struct {
		name       string
		breakIt    func(t *testing.T, deps *deps)
		wantBody   string
		wantReason string
	}{
		{name: "redis killed", breakIt: func(_ *testing.T, d *deps) { d.redis.Kill() },
			wantBody: `{"status":"not ready","failing":["redis"]}`, wantReason: "redis ping"},
		{name: "nats shut down", breakIt: func(_ *testing.T, d *deps) { d.nats.Shutdown() },
			wantBody: `{"status":"not ready","failing":["nats"]}`, wantReason: "nats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeps(t)
			log, rec := recordingLogger(t)
			a, _ := startLogging(t, testConfig(d.natsURL, d.redis.Addr), log)
			url := "http://" + a.Addrs().HTTP + "/readyz"
			if status, body := get(t, url); status != http.StatusOK {
				t.Fatalf("before: /readyz = %d %s, want 200", status, body)
			}
			tt.breakIt(t, d)
			// The NATS client notices a closed server asynchronously; poll briefly.
			deadline := time.Now().Add(5 * time.Second)
			for {
				status, body := get(t, url)
				if status == http.StatusServiceUnavailable && strings.TrimSpace(body) == tt.wantBody {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after: /readyz = %d %s, want 503 %s", status, body, tt.wantBody)
				}
				time.Sleep(50 * time.Millisecond)
			}
			logged := rec.String()
			if !strings.Contains(logged, "not ready") || !strings.Contains(logged, tt.wantReason) {
				t.Errorf("log lacks the failure %q:\n%s", tt.wantReason, logged)
			}
			// Probes keep coming; the unchanged failure is logged once, not each time.
			for range 5 {
				get(t, url)
			}
			if n := strings.Count(rec.String(), "not ready"); n != 1 {
				t.Errorf("the failure was logged %d times, want once:\n%s", n, rec.String())
			}
		})
	}
}

func TestRunFailsWhenAddressIsTaken(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	rdb := testenv.RedisSingle(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name string
		edit func(*Common)
	}{
		{name: "grpc", edit: func(c *Common) { c.GRPCAddr = busy.Addr().String() }},
		{name: "http", edit: func(c *Common) { c.HTTPAddr = busy.Addr().String() }},
		{name: "admin", edit: func(c *Common) { c.AdminAddr = busy.Addr().String() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(natsURL, rdb.Options().Addr)
			tt.edit(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := New(ctx, testSpec, cfg, Hooks{}, testLogger(t))
			if err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
				t.Fatalf("New = %v, want an error naming %s", err, busy.Addr())
			}
		})
	}
}

// Serve runs the service's workers beside the servers; a failing worker stops the service with
// its error.
func TestServeStopsWhenAWorkerFails(t *testing.T) {
	d := newDeps(t)
	a, err := New(context.Background(), testSpec, testConfig(d.natsURL, d.redis.Addr), Hooks{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	ran := make(chan struct{})
	err = a.Serve(context.Background(), func(ctx context.Context) error { close(ran); return boom })
	select {
	case <-ran:
	default:
		t.Fatal("the worker never ran")
	}
	if !errors.Is(err, boom) {
		t.Errorf("Serve = %v, want the worker's error", err)
	}
}

// Handlers added to the HTTP mux are served beside the health endpoints.
func TestHandleHTTP(t *testing.T) {
	d := newDeps(t)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, testSpec, testConfig(d.natsURL, d.redis.Addr), Hooks{}, testLogger(t))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a.HTTP().HandleFunc("/extra", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("here")) })
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	var body []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + a.Addrs().HTTP + "/extra")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/extra not served: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(body) != "here" {
		t.Errorf("/extra answered %q", body)
	}
}

var plainSpec = Spec{Name: "plain", HTTPAddr: "127.0.0.1:8080"}

// newHTTPOnly is a service like ingest: NATS, no Redis, no gRPC.
func newHTTPOnly(t *testing.T, ctx context.Context, natsURL string) *Service {
	t.Helper()
	return newHTTPOnlyWith(t, ctx, Common{NATSURL: natsURL, HTTPAddr: "127.0.0.1:0"}, testLogger(t))
}

func newHTTPOnlyWith(t *testing.T, ctx context.Context, c Common, log *slog.Logger) *Service {
	t.Helper()
	a, err := New(ctx, plainSpec, c, Hooks{}, log)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A service without Redis and gRPC serves HTTP only; a readiness check it adds runs once the
// connections are up; its failure shows on /readyz as "service" and its error in the log.
func TestHTTPOnlyServiceWithItsOwnReadiness(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log, rec := recordingLogger(t)
	a := newHTTPOnlyWith(t, ctx, Common{NATSURL: natsURL, HTTPAddr: "127.0.0.1:0"}, log)
	if a.Redis() != nil || a.GRPC() != nil || a.Addrs().GRPC != "" {
		t.Fatalf("Redis %v, gRPC %v at %q: want none", a.Redis(), a.GRPC(), a.Addrs().GRPC)
	}
	var broken atomic.Bool
	a.AddReady(func(context.Context) error {
		if broken.Load() {
			return errors.New("stream gone")
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	url := "http://" + a.Addrs().HTTP + "/readyz"
	if status, body := get(t, url); status != http.StatusOK {
		t.Fatalf("/readyz = %d %s, want 200", status, body)
	}
	broken.Store(true)
	if status, body := get(t, url); status != http.StatusServiceUnavailable || strings.TrimSpace(body) != `{"status":"not ready","failing":["service"]}` {
		t.Fatalf("/readyz = %d %s, want 503 naming the failed check", status, body)
	}
	if !strings.Contains(rec.String(), "stream gone") {
		t.Errorf("log lacks the failed check's error:\n%s", rec.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

// The gRPC services a service registers are SERVING on the health service once it serves; the
// server's own (health, reflection) are not reported.
func TestRegisteredGRPCServicesAreServing(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	rdb := testenv.RedisSingle(t)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, testSpec, testConfig(natsURL, rdb.Options().Addr), Hooks{}, testLogger(t))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a.GRPC().RegisterService(&grpc.ServiceDesc{ServiceName: "test.Echo", HandlerType: (*any)(nil)}, struct{}{})
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	health := healthClient(t, a.Addrs().GRPC)
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	resp, err := health.Check(cctx, &healthpb.HealthCheckRequest{Service: "test.Echo"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health of test.Echo = %v, %v; want SERVING", resp, err)
	}
	if _, err := health.Check(cctx, &healthpb.HealthCheckRequest{Service: "grpc.reflection.v1.ServerReflection"}); status.Code(err) != codes.NotFound {
		t.Errorf("health of reflection = %v, want NotFound", err)
	}
}

// A stop lets the requests in flight finish with NATS still connected, and what they published
// reaches the server before Serve returns.
func TestStopFinishesRequestsBeforeNATSCloses(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newHTTPOnly(t, ctx, natsURL)
	arrived, release := make(chan struct{}), make(chan struct{})
	a.HTTP().HandleFunc("POST /slow", func(w http.ResponseWriter, _ *http.Request) {
		close(arrived)
		<-release
		if err := a.NATS().Publish("late", []byte("in flight")); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	sub, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got, err := sub.SubscribeSync("late")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	status := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+a.Addrs().HTTP+"/slow", "text/plain", nil)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	<-arrived
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if s := <-status; s != http.StatusOK {
		t.Errorf("request in flight answered %d, want 200", s)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if m, err := got.NextMsg(5 * time.Second); err != nil || string(m.Data) != "in flight" {
		t.Errorf("message published in flight: %v %v", m, err)
	}
}
