package measure

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// The key reaches a real gRPC server in the metadata the services' gate reads, on every call.
func TestBearerSendsTheKeyOnEveryCall(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []string, 2)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		got <- md.Get("authorization")
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()

	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer("tpk_test")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 {
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		if md := <-got; len(md) != 1 || md[0] != "Bearer tpk_test" {
			t.Fatalf("authorization metadata %q, want [Bearer tpk_test]", md)
		}
	}
}

// validConfig passes Validate with every step.
func validConfig() Config {
	return Config{Steps: Steps, Batch: 100, Posters: 1, Rate: 1, ProbeAgents: 1, GRPCCalls: 1, RawMsgs: 1, RawPending: 1,
		RedisConns: 1, RedisPipeline: 1, ListPageSize: 1, Duration: 1, DrainTimeout: 1, RateDuration: 1, RawTime: 1, GRPCTime: 1,
		LagInterval: 1, PollInterval: 1, ProbeTimeout: 1, ProbeRate: 1, ProbeKPI: "assigned", Events: 1,
		OverloadBound: 1, OverloadEvents: 1, OverloadDuration: 1, OverloadPause: 1, OverloadSample: 1,
		Tenant: "bench", OverloadTenant: "bench-overload"}
}

func TestValidateOverloadTenant(t *testing.T) {
	base := validConfig()
	if err := base.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, ovl := range []string{"", "bench"} {
		c := base
		c.OverloadTenant = ovl
		want := `overload-tenant "` + ovl + `": want a tenant other than -tenant "bench", so the step counts only its own events`
		if err := c.Validate(); err == nil || err.Error() != want {
			t.Errorf("overload tenant %q: err %v, want %q", ovl, err, want)
		}
	}
}

// A NATS URL may carry a password; the connect error shows the URL without it.
func TestRunRedactsTheNATSURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: the connection is refused
	cfg := validConfig()
	cfg.NATSURL = "nats://loadgen:n4ts-secret@" + addr
	_, err = Run(context.Background(), cfg, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || strings.Contains(err.Error(), "n4ts-secret") || !strings.Contains(err.Error(), "connect nats nats://loadgen:") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Run error %v: want the connect error with the URL redacted", err)
	}
}
