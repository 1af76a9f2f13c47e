package service

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// Beyond -http-max-concurrent requests in flight, the next is refused at once with 503 and
// Retry-After, while the probes still answer; a freed slot serves again.
func TestHTTPConcurrencyCap(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	const limit = 3
	arrived, release := make(chan struct{}, limit), make(chan struct{})
	a, stop := startSpec(t, plainSpec, Common{NATSURL: natsURL, HTTPAddr: "127.0.0.1:0", HTTPMaxConcurrent: limit}, testLogger(t), func(a *Service) {
		a.HTTP().HandleFunc("GET /hold", func(w http.ResponseWriter, _ *http.Request) {
			arrived <- struct{}{}
			<-release
		})
	})
	base := "http://" + a.Addrs().HTTP

	var held sync.WaitGroup
	for range limit {
		held.Add(1)
		go func() {
			defer held.Done()
			resp, err := http.Get(base + "/hold")
			if err != nil {
				t.Errorf("held request: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("held request answered %d, want 200", resp.StatusCode)
			}
		}()
	}
	for range limit {
		<-arrived
	}

	began := time.Now()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/hold")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct{ Error, Reason string }
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusServiceUnavailable ||
		got.Error != "overloaded" || got.Reason == "" || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("request beyond the cap = %d %s (Retry-After %q), want 503 overloaded with Retry-After 1",
			resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("refusal took %v, want it at once", took)
	}
	for _, probe := range []string{"/healthz", "/readyz"} {
		if status, body := get(t, base+probe); status != http.StatusOK {
			t.Errorf("%s under load = %d %s, want 200", probe, status, body)
		}
	}

	close(release)
	held.Wait()
	if status, body := get(t, base+"/hold"); status != http.StatusOK {
		t.Errorf("after the load /hold = %d %.100s, want 200", status, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

// A client that sends its headers too slowly is cut off.
func TestSlowHeadersAreCutOff(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	a, _ := startSpec(t, plainSpec, Common{NATSURL: natsURL, HTTPAddr: "127.0.0.1:0"}, testLogger(t), func(a *Service) {
		a.httpLim.readHeader = 200 * time.Millisecond
	})

	c, err := net.Dial("tcp", a.Addrs().HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c) // the server may answer 408 before it closes
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open %v after a request's headers stalled", time.Since(began))
	}
}

// The HTTP limits bound every phase, and the write timeout leaves room for the longest handlers.
func TestHTTPLimitsDefaults(t *testing.T) {
	lim := defaultHTTPLimits(DefaultHTTPMaxConcurrent)
	if lim.readHeader <= 0 || lim.read <= 0 || lim.idle <= 0 || lim.maxHeaderBytes <= 0 || lim.maxConcurrent != DefaultHTTPMaxConcurrent {
		t.Errorf("limits %+v: want each set", lim)
	}
	// A body as slow as read allows, then a default 30 s CPU profile or ingest's publish wait.
	if lim.write < lim.read+30*time.Second {
		t.Errorf("write timeout %v, want at least read %v plus 30s", lim.write, lim.read)
	}
}

// Headers beyond MaxHeaderBytes are refused, by the admin server as by the service's own.
func TestHugeHeadersAreRefused(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	a, _ := start(t, testConfig(natsURL, testenv.RedisSingle(t).Options().Addr))
	for _, addr := range []string{a.Addrs().HTTP, a.Addrs().Admin} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 2*a.httpLim.maxHeaderBytes))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("huge headers to %s answered %d, want 431", addr, resp.StatusCode)
		}
	}
}

// A client connection gets at most -grpc-max-streams calls served at once; the next waits.
func TestGRPCMaxStreams(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	cfg := testConfig(natsURL, testenv.RedisSingle(t).Options().Addr)
	cfg.GRPCMaxStreams = 1
	a, _ := start(t, cfg)
	health := healthClient(t, a.Addrs().GRPC)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A Watch stays open: it holds the connection's one stream.
	wctx, stopWatch := context.WithCancel(ctx)
	watch, err := health.Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatalf("watch: %v", err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = health.Check(cctx, &healthpb.HealthCheckRequest{})
	ccancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a second call beside the open stream = %v, want it kept waiting", err)
	}
	stopWatch()
	if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("once the stream closed: %v", err)
	}
}

// A password in the Redis or NATS URL shows in no log line, not on /readyz and not in -h.
func TestURLPasswordsStaySecret(t *testing.T) {
	const secret = "s3cret-pw"
	_, natsURL := testenv.NATS(t)
	rs, err := testenv.StartRedis(t.TempDir(), "--requirepass", secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Kill)
	cfg := testConfig(strings.Replace(natsURL, "nats://", "nats://user:"+secret+"@", 1), rs.Addr)
	cfg.RedisURL = "redis://default:" + secret + "@" + rs.Addr + "/0"
	log, rec := recordingLogger(t)

	a, stop := startLogging(t, cfg, log)
	url := "http://" + a.Addrs().HTTP + "/readyz"
	if status, body := get(t, url); status != http.StatusOK {
		t.Fatalf("/readyz = %d %s, want 200 (authenticated)", status, body)
	}
	rs.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, body := get(t, url)
		if strings.Contains(body, secret) {
			t.Errorf("/readyz shows the password: %s", body)
		}
		if status == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %s after redis died, want 503", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A URL that does not parse is named in the error without its password.
	bad := cfg
	bad.RedisURL = "redis://default:" + secret + "@127.0.0.1:notaport/0"
	if _, err := New(context.Background(), testSpec, bad, Hooks{}, log); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("New with a bad URL = %v, want an error without the password", err)
	}

	logged := rec.String()
	if !strings.Contains(logged, "connected") || !strings.Contains(logged, "not ready") {
		t.Fatalf("log lacks the connection and the failure:\n%s", logged)
	}
	for _, line := range strings.Split(logged, "\n") {
		if strings.Contains(line, secret) {
			t.Errorf("log line shows the password: %s", line)
		}
	}

	// -h shows the defaults, which the environment may set.
	t.Setenv("TICKETPULSE_REDIS_URL", cfg.RedisURL)
	t.Setenv("TICKETPULSE_NATS_URL", cfg.NATSURL)
	var help strings.Builder
	var mc mainConfig
	if code := Main(testSpec, []string{"-h"}, &help, &mc, func(context.Context, mainConfig, *slog.Logger) error { return nil }); code != 0 {
		t.Fatalf("-h exited %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(help.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), secret) {
			t.Errorf("-h shows the password: %s", sc.Text())
		}
	}
	if !strings.Contains(help.String(), "redis://default:xxxxx@") {
		t.Errorf("-h does not show the redacted URL:\n%s", help.String())
	}
}
