// Package shell is the common body of a service that talks to NATS and Redis and serves gRPC and
// HTTP: it opens the connections, binds the listeners, serves health (gRPC and /healthz,
// /readyz), reflection and /metrics, runs the service's workers beside them, and stops cleanly.
// escalation and notify run on it; their gRPC services register on the server it builds.
package shell

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/natsconn"
	"github.com/ticketpulse/ticketpulse/services/platform/redisconn"
	"github.com/ticketpulse/ticketpulse/services/platform/serve"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// Config is everything the shell reads from flags and the environment.
type Config struct {
	service.Common
	GRPCAddr string
	HTTPAddr string
}

// Register declares the settings on s; grpcAddr and httpAddr are the service's defaults and
// grpcWhat names what its gRPC server offers, for -h.
func (c *Config) Register(s *envflag.Set, grpcAddr, httpAddr, grpcWhat string) {
	c.Common.Register(s, true)
	_, grpcPort, _ := net.SplitHostPort(grpcAddr)
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	s.String(&c.GRPCAddr, "grpc-addr", grpcAddr, "Address the gRPC server ("+grpcWhat+") listens on; use 0.0.0.0:"+grpcPort+" inside a container.")
	s.String(&c.HTTPAddr, "http-addr", httpAddr, "Address the HTTP server (/healthz, /readyz, /metrics) listens on; use 0.0.0.0:"+httpPort+" inside a container.")
}

// App is a started service: its connections are open and its listeners bound, so a test can
// read the real addresses before serving.
type App struct {
	name    string
	log     *slog.Logger
	nc      *nats.Conn
	rdb     *redis.Client
	tel     *telemetry.Telemetry
	grpcLn  net.Listener
	httpLn  net.Listener
	closers []func()
	// httpExtras add handlers to the HTTP mux (profiles, for instance) before it serves.
	httpExtras []func(*http.ServeMux)
}

// HandleHTTP adds handlers to the HTTP server's mux beside /healthz, /readyz and /metrics; call
// it before Serve.
func (a *App) HandleHTTP(add func(*http.ServeMux)) { a.httpExtras = append(a.httpExtras, add) }

// Run starts the service and serves until ctx ends. A clean stop returns nil.
func Run(ctx context.Context, name string, cfg Config, log *slog.Logger) error {
	a, err := New(ctx, name, cfg, log)
	if err != nil {
		return err
	}
	return a.Serve(ctx, nil)
}

// New connects to NATS and Redis and binds both listeners. Serve releases them when it returns.
// name is the service name in logs, traces and the NATS connection.
func New(ctx context.Context, name string, cfg Config, log *slog.Logger) (*App, error) {
	a := &App{name: name, log: log}
	if err := a.open(ctx, cfg); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *App) open(ctx context.Context, cfg Config) error {
	tel, err := telemetry.Setup(ctx, a.name, cfg.OTLPEndpoint)
	if err != nil {
		return err
	}
	a.tel = tel
	a.closers = append(a.closers, a.shutdownTelemetry)
	if a.nc, err = natsconn.Connect(cfg.NATSURL, a.name, a.log); err != nil {
		return err
	}
	a.closers = append(a.closers, a.nc.Close)
	if a.rdb, err = redisconn.Open(ctx, cfg.RedisURL); err != nil {
		return err
	}
	a.closers = append(a.closers, func() { a.rdb.Close() })
	if a.grpcLn, err = serve.Listen(cfg.GRPCAddr); err != nil {
		return fmt.Errorf("grpc: %w", err)
	}
	a.closers = append(a.closers, func() { a.grpcLn.Close() })
	if a.httpLn, err = serve.Listen(cfg.HTTPAddr); err != nil {
		return fmt.Errorf("http: %w", err)
	}
	a.closers = append(a.closers, func() { a.httpLn.Close() })
	a.log.Info("connected", "nats", a.nc.ConnectedUrlRedacted(), "redis", a.rdb.Options().Addr)
	return nil
}

// Close releases what New acquired, newest first, so nothing is used after it is closed. Serve
// calls it; a service that fails between New and Serve calls it itself.
func (a *App) Close() { a.close() }

// NATS is the service's NATS connection.
func (a *App) NATS() *nats.Conn { return a.nc }

// JetStream is a JetStream client on the service's connection, with the streams the service
// owns created, or updated to these settings.
func (a *App) JetStream(ctx context.Context, streams ...jetstream.StreamConfig) (jetstream.JetStream, error) {
	js, err := jetstream.New(a.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	for _, sc := range streams {
		if _, err := stream.Ensure(ctx, js, sc); err != nil {
			return nil, err
		}
	}
	return js, nil
}

// Redis is the service's Redis client.
func (a *App) Redis() *redis.Client { return a.rdb }

// Meter makes the service's metrics, served on /metrics.
func (a *App) Meter() metric.Meter { return a.tel.Meter }

// close releases what open acquired, newest first, so nothing is used after it is closed.
func (a *App) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// GRPCAddr is the bound gRPC address.
func (a *App) GRPCAddr() string { return a.grpcLn.Addr().String() }

// HTTPAddr is the bound HTTP address.
func (a *App) HTTPAddr() string { return a.httpLn.Addr().String() }

// Serve runs both servers and the workers until ctx ends or one of them fails, then closes
// every connection. register adds the service's own gRPC services (nil for none).
func (a *App) Serve(ctx context.Context, register func(*grpc.Server, *health.Server), workers ...func(context.Context) error) error {
	defer a.close()
	gs, hs := serve.NewGRPC()
	if register != nil {
		register(gs, hs)
	}
	mux := serve.Mux(a.ready, a.tel.Metrics)
	for _, add := range a.httpExtras {
		add(mux)
	}
	g := serve.NewGroup(ctx)
	g.Go(func(ctx context.Context) error { return serve.GRPC(ctx, a.grpcLn, gs, hs, a.log) })
	g.Go(func(ctx context.Context) error { return serve.HTTP(ctx, a.httpLn, mux, a.log) })
	for _, w := range workers {
		g.Go(w)
	}
	return g.Wait()
}

// ready reports whether both dependencies answer now; /readyz turns an error into 503.
func (a *App) ready(ctx context.Context) error {
	var errs []error
	if st := a.nc.Status(); st != nats.CONNECTED {
		errs = append(errs, fmt.Errorf("nats %s", st))
	}
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		errs = append(errs, fmt.Errorf("redis ping: %w", err))
	}
	return errors.Join(errs...)
}

func (a *App) shutdownTelemetry() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.tel.Shutdown(ctx); err != nil {
		a.log.Warn("telemetry shutdown", "err", err)
	}
}
