package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Registry is what the Gate needs of the tenants registry.
type Registry interface {
	// Known reports whether tenant is in the registry.
	Known(tenant string) bool
	// Authenticate returns who authorization proves the caller is.
	Authenticate(ctx context.Context, authorization string) (Principal, error)
}

// Gate is the one place that decides whether a request may proceed: every HTTP route and gRPC
// method goes through Check, so the order of the checks (and so what a refusal reveals) is the
// same everywhere.
type Gate struct {
	reg Registry
	log *slog.Logger
}

// NewGate returns a Gate deciding with reg and logging refusals to log.
func NewGate(reg Registry, log *slog.Logger) *Gate {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Gate{reg: reg, log: log}
}

// Check authenticates authorization and decides whether it may act on tenant with need. The
// order matters: a stranger learns only that it is not authenticated, a tenant's credential
// used on another tenant only "wrong tenant" (never whether that tenant exists), and only
// operators and the tenant itself can see ErrUnknownTenant.
func (g *Gate) Check(ctx context.Context, authorization, tenant string, need Scope) (Principal, error) {
	return g.check(ctx, authorization, tenant, need, "")
}

func (g *Gate) check(ctx context.Context, authorization, tenant string, need Scope, op string) (Principal, error) {
	p, err := g.authenticate(ctx, authorization, tenant, op)
	if err != nil {
		return Principal{}, err
	}
	if err := g.allow(ctx, p, tenant, need, op); err != nil {
		return Principal{}, err
	}
	return p, nil
}

func (g *Gate) authenticate(ctx context.Context, authorization, tenant, op string) (Principal, error) {
	p, err := g.reg.Authenticate(ctx, authorization)
	if err == nil {
		return p, nil
	}
	attrs := []any{"tenant", logTenant(tenant)}
	if op != "" {
		attrs = append(attrs, "op", op)
	}
	var revoked *RevokedError
	switch {
	case !Unauthenticated(err):
		// The registry fails only with the authentication errors; anything else is a bug
		// there, kept from the caller, and still not a pass.
		g.log.ErrorContext(ctx, "authentication failed unexpectedly", append(attrs, "err", err.Error())...)
		err = ErrInvalid
	case errors.As(err, &revoked):
		g.log.WarnContext(ctx, "refused a revoked api key", append(attrs, "key_tenant", revoked.Tenant, "key", revoked.Name)...)
		// The key's name is the registry's business; its holder only learns it is revoked.
		err = ErrRevoked
	case errors.Is(err, ErrNoCredential):
		g.log.DebugContext(ctx, "refused a request without credential", attrs...)
	default:
		g.log.InfoContext(ctx, "refused an unauthenticated request", append(attrs, "reason", err.Error())...)
	}
	return Principal{}, err
}

func (g *Gate) allow(ctx context.Context, p Principal, tenant string, need Scope, op string) error {
	var err error
	switch {
	case !p.IsOperator() && p.Tenant != tenant:
		err = ErrWrongTenant
	case !g.reg.Known(tenant):
		err = ErrUnknownTenant
	case !p.Has(need):
		err = fmt.Errorf("%w %s", ErrMissingScope, need)
	default:
		return nil
	}
	attrs := []any{"principal", p.ID(), "tenant", logTenant(tenant), "scope", string(need), "reason", err.Error()}
	if op != "" {
		attrs = append(attrs, "op", op)
	}
	if errors.Is(err, ErrWrongTenant) {
		// A valid credential aimed at another tenant is either a misconfigured client or a
		// probe; either way someone should look.
		g.log.WarnContext(ctx, "refused a request for another tenant", attrs...)
	} else {
		g.log.InfoContext(ctx, "refused a request", attrs...)
	}
	return err
}

// logTenant bounds a requested tenant, which the caller chose, in log lines.
func logTenant(t string) string {
	const max = 64
	if len(t) > max {
		return t[:max] + "…"
	}
	return t
}

// Code is the machine-readable code of a refusal, as the HTTP body's "code" carries it.
func Code(err error) string {
	switch {
	case errors.Is(err, ErrNoCredential):
		return "no_credential"
	case errors.Is(err, ErrMalformed):
		return "malformed_credential"
	case errors.Is(err, ErrRevoked):
		return "revoked_credential"
	case errors.Is(err, ErrInvalid):
		return "invalid_credential"
	case errors.Is(err, ErrWrongTenant):
		return "wrong_tenant"
	case errors.Is(err, ErrUnknownTenant):
		return "unknown_tenant"
	case errors.Is(err, ErrMissingScope):
		return "missing_scope"
	case errors.Is(err, ErrNoAccessRule):
		return "no_access_rule"
	}
	return "internal"
}

// ErrNoAccessRule refuses a gRPC method the interceptor's table does not list: a method added
// without deciding who may call it stays closed.
var ErrNoAccessRule = errors.New("method has no access rule")

// GRPCStatus turns a refusal into the gRPC status a client sees: Unauthenticated,
// PermissionDenied or NotFound, with the error's text as the message.
func GRPCStatus(err error) error {
	code := codes.PermissionDenied
	switch {
	case Unauthenticated(err):
		code = codes.Unauthenticated
	case errors.Is(err, ErrUnknownTenant):
		code = codes.NotFound
	}
	return status.Error(code, err.Error())
}

// Rejected is the JSON body of a refused HTTP request, the same shape ingest answers every 4xx
// and 5xx with.
type Rejected struct {
	Error  string `json:"error"`
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Realm is the realm WWW-Authenticate challenges name.
const Realm = "ticketpulse"

// WriteHTTP answers a refusal: 401 with a Bearer challenge (RFC 6750), 403 or 404, with a
// Rejected body.
func WriteHTTP(w http.ResponseWriter, err error) {
	st, title := http.StatusForbidden, "forbidden"
	challenge := ""
	switch {
	case errors.Is(err, ErrNoCredential):
		st, title = http.StatusUnauthorized, "unauthenticated"
		challenge = `Bearer realm="` + Realm + `"`
	case Unauthenticated(err):
		st, title = http.StatusUnauthorized, "unauthenticated"
		challenge = `Bearer realm="` + Realm + `", error="invalid_token"`
	case errors.Is(err, ErrUnknownTenant):
		st, title = http.StatusNotFound, "unknown tenant"
	case errors.Is(err, ErrMissingScope):
		challenge = `Bearer realm="` + Realm + `", error="insufficient_scope"`
	}
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	w.Header().Set("Content-Type", "application/json") // as ingest answers; JSON is UTF-8 by definition (RFC 8259)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(st)
	_ = json.NewEncoder(w).Encode(Rejected{Error: title, Code: Code(err), Reason: err.Error()})
}

// HTTP lets a request through to next only when its Authorization header may act on the path's
// {tenant} with need; next finds the principal with FromContext.
func (g *Gate) HTTP(need Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authorization, err := single(r.Header.Values("Authorization"))
		tenant := r.PathValue("tenant")
		var p Principal
		if err == nil {
			p, err = g.check(r.Context(), authorization, tenant, need, r.Method+" "+r.Pattern)
		} else {
			g.log.InfoContext(r.Context(), "refused an unauthenticated request", "tenant", logTenant(tenant), "reason", err.Error(), "op", r.Method+" "+r.Pattern)
		}
		if err != nil {
			WriteHTTP(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
	})
}

// single returns the one credential sent; two Authorization values are refused rather than
// guessed between, since a proxy and a client may disagree on which one counts.
func single(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		return values[0], nil
	}
	return "", fmt.Errorf("%w: more than one authorization value", ErrMalformed)
}

// metadataKey is the gRPC metadata key of the credential, "authorization" as for HTTP/2 headers.
const metadataKey = "authorization"

// openMethod reports whether gRPC's own health and reflection services, which carry no tenant
// and reveal none, may be called without credential.
func openMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") || strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

// tenanted is every Ticketpulse request: each names its tenant.
type tenanted interface{ GetTenant() string }

func tenantOf(msg any) string {
	if t, ok := msg.(tenanted); ok {
		return t.GetTenant()
	}
	return ""
}

func (g *Gate) rule(ctx context.Context, methods map[string]Scope, fullMethod string) (Scope, error) {
	need, ok := methods[fullMethod]
	if !ok {
		g.log.WarnContext(ctx, "refused a method without access rule", "op", fullMethod)
		return "", GRPCStatus(ErrNoAccessRule)
	}
	return need, nil
}

func (g *Gate) grpcAuthenticate(ctx context.Context, tenant, fullMethod string) (Principal, error) {
	authorization, err := single(metadata.ValueFromIncomingContext(ctx, metadataKey))
	if err != nil {
		g.log.InfoContext(ctx, "refused an unauthenticated request", "tenant", logTenant(tenant), "reason", err.Error(), "op", fullMethod)
		return Principal{}, GRPCStatus(err)
	}
	p, err := g.authenticate(ctx, authorization, tenant, fullMethod)
	if err != nil {
		return Principal{}, GRPCStatus(err)
	}
	return p, nil
}

// UnaryInterceptor checks every unary call against methods, the full method name's required
// scope; a method missing from it is refused. The handler finds the principal with FromContext.
func (g *Gate) UnaryInterceptor(methods map[string]Scope) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if openMethod(info.FullMethod) {
			return handler(ctx, req)
		}
		need, err := g.rule(ctx, methods, info.FullMethod)
		if err != nil {
			return nil, err
		}
		tenant := tenantOf(req)
		p, err := g.grpcAuthenticate(ctx, tenant, info.FullMethod)
		if err != nil {
			return nil, err
		}
		if err := g.allow(ctx, p, tenant, need, info.FullMethod); err != nil {
			return nil, GRPCStatus(err)
		}
		return handler(NewContext(ctx, p), req)
	}
}

// StreamInterceptor checks every streaming call against methods. The credential is checked
// before the handler runs; the tenant is in the request message, so tenant and scope are
// checked as each message is received, and nothing can be sent before one has passed.
func (g *Gate) StreamInterceptor(methods map[string]Scope) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if openMethod(info.FullMethod) {
			return handler(srv, ss)
		}
		need, err := g.rule(ss.Context(), methods, info.FullMethod)
		if err != nil {
			return err
		}
		p, err := g.grpcAuthenticate(ss.Context(), "", info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &gatedStream{ServerStream: ss, ctx: NewContext(ss.Context(), p), gate: g, p: p, need: need, method: info.FullMethod})
	}
}

// gatedStream holds a stream's messages to the tenant check. A bidirectional handler may send
// from another goroutine than the one receiving, hence the atomic.
type gatedStream struct {
	grpc.ServerStream
	ctx     context.Context
	gate    *Gate
	p       Principal
	need    Scope
	method  string
	allowed atomic.Bool
}

func (s *gatedStream) Context() context.Context { return s.ctx }

func (s *gatedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := s.gate.allow(s.ctx, s.p, tenantOf(m), s.need, s.method); err != nil {
		s.allowed.Store(false)
		return GRPCStatus(err)
	}
	s.allowed.Store(true)
	return nil
}

func (s *gatedStream) SendMsg(m any) error {
	if !s.allowed.Load() {
		return status.Error(codes.PermissionDenied, "no request has been allowed on this stream yet")
	}
	return s.ServerStream.SendMsg(m)
}
