// Package serve runs a service's HTTP and gRPC servers and stops them gracefully when the
// context ends.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// ShutdownGrace bounds how long in-flight requests may take once a stop was asked for.
const ShutdownGrace = 10 * time.Second

// ReadyFunc reports whether the service can do its work now (dependencies reachable).
type ReadyFunc func(ctx context.Context) error

// Mux returns a mux with /healthz (the process is up), /readyz (ready answers nil) and /metrics.
func Mux(ready ReadyFunc, metrics http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Listen opens a TCP listener, naming the address in the error.
func Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}

// HTTP serves h on l until ctx ends, then shuts down within ShutdownGrace.
func HTTP(ctx context.Context, l net.Listener, h http.Handler, log *slog.Logger) error {
	// ReadTimeout bounds a slow client holding a connection (and the shutdown) with a half-sent body.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("http listening", "addr", l.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("http server %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

// NewGRPC returns a gRPC server with tracing, the standard health service (serving) and reflection.
func NewGRPC(opts ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	opts = append([]grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler())}, opts...)
	s := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	return s, hs
}

// GRPC serves s on l until ctx ends, then stops gracefully (forcefully after ShutdownGrace).
func GRPC(ctx context.Context, l net.Listener, s *grpc.Server, hs *health.Server, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	log.Info("grpc listening", "addr", l.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("grpc server %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() { s.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(ShutdownGrace):
		s.Stop()
	}
	return nil
}

// Group runs funcs until the first returns an error or ctx ends; every func sees the cancellation
// and Group waits for all of them.
type Group struct {
	g   *errgroup.Group
	ctx context.Context
}

// NewGroup returns a group whose context ends with ctx or the first failure.
func NewGroup(ctx context.Context) *Group {
	g, gctx := errgroup.WithContext(ctx)
	return &Group{g: g, ctx: gctx}
}

// Context is cancelled when the group stops.
func (g *Group) Context() context.Context { return g.ctx }

// Go starts f.
func (g *Group) Go(f func(ctx context.Context) error) { g.g.Go(func() error { return f(g.ctx) }) }

// Wait waits for every func and returns the first error.
func (g *Group) Wait() error { return g.g.Wait() }

// AddPprof registers the runtime profiles under /debug/pprof/ (opt-in: profiles reveal internals).
func AddPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
