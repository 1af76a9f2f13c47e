package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/ticketpulse/ticketpulse/services/console/internal/session"
	"github.com/ticketpulse/ticketpulse/services/platform/tenants"
)

// provider is an in-process OpenID Connect provider: discovery, keys, an authorization
// endpoint that approves at once, and a token endpoint that checks the PKCE verifier.
type provider struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu sync.Mutex
	// pending maps a code to what the authorization request carried.
	pending map[string]url.Values
	// claims overrides the ID token's claims; nonce, when set, replaces the request's.
	claims map[string]any
	nonce  string
}

func newProvider(t *testing.T) *provider {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{key: key, pending: map[string]url.Values{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks",
			"authorization_endpoint": p.srv.URL + "/authorize", "token_endpoint": p.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"ES256"}, "code_challenge_methods_supported": []string{"S256"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
			http.Error(w, "bad authorization request: "+q.Encode(), http.StatusBadRequest)
			return
		}
		code := fmt.Sprintf("code-%d", time.Now().UnixNano())
		p.mu.Lock()
		p.pending[code] = q
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		p.mu.Lock()
		req, ok := p.pending[r.PostForm.Get("code")]
		delete(p.pending, r.PostForm.Get("code"))
		claims, nonce := p.claims, p.nonce
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != req.Get("code_challenge") || r.PostForm.Get("redirect_uri") != req.Get("redirect_uri") {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		if nonce == "" {
			nonce = req.Get("nonce")
		}
		c := map[string]any{"iss": p.srv.URL, "aud": req.Get("client_id"), "sub": "u-1", "email": "ana@example.com", "email_verified": true,
			"tenant": "acme", "roles": []string{"supervisor"}, "nonce": nonce, "iat": time.Now().Unix(), "exp": time.Now().Add(30 * time.Minute).Unix()}
		for k, v := range claims {
			c[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 1800, "id_token": p.sign(t, c)})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) sign(t *testing.T, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Error(err)
		return ""
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Error(err)
		return ""
	}
	s, _ := jws.CompactSerialize()
	return s
}

func (p *provider) set(claims map[string]any, nonce string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.claims, p.nonce = claims, nonce
}

// oidcConsole is the console's handler signing in with p, its tenants file mapping p's tokens
// with the tenant claim "acme" and role supervisor to acme.
func oidcConsole(t *testing.T, p *provider) (*httptest.Server, *session.Codec) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`tenants:
  acme:
    oidc:
      issuer: %s
      audience: ticketpulse-console
      tenant_claim: tenant
      roles: {supervisor: [kpis:read, escalations:read, escalations:write]}
`, p.srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := tenants.Open(t.Context(), file, tenants.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := session.RandomKey()
	codec, _ := session.NewCodec(key, false, 12*time.Hour, nil)
	flow := &OIDC{Issuer: p.srv.URL, ClientID: "ticketpulse-console"}
	h, err := New(Options{Codec: codec, Auth: reg, SessionMaxAge: 12 * time.Hour, CallTimeout: time.Second, MaxStreams: 1, OIDC: flow})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	flow.RedirectURL = srv.URL + "/oidc/callback"
	return srv, codec
}

// follow runs the browser's part: start at the console's /oidc/login and follow the redirects
// through the provider and back, returning the console's last answer.
func follow(t *testing.T, c *http.Client, start string) *http.Response {
	t.Helper()
	next := start
	for range 5 {
		resp, err := c.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || loc == "" {
			return resp
		}
		next = loc
	}
	t.Fatal("too many redirects")
	return nil
}

func client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestOIDCSignIn(t *testing.T) {
	p := newProvider(t)
	srv, codec := oidcConsole(t, p)

	c := client()
	resp := follow(t, c, srv.URL+"/oidc/login")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/t/acme/team" {
		t.Fatalf("sign-in ended with %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, ck := range c.Jar.Cookies(mustParse(t, srv.URL)) {
		req.AddCookie(ck)
	}
	s, err := codec.Read(req)
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != "oidc" || s.Tenant != "acme" || s.Name != "ana@example.com" || !s.Has("escalations:write") || s.Has("notifications:test") {
		t.Errorf("session %+v", s)
	}
	if strings.Count(s.Credential, ".") != 2 {
		t.Errorf("the session's credential is not the ID token: %q", s.Credential)
	}
	if until := time.Until(time.Unix(s.Expires, 0)); until > 31*time.Minute {
		t.Errorf("session lasts %s, beyond the ID token's 30 minutes", until)
	}

	if s.Issued > time.Now().Unix() || s.Issued < time.Now().Add(-time.Minute).Unix() {
		t.Errorf("session issued at %d, want now", s.Issued)
	}

	// An ID token that lives two days still gives a session of the console's maximum age (12 h).
	p.set(map[string]any{"exp": time.Now().Add(48 * time.Hour).Unix()}, "")
	long := client()
	if resp := follow(t, long, srv.URL+"/oidc/login"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in with a long-lived token: %d", resp.StatusCode)
	}
	p.set(nil, "")
	req = httptest.NewRequest(http.MethodGet, "/", nil)
	for _, ck := range long.Jar.Cookies(mustParse(t, srv.URL)) {
		req.AddCookie(ck)
	}
	ls, err := codec.Read(req)
	if err != nil {
		t.Fatal(err)
	}
	if until := time.Until(time.Unix(ls.Expires, 0)); until > 12*time.Hour || until < 11*time.Hour {
		t.Errorf("a session from a 48-hour ID token lasts %s, want the 12 h maximum age", until)
	}

	tests := []struct {
		name   string
		claims map[string]any
		nonce  string
		want   int
		reason string
	}{
		{"replayed nonce", nil, "another-login", http.StatusUnauthorized, "failed verification"},
		{"other tenant's claim", map[string]any{"tenant": "globex"}, "", http.StatusForbidden, "not mapped"},
		{"expired", map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}, "", http.StatusUnauthorized, "failed verification"},
		{"wrong audience", map[string]any{"aud": "other-app"}, "", http.StatusUnauthorized, "failed verification"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.set(tt.claims, tt.nonce)
			defer p.set(nil, "")
			resp := follow(t, client(), srv.URL+"/oidc/login")
			if resp.StatusCode != tt.want {
				t.Errorf("got %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}

	// A callback this browser did not start, or with another state, signs nobody in.
	if resp := follow(t, client(), srv.URL+"/oidc/callback?code=x&state=y"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback without a started sign-in: %d, want 400", resp.StatusCode)
	}
	c2 := client()
	login, err := c2.Get(srv.URL + "/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	login.Body.Close()
	if resp := follow(t, c2, srv.URL+"/oidc/callback?code=x&state=forged"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback with a forged state: %d, want 400", resp.StatusCode)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
