package service

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
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// ShutdownGrace bounds how long in-flight requests may take once a stop was asked for, and how
// long NATS may take to drain after them.
const ShutdownGrace = 10 * time.Second

// newMux returns a mux with /healthz (the process is up), /readyz (ready answers nil) and /metrics.
func newMux(ready func(context.Context) error, metrics http.Handler) *http.ServeMux {
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
	mux.Handle("GET /metrics", metrics)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// listen opens a TCP listener, naming the address in the error.
func listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}

// serveHTTP serves h on l until ctx ends, then shuts down within ShutdownGrace: it returns once
// the requests in flight are answered.
func serveHTTP(ctx context.Context, l net.Listener, h http.Handler, log *slog.Logger) error {
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

// newGRPC returns a gRPC server with tracing, the standard health service and reflection.
func newGRPC() (*grpc.Server, *health.Server) {
	s := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler()))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	return s, hs
}

// serveGRPC serves s on l until ctx ends, then stops gracefully (forcefully after ShutdownGrace).
func serveGRPC(ctx context.Context, l net.Listener, s *grpc.Server, hs *health.Server, log *slog.Logger) error {
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

// Pprof registers the runtime profiles under /debug/pprof/ (opt-in: profiles reveal internals).
func Pprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
