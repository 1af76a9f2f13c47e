package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/natsconn"
	"github.com/ticketpulse/ticketpulse/services/platform/redisconn"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/tenants"
	"github.com/ticketpulse/ticketpulse/services/platform/tlsconf"
)

// Addrs are the addresses a service's listeners are bound to; GRPC is empty without gRPC, Admin
// without the admin server.
type Addrs struct{ GRPC, HTTP, Admin string }

// Hooks let a test watch a service it runs in-process; the zero value watches nothing.
type Hooks struct {
	// Listening, when set, receives the bound addresses just before the servers serve (tests
	// listen on port 0).
	Listening func(Addrs)
}

// Service is a started service: connected, its listeners bound, its servers not serving yet, so
// the service can register its gRPC services, HTTP routes and readiness checks first.
type Service struct {
	spec    Spec
	log     *slog.Logger
	hooks   Hooks
	tel     *telemetry.Telemetry
	nc      *nats.Conn
	rdb     redis.UniversalClient
	grpc    *grpc.Server
	tenants *tenants.Registry[tenants.NoSources] // gRPC services only
	health  *health.Server
	mux     *http.ServeMux
	admin   *http.ServeMux
	grpcLn  net.Listener
	httpLn  net.Listener
	adminLn net.Listener
	httpLim httpLimits
	// tls serves every listener when the settings name a certificate; nil means plain.
	tls *tlsconf.Reloader
	// conns check the connections; checks what the service added, which need the connections.
	conns  []namedCheck
	checks []func(context.Context) error
	// closers release what New acquired; Close runs them newest first.
	closers []func() error
}

// New sets up telemetry, connects to NATS (and Redis when spec says so) and binds the
// listeners. Serve releases everything when it returns; until then Close does.
func New(ctx context.Context, spec Spec, c Common, hooks Hooks, log *slog.Logger) (*Service, error) {
	s := &Service{spec: spec, log: log, hooks: hooks}
	if err := s.open(ctx, c); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// namedCheck is a readiness check with the fixed word /readyz shows when it fails.
type namedCheck struct {
	name  string
	check func(context.Context) error
}

func (s *Service) open(ctx context.Context, c Common) error {
	c.fillLimits(s.spec)
	tel, err := telemetry.Setup(ctx, s.spec.Name, c.OTLPEndpoint)
	if err != nil {
		return err
	}
	s.tel = tel
	s.closers = append(s.closers, s.shutdownTelemetry)
	if tel.Traces.OTLP.Enabled {
		s.log.Info("exporting traces", "otlp", tel.Traces.OTLP.String(), "sampler", tel.Traces.SamplerName)
	}
	// Before any connection: a certificate that cannot serve is a configuration error.
	if err := s.loadTLS(c); err != nil {
		return err
	}
	if s.nc, err = natsconn.Connect(c.NATSURL, s.spec.Name, c.NATSAuth(), s.log); err != nil {
		return err
	}
	s.closers = append(s.closers, s.drainNATS)
	s.conns = append(s.conns, namedCheck{"nats", func(context.Context) error {
		if st := s.nc.Status(); st != nats.CONNECTED {
			return fmt.Errorf("nats %s", st)
		}
		return nil
	}})
	connected := []any{"nats", s.nc.ConnectedUrlRedacted()}
	if s.spec.Redis {
		target, err := redisconn.Parse(c.RedisURL, c.RedisOptions())
		if err != nil {
			return err
		}
		redisconn.LogTo(s.log)
		if s.rdb, err = target.Connect(ctx); err != nil {
			return err
		}
		s.closers = append(s.closers, s.rdb.Close)
		if err := redisconn.Instrument(s.rdb, s.tel.TracerProvider); err != nil {
			return err
		}
		s.conns = append(s.conns, namedCheck{"redis", func(ctx context.Context) error {
			if err := redisconn.Ping(ctx, s.rdb); err != nil {
				return fmt.Errorf("redis ping: %w", err)
			}
			return nil
		}})
		connected = append(connected, "redis_mode", string(target.Mode), "redis", strings.Join(target.Seeds, ","))
		if target.Mode == redisconn.Cluster {
			connected = append(connected, "redis_masters", redisconn.Masters(ctx, s.rdb))
		}
		if target.Mode == redisconn.Sentinel {
			connected = append(connected, "redis_master_name", target.MasterName)
		}
	}
	if s.spec.GRPCAddr != "" {
		if s.grpcLn, err = listen(c.GRPCAddr); err != nil {
			return fmt.Errorf("grpc: %w", err)
		}
		s.closers = append(s.closers, closeListener(s.grpcLn))
		// The registry only gates gRPC here: ingest, without gRPC, opens its own, typed with its
		// webhook sources, so one file has one registry and one watcher per process.
		if s.tenants, err = tenants.Open(ctx, c.TenantsFile, tenants.Options{Log: s.log}); err != nil {
			return err
		}
		if err := s.tenants.Instrument(s.tel.Meter); err != nil {
			return err
		}
		gate := auth.NewGate(s.tenants, s.log)
		s.grpc, s.health = newGRPC(uint32(c.GRPCMaxStreams), s.tls, s.tel.TracerProvider,
			grpc.ChainUnaryInterceptor(gate.UnaryInterceptor(s.spec.Access)),
			grpc.ChainStreamInterceptor(gate.StreamInterceptor(s.spec.Access)))
	}
	if s.httpLn, err = listen(c.HTTPAddr); err != nil {
		return fmt.Errorf("http: %w", err)
	}
	s.closers = append(s.closers, closeListener(s.httpLn))
	s.httpLim = defaultHTTPLimits(c.HTTPMaxConcurrent)
	rl := &readiness{log: s.log}
	s.mux = newMux(s.ready, rl)
	if c.AdminAddr != "" {
		if s.adminLn, err = listen(c.AdminAddr); err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		s.closers = append(s.closers, closeListener(s.adminLn))
		s.admin = newAdminMux(s.ready, rl, s.tel.Metrics)
	}
	s.log.Info("connected", connected...)
	return nil
}

// Close releases what New acquired, newest first, so nothing is used after it is closed. It is
// for a service that fails between New and Serve; a second call does nothing.
func (s *Service) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// NATS is the service's NATS connection.
func (s *Service) NATS() *nats.Conn { return s.nc }

// JetStream is a JetStream client on the service's connection, with the streams the service
// owns created, or updated to these settings.
func (s *Service) JetStream(ctx context.Context, streams ...jetstream.StreamConfig) (jetstream.JetStream, error) {
	js, err := jetstream.New(s.nc)
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

// Tenants is the tenants registry of a service with gRPC (nil without), for work that goes over
// every tenant.
func (s *Service) Tenants() *tenants.Registry[tenants.NoSources] { return s.tenants }

// Redis is the service's Redis client; nil unless its Spec says Redis.
func (s *Service) Redis() redis.UniversalClient { return s.rdb }

// Meter makes the service's metrics, served on the admin server's /metrics.
func (s *Service) Meter() metric.Meter { return s.tel.Meter }

// Tracer starts the service's spans.
func (s *Service) Tracer() trace.Tracer { return s.tel.Tracer }

// TracerProvider is what the service's instrumentation (HTTP clients) records spans with.
func (s *Service) TracerProvider() trace.TracerProvider { return s.tel.TracerProvider }

// Tracing is whether the service's spans are recorded and exported; when not, spans only carry
// trace context along.
func (s *Service) Tracing() bool { return s.tel.Recording }

// GRPC is the gRPC server the service registers its services on before Serve; each is reported
// SERVING by the health service once it serves. Nil for a service without gRPC.
func (s *Service) GRPC() *grpc.Server { return s.grpc }

// HTTP is the HTTP server's mux, already holding /healthz and /readyz; the service adds its
// routes before Serve. /metrics and pprof are on the admin server, never here.
func (s *Service) HTTP() *http.ServeMux { return s.mux }

// AddReady adds a condition /readyz checks once the connections are up; call it before Serve.
// Its failure shows on /readyz as "service" and its error only in the log.
func (s *Service) AddReady(check func(context.Context) error) { s.checks = append(s.checks, check) }

// Addrs are the bound listener addresses.
func (s *Service) Addrs() Addrs {
	a := Addrs{HTTP: s.httpLn.Addr().String()}
	if s.grpcLn != nil {
		a.GRPC = s.grpcLn.Addr().String()
	}
	if s.adminLn != nil {
		a.Admin = s.adminLn.Addr().String()
	}
	return a
}

// Serve runs the servers and the workers until ctx ends or one of them fails. Then the servers
// stop taking work and finish what is in flight, the workers return, and only then are the
// connections closed (NATS drained, so what was published is delivered). A clean stop returns nil.
func (s *Service) Serve(ctx context.Context, workers ...func(context.Context) error) error {
	if err := s.checkAccess(); err != nil {
		return errors.Join(err, s.Close())
	}
	g, gctx := errgroup.WithContext(ctx)
	if s.grpc != nil {
		for name := range s.grpc.GetServiceInfo() {
			// Health and reflection are the server's own, not services of this one.
			if !strings.HasPrefix(name, "grpc.") {
				s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
			}
		}
		g.Go(func() error { return serveGRPC(gctx, s.grpcLn, s.grpc, s.health, s.log) })
		g.Go(func() error { return s.tenants.Watch(gctx) })
	}
	g.Go(func() error { return serveHTTP(gctx, "http", s.httpLn, s.mux, s.httpLim, s.tls, s.log) })
	if s.adminLn != nil {
		g.Go(func() error { return serveHTTP(gctx, "admin", s.adminLn, s.admin, s.httpLim, s.tls, s.log) })
	}
	for _, w := range workers {
		g.Go(func() error { return w(gctx) })
	}
	if s.hooks.Listening != nil {
		s.hooks.Listening(s.Addrs())
	}
	return errors.Join(g.Wait(), s.Close())
}

// checkAccess refuses to serve a gRPC method without an access rule: the gate would refuse every
// call to it, and a method nobody can call is a mistake to catch at start, not in production.
func (s *Service) checkAccess() error {
	if s.grpc == nil {
		return nil
	}
	var missing []string
	for name, info := range s.grpc.GetServiceInfo() {
		if strings.HasPrefix(name, "grpc.") {
			continue
		}
		for _, m := range info.Methods {
			full := "/" + name + "/" + m.Name
			if _, ok := s.spec.Access[full]; !ok {
				missing = append(missing, full)
			}
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("gRPC methods without an access rule in the service's Spec.Access: %s", strings.Join(missing, ", "))
	}
	return nil
}

// ready reports whether the service can do its work now, and if not, the words naming what
// fails; /readyz turns an error into 503.
func (s *Service) ready(ctx context.Context) (failing []string, err error) {
	var errs []error
	for _, c := range s.conns {
		if err := c.check(ctx); err != nil {
			failing = append(failing, c.name)
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return failing, err
	}
	for _, check := range s.checks {
		if err := check(ctx); err != nil {
			return []string{"service"}, err
		}
	}
	return nil, nil
}

// loadTLS reads the TLS files the settings name, naming the flag of a file that cannot serve.
func (s *Service) loadTLS(c Common) error {
	// Main checked this already; a Common built in code may not have been.
	if err := c.CheckTLS(); err != nil {
		return err
	}
	if c.TLSCert == "" {
		return nil
	}
	r, err := tlsconf.New(tlsconf.Files{Cert: c.TLSCert, Key: c.TLSKey, ClientCA: c.TLSClientCA}, tlsconf.DefaultCheckEvery, s.log)
	if err != nil {
		flag := "tls"
		var fe *tlsconf.FileError
		if errors.As(err, &fe) {
			flag = map[tlsconf.Role]string{tlsconf.RoleCert: "tls-cert", tlsconf.RoleKey: "tls-key", tlsconf.RoleClientCA: "tls-client-ca"}[fe.Role]
		}
		return fmt.Errorf("-%s: %w", flag, err)
	}
	s.tls = r
	leaf := r.Leaf()
	s.log.Info("tls on", "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "client_certificates", r.Mutual())
	return nil
}

// drainNATS lets what the service published reach the server before the connection closes.
func (s *Service) drainNATS() error {
	closed := s.nc.StatusChanged(nats.CLOSED)
	if err := s.nc.Drain(); err != nil {
		// Not connected: there is nothing to deliver.
		s.nc.Close()
		return nil
	}
	select {
	case <-closed:
		return nil
	case <-time.After(ShutdownGrace):
		s.nc.Close()
		return fmt.Errorf("nats drain did not finish in %s", ShutdownGrace)
	}
}

func (s *Service) shutdownTelemetry() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.tel.Shutdown(ctx); err != nil {
		// Traces still buffered are lost; the service itself stopped cleanly.
		s.log.Warn("telemetry shutdown", "err", err)
	}
	return nil
}

// closeListener closes l unless its server already did.
func closeListener(l net.Listener) func() error {
	return func() error {
		_ = l.Close()
		return nil
	}
}
