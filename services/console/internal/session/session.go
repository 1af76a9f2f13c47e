// Package session keeps a signed-in person's session in a cookie sealed with authenticated
// encryption (AES-256-GCM): the browser holds it but can neither read the credential inside nor
// change anything without the server noticing. Nothing about a session is stored server-side.
package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// KeyBytes is the size of a session key (AES-256).
const KeyBytes = 32

// MaxCookieBytes bounds the sealed cookie; browsers keep at most about 4 KiB per cookie, and an
// ID token with its claims must fit.
const MaxCookieBytes = 4000

// Errors of Open. None says anything about why a forged cookie failed.
var (
	ErrNone    = errors.New("no session")
	ErrInvalid = errors.New("invalid session")
	ErrExpired = errors.New("session expired")
)

// Session is what the cookie carries.
type Session struct {
	// Tenant, Kind ("api-key" or "oidc"), Name and Scopes are the principal, as the credential
	// was authenticated at sign-in.
	Tenant string   `json:"t"`
	Kind   string   `json:"k"`
	Name   string   `json:"n"`
	Scopes []string `json:"s"`
	// Credential is what every call to the services sends as the bearer token: the API key or
	// the ID token. It never leaves the sealed cookie for the page.
	Credential string `json:"c"`
	// CSRF is the token every state-changing form must echo; it is bound to this session.
	CSRF string `json:"x"`
	// ID tells sessions apart (per-session limits), never a credential.
	ID string `json:"i"`
	// Issued is when the person signed in; the codec refuses a session older than its maximum
	// age whatever Expires says, so lowering the maximum ends older sessions too.
	Issued  int64 `json:"a"`
	Expires int64 `json:"e"`
}

// Has reports whether the session's principal holds scope.
func (s *Session) Has(scope string) bool {
	for _, h := range s.Scopes {
		if h == scope {
			return true
		}
	}
	return false
}

// New returns a session for the principal with fresh CSRF token and id, signed in at issued
// and expiring at expires.
func New(tenant, kind, name string, scopes []string, credential string, issued, expires time.Time) (*Session, error) {
	csrf, err := randomToken()
	if err != nil {
		return nil, err
	}
	id, err := randomToken()
	if err != nil {
		return nil, err
	}
	return &Session{Tenant: tenant, Kind: kind, Name: name, Scopes: scopes, Credential: credential, CSRF: csrf, ID: id, Issued: issued.Unix(), Expires: expires.Unix()}, nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Codec seals sessions into cookies and opens them.
type Codec struct {
	aead cipher.AEAD
	// Name is the cookie's name: __Host- prefixed when Secure, which makes browsers refuse it
	// from plain HTTP, from a subdomain or with a Domain or Path other than /.
	name   string
	secure bool
	// maxAge is the longest a session lasts from its sign-in; 0 leaves it to Expires alone.
	maxAge time.Duration
	now    func() time.Time
}

// NewCodec seals with key (KeyBytes long); secure marks the cookie Secure (and __Host-);
// maxAge (when positive) is the longest a session is accepted after its sign-in.
func NewCodec(key []byte, secure bool, maxAge time.Duration, now func() time.Time) (*Codec, error) {
	if len(key) != KeyBytes {
		return nil, fmt.Errorf("session key: %d bytes, want %d", len(key), KeyBytes)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	name := "tp_session"
	if secure {
		name = "__Host-tp_session"
	}
	if now == nil {
		now = time.Now
	}
	return &Codec{aead: aead, name: name, secure: secure, maxAge: maxAge, now: now}, nil
}

// additional binds a sealed value to its purpose, so a value sealed for one use (the OIDC
// login state) cannot be replayed as another (a session).
func (c *Codec) seal(purpose string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", purpose, err)
	}
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal %s: %w", purpose, err)
	}
	out := c.aead.Seal(nonce, nonce, plain, []byte(purpose))
	s := base64.RawURLEncoding.EncodeToString(out)
	if len(s) > MaxCookieBytes {
		return "", fmt.Errorf("seal %s: %d bytes, more than a cookie holds (%d)", purpose, len(s), MaxCookieBytes)
	}
	return s, nil
}

func (c *Codec) open(purpose, sealed string, v any) error {
	if len(sealed) > MaxCookieBytes {
		return ErrInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < c.aead.NonceSize() {
		return ErrInvalid
	}
	nonce, box := raw[:c.aead.NonceSize()], raw[c.aead.NonceSize():]
	plain, err := c.aead.Open(nil, nonce, box, []byte(purpose))
	if err != nil {
		return ErrInvalid
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return ErrInvalid
	}
	return nil
}

// Write sets the session cookie on w; it expires with the session.
func (c *Codec) Write(w http.ResponseWriter, s *Session) error {
	v, err := c.seal("session", s)
	if err != nil {
		return err
	}
	http.SetCookie(w, c.cookie(c.name, v, time.Unix(s.Expires, 0)))
	return nil
}

// Read returns the request's session, ErrNone without one, ErrInvalid or ErrExpired.
func (c *Codec) Read(r *http.Request) (*Session, error) {
	ck, err := r.Cookie(c.name)
	if err != nil {
		return nil, ErrNone
	}
	var s Session
	if err := c.open("session", ck.Value, &s); err != nil {
		return nil, err
	}
	now := c.now()
	if now.Unix() >= s.Expires || (c.maxAge > 0 && now.Sub(time.Unix(s.Issued, 0)) >= c.maxAge) {
		return nil, ErrExpired
	}
	return &s, nil
}

// Clear removes the session cookie (sign-out).
func (c *Codec) Clear(w http.ResponseWriter) {
	ck := c.cookie(c.name, "", time.Unix(0, 0))
	ck.MaxAge = -1
	http.SetCookie(w, ck)
}

// WriteTemp sets a short-lived sealed cookie for a step of a sign-in (the OIDC state, nonce
// and PKCE verifier), readable once with ReadTemp.
func (c *Codec) WriteTemp(w http.ResponseWriter, name string, v any, ttl time.Duration) error {
	s, err := c.seal("temp:"+name, v)
	if err != nil {
		return err
	}
	http.SetCookie(w, c.cookie(c.tempName(name), s, c.now().Add(ttl)))
	return nil
}

// ReadTemp opens the temporary cookie name into v and removes it.
func (c *Codec) ReadTemp(w http.ResponseWriter, r *http.Request, name string, v any) error {
	ck, err := r.Cookie(c.tempName(name))
	if err != nil {
		return ErrNone
	}
	gone := c.cookie(c.tempName(name), "", time.Unix(0, 0))
	gone.MaxAge = -1
	http.SetCookie(w, gone)
	return c.open("temp:"+name, ck.Value, v)
}

func (c *Codec) tempName(name string) string {
	if c.secure {
		return "__Host-tp_" + name
	}
	return "tp_" + name
}

func (c *Codec) cookie(name, value string, expires time.Time) *http.Cookie {
	// Lax: the cookie goes along when a person follows a link to the console (and on the
	// identity provider's redirect back), never with a cross-site POST.
	return &http.Cookie{Name: name, Value: value, Path: "/", Expires: expires, HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode}
}

// LoadKey reads a session key file: KeyBytes as 64 hex digits (surrounding space ignored).
func LoadKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("session key file: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != KeyBytes {
		return nil, fmt.Errorf("session key file %s: want %d hex digits (e.g. openssl rand -hex %d)", path, 2*KeyBytes, KeyBytes)
	}
	return key, nil
}

// RandomKey is a fresh key, for a console whose sessions need not survive a restart.
func RandomKey() ([]byte, error) {
	k := make([]byte, KeyBytes)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	return k, nil
}
