// Package auth says who is calling and what they may do (DESIGN.md §8). A credential, an API key
// or an OpenID Connect ID token, becomes a Principal; Principal.Allow decides whether it may act
// on a tenant with a scope.
//
// Gate is the one place a request is decided, for HTTP routes and gRPC methods alike.
//
// The errors are few and fixed on purpose: a caller learns which of "no credential", "malformed",
// "invalid", "revoked", "wrong tenant", "unknown tenant" or "missing scope" stopped it, never why
// a key did not match or what the registry holds.
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Scope is one thing a credential may do.
type Scope string

// The scopes. Operator spans every tenant and implies every other scope; it is for the people
// and tools that run Ticketpulse, not for a tenant's integrations.
const (
	EventsWrite       Scope = "events:write"
	KPIsRead          Scope = "kpis:read"
	EscalationsRead   Scope = "escalations:read"
	EscalationsWrite  Scope = "escalations:write"
	NotificationsRead Scope = "notifications:read"
	NotificationsTest Scope = "notifications:test"
	Operator          Scope = "operator"
)

// TenantScopes are the scopes a tenant's credential can hold, in the order -h and docs list them.
var TenantScopes = []Scope{EventsWrite, KPIsRead, EscalationsRead, EscalationsWrite, NotificationsRead, NotificationsTest}

// ParseScope returns the scope s names.
func ParseScope(s string) (Scope, error) {
	sc := Scope(s)
	if sc == Operator || slices.Contains(TenantScopes, sc) {
		return sc, nil
	}
	words := make([]string, 0, len(TenantScopes)+1)
	for _, t := range TenantScopes {
		words = append(words, string(t))
	}
	return "", fmt.Errorf("unknown scope %q (want one of %s, %s)", s, strings.Join(words, ", "), Operator)
}

// The reasons a request is refused. The first four mean the caller is not authenticated
// (HTTP 401, gRPC Unauthenticated); the next two that it is, but may not do this (403,
// PermissionDenied).
var (
	ErrNoCredential = errors.New("no credential: send Authorization: Bearer <key or ID token>")
	ErrMalformed    = errors.New("malformed credential")
	ErrInvalid      = errors.New("invalid credential")
	ErrRevoked      = errors.New("revoked credential")
	ErrWrongTenant  = errors.New("the credential is not for this tenant")
	ErrMissingScope = errors.New("the credential lacks the scope")
	// ErrUnknownTenant (HTTP 404, gRPC NotFound) only reaches operators and the tenant's own
	// credentials: anyone else learns "wrong tenant", never whether the tenant exists.
	ErrUnknownTenant = errors.New("unknown tenant")
)

// RevokedError is a use of a revoked key, naming it for the log, where whoever rotates keys
// looks. The Gate answers the caller with ErrRevoked alone.
type RevokedError struct {
	Tenant, Name string
}

func (e *RevokedError) Error() string { return fmt.Sprintf("%s %q", ErrRevoked, e.Name) }

// Unwrap makes errors.Is(err, ErrRevoked) hold.
func (e *RevokedError) Unwrap() error { return ErrRevoked }

// Unauthenticated reports whether err means the caller did not prove who it is, as opposed to
// being refused what it asked.
func Unauthenticated(err error) bool {
	return errors.Is(err, ErrNoCredential) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrRevoked)
}

// Kinds of principal.
const (
	KindAPIKey = "api-key"
	KindOIDC   = "oidc"
)

// Principal is an authenticated caller.
type Principal struct {
	// Kind is KindAPIKey or KindOIDC.
	Kind string
	// Tenant is the tenant the credential belongs to; empty for an operator.
	Tenant string
	// Name identifies the caller within its tenant: the key's name, or the person's e-mail
	// address (the subject when the token carries none).
	Name string
	// Scopes are what the credential may do.
	Scopes []Scope
}

// IsOperator reports whether p spans every tenant.
func (p Principal) IsOperator() bool { return slices.Contains(p.Scopes, Operator) }

// Has reports whether p holds s (an operator holds every scope).
func (p Principal) Has(s Scope) bool { return p.IsOperator() || slices.Contains(p.Scopes, s) }

// ID names p in records and logs, e.g. "api-key:acme/ci-2026" or "oidc:acme/ana@example.com";
// an operator's has no tenant ("api-key:*/ops"). It is what acknowledge and resolve record as by.
func (p Principal) ID() string {
	tenant := p.Tenant
	if tenant == "" {
		tenant = "*"
	}
	return p.Kind + ":" + tenant + "/" + p.Name
}

// Allow returns nil when p may act on tenant with need, else an error wrapping ErrWrongTenant
// or ErrMissingScope.
func (p Principal) Allow(tenant string, need Scope) error {
	if !p.IsOperator() && p.Tenant != tenant {
		return ErrWrongTenant
	}
	if !p.Has(need) {
		return fmt.Errorf("%w %s", ErrMissingScope, need)
	}
	return nil
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the request was authenticated as.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
