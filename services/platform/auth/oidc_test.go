package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

// testIssuer is a real OpenID Connect provider on loopback: discovery, a JWK set, and ES256
// tokens signed with its key.
type testIssuer struct {
	srv         *httptest.Server
	key         *ecdsa.PrivateKey
	discoveries atomic.Int64
	keyFetches  atomic.Int64
}

const testKID = "k1"

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ti := &testIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		ti.discoveries.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                ti.srv.URL,
			"jwks_uri":                              ti.srv.URL + "/jwks",
			"authorization_endpoint":                ti.srv.URL + "/authorize",
			"token_endpoint":                        ti.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.keyFetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: testKID, Algorithm: string(jose.ES256), Use: "sig"},
		}})
	})
	ti.srv = httptest.NewServer(mux)
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIssuer) URL() string { return ti.srv.URL }

// claims are a valid token's for acme's console, with what overrides them.
func (ti *testIssuer) claims(over map[string]any) map[string]any {
	c := map[string]any{
		"iss":            ti.URL(),
		"aud":            "console",
		"sub":            "u-123",
		"email":          "ana@example.com",
		"email_verified": true,
		"tenant":         "acme",
		"roles":          []string{"supervisor", "unmapped"},
		"iat":            time.Now().Unix(),
		"exp":            time.Now().Add(time.Hour).Unix(),
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func (ti *testIssuer) token(t *testing.T, over map[string]any) string {
	return signToken(t, ti.key, ti.claims(over))
}

func signToken(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", testKID))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var supervisor = map[string][]auth.Scope{"supervisor": {auth.EscalationsRead, auth.EscalationsWrite, auth.KPIsRead}}

func TestOIDC(t *testing.T) {
	ti := newTestIssuer(t)
	other := newTestIssuer(t)
	acme := auth.OIDCConfig{Tenant: "acme", Issuer: ti.URL(), Audience: "console", TenantClaim: "tenant", Roles: supervisor}
	globex := auth.OIDCConfig{Tenant: "globex", Issuer: ti.URL(), Audience: "console", TenantClaim: "tenant",
		Roles: map[string][]auth.Scope{"supervisor": {auth.KPIsRead}}}
	initech := auth.OIDCConfig{Tenant: "initech", Issuer: ti.URL(), Audience: "initech-console", RoleClaim: "realm_access.roles",
		Roles: map[string][]auth.Scope{"viewer": {auth.NotificationsRead}}}
	ops := auth.OIDCConfig{Issuer: ti.URL(), Audience: "ops-console", RoleClaim: "groups",
		Roles: map[string][]auth.Scope{"sre": {auth.Operator}}}
	a, err := auth.NewAuthenticator(nil, []auth.OIDCConfig{acme, globex, initech, ops})
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	supervisorScopes := []auth.Scope{auth.KPIsRead, auth.EscalationsRead, auth.EscalationsWrite}
	tests := []struct {
		name    string
		give    string
		want    auth.Principal
		wantErr string
	}{
		{name: "valid", give: ti.token(t, nil),
			want: auth.Principal{Kind: auth.KindOIDC, Tenant: "acme", Name: "ana@example.com", Scopes: supervisorScopes}},
		{name: "second tenant on the same issuer and audience", give: ti.token(t, map[string]any{"tenant": "globex"}),
			want: auth.Principal{Kind: auth.KindOIDC, Tenant: "globex", Name: "ana@example.com", Scopes: []auth.Scope{auth.KPIsRead}}},
		{name: "tenant by audience, roles by dotted claim, one audience of several",
			give: ti.token(t, map[string]any{"aud": []string{"elsewhere", "initech-console"}, "tenant": nil, "realm_access": map[string]any{"roles": []string{"viewer"}}}),
			want: auth.Principal{Kind: auth.KindOIDC, Tenant: "initech", Name: "ana@example.com", Scopes: []auth.Scope{auth.NotificationsRead}}},
		{name: "operator", give: ti.token(t, map[string]any{"aud": "ops-console", "tenant": nil, "groups": "sre"}),
			want: auth.Principal{Kind: auth.KindOIDC, Name: "ana@example.com", Scopes: []auth.Scope{auth.Operator}}},
		{name: "role as a single string", give: ti.token(t, map[string]any{"roles": "supervisor"}),
			want: auth.Principal{Kind: auth.KindOIDC, Tenant: "acme", Name: "ana@example.com", Scopes: supervisorScopes}},
		{name: "no mapped role", give: ti.token(t, map[string]any{"roles": []string{"agent"}}),
			want: auth.Principal{Kind: auth.KindOIDC, Tenant: "acme", Name: "ana@example.com"}},
		{name: "no roles claim", give: ti.token(t, map[string]any{"roles": nil}),
			want: auth.Principal{Kind: auth.KindOIDC, Tenant: "acme", Name: "ana@example.com"}},
		{name: "unverified e-mail names the subject", give: ti.token(t, map[string]any{"email_verified": false}),
			want: auth.Principal{Kind: auth.KindOIDC, Tenant: "acme", Name: "u-123", Scopes: supervisorScopes}},
		{name: "e-mail without verified flag", give: ti.token(t, map[string]any{"email_verified": nil}),
			want: auth.Principal{Kind: auth.KindOIDC, Tenant: "acme", Name: "ana@example.com", Scopes: supervisorScopes}},
		{name: "no e-mail names the subject", give: ti.token(t, map[string]any{"email": nil}),
			want: auth.Principal{Kind: auth.KindOIDC, Tenant: "acme", Name: "u-123", Scopes: supervisorScopes}},

		{name: "wrong audience", give: ti.token(t, map[string]any{"aud": "someone-else"}),
			wantErr: "invalid credential: the ID token is not for this audience"},
		{name: "untrusted issuer", give: other.token(t, map[string]any{"iss": other.URL()}),
			wantErr: "invalid credential: the ID token's issuer is not trusted"},
		{name: "expired", give: ti.token(t, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}),
			wantErr: "invalid credential: the ID token has expired"},
		{name: "bad signature", give: signToken(t, otherKey, ti.claims(nil)),
			wantErr: "invalid credential: the ID token failed verification"},
		{name: "tampered payload", give: tamper(t, ti.token(t, map[string]any{"tenant": "acme"}), "globex"),
			wantErr: "invalid credential: the ID token failed verification"},
		{name: "HS256 with a guessable secret", give: hs256(t, ti.claims(nil)),
			wantErr: "invalid credential: the ID token failed verification"},
		{name: "tenant claim of another tenant", give: ti.token(t, map[string]any{"tenant": "initech"}),
			wantErr: "invalid credential: the ID token's tenant claim does not match"},
		{name: "tenant claim missing", give: ti.token(t, map[string]any{"tenant": nil}),
			wantErr: "invalid credential: the ID token's tenant claim does not match"},
		{name: "no subject", give: ti.token(t, map[string]any{"sub": nil, "email": nil}),
			wantErr: "invalid credential: the ID token names no subject"},
		{name: "claims not JSON", give: "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln",
			wantErr: "malformed credential: the ID token's claims are not a JSON object with an issuer"},
		{name: "issuer not a string", give: "eyJhbGciOiJFUzI1NiJ9." + b64(`{"iss":7}`) + ".c2ln",
			wantErr: "malformed credential: the ID token's claims are not a JSON object with an issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Authenticate(context.Background(), "Bearer "+tt.give)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got %+v, %v; want error %q", got, err, tt.wantErr)
				}
				if !auth.Unauthenticated(err) {
					t.Errorf("%v does not count as unauthenticated", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// tamper replaces the tenant in a signed token's payload, keeping the signature.
func tamper(t *testing.T, token, tenant string) string {
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(payload, &c)
	c["tenant"] = tenant
	b, _ := json.Marshal(c)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

func hs256(t *testing.T, claims map[string]any) string {
	b, _ := json.Marshal(claims)
	signing := b64(`{"alg":"HS256","typ":"JWT","kid":"k1"}`) + "." + base64.RawURLEncoding.EncodeToString(b)
	mac := hmac.New(sha256.New, []byte("secret"))
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestOIDCCacheSurvivesReloads(t *testing.T) {
	ti := newTestIssuer(t)
	cfg := []auth.OIDCConfig{{Tenant: "acme", Issuer: ti.URL(), Audience: "console", Roles: supervisor}}
	for range 3 {
		// The registry builds a new Authenticator on every reload of the tenants file.
		a, err := auth.NewAuthenticator(nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(context.Background(), "Bearer "+ti.token(t, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if d, k := ti.discoveries.Load(), ti.keyFetches.Load(); d != 1 || k != 1 {
		t.Errorf("%d discoveries and %d key fetches, want 1 and 1", d, k)
	}
	// A token with a key id the set lacks does not make every request refetch the keys.
	for range 3 {
		a, _ := auth.NewAuthenticator(nil, cfg)
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if _, err := a.Authenticate(context.Background(), "Bearer "+signToken(t, other, ti.claims(nil))); err == nil {
			t.Fatal("a token signed by another key passed")
		}
	}
	if k := ti.keyFetches.Load(); k != 1 {
		t.Errorf("%d key fetches after forged tokens, want 1", k)
	}
}

func TestOIDCUnreachableProvider(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + lis.Addr().String()
	lis.Close() // nothing listens there now
	a, err := auth.NewAuthenticator(nil, []auth.OIDCConfig{{Tenant: "acme", Issuer: issuer, Audience: "console"}})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	token := signToken(t, key, map[string]any{"iss": issuer, "aud": "console", "sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
	const want = "invalid credential: the identity provider is unavailable (discovery failed)"
	for range 2 { // the second answer comes from the remembered failure
		start := time.Now()
		_, err = a.Authenticate(context.Background(), "Bearer "+token)
		if err == nil || err.Error() != want || !errors.Is(err, auth.ErrInvalid) {
			t.Fatalf("got %v, want %q", err, want)
		}
		if d := time.Since(start); d > 6*time.Second {
			t.Errorf("took %s", d)
		}
	}
}

func TestOIDCDiscoveryRedirectOffHost(t *testing.T) {
	elsewhere := newTestIssuer(t)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL()+r.URL.Path, http.StatusFound)
	}))
	defer redirector.Close()
	a, err := auth.NewAuthenticator(nil, []auth.OIDCConfig{{Tenant: "acme", Issuer: redirector.URL, Audience: "console"}})
	if err != nil {
		t.Fatal(err)
	}
	token := elsewhere.token(t, map[string]any{"iss": redirector.URL})
	const want = "invalid credential: the identity provider is unavailable (discovery failed)"
	if _, err := a.Authenticate(context.Background(), "Bearer "+token); err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if n := elsewhere.discoveries.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

func TestOIDCThroughGate(t *testing.T) {
	ti := newTestIssuer(t)
	a, err := auth.NewAuthenticator(nil, []auth.OIDCConfig{{Tenant: "acme", Issuer: ti.URL(), Audience: "console", Roles: supervisor}})
	if err != nil {
		t.Fatal(err)
	}
	gate := auth.NewGate(registry{a: a, tenants: map[string]bool{"acme": true}}, nil)
	p, err := gate.Check(context.Background(), "Bearer "+ti.token(t, nil), "acme", auth.EscalationsWrite)
	if err != nil || p.ID() != "oidc:acme/ana@example.com" {
		t.Fatalf("got %q, %v", p.ID(), err)
	}
	_, err = gate.Check(context.Background(), "Bearer "+ti.token(t, nil), "acme", auth.NotificationsTest)
	if err == nil || err.Error() != "the credential lacks the scope notifications:test" {
		t.Fatalf("got %v", err)
	}
}

func TestNewAuthenticatorRefuses(t *testing.T) {
	_, hash, _ := auth.NewKey()
	_, hash2, _ := auth.NewKey()
	const iss = "https://id.example.com"
	tests := []struct {
		name      string
		keys      []auth.Key
		providers []auth.OIDCConfig
		want      string
	}{
		{name: "same hash twice",
			keys: []auth.Key{{Name: "a", Tenant: "acme", Hash: hash}, {Name: "b", Tenant: "acme", Hash: hash}},
			want: `api key "b" of tenant "acme": the same hash is listed twice`},
		{name: "same name twice",
			keys: []auth.Key{{Name: "a", Tenant: "acme", Hash: hash}, {Name: "a", Tenant: "acme", Hash: hash2}},
			want: `api key "a" of tenant "acme": the name is used twice`},
		{name: "no name", keys: []auth.Key{{Tenant: "acme", Hash: hash}},
			want: `api key "" of tenant "acme": the name must match [a-z0-9][a-z0-9._-]{0,62}`},
		{name: "name with a space", keys: []auth.Key{{Name: "ci key", Tenant: "acme", Hash: hash}},
			want: `api key "ci key" of tenant "acme": the name must match [a-z0-9][a-z0-9._-]{0,62}`},
		{name: "no hash", keys: []auth.Key{{Name: "a", Tenant: "acme"}},
			want: `api key "a" of tenant "acme": a key needs a hash`},
		{name: "unknown scope", keys: []auth.Key{{Name: "a", Tenant: "acme", Hash: hash, Scopes: []auth.Scope{"events:read"}}},
			want: `api key "a" of tenant "acme": unknown scope "events:read" (want one of events:write, kpis:read, escalations:read, escalations:write, notifications:read, notifications:test, operator)`},
		{name: "tenant key with operator", keys: []auth.Key{{Name: "a", Tenant: "acme", Hash: hash, Scopes: []auth.Scope{auth.Operator}}},
			want: `api key "a" of tenant "acme": only an operator key (no tenant) may hold the operator scope`},
		{name: "operator key without operator", keys: []auth.Key{{Name: "a", Hash: hash, Scopes: []auth.Scope{auth.KPIsRead}}},
			want: `api key "a" of tenant "": a key without tenant is an operator key and must hold the operator scope`},

		{name: "no issuer", providers: []auth.OIDCConfig{{Tenant: "acme", Audience: "c"}},
			want: "openid connect provider of tenant acme: issuer is required"},
		{name: "plain http issuer", providers: []auth.OIDCConfig{{Tenant: "acme", Issuer: "http://id.example.com", Audience: "c"}},
			want: `openid connect provider of tenant acme: issuer "http://id.example.com" must use https (http only on a loopback address)`},
		{name: "issuer with query", providers: []auth.OIDCConfig{{Tenant: "acme", Issuer: iss + "?x=1", Audience: "c"}},
			want: `openid connect provider of tenant acme: issuer "https://id.example.com?x=1" is not an https URL without query, fragment or user`},
		{name: "no audience", providers: []auth.OIDCConfig{{Tenant: "acme", Issuer: iss}},
			want: "openid connect provider of tenant acme: audience (the client id) is required"},
		{name: "tenant role gives operator", providers: []auth.OIDCConfig{{Tenant: "acme", Issuer: iss, Audience: "c", Roles: map[string][]auth.Scope{"admin": {auth.Operator}}}},
			want: `openid connect provider of tenant acme: role "admin": a tenant's provider cannot give the operator scope`},
		{name: "operator role gives a tenant scope", providers: []auth.OIDCConfig{{Issuer: iss, Audience: "c", Roles: map[string][]auth.Scope{"sre": {auth.KPIsRead}}}},
			want: `openid connect provider of the operators: role "sre": the operators' provider can only give the operator scope, not kpis:read`},
		{name: "operator with tenant claim", providers: []auth.OIDCConfig{{Issuer: iss, Audience: "c", TenantClaim: "t"}},
			want: "openid connect provider of the operators: the operators' provider has no tenant, so tenant_claim does not apply"},
		{name: "unknown role scope", providers: []auth.OIDCConfig{{Tenant: "acme", Issuer: iss, Audience: "c", Roles: map[string][]auth.Scope{"r": {"all"}}}},
			want: `openid connect provider of tenant acme: role "r": unknown scope "all" (want one of events:write, kpis:read, escalations:read, escalations:write, notifications:read, notifications:test, operator)`},
		{name: "listed twice", providers: []auth.OIDCConfig{{Tenant: "acme", Issuer: iss, Audience: "c"}, {Tenant: "acme", Issuer: iss, Audience: "c"}},
			want: `openid connect provider of tenant acme: issuer "https://id.example.com" and audience "c" are listed twice`},
		{name: "shared audience without tenant claim", providers: []auth.OIDCConfig{{Tenant: "acme", Issuer: iss, Audience: "c", TenantClaim: "t"}, {Tenant: "globex", Issuer: iss, Audience: "c"}},
			want: `openid connect provider of tenant globex: issuer "https://id.example.com" and audience "c" are shared with another tenant or the operators, so both must set tenant_claim`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.NewAuthenticator(tt.keys, tt.providers)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestAuthenticatorAPIKeys(t *testing.T) {
	key, hash, _ := auth.NewKey()
	old, oldHash, _ := auth.NewKey()
	keys := []auth.Key{{Name: "ci", Tenant: "acme", Hash: hash, Scopes: []auth.Scope{auth.EventsWrite}},
		{Name: "ci-old", Tenant: "acme", Hash: oldHash, Scopes: []auth.Scope{auth.EventsWrite}, Revoked: true}}
	a, err := auth.NewAuthenticator(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys[0].Scopes[0] = auth.KPIsRead // the caller's slice is not the registry's
	p, err := a.Authenticate(context.Background(), "Bearer "+key)
	if err != nil || !reflect.DeepEqual(p, auth.Principal{Kind: auth.KindAPIKey, Tenant: "acme", Name: "ci", Scopes: []auth.Scope{auth.EventsWrite}}) {
		t.Fatalf("got %+v, %v", p, err)
	}
	// A revoked key's error names it for the log; the Gate answers without the name.
	_, err = a.Authenticate(context.Background(), "Bearer "+old)
	var revoked *auth.RevokedError
	if err == nil || err.Error() != `revoked credential "ci-old"` || !errors.Is(err, auth.ErrRevoked) ||
		!errors.As(err, &revoked) || *revoked != (auth.RevokedError{Tenant: "acme", Name: "ci-old"}) {
		t.Fatalf("got %v", err)
	}
	// Without a provider, an ID token is refused as such.
	_, err = a.Authenticate(context.Background(), "Bearer aaa.bbb.ccc")
	if err == nil || err.Error() != "invalid credential: no identity provider is configured" {
		t.Fatalf("got %v", err)
	}
}

func TestOIDCConcurrentFirstUse(t *testing.T) {
	ti := newTestIssuer(t)
	a, err := auth.NewAuthenticator(nil, []auth.OIDCConfig{{Tenant: "acme", Issuer: ti.URL(), Audience: "console", Roles: supervisor}})
	if err != nil {
		t.Fatal(err)
	}
	token := ti.token(t, nil)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := a.Authenticate(context.Background(), "Bearer "+token)
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if d, k := ti.discoveries.Load(), ti.keyFetches.Load(); d != 1 || k != 1 {
		t.Errorf("%d discoveries and %d key fetches for 8 concurrent first uses, want 1 and 1", d, k)
	}
}
