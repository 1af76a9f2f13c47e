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
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/ticketpulse/ticketpulse/services/platform/tlsconf"
)

// ShutdownGrace bounds how long in-flight requests may take once a stop was asked for, and how
// long NATS may take to drain after them.
const ShutdownGrace = 10 * time.Second

// newMux returns a mux with /healthz (the process is up) and /readyz (ready reports nothing
// failing). /readyz names what fails by a fixed word only: the error behind it may carry
// addresses or server text, so it goes to the log (see readiness), never to the prober.
func newMux(ready func(context.Context) (failing []string, err error), rl *readiness) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		failing, err := ready(ctx)
		rl.report(failing, err)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, notReady{Status: "not ready", Failing: failing})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return mux
}

// newAdminMux returns the admin server's mux: the probes, /metrics and the runtime profiles under
// /debug/pprof/. Profiles and metrics reveal internals, so they are served here, on an address
// meant for loopback or a private network, and never on the service's own.
func newAdminMux(ready func(context.Context) (failing []string, err error), rl *readiness, metrics http.Handler) *http.ServeMux {
	mux := newMux(ready, rl)
	mux.Handle("GET /metrics", metrics)
	// Registered here, not by importing net/http/pprof for its side effect on
	// http.DefaultServeMux, which anything in the process could serve.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

type notReady struct {
	Status  string   `json:"status"`
	Failing []string `json:"failing"`
}

// readinessRelog is how often an unchanged failure is logged again while probes keep asking.
const readinessRelog = time.Minute

// readiness logs why the service is not ready when what fails changes, and again every
// readinessRelog while it stays so: a probe every second must not flood the log.
type readiness struct {
	log    *slog.Logger
	mu     sync.Mutex
	last   string // the failing words last logged; "" when ready
	logged time.Time
}

func (rl *readiness) report(failing []string, err error) {
	words := strings.Join(failing, ",")
	if err != nil && words == "" {
		words = "unknown"
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	now := time.Now()
	if words == rl.last && (err == nil || now.Sub(rl.logged) < readinessRelog) {
		return
	}
	if err == nil {
		rl.log.Info("ready again")
	} else {
		rl.log.Warn("not ready", "failing", failing, "err", err)
	}
	rl.last, rl.logged = words, now
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

// httpLimits bound what one client, and all of them together, may hold of an HTTP server.
type httpLimits struct {
	// readHeader cuts off a client that trickles its headers; read bounds the whole request, so
	// a half-sent body cannot hold a connection (and the shutdown) for long.
	readHeader, read time.Duration
	// write bounds the handler and the response from the end of the headers. It exceeds read
	// plus the longest legitimate handler: ingest waits up to -publish-timeout (5 s by default)
	// for JetStream after reading a body that may take up to read to arrive, and
	// /debug/pprof/profile streams for 30 s by default (it refuses ?seconds= beyond write).
	write time.Duration
	// idle closes a keep-alive connection that sends no next request.
	idle           time.Duration
	maxHeaderBytes int
	// maxConcurrent caps the requests served at once; beyond it a request is refused, not queued.
	maxConcurrent int
}

func defaultHTTPLimits(maxConcurrent int) httpLimits {
	return httpLimits{
		readHeader:     10 * time.Second,
		read:           time.Minute,
		write:          time.Minute + 30*time.Second,
		idle:           2 * time.Minute,
		maxHeaderBytes: 64 << 10,
		maxConcurrent:  maxConcurrent,
	}
}

// serveHTTP serves h on l within lim, over TLS when tlsr is set, until ctx ends, then shuts down
// within ShutdownGrace: it returns once the requests in flight are answered. name tells the
// servers apart in logs and errors.
func serveHTTP(ctx context.Context, name string, l net.Listener, h http.Handler, lim httpLimits, tlsr *tlsconf.Reloader, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           limitConcurrency(h, lim.maxConcurrent),
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		WriteTimeout:      lim.write,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    lim.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	if tlsr != nil {
		srv.TLSConfig = tlsr.Config("h2", "http/1.1")
		go func() { errc <- srv.ServeTLS(l, "", "") }()
	} else {
		go func() { errc <- srv.Serve(l) }()
	}
	log.Info(name+" listening", "addr", l.Addr().String(), "max_concurrent", lim.maxConcurrent, "tls", tlsr != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("%s server %s: %w", name, l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("%s shutdown: %w", name, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", name, err)
	}
	return nil
}

// limitConcurrency serves at most max requests at once and answers the rest 503 at once, so a
// flood costs a refusal each instead of a goroutine, a body and a connection held in a queue.
// The probes are exempt: an overloaded service is alive, and its readiness is its own question.
func limitConcurrency(h http.Handler, max int) http.Handler {
	slots := make(chan struct{}, max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			h.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "overloaded",
				"reason": "the server is answering as many requests as it may at once; retry shortly"})
		}
	})
}

// gRPC limits that operators are not expected to tune.
const (
	// grpcMaxRecvBytes is gRPC's usual default, set so a library upgrade cannot raise it.
	grpcMaxRecvBytes = 4 << 20
	// A client may ping at most every grpcPingMinTime, also between calls; more often is abuse
	// and ends its connection.
	grpcPingMinTime = 10 * time.Second
	// A connection without calls for grpcMaxIdle is closed; one quiet for grpcPingTime is
	// pinged, and closed when the ping is not answered within grpcPingTimeout.
	grpcMaxIdle     = 15 * time.Minute
	grpcPingTime    = time.Minute
	grpcPingTimeout = 20 * time.Second
)

// newGRPC returns a gRPC server with tracing, the standard health service and reflection, that
// serves at most maxStreams calls at once on each connection (the client queues the rest), over
// TLS when tlsr is set; extra adds to those options (the access interceptors).
func newGRPC(maxStreams uint32, tlsr *tlsconf.Reloader, tp trace.TracerProvider, extra ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	opts := extra
	if tlsr != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsr.Config())))
	}
	s := grpc.NewServer(append(opts,
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp))),
		grpc.MaxConcurrentStreams(maxStreams),
		grpc.MaxRecvMsgSize(grpcMaxRecvBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: grpcPingMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: grpcMaxIdle, Time: grpcPingTime, Timeout: grpcPingTimeout}),
	)...)
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
