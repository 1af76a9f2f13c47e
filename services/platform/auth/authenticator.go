package auth

import (
	"context"
	"fmt"
)

// Key is one API key of the registry: only its hash, never the key.
type Key struct {
	// Name tells a tenant's keys apart (rotation keeps two alive); unique within the tenant.
	Name string
	// Tenant the key acts for; empty for an operator key.
	Tenant string
	Scopes []Scope
	Hash   KeyHash
	// Revoked keys are kept in the file so a use of one is logged by name, and refused.
	Revoked bool
}

// OIDCConfig is how one tenant's (or, with an empty Tenant, the operators') people sign in with
// OpenID Connect: whose ID tokens count, and which of their claims give the tenant and the role.
type OIDCConfig struct {
	Tenant string
	// Issuer is the provider's issuer URL; a token's iss must equal it.
	Issuer string
	// Audience is the client id Ticketpulse is registered with; a token's aud must contain it.
	Audience string
	// TenantClaim, when set, names a claim whose value must equal Tenant: one issuer can then
	// serve several tenants without one tenant's people signing in to another.
	TenantClaim string
	// RoleClaim names the claim holding the person's roles, a string or a list of strings.
	RoleClaim string
	// Roles maps a role to the scopes it gives; a person with no mapped role gets no scope.
	Roles map[string][]Scope
}

// Authenticator turns an Authorization value into a Principal. It is immutable: the registry
// builds a new one on every reload.
type Authenticator struct {
	keys map[KeyHash]*Key
}

// NewAuthenticator checks and indexes the keys and identity providers.
func NewAuthenticator(keys []Key, providers []OIDCConfig) (*Authenticator, error) {
	a := &Authenticator{keys: make(map[KeyHash]*Key, len(keys))}
	names := map[[2]string]bool{}
	for i := range keys {
		k := &keys[i]
		if _, dup := a.keys[k.Hash]; dup {
			return nil, fmt.Errorf("api key %q of tenant %q: the same hash is listed twice", k.Name, k.Tenant)
		}
		if names[[2]string{k.Tenant, k.Name}] {
			return nil, fmt.Errorf("api key %q of tenant %q: the name is used twice", k.Name, k.Tenant)
		}
		names[[2]string{k.Tenant, k.Name}] = true
		a.keys[k.Hash] = k
	}
	if len(providers) > 0 {
		return nil, fmt.Errorf("openid connect is not supported yet")
	}
	return a, nil
}

// Authenticate returns who authorization (the Authorization header or gRPC metadata value)
// proves the caller is.
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (Principal, error) {
	token, kind, err := ParseBearer(authorization)
	if err != nil {
		return Principal{}, err
	}
	if kind != CredentialAPIKey {
		return Principal{}, fmt.Errorf("%w: no identity provider is configured", ErrInvalid)
	}
	k, ok := a.keys[HashKey(token)]
	if !ok {
		return Principal{}, ErrInvalid
	}
	if k.Revoked {
		return Principal{}, &RevokedError{Tenant: k.Tenant, Name: k.Name}
	}
	return Principal{Kind: KindAPIKey, Tenant: k.Tenant, Name: k.Name, Scopes: k.Scopes}, nil
}
