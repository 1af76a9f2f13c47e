package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// DefaultRoleClaim is the claim read for roles when an OIDCConfig names none.
const DefaultRoleClaim = "roles"

// Bounds on talking to identity providers: each discovery or key-set fetch takes at most
// fetchTimeout and reads at most maxProviderBody; a provider that failed is not asked again
// for retryAfterFailure (requests meanwhile are refused at once instead of each waiting), and
// an unknown key id makes the key set be fetched again at most every minKeyRefresh, so a flood
// of forged tokens cannot turn into a flood of fetches.
const (
	fetchTimeout      = 5 * time.Second
	maxProviderBody   = 1 << 20
	retryAfterFailure = 10 * time.Second
	minKeyRefresh     = 30 * time.Second
	maxRedirects      = 3
)

// The reasons an ID token is refused. They say which check failed and never repeat anything
// from the token.
var (
	errUnknownIssuer   = fmt.Errorf("%w: the ID token's issuer is not trusted", ErrInvalid)
	errUnavailable     = fmt.Errorf("%w: the identity provider is unavailable", ErrInvalid)
	errExpired         = fmt.Errorf("%w: the ID token has expired", ErrInvalid)
	errNotVerified     = fmt.Errorf("%w: the ID token failed verification", ErrInvalid)
	errAudience        = fmt.Errorf("%w: the ID token is not for this audience", ErrInvalid)
	errTenantClaim     = fmt.Errorf("%w: the ID token's tenant claim does not match", ErrInvalid)
	errNoSubject       = fmt.Errorf("%w: the ID token names no subject", ErrInvalid)
	errUnreadableToken = fmt.Errorf("%w: the ID token's claims are not a JSON object with an issuer", ErrMalformed)
)

// checkOIDCConfig reports what is wrong with one provider configuration.
func checkOIDCConfig(c OIDCConfig) error {
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		return errors.New("issuer is required")
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("issuer %q is not an https URL without query, fragment or user", c.Issuer)
	case u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname())):
		return fmt.Errorf("issuer %q must use https (http only on a loopback address)", c.Issuer)
	case c.Audience == "":
		return errors.New("audience (the client id) is required")
	case c.Tenant == "" && c.TenantClaim != "":
		return errors.New("the operators' provider has no tenant, so tenant_claim does not apply")
	}
	for role, scopes := range c.Roles {
		for _, s := range scopes {
			if _, err := ParseScope(string(s)); err != nil {
				return fmt.Errorf("role %q: %w", role, err)
			}
			if c.Tenant == "" && s != Operator {
				return fmt.Errorf("role %q: the operators' provider can only give the %s scope, not %s", role, Operator, s)
			}
			if c.Tenant != "" && s == Operator {
				return fmt.Errorf("role %q: a tenant's provider cannot give the %s scope", role, Operator)
			}
		}
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// indexProviders groups the configs by issuer, refusing sets in which one token could sign in
// to two tenants: configs sharing issuer and audience must each check a tenant claim.
func indexProviders(providers []OIDCConfig) (map[string][]OIDCConfig, error) {
	byIssuer := map[string][]OIDCConfig{}
	for _, c := range providers {
		who := "the operators"
		if c.Tenant != "" {
			who = "tenant " + c.Tenant
		}
		if err := checkOIDCConfig(c); err != nil {
			return nil, fmt.Errorf("openid connect provider of %s: %w", who, err)
		}
		for _, o := range byIssuer[c.Issuer] {
			if o.Audience != c.Audience {
				continue
			}
			if o.Tenant == c.Tenant {
				return nil, fmt.Errorf("openid connect provider of %s: issuer %q and audience %q are listed twice", who, c.Issuer, c.Audience)
			}
			if o.TenantClaim == "" || c.TenantClaim == "" {
				return nil, fmt.Errorf("openid connect provider of %s: issuer %q and audience %q are shared with another tenant or the operators, so both must set tenant_claim", who, c.Issuer, c.Audience)
			}
		}
		byIssuer[c.Issuer] = append(byIssuer[c.Issuer], c)
	}
	return byIssuer, nil
}

// authenticateIDToken verifies token with its issuer's keys and returns the principal of the
// first of the issuer's configurations it satisfies.
func (a *Authenticator) authenticateIDToken(ctx context.Context, token string) (Principal, error) {
	if len(a.oidc) == 0 {
		return Principal{}, fmt.Errorf("%w: no identity provider is configured", ErrInvalid)
	}
	iss, err := peekIssuer(token)
	if err != nil {
		return Principal{}, err
	}
	candidates := a.oidc[iss]
	if len(candidates) == 0 {
		return Principal{}, errUnknownIssuer
	}
	verifier, err := issuers.get(iss).verifier(ctx)
	if err != nil {
		return Principal{}, err
	}
	idt, err := verifier.Verify(ctx, token)
	if err != nil {
		if _, ok := errors.AsType[*oidc.TokenExpiredError](err); ok {
			return Principal{}, errExpired
		}
		return Principal{}, errNotVerified
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Principal{}, errNotVerified
	}
	name := personName(idt.Subject, claims)
	if name == "" {
		return Principal{}, errNoSubject
	}
	refusal := errAudience
	for _, c := range candidates {
		if !slices.Contains(idt.Audience, c.Audience) {
			continue
		}
		if c.TenantClaim != "" {
			if t, _ := claims[c.TenantClaim].(string); t != c.Tenant {
				refusal = errTenantClaim
				continue
			}
		}
		return Principal{Kind: KindOIDC, Tenant: c.Tenant, Name: name, Scopes: roleScopes(c, claims)}, nil
	}
	return Principal{}, refusal
}

// personName is the e-mail address, unless the provider says it is unverified, else the subject.
func personName(sub string, claims map[string]any) string {
	email, _ := claims["email"].(string)
	verified := true
	switch v := claims["email_verified"].(type) {
	case bool:
		verified = v
	case string: // some providers send "true"/"false"
		verified = v != "false"
	}
	if email != "" && verified {
		return email
	}
	return sub
}

// roleScopes maps the person's roles to scopes, each scope once, in TenantScopes order.
func roleScopes(c OIDCConfig, claims map[string]any) []Scope {
	name := c.RoleClaim
	if name == "" {
		name = DefaultRoleClaim
	}
	var roles []string
	switch v := claimValue(claims, name).(type) {
	case string:
		roles = []string{v}
	case []any:
		for _, r := range v {
			if s, ok := r.(string); ok {
				roles = append(roles, s)
			}
		}
	}
	held := map[Scope]bool{}
	for _, r := range roles {
		for _, s := range c.Roles[r] {
			held[s] = true
		}
	}
	var scopes []Scope
	for _, s := range append(slices.Clone(TenantScopes), Operator) {
		if held[s] {
			scopes = append(scopes, s)
		}
	}
	return scopes
}

// claimValue reads a claim by its name, or, when no claim has that name, by a dotted path into
// nested objects (Keycloak's "realm_access.roles"); names with dots (URL-namespaced claims)
// are looked up whole first.
func claimValue(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// peekIssuer reads the iss claim of a JWS compact token without verifying anything, only to
// pick the configurations to verify it against.
func peekIssuer(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > MaxCredentialBytes {
		return "", errUnreadableToken
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", errUnreadableToken
	}
	var c struct {
		Iss any `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", errUnreadableToken
	}
	iss, ok := c.Iss.(string)
	if !ok || iss == "" {
		return "", errUnreadableToken
	}
	return iss, nil
}

// issuers caches each issuer's discovery and keys for the whole process: the registry builds a
// new Authenticator on every reload of the tenants file, and that must not refetch them. It
// grows only with the issuers ever configured.
var issuers = issuerCache{m: map[string]*issuer{}}

type issuerCache struct {
	mu sync.Mutex
	m  map[string]*issuer
}

func (c *issuerCache) get(iss string) *issuer {
	c.mu.Lock()
	defer c.mu.Unlock()
	is, ok := c.m[iss]
	if !ok {
		is = &issuer{url: iss}
		c.m[iss] = is
	}
	return is
}

// issuer is one provider, discovered on first use.
type issuer struct {
	url string

	mu       sync.Mutex
	v        *oidc.IDTokenVerifier
	failedAt time.Time
	failure  error
}

func (is *issuer) verifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.v != nil {
		return is.v, nil
	}
	if time.Since(is.failedAt) < retryAfterFailure {
		return nil, is.failure
	}
	v, err := discover(context.WithoutCancel(ctx), is.url)
	if err != nil {
		is.failedAt, is.failure = time.Now(), fmt.Errorf("%w (%v)", errUnavailable, err)
		return nil, is.failure
	}
	is.v = v
	return v, nil
}

// discover reads the issuer's discovery document and key set. A request's cancellation does
// not abort it (the result serves every request), its own timeout does.
func discover(ctx context.Context, iss string) (*oidc.IDTokenVerifier, error) {
	cctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, providerClient), fetchTimeout)
	defer cancel()
	p, err := oidc.NewProvider(cctx, iss)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, errors.New("discovery names another issuer")
		}
		return nil, errors.New("discovery failed")
	}
	var meta struct {
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKSURI == "" {
		return nil, errors.New("discovery names no jwks_uri")
	}
	u, err := url.Parse(meta.JWKSURI)
	if err != nil || !(u.Scheme == "https" || u.Scheme == "http" && loopback(u.Hostname())) {
		return nil, errors.New("jwks_uri is not an https URL")
	}
	var algs []string
	for _, a := range meta.Algs {
		if slices.Contains(signingAlgs, jose.SignatureAlgorithm(a)) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{string(jose.RS256)} // the one every provider must support
	}
	ks := &keySet{url: meta.JWKSURI}
	if err := ks.refresh(ctx); err != nil {
		return nil, err
	}
	return oidc.NewVerifier(iss, ks, &oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: algs}), nil
}

// signingAlgs are the asymmetric algorithms accepted; HS256 and "none" never are.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// keySet is an issuer's public keys, fetched again when a token names a key id it lacks, at
// most every minKeyRefresh (go-oidc's RemoteKeySet fetches on every unknown id).
type keySet struct {
	url string

	// fetching serialises fetches; mu guards the fields below only briefly, so tokens are
	// verified with the keys in hand while a fetch is under way.
	fetching sync.Mutex
	mu       sync.Mutex
	keys     []jose.JSONWebKey
	fetched  time.Time
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, signingAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errors.New("not a singly signed JWS")
	}
	kid := jws.Signatures[0].Header.KeyID
	if payload, ok := k.verify(jws, kid); ok {
		return payload, nil
	}
	k.mu.Lock()
	due := time.Since(k.fetched) >= minKeyRefresh
	k.mu.Unlock()
	if !due {
		return nil, errors.New("signature not verified")
	}
	if err := k.refresh(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	if payload, ok := k.verify(jws, kid); ok {
		return payload, nil
	}
	return nil, errors.New("signature not verified")
}

func (k *keySet) verify(jws *jose.JSONWebSignature, kid string) ([]byte, bool) {
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}

func (k *keySet) refresh(ctx context.Context) error {
	k.fetching.Lock()
	defer k.fetching.Unlock()
	k.mu.Lock()
	recent := time.Since(k.fetched) < minKeyRefresh && k.keys != nil
	if !recent {
		// Counted as a try even when it fails, so a provider that is down is not hammered.
		k.fetched = time.Now()
	}
	k.mu.Unlock()
	if recent {
		return nil // another request just did
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return errors.New("key set URL unusable")
	}
	resp, err := providerClient.Do(req)
	if err != nil {
		return errors.New("key set fetch failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("key set fetch answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return errors.New("key set unreadable or too large")
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	return nil
}

// parseJWKS reads the public signing keys of a JWK set, skipping keys of kinds it cannot use
// (RFC 7517 §5: ignore what is not understood) rather than refusing the whole set.
func parseJWKS(body []byte) ([]jose.JSONWebKey, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, errors.New("key set is not a JWK set")
	}
	var keys []jose.JSONWebKey
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil || !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("key set has no usable signing key")
	}
	return keys, nil
}

// providerClient talks to identity providers: bounded in time and size, and following
// redirects only on the same scheme and host, so a provider's open redirect cannot point the
// fetch elsewhere.
var providerClient = &http.Client{
	Timeout:   fetchTimeout,
	Transport: limitBody{http.DefaultTransport.(*http.Transport).Clone()},
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return errors.New("too many redirects")
		}
		if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
			return errors.New("redirect to another host")
		}
		return nil
	},
}

// limitBody caps every response body at maxProviderBody.
type limitBody struct{ base http.RoundTripper }

func (l limitBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: maxProviderBody}
	return resp, nil
}

type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("response larger than %d bytes", maxProviderBody)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cappedBody) Close() error { return c.rc.Close() }
