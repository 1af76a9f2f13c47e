package servicetest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

// Start returns once the service serves; Stop stops it and the listeners are gone.
func TestStartAndStop(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	rdb := testenv.RedisSingle(t)
	spec := service.Spec{Name: "test", HTTPAddr: "127.0.0.1:1", GRPCAddr: "127.0.0.1:2", Redis: true}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := Start(t, func(ctx context.Context, h service.Hooks) error {
		svc, err := service.New(ctx, spec, Settings(natsURL, "redis://"+rdb.Options().Addr+"/0"), h, log)
		if err != nil {
			return err
		}
		return svc.Serve(ctx)
	})
	if r.HTTP == "" || r.GRPC == "" || r.Admin == "" {
		t.Fatalf("addresses %+v", r.Addrs)
	}
	if got := r.URL("/readyz"); got != "http://"+r.HTTP+"/readyz" {
		t.Errorf("URL = %q, want plain http on the HTTP address", got)
	}
	if code, body := fetch(t, r.HTTPClient(), r.AdminURL("/metrics")); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("admin /metrics = %d %.100q, want 200 with metrics", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(r.Dial()).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", resp, err)
	}
	r.Stop()
	select {
	case <-r.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	for _, addr := range []string{r.HTTP, r.GRPC, r.Admin} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", addr)
		}
	}
	r.Stop() // a second Stop does nothing
}

func fetch(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// StartTLS waits for readiness over TLS with the client certificate, and its helpers reach every
// server over TLS: a plain client is refused.
func TestStartTLS(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	rdb := testenv.RedisSingle(t)
	spec := service.Spec{Name: "test", HTTPAddr: "127.0.0.1:1", GRPCAddr: "127.0.0.1:2", Redis: true}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Settings(natsURL, "redis://"+rdb.Options().Addr+"/0")
	files := WithTLS(t, &cfg, true)
	if cfg.TLSCert != files.Cert || cfg.TLSKey != files.Key || cfg.TLSClientCA != files.ClientCA {
		t.Fatalf("WithTLS set %q %q %q, want the written files", cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA)
	}
	r := StartTLS(t, files.ClientConfig(t, true), func(ctx context.Context, h service.Hooks) error {
		svc, err := service.New(ctx, spec, cfg, h, log)
		if err != nil {
			return err
		}
		return svc.Serve(ctx)
	})
	if got := r.URL("/readyz"); got != "https://"+r.HTTP+"/readyz" {
		t.Errorf("URL = %q, want https", got)
	}
	if code, body := fetch(t, r.HTTPClient(), r.URL("/readyz")); code != http.StatusOK {
		t.Errorf("/readyz over TLS = %d %s, want 200", code, body)
	}
	if code, body := fetch(t, r.HTTPClient(), r.AdminURL("/metrics")); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("admin /metrics over TLS = %d %.100q, want 200 with metrics", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(r.Dial()).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health over TLS = %v, %v; want SERVING", resp, err)
	}
	plain := &Running{Addrs: r.Addrs, t: t}
	if _, err := healthpb.NewHealthClient(plain.Dial()).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext health = %v, want Unavailable", err)
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: files.ClientConfig(t, false)}}).Get(r.URL("/readyz")); err == nil {
		t.Error("a client without a certificate reached /readyz")
	}
}
