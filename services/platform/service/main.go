// Package service is the common body of every Ticketpulse service: its shared settings, main's
// work (flags over the environment, the logger, SIGINT/SIGTERM, the exit code), the connections
// to NATS and optionally Redis, the HTTP server (/healthz, /readyz and the service's own routes),
// the optional gRPC server (health, reflection, tracing), the admin server (/metrics, pprof and
// the probes), TLS on all of them when configured, the service's workers run beside them, and a
// graceful stop.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/natsconn"
	"github.com/ticketpulse/ticketpulse/services/platform/redisconn"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// Spec describes a service: its name, what it uses and where it listens by default.
type Spec struct {
	// Name is the service name in logs, traces, metrics and the NATS connection.
	Name string
	// Summary heads -h.
	Summary string
	// HTTPAddr is the default HTTP address; HTTPServes names what it serves, for -h (the health
	// endpoints when empty).
	HTTPAddr, HTTPServes string
	// AdminAddr is the default address of the admin server (/metrics, /debug/pprof/, the
	// probes), on loopback; empty leaves it off unless -admin-addr sets one.
	AdminAddr string
	// GRPCAddr is the default gRPC address, empty for a service without gRPC; GRPCServes names
	// what it serves, for -h.
	GRPCAddr, GRPCServes string
	// Redis is whether the service keeps state in Redis.
	Redis bool
	// Access is the scope each gRPC method (by full name, "/package.Service/Method") requires.
	// A method without one is refused to every caller, and Serve refuses to start with it.
	Access map[string]auth.Scope
	// GCPercent is the garbage collector's target (GOGC) when the environment sets none; 0 keeps
	// Go's 100. A service whose hot path allocates a lot on a small live heap spends less CPU on
	// collection with a higher one, for a little more memory.
	GCPercent int
}

// Common are the settings every service has.
type Common struct {
	NATSURL      string
	RedisURL     string // empty unless Spec.Redis
	LogLevel     string
	LogFormat    string
	OTLPEndpoint string
	GRPCAddr     string // empty unless Spec.GRPCAddr
	HTTPAddr     string
	// TenantsFile is the registry of tenants and their credentials (package tenants); empty means
	// no tenant exists, so every API request is refused.
	TenantsFile string
	// HTTPMaxConcurrent caps the HTTP requests served at once (the probes aside); 0 is the default.
	HTTPMaxConcurrent int
	// GRPCMaxStreams caps the gRPC calls served at once on one connection; 0 is the default.
	GRPCMaxStreams int
	// AdminAddr is where the admin server listens; empty disables it.
	AdminAddr string
	// TLSCert and TLSKey are PEM files; when set, every server speaks TLS only. TLSClientCA, when
	// set, makes every server require a client certificate signed by it.
	TLSCert, TLSKey, TLSClientCA string

	// NATSCreds, NATSNKey and the NATS TLS files log in to NATS beside a user and password in
	// NATSURL (natsconn.Auth).
	NATSCreds, NATSNKey                string
	NATSTLSCA, NATSTLSCert, NATSTLSKey string
	// RedisTLSCA, RedisTLSCert and RedisTLSKey are the TLS files for Redis; unused unless Spec.Redis.
	RedisTLSCA, RedisTLSCert, RedisTLSKey string
	// RedisMode is how RedisURL's addresses are read (redisconn.Mode; empty is single) and
	// RedisMasterName the Sentinel master's name.
	RedisMode, RedisMasterName string
}

// Default limits: far above what one instance serves in practice, far below what exhausts it.
const (
	DefaultHTTPMaxConcurrent = 1024
	DefaultGRPCMaxStreams    = 1024
)

// Defaults are the common settings a service starts from before the environment and flags.
func Defaults(spec Spec) Common {
	c := Common{NATSURL: "nats://127.0.0.1:4222", LogLevel: "info", LogFormat: "text", HTTPAddr: spec.HTTPAddr, GRPCAddr: spec.GRPCAddr,
		AdminAddr: spec.AdminAddr}
	if spec.Redis {
		c.RedisURL = "redis://127.0.0.1:6379/0"
	}
	c.fillLimits(spec)
	return c
}

// fillLimits sets the limits left zero to their defaults, so a Common built in code without them
// still runs bounded.
func (c *Common) fillLimits(spec Spec) {
	if c.HTTPMaxConcurrent == 0 {
		c.HTTPMaxConcurrent = DefaultHTTPMaxConcurrent
	}
	if c.GRPCMaxStreams == 0 && spec.GRPCAddr != "" {
		c.GRPCMaxStreams = DefaultGRPCMaxStreams
	}
}

// Check adds the common settings that cannot work to v.
func (c *Common) Check(v *envflag.Checks, spec Spec) {
	v.AtLeastN("http-max-concurrent", c.HTTPMaxConcurrent, 1)
	v.Add(c.NATSAuth().Check("nats-")...)
	if _, err := telemetry.TracesFromEnv(os.LookupEnv, c.OTLPEndpoint); err != nil {
		v.Add(err)
	}
	if spec.Redis {
		v.Add(c.RedisTLS().Check("redis-")...)
		if c.RedisMode != "" {
			v.OneOf("redis-mode", c.RedisMode, redisconn.Modes...)
		}
		if c.RedisMasterName != "" && c.RedisMode != "" && c.RedisMode != string(redisconn.Sentinel) {
			v.Add(fmt.Errorf("-redis-master-name %q: only with -redis-mode sentinel", c.RedisMasterName))
		}
	}
	if spec.GRPCAddr != "" {
		v.Between("grpc-max-streams", c.GRPCMaxStreams, 1, math.MaxInt32)
	}
}

// CheckTLS requires the certificate and the key together, and a client CA only with them. That
// the files serve is checked when the service starts (New).
func (c *Common) CheckTLS() error {
	var errs []error
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		errs = append(errs, fmt.Errorf("-tls-cert %q: needs -tls-key as well", c.TLSCert))
	case c.TLSKey != "" && c.TLSCert == "":
		errs = append(errs, fmt.Errorf("-tls-key %q: needs -tls-cert as well", c.TLSKey))
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		errs = append(errs, fmt.Errorf("-tls-client-ca %q: needs -tls-cert and -tls-key (client certificates are asked for on TLS connections only)", c.TLSClientCA))
	}
	return errors.Join(errs...)
}

// Register declares the common settings spec's service has.
func (c *Common) Register(s *envflag.Set, spec Spec) {
	d := Defaults(spec)
	s.String(&c.NATSURL, "nats-url", d.NATSURL, "NATS server URL (JetStream must be enabled); nats://user:pass@host:4222 logs in with a user and password, tls:// requires TLS. Comma-separated for a cluster.")
	s.String(&c.NATSCreds, "nats-creds", d.NATSCreds, "NATS credentials file (.creds: a user JWT and its NKey seed) to log in with; not with -nats-nkey.")
	s.String(&c.NATSNKey, "nats-nkey", d.NATSNKey, "File holding the NKey seed (SU...) to log in to NATS with; not with -nats-creds.")
	s.String(&c.NATSTLSCA, "nats-tls-ca", d.NATSTLSCA, "PEM file of the CAs that sign the NATS server's certificate; setting it (or -nats-tls-cert) turns TLS on. Empty trusts the system's CAs.")
	s.String(&c.NATSTLSCert, "nats-tls-cert", d.NATSTLSCert, "PEM client certificate shown to NATS (for a server that verifies clients); needs -nats-tls-key.")
	s.String(&c.NATSTLSKey, "nats-tls-key", d.NATSTLSKey, "PEM private key of -nats-tls-cert.")
	if spec.Redis {
		s.String(&c.RedisURL, "redis-url", d.RedisURL, "Redis URL: redis://user:pass@127.0.0.1:6379/0 logs in as an ACL user; rediss:// requires TLS. "+
			"A Redis Cluster: its seed nodes, more of them as addr= parameters, database 0 only: redis://user:pass@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000. "+
			"Sentinel: the sentinels and the master's name: redis://user:pass@10.0.0.1:26379/0?addr=10.0.0.2:26379&master_name=mymaster "+
			"(the user and password log in to the sentinels and the master, unless username= and password= parameters give the master's own).")
		s.String(&c.RedisMode, "redis-mode", d.RedisMode, "How -redis-url's addresses are read: single (one server), cluster (seed nodes of a Redis Cluster; the client follows the slot map and failovers) "+
			"or sentinel (sentinels; the client follows the master they name). Empty: from -redis-url (master_name= or -redis-master-name: sentinel; addr= seeds: cluster; else single). "+
			"Set cluster to reach a cluster through a single seed.")
		s.String(&c.RedisMasterName, "redis-master-name", d.RedisMasterName, "Name the sentinels monitor the Redis master under (instead of master_name= in -redis-url); means -redis-mode sentinel.")
		s.String(&c.RedisTLSCA, "redis-tls-ca", d.RedisTLSCA, "PEM file of the CAs that sign the Redis server's certificate; setting it (or -redis-tls-cert) turns TLS on. Empty trusts the system's CAs.")
		s.String(&c.RedisTLSCert, "redis-tls-cert", d.RedisTLSCert, "PEM client certificate shown to Redis (for tls-auth-clients); needs -redis-tls-key.")
		s.String(&c.RedisTLSKey, "redis-tls-key", d.RedisTLSKey, "PEM private key of -redis-tls-cert.")
	}
	s.String(&c.TenantsFile, "tenants-file", d.TenantsFile,
		"YAML file of the tenants: their API keys and identity providers (for ingest also their webhook sources and rate limits); see docs/tenants.md. Reloaded when it changes; a broken change is logged and ignored. Empty: no tenant exists and every API request is refused.")
	s.String(&c.LogLevel, "log-level", d.LogLevel, "Log level: debug, info, warn or error.")
	s.String(&c.LogFormat, "log-format", d.LogFormat, "Log format: text or json.")
	s.String(&c.OTLPEndpoint, "otlp-endpoint", d.OTLPEndpoint, "OpenTelemetry collector that receives the service's traces and metrics, as host:port (OTLP/gRPC in plain text) or an http:// or https:// URL; "+
		"OTEL_EXPORTER_OTLP_ENDPOINT, or the signal's own OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _METRICS_ENDPOINT, wins over it. Empty, with no OTEL_* endpoint either: nothing is exported and no connection is made (trace context still propagates, metrics stay on /metrics). "+
		"The standard variables tune the exporters: OTEL_EXPORTER_OTLP_PROTOCOL (grpc, the default, or http/protobuf), _HEADERS (name=value,... URL-encoded; never logged), "+
		"_CERTIFICATE (CA PEM), _CLIENT_CERTIFICATE and _CLIENT_KEY (mTLS), _INSECURE, _TIMEOUT (ms, at most 60000), _COMPRESSION (gzip or none), each also per signal as OTEL_EXPORTER_OTLP_TRACES_* or _METRICS_*; "+
		"OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on), OTEL_TRACES_EXPORTER=none and OTEL_SDK_DISABLED=true turn export off, "+
		"OTEL_METRICS_EXPORTER (otlp, prometheus or none; none stops the push, /metrics stays), OTEL_METRIC_EXPORT_INTERVAL (milliseconds, default 60000), "+
		"OTEL_RESOURCE_ATTRIBUTES adds to the resource, OTEL_BSP_* tune the batch export. A bad value stops the service at start, naming the variable.")
	if spec.GRPCAddr != "" {
		s.String(&c.GRPCAddr, "grpc-addr", d.GRPCAddr, "Address the gRPC server ("+spec.GRPCServes+") listens on; use 0.0.0.0:"+port(spec.GRPCAddr)+" inside a container.")
		s.Int(&c.GRPCMaxStreams, "grpc-max-streams", d.GRPCMaxStreams,
			"Most gRPC calls served at once on one client connection; the client queues the others.")
	}
	serves := spec.HTTPServes
	if serves == "" {
		serves = "/healthz, /readyz"
	}
	s.String(&c.HTTPAddr, "http-addr", d.HTTPAddr, "Address the HTTP server ("+serves+") listens on; use 0.0.0.0:"+port(spec.HTTPAddr)+" inside a container.")
	s.Int(&c.HTTPMaxConcurrent, "http-max-concurrent", d.HTTPMaxConcurrent,
		"Most HTTP requests served at once; others are answered 503 with Retry-After: 1 (/healthz and /readyz are exempt).")
	adminPort := port(spec.AdminAddr)
	if adminPort == "" {
		adminPort = "PORT"
	}
	s.String(&c.AdminAddr, "admin-addr", d.AdminAddr, "Address the admin HTTP server (/metrics, /debug/pprof/, /healthz, /readyz) listens on; -admin-addr= (empty) turns it off. "+
		"It serves no tenant data but shows the process's internals (metrics, runtime profiles, command line): keep it on loopback or a private network "+
		"(in a container, 0.0.0.0:"+adminPort+" published only there). Same limits as -http-addr, and TLS when -tls-cert is set.")
	s.String(&c.TLSCert, "tls-cert", d.TLSCert, "PEM certificate (chain) file; with -tls-key every server (HTTP, gRPC, admin) speaks TLS 1.2+ only. "+
		"Read again within seconds of a change, so a renewed certificate needs no restart; a bad replacement is logged and the one in force kept.")
	s.String(&c.TLSKey, "tls-key", d.TLSKey, "PEM private key file of -tls-cert; reloaded with it.")
	s.String(&c.TLSClientCA, "tls-client-ca", d.TLSClientCA, "PEM CA certificates file; when set, every server requires a client certificate signed by one of them (mTLS), "+
		"health probes included. Needs -tls-cert and -tls-key; reloaded on change.")
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// NATSAuth is how the service logs in to NATS beside the URL.
func (c *Common) NATSAuth() natsconn.Auth {
	return natsconn.Auth{Creds: c.NATSCreds, NKey: c.NATSNKey, TLSCA: c.NATSTLSCA, TLSCert: c.NATSTLSCert, TLSKey: c.NATSTLSKey}
}

// RedisTLS are the service's TLS files for Redis.
func (c *Common) RedisTLS() redisconn.TLS {
	return redisconn.TLS{CA: c.RedisTLSCA, Cert: c.RedisTLSCert, Key: c.RedisTLSKey}
}

// RedisOptions are the service's Redis settings beside the URL.
func (c *Common) RedisOptions() redisconn.Options {
	return redisconn.Options{Mode: redisconn.Mode(c.RedisMode), MasterName: c.RedisMasterName, TLS: c.RedisTLS()}
}

// Shared returns the common settings; a service's Config embeds Common and so has it.
func (c *Common) Shared() *Common { return c }

// Config is a service's configuration as Main sees it.
type Config interface {
	// Register declares every setting, the common ones included.
	Register(*envflag.Set)
	// Validate reports the settings that cannot work, each naming its flag.
	Validate() error
	Shared() *Common
}

// Main fills cfg from the environment and args (flags win), then runs run until it returns or
// SIGINT/SIGTERM cancels its context. It returns the process exit code: 0 on success and after
// -h, 2 for bad settings, 1 when run failed.
func Main[C any, P interface {
	*C
	Config
}](spec Spec, args []string, stderr io.Writer, cfg P, run func(context.Context, C, *slog.Logger) error) int {
	summary := spec.Summary
	if spec.GCPercent > 0 {
		summary += fmt.Sprintf("\n\nGOGC, Go's garbage collector target, is %d unless the environment sets it (Go's own\ndefault is 100): a lower value trades CPU for memory.", spec.GCPercent)
	}
	s := envflag.New(spec.Name, summary, os.LookupEnv)
	s.SetOutput(stderr)
	cfg.Register(s)
	err := s.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		var v envflag.Checks
		cfg.Shared().Check(&v, spec)
		err = errors.Join(cfg.Validate(), v.Err(), cfg.Shared().CheckTLS())
	}
	var log *slog.Logger
	if err == nil {
		log, err = telemetry.NewLogger(stderr, cfg.Shared().LogLevel, cfg.Shared().LogFormat)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
		return 2
	}
	log = log.With("service", spec.Name)
	if _, set := os.LookupEnv("GOGC"); !set && spec.GCPercent > 0 {
		debug.SetGCPercent(spec.GCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *cfg, log); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
