// Package vendorapi is the bounded HTTP client the adapters look things up with at a vendor's API
// when a webhook names an object without saying what it is (HubSpot's conversation messages,
// SurveyMonkey's and Qualtrics' responses). Every call is bounded: one timeout per request, a cap
// on the requests in flight per tenant, a cap on the bytes read from an answer, and no redirect
// followed. Its outcomes are the webhook's: a vendor that cannot answer now is an *Unavailable
// (RetryAfter, answered 503 so the vendor sends the delivery again), a 404 is ErrNotFound, and an
// answer the vendor does not document is an *Invalid.
package vendorapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultConcurrency = 4
	// DefaultMaxResponseBytes bounds one answer. A HubSpot message carries its text and rich
	// text, so a long e-mail is the largest answer expected; 4 MiB holds any the vendors show.
	DefaultMaxResponseBytes = 4 << 20
	// DefaultRetryAfter is the wait a 503 asks for when the vendor's own answer names none.
	DefaultRetryAfter = 10 * time.Second
	// MaxRetryAfter caps a vendor's Retry-After: the webhook's sender retries on its own
	// schedule anyway, and a longer wait only holds its delivery back.
	MaxRetryAfter = 60 * time.Second
)

// Token is an API token. Like verify.Secret it never prints: fmt, slog and encoders all see
// "[redacted]".
type Token struct{ k *tokenKey }

type tokenKey struct{ s string }

// NewToken returns a Token holding s.
func NewToken(s string) Token {
	if s == "" {
		return Token{}
	}
	return Token{&tokenKey{s}}
}

// IsZero reports an unset token.
func (t Token) IsZero() bool { return t.k == nil || t.k.s == "" }

// Equal reports whether t and u hold the same token, without either being shown.
func (t Token) Equal(u Token) bool {
	if t.IsZero() || u.IsZero() {
		return t.IsZero() == u.IsZero()
	}
	return t.k.s == u.k.s
}

// String returns "[redacted]", or "[unset]".
func (t Token) String() string {
	if t.IsZero() {
		return "[unset]"
	}
	return "[redacted]"
}

// Format makes every verb print what String does.
func (t Token) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// LogValue implements slog.LogValuer.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalText keeps the token out of JSON, YAML and text encoders.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Access is a tenant's way into its account at a vendor: the token and the API's base URL.
type Access struct {
	Token Token
	// BaseURL is the vendor's default unless the tenants file says otherwise.
	BaseURL string
}

// Configured reports whether lookups can be made.
func (a Access) Configured() bool { return !a.Token.IsZero() }

// Same reports whether a and b reach the same account: the same token at the same base URL.
func (a Access) Same(b Access) bool { return a.BaseURL == b.BaseURL && a.Token.Equal(b.Token) }

// CheckBaseURL reports what makes u unusable as an API base URL: it must be https, or http to a
// loopback address only (a local stand-in for the vendor), with no path, query or credentials,
// so the token never travels in clear over a network. example is a good one, for the message.
func CheckBaseURL(u, example string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if p.User != nil || p.RawQuery != "" || p.Fragment != "" || (p.Path != "" && p.Path != "/") || p.Host == "" {
		return errors.New("want scheme://host[:port] only, as " + example)
	}
	switch p.Scheme {
	case "https":
		return nil
	case "http":
		host := p.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
		return errors.New("http is only allowed to a loopback address; use https")
	}
	return fmt.Errorf("scheme %q: want https", p.Scheme)
}

// Vendor says how one vendor's API is asked.
type Vendor struct {
	// Name is the vendor in messages: "HubSpot".
	Name string
	// DefaultBaseURL is used when an Access has none; "" makes such an access an error.
	DefaultBaseURL string
	// Authorize sets the token on a request; nil sends it as a bearer token.
	Authorize func(h http.Header, token string)
	// Credentials names what to check when the token is refused: "the private app's token and
	// scopes".
	Credentials string
}

// Options bound the client.
type Options struct {
	// Timeout bounds one request, and the wait for a free lookup slot; 0 means DefaultTimeout.
	Timeout time.Duration
	// Concurrency is the most lookups in flight per tenant; 0 means DefaultConcurrency.
	Concurrency int
	// MaxResponseBytes bounds an answer's body; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// HTTP is the client requests go through; nil means one that follows no redirect.
	HTTP *http.Client
}

// Client makes the requests of every tenant to one vendor; its per-tenant slots live as long as
// it does.
type Client struct {
	v     Vendor
	o     Options
	mu    sync.Mutex
	slots map[string]chan struct{}
}

// New returns a client of v bounded by o.
func New(v Vendor, o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			// The token goes in a header; an answer redirecting elsewhere is not followed.
			return http.ErrUseLastResponse
		}}
	}
	if v.Authorize == nil {
		v.Authorize = func(h http.Header, token string) { h.Set("Authorization", "Bearer "+token) }
	}
	if v.Credentials == "" {
		v.Credentials = "the token and its permissions"
	}
	return &Client{v: v, o: o, slots: map[string]chan struct{}{}}
}

// Concurrency is the most requests one tenant may have in flight.
func (c *Client) Concurrency() int { return c.o.Concurrency }

// Vendor is the vendor's name, for messages.
func (c *Client) Vendor() string { return c.v.Name }

func (c *Client) tenant(id string) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.slots[id]
	if !ok {
		s = make(chan struct{}, c.o.Concurrency)
		c.slots[id] = s
	}
	return s
}

// ErrNotFound is what the vendor answers 404 for.
var ErrNotFound = errors.New("not found at the vendor's API")

// Unavailable is a lookup that may work later: the vendor throttled (429), failed (5xx), did not
// answer in time, refused the token (401, 403), or every lookup slot of the tenant stayed busy.
// The delivery is answered 503 with RetryAfter and the vendor sends it again.
type Unavailable struct {
	Reason string
	Wait   time.Duration
	Err    error
}

// RetryAfter is how long the vendor should wait before sending the delivery again.
func (e *Unavailable) RetryAfter() time.Duration { return e.Wait }

func (e *Unavailable) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Unavailable) Unwrap() error { return e.Err }

// Invalid is an answer that is not what the API documents: malformed or oversized JSON, a
// missing field, an object other than the one asked for. Asking again would get the same answer.
type Invalid struct {
	// Vendor names the API in the message; "" says "the API".
	Vendor string
	Reason string
}

func (e *Invalid) Error() string {
	v := e.Vendor
	if v == "" {
		v = "API"
	}
	return "unexpected " + v + " answer: " + e.Reason
}

// Get makes one bounded GET of path (with query q) for a tenant and decodes its JSON answer into
// v.
func (c *Client) Get(ctx context.Context, a Access, tenantID, path string, q url.Values, v any) error {
	name := c.v.Name
	if !a.Configured() {
		return fmt.Errorf("no %s access token", name)
	}
	base := a.BaseURL
	if base == "" {
		base = c.v.DefaultBaseURL
	}
	if base == "" {
		return fmt.Errorf("no %s API URL", name)
	}
	slots := c.tenant(tenantID)
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	select {
	case slots <- struct{}{}:
		defer func() { <-slots }()
	case <-ctx.Done():
		return &Unavailable{Reason: "every " + name + " lookup slot of the tenant stayed busy", Wait: DefaultRetryAfter, Err: ctx.Err()}
	}
	u := strings.TrimSuffix(base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%s request %s: %w", name, path, err)
	}
	c.v.Authorize(req.Header, a.Token.k.s)
	req.Header.Set("Accept", "application/json")
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		// The URL holds no secret, but the error may quote it; keep the path only.
		return &Unavailable{Reason: name + " did not answer " + path, Wait: DefaultRetryAfter, Err: unwrapURL(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.o.MaxResponseBytes+1))
	if err != nil {
		return &Unavailable{Reason: "reading " + name + "'s answer to " + path, Wait: DefaultRetryAfter, Err: unwrapURL(err)}
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case resp.StatusCode == http.StatusTooManyRequests:
		return &Unavailable{Reason: name + " throttled " + path + " (429)", Wait: retryAfter(resp.Header.Get("Retry-After"))}
	case resp.StatusCode >= 500:
		return &Unavailable{Reason: fmt.Sprintf("%s failed %s (%d)", name, path, resp.StatusCode), Wait: retryAfter(resp.Header.Get("Retry-After"))}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// A token revoked or missing a scope is the operator's to fix; until then the vendor
		// keeps the delivery and retries it.
		return &Unavailable{Reason: fmt.Sprintf("%s refused the access token for %s (%d): check %s", name, path, resp.StatusCode, c.v.Credentials), Wait: DefaultRetryAfter}
	case resp.StatusCode != http.StatusOK:
		return &Invalid{Vendor: name, Reason: fmt.Sprintf("%s answered %d", path, resp.StatusCode)}
	}
	if int64(len(body)) > c.o.MaxResponseBytes {
		return &Invalid{Vendor: name, Reason: fmt.Sprintf("%s answered more than %d bytes", path, c.o.MaxResponseBytes)}
	}
	return Decode(name, body, v)
}

// Decode reads an answer's JSON body into v; what does not decode is an *Invalid of vendor.
func Decode(vendor string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &Invalid{Vendor: vendor, Reason: fmt.Sprintf("%s must be a JSON %s, not %s", te.Field, te.Type.Kind(), te.Value)}
		}
		return &Invalid{Vendor: vendor, Reason: "malformed JSON: " + err.Error()}
	}
	return nil
}

// retryAfter reads a Retry-After in seconds, within 1 s and MaxRetryAfter.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return DefaultRetryAfter
	}
	return min(time.Duration(n)*time.Second, MaxRetryAfter)
}

// unwrapURL drops the *url.Error wrapper, whose text repeats the whole URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
