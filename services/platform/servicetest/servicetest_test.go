package servicetest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

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
	rdb := testenv.Redis(t)
	spec := service.Spec{Name: "test", HTTPAddr: "127.0.0.1:1", GRPCAddr: "127.0.0.1:2", Redis: true}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := Start(t, func(ctx context.Context, h service.Hooks) error {
		svc, err := service.New(ctx, spec, Settings(natsURL, "redis://"+rdb.Options().Addr+"/0"), h, log)
		if err != nil {
			return err
		}
		return svc.Serve(ctx)
	})
	if r.HTTP == "" || r.GRPC == "" {
		t.Fatalf("addresses %+v", r.Addrs)
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
	for _, addr := range []string{r.HTTP, r.GRPC} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", addr)
		}
	}
	r.Stop() // a second Stop does nothing
}
