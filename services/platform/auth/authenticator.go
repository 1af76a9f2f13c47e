package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	// RoleClaim names the claim holding the person's roles, a string or a list of strings
	// (DefaultRoleClaim when empty; a dotted path reaches into nested objects).
	RoleClaim string
	// Roles maps a role to the scopes it gives; a person with no mapped role gets no scope.
	// Only the operators' provider may give Operator, and only it.
	Roles map[string][]Scope
}

// Authenticator turns an Authorization value into a Principal. It is immutable: the registry
// builds a new one on every reload.
type Authenticator struct {
	keys map[KeyHash]*Key
	// oidc lists the provider configurations by issuer.
	oidc map[string][]OIDCConfig
}

// NewAuthenticator checks and indexes the keys and identity providers.
func NewAuthenticator(keys []Key, providers []OIDCConfig) (*Authenticator, error) {
	a := &Authenticator{keys: make(map[KeyHash]*Key, len(keys))}
	names := map[[2]string]bool{}
	for i := range keys {
		k := &Key{}
		*k = keys[i]
		k.Scopes = slices.Clip(slices.Clone(k.Scopes))
		if err := checkKey(k); err != nil {
			return nil, fmt.Errorf("api key %q of tenant %q: %w", k.Name, k.Tenant, err)
		}
		if _, dup := a.keys[k.Hash]; dup {
			return nil, fmt.Errorf("api key %q of tenant %q: the same hash is listed twice", k.Name, k.Tenant)
		}
		if names[[2]string{k.Tenant, k.Name}] {
			return nil, fmt.Errorf("api key %q of tenant %q: the name is used twice", k.Name, k.Tenant)
		}
		names[[2]string{k.Tenant, k.Name}] = true
		a.keys[k.Hash] = k
	}
	var err error
	if a.oidc, err = indexProviders(providers); err != nil {
		return nil, err
	}
	return a, nil
}

// checkKey refuses keys that could never be used as meant: a tenant key with the operator
// scope would span every tenant, an operator key without it would reach none.
func checkKey(k *Key) error {
	if !ValidKeyName(k.Name) {
		return errors.New("the name " + KeyNameRule)
	}
	if k.Hash == (KeyHash{}) {
		return errors.New("a key needs a hash")
	}
	for _, s := range k.Scopes {
		if _, err := ParseScope(string(s)); err != nil {
			return err
		}
	}
	switch op := slices.Contains(k.Scopes, Operator); {
	case k.Tenant != "" && op:
		return fmt.Errorf("only an operator key (no tenant) may hold the %s scope", Operator)
	case k.Tenant == "" && !op:
		return fmt.Errorf("a key without tenant is an operator key and must hold the %s scope", Operator)
	}
	return nil
}

// Authenticate returns who authorization (the Authorization header or gRPC metadata value)
// proves the caller is.
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (Principal, error) {
	token, kind, err := ParseBearer(authorization)
	if err != nil {
		return Principal{}, err
	}
	if kind == CredentialIDToken {
		return a.authenticateIDToken(ctx, token)
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
