// Package app wires the console: the tenants file (to check API keys and map ID tokens at
// sign-in), the gRPC clients of kpi, escalation and notify, the session key, and the web
// handler on the platform's HTTP server beside /healthz and /readyz.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/console/internal/session"
	"github.com/ticketpulse/ticketpulse/services/console/internal/web"
	"github.com/ticketpulse/ticketpulse/services/platform/clienttls"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/tenants"
)

// Name is the service name in logs, traces and the NATS connection.
const Name = "console"

// Spec is the console as the platform runs it: HTTP only, no Redis, no gRPC server of its own.
var Spec = service.Spec{
	Name:       Name,
	Summary:    "console serves the supervisors' web console (team and agent KPIs, escalations, deliveries), calling kpi, escalation and notify with the signed-in person's own API key or ID token.",
	HTTPAddr:   "127.0.0.1:8088",
	HTTPServes: "the console's pages, /healthz, /readyz",
	AdminAddr:  "127.0.0.1:8288",
}

// Config is everything the console reads from flags and the environment.
type Config struct {
	service.Common
	KPIAddr, EscalationAddr, NotifyAddr string
	// Upstream TLS: the CA that signs the services' certificates and an optional client pair.
	UpstreamTLSCA, UpstreamTLSCert, UpstreamTLSKey string
	SessionKeyFile                                 string
	SessionMaxAge, CallTimeout, Refresh            time.Duration
	SimulateTimeout                                time.Duration
	MaxStreams                                     int
	// PublicURL is the console's address as browsers reach it; its scheme decides Secure cookies.
	PublicURL                                string
	OIDCIssuer, OIDCClientID, OIDCSecretFile string
	OIDCScopes                               string
}

// Register declares the settings on s.
func (c *Config) Register(s *envflag.Set) {
	c.Common.Register(s, Spec)
	s.String(&c.KPIAddr, "kpi-addr", "127.0.0.1:9090", "gRPC address of kpi (KpiService).")
	s.String(&c.EscalationAddr, "escalation-addr", "127.0.0.1:9091", "gRPC address of escalation (EscalationService).")
	s.String(&c.NotifyAddr, "notify-addr", "127.0.0.1:9092", "gRPC address of notify (NotificationService).")
	s.String(&c.UpstreamTLSCA, "upstream-tls-ca", "", "PEM file of the CAs that sign kpi's, escalation's and notify's certificates; setting it (or -upstream-tls-cert) calls them over TLS. Empty with no client certificate: plain text, for loopback only.")
	s.String(&c.UpstreamTLSCert, "upstream-tls-cert", "", "PEM client certificate shown to the services (when they require mTLS); needs -upstream-tls-key.")
	s.String(&c.UpstreamTLSKey, "upstream-tls-key", "", "PEM private key of -upstream-tls-cert.")
	s.String(&c.SessionKeyFile, "session-key-file", "", "File holding the key that seals session cookies (AES-256-GCM): 64 hex digits, e.g. from openssl rand -hex 32. Every replica needs the same key; changing it signs everyone out. Empty: a random key per start (sessions end when the console restarts), fit only for a local run.")
	s.Duration(&c.SessionMaxAge, "session-max-age", 12*time.Hour, "Longest a sign-in lasts, with an API key or OpenID Connect alike, counted from the sign-in and checked on every request (lowering it ends older sessions too). A session from an ID token ends sooner when the token expires first; it is never renewed: people sign in again. At least 1m.")
	s.Duration(&c.CallTimeout, "call-timeout", 10*time.Second, "Longest wait for kpi, escalation or notify when rendering a page or acting.")
	s.Duration(&c.SimulateTimeout, "simulate-timeout", 75*time.Second, "Longest wait for one what-if (SimulateRules replays up to 31 days of events); past it the rules page says the simulation timed out. 1s to 85s: the answer must still reach the browser within the HTTP server's 90 s write timeout.")
	s.Duration(&c.Refresh, "refresh", 60*time.Second, "How often an open team page refreshes its figures in the browser (0: never).")
	s.Int(&c.MaxStreams, "max-streams-per-session", 4, "Most live escalation streams (server-sent events, each one WatchEscalations call) one session may hold open at once; more are answered 429.")
	s.String(&c.PublicURL, "public-url", "", "The console's URL as browsers reach it, e.g. https://console.example.com (used for the OIDC redirect, /oidc/callback). Cookies are Secure unless it is plain http on a loopback address. Empty: http://<-http-addr>, for a local run.")
	s.String(&c.OIDCIssuer, "oidc-issuer", "", "OpenID Connect issuer URL people sign in with (authorization-code flow with PKCE). The tenants file must list the same issuer and -oidc-client-id as audience for each tenant (docs/tenants.md). Empty: API-key sign-in only.")
	s.String(&c.OIDCClientID, "oidc-client-id", "", "Client id the console is registered with at the issuer; also the ID tokens' audience.")
	s.String(&c.OIDCSecretFile, "oidc-client-secret-file", "", "File holding the client secret (empty for a public client, which PKCE protects).")
	s.String(&c.OIDCScopes, "oidc-scopes", "profile,email", "Comma-separated scopes asked for besides openid (a provider may need one for the roles claim).")
}

// Validate reports settings that cannot work, naming the flag.
func (c Config) Validate() error {
	var v envflag.Checks
	v.NotEmpty("kpi-addr", c.KPIAddr)
	v.NotEmpty("escalation-addr", c.EscalationAddr)
	v.NotEmpty("notify-addr", c.NotifyAddr)
	v.AtLeast("session-max-age", c.SessionMaxAge, time.Minute)
	v.Positive("call-timeout", c.CallTimeout)
	if c.SimulateTimeout < time.Second || c.SimulateTimeout > maxSimulateTimeout {
		v.Add(fmt.Errorf("-simulate-timeout %s: want 1s to %s", c.SimulateTimeout, maxSimulateTimeout))
	}
	v.NotNegative("refresh", c.Refresh)
	v.Between("max-streams-per-session", c.MaxStreams, 1, 64)
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.Add(fmt.Errorf("-public-url %q: want an http or https URL", c.PublicURL))
		}
	}
	if (c.OIDCIssuer == "") != (c.OIDCClientID == "") {
		v.Add(errors.New("-oidc-issuer and -oidc-client-id go together"))
	}
	if (c.UpstreamTLSCert == "") != (c.UpstreamTLSKey == "") {
		v.Add(errors.New("-upstream-tls-cert and -upstream-tls-key go together"))
	}
	return v.Err()
}

// maxSimulateTimeout keeps a what-if's answer within the platform's 90 s HTTP write timeout.
const maxSimulateTimeout = 85 * time.Second

// Deps are what a test replaces in a running console; the zero value is production.
type Deps struct {
	service.Hooks
	Now func() time.Time
	// AfterPrimary runs between the team page's primary call and its secondary ones (web.Options).
	AfterPrimary func(page string)
}

// Run is the console process: it serves until ctx ends, then shuts down.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error { return Deps{}.Run(ctx, cfg, log) }

// Run runs the console with deps' clock and hooks.
func (deps Deps) Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	key, err := sessionKey(cfg.SessionKeyFile, log)
	if err != nil {
		return err
	}
	public := cfg.PublicURL
	if public == "" {
		public = "http://" + cfg.HTTPAddr
	}
	codec, err := session.NewCodec(key, secureCookies(public, cfg.TLSCert != ""), cfg.SessionMaxAge, deps.Now)
	if err != nil {
		return err
	}
	var oidcFlow *web.OIDC
	if cfg.OIDCIssuer != "" {
		oidcFlow = &web.OIDC{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, RedirectURL: strings.TrimSuffix(public, "/") + "/oidc/callback"}
		if cfg.OIDCSecretFile != "" {
			if oidcFlow.ClientSecret, err = readSecret(cfg.OIDCSecretFile); err != nil {
				return err
			}
		}
		for sc := range strings.SplitSeq(cfg.OIDCScopes, ",") {
			if sc = strings.TrimSpace(sc); sc != "" {
				oidcFlow.Scopes = append(oidcFlow.Scopes, sc)
			}
		}
	}
	svc, err := service.New(ctx, Spec, cfg.Common, deps.Hooks, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	// The console has no gRPC server, so the platform opens no registry for it; it reads the
	// same tenants file to check a key or an ID token at sign-in.
	reg, err := tenants.Open(ctx, cfg.TenantsFile, tenants.Options{Log: log})
	if err != nil {
		return err
	}
	conns, err := dialUpstreams(cfg, svc)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	h, err := web.New(web.Options{Codec: codec, Auth: reg, KPI: tpv1.NewKpiServiceClient(conns[0]), Esc: tpv1.NewEscalationServiceClient(conns[1]),
		Notif: tpv1.NewNotificationServiceClient(conns[2]), Log: log, SessionMaxAge: cfg.SessionMaxAge, CallTimeout: cfg.CallTimeout, SimulateTimeout: cfg.SimulateTimeout,
		MaxStreams: cfg.MaxStreams, Refresh: cfg.Refresh, OIDC: oidcFlow, Now: deps.Now, AfterPrimary: deps.AfterPrimary})
	if err != nil {
		return err
	}
	svc.HTTP().Handle("/", h)
	return svc.Serve(ctx, reg.Watch)
}

// maxRecvBytes bounds one answer of a service. gRPC's default of 4 MB is too little for the team
// page's sparklines: one ListKpiSeries page of 500 agents holds up to 500 × 120 points (ten
// years by month), and kpi puts a point at up to about 400 bytes (docs/kpis.md), so 24 MB; a
// month by day of 500 busy agents is already 4.5 MB since the QA and call figures joined Kpis.
const maxRecvBytes = 64 << 20

// dialUpstreams makes the clients of kpi, escalation and notify, in that order. Connections
// are lazy: a service that is down fails the pages that need it, not the console's start.
func dialUpstreams(cfg Config, svc *service.Service) ([]*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	tc, err := clienttls.Config(cfg.UpstreamTLSCA, cfg.UpstreamTLSCert, cfg.UpstreamTLSKey)
	if err != nil {
		return nil, fmt.Errorf("-upstream-tls-*: %w", err)
	}
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	var conns []*grpc.ClientConn
	for _, addr := range []string{cfg.KPIAddr, cfg.EscalationAddr, cfg.NotifyAddr} {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)),
			grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(svc.TracerProvider()))))
		if err != nil {
			for _, o := range conns {
				o.Close()
			}
			return nil, fmt.Errorf("client of %s: %w", addr, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// secureCookies is false only for plain http on a loopback address (a local run); anything
// else is reached over TLS, here or at a proxy in front.
func secureCookies(public string, tls bool) bool {
	if tls {
		return true
	}
	u, err := url.Parse(public)
	if err != nil || u.Scheme != "http" {
		return true
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return !(host == "localhost" || (ip != nil && ip.IsLoopback()))
}

func sessionKey(path string, log *slog.Logger) ([]byte, error) {
	if path != "" {
		return session.LoadKey(path)
	}
	log.Warn("no -session-key-file: sessions are sealed with a random key and end when the console restarts")
	return session.RandomKey()
}
