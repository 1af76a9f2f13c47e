// Package hsapi is the small part of HubSpot's API the hubspot adapter reads: a conversation
// thread (for the ticket it is associated with), one message of it (who sent it, which way, a
// message or an internal comment) and the portal's owners (to turn a user id into the owner id
// that tickets are assigned with). Every call is bounded: one timeout per request, a cap on the
// lookups in flight per tenant, and a cap on the bytes read from an answer.
package hsapi

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

// DefaultBaseURL is HubSpot's API; a tenant's api_url replaces it (tests point it at a local
// server acting as HubSpot).
const DefaultBaseURL = "https://api.hubapi.com"

// Defaults of Options.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultConcurrency = 4
	// DefaultMaxResponseBytes bounds one answer. A message carries its text and rich text, so
	// a long e-mail is the largest answer expected; 4 MiB holds any the inbox shows.
	DefaultMaxResponseBytes = 4 << 20
	// ownersFresh is how long a portal's owner list is trusted; ownersRetry how soon a user
	// missing from it may make the list be read again (a user added since).
	ownersFresh = time.Hour
	ownersRetry = time.Minute
	// maxOwnerPages bounds the owner list at 20 pages of 500.
	maxOwnerPages = 20
	// DefaultRetryAfter is the wait a 503 asks for when HubSpot's own answer names none.
	DefaultRetryAfter = 10 * time.Second
	maxRetryAfter     = 60 * time.Second
)

// Token is a private app's access token. Like verify.Secret it never prints: fmt, slog and
// encoders all see "[redacted]".
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

// Access is a tenant's way into its portal: the private app's token and the API's base URL.
type Access struct {
	Token Token
	// BaseURL is DefaultBaseURL unless the tenants file says otherwise.
	BaseURL string
}

// Configured reports whether lookups can be made.
func (a Access) Configured() bool { return !a.Token.IsZero() }

// CheckBaseURL reports what makes u unusable as an API base URL: it must be https, or http to a
// loopback address only (a local stand-in for HubSpot), with no path, query or credentials, so
// the token never travels in clear over a network.
func CheckBaseURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if p.User != nil || p.RawQuery != "" || p.Fragment != "" || (p.Path != "" && p.Path != "/") || p.Host == "" {
		return errors.New("want scheme://host[:port] only, as https://api.hubapi.com")
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

// Options bound the client.
type Options struct {
	// Timeout bounds one request, and the wait for a free lookup slot; 0 means DefaultTimeout.
	Timeout time.Duration
	// Concurrency is the most lookups in flight per tenant; 0 means DefaultConcurrency.
	Concurrency int
	// MaxResponseBytes bounds an answer's body; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// HTTP is the client requests go through; nil means one without redirects to other hosts.
	HTTP *http.Client
	// Now is the clock of the owner cache; nil means time.Now.
	Now func() time.Time
}

// Client makes the lookups of every tenant; its per-tenant state (slots, owner lists) lives as
// long as it does.
type Client struct {
	o  Options
	mu sync.Mutex
	// tenants holds each tenant's slots and owner list.
	tenants map[string]*tenant
}

type tenant struct {
	slots chan struct{}

	// owning guards the owner list; a channel so that waiting for it ends with the request.
	owning chan struct{}
	// owners maps a user id to its owner id, with every owner id mapping to itself.
	owners   map[string]string
	loadedAt time.Time
	// loadedWith is the access the list was read with: another token or base URL is another portal.
	loadedWith string
}

// New returns a client bounded by o.
func New(o Options) *Client {
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
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Client{o: o, tenants: map[string]*tenant{}}
}

// Concurrency is the most requests one tenant may have in flight.
func (c *Client) Concurrency() int { return c.o.Concurrency }

func (c *Client) tenant(id string) *tenant {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tenants[id]
	if !ok {
		t = &tenant{slots: make(chan struct{}, c.o.Concurrency), owning: make(chan struct{}, 1)}
		c.tenants[id] = t
	}
	return t
}

// ErrNotFound is a thread, message or owner HubSpot answers 404 for.
var ErrNotFound = errors.New("not found at HubSpot")

// Unavailable is a lookup that may work later: HubSpot throttled (429), failed (5xx), did not
// answer in time, refused the token (401, 403), or every lookup slot of the tenant stayed busy.
// The delivery is answered 503 with RetryAfter and HubSpot sends it again.
type Unavailable struct {
	Reason string
	Wait   time.Duration
	Err    error
}

// RetryAfter is how long HubSpot should wait before sending the delivery again.
func (e *Unavailable) RetryAfter() time.Duration { return e.Wait }

func (e *Unavailable) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Unavailable) Unwrap() error { return e.Err }

// Invalid is an answer that is not what the API documents: malformed or oversized JSON, a
// missing field, a message of another thread. Asking again would get the same answer.
type Invalid struct{ Reason string }

func (e *Invalid) Error() string { return "unexpected HubSpot answer: " + e.Reason }

// Thread is what the adapter reads of a conversation thread.
type Thread struct {
	ID                  string `json:"id"`
	AssociatedContactID string `json:"associatedContactId"`
	ThreadAssociations  *struct {
		AssociatedTicketID string `json:"associatedTicketId"`
	} `json:"threadAssociations"`
}

// TicketID is the thread's associated ticket, "" when it has none.
func (t Thread) TicketID() string {
	if t.ThreadAssociations == nil {
		return ""
	}
	return t.ThreadAssociations.AssociatedTicketID
}

// Message is what the adapter reads of a message.
type Message struct {
	ID                    string    `json:"id"`
	Type                  string    `json:"type"`
	ConversationsThreadID string    `json:"conversationsThreadId"`
	CreatedAt             time.Time `json:"createdAt"`
	Direction             string    `json:"direction"`
	ChannelID             string    `json:"channelId"`
	Senders               []struct {
		ActorID string `json:"actorId"`
	} `json:"senders"`
}

// SenderActorID is the first sender's actor id ("A-123", "V-456", ...), "" when none is given.
func (m Message) SenderActorID() string {
	for _, s := range m.Senders {
		if s.ActorID != "" {
			return s.ActorID
		}
	}
	return ""
}

// Thread reads a thread with its ticket association.
func (c *Client) Thread(ctx context.Context, a Access, tenantID, threadID string) (Thread, error) {
	var th Thread
	err := c.get(ctx, a, tenantID, "/conversations/v3/conversations/threads/"+url.PathEscape(threadID), url.Values{"association": {"TICKET"}}, &th)
	if err != nil {
		return Thread{}, err
	}
	return th, ParseThread(&th, threadID)
}

// Message reads one message of a thread.
func (c *Client) Message(ctx context.Context, a Access, tenantID, threadID, messageID string) (Message, error) {
	var m Message
	path := "/conversations/v3/conversations/threads/" + url.PathEscape(threadID) + "/messages/" + url.PathEscape(messageID)
	if err := c.get(ctx, a, tenantID, path, nil, &m); err != nil {
		return Message{}, err
	}
	return m, ParseMessage(&m, threadID, messageID)
}

// ParseThread checks a decoded thread against the one asked for.
func ParseThread(th *Thread, threadID string) error {
	if th.ID != "" && th.ID != threadID {
		return &Invalid{Reason: fmt.Sprintf("asked for thread %s, got thread %q", threadID, trunc(th.ID))}
	}
	if t := th.TicketID(); t != "" && !numeric(t) {
		return &Invalid{Reason: fmt.Sprintf("associatedTicketId %q is not a ticket id", trunc(t))}
	}
	return nil
}

// ParseMessage checks a decoded message against the one asked for.
func ParseMessage(m *Message, threadID, messageID string) error {
	switch {
	case m.ID != messageID:
		return &Invalid{Reason: fmt.Sprintf("asked for message %s, got %q", trunc(messageID), trunc(m.ID))}
	case m.ConversationsThreadID != "" && m.ConversationsThreadID != threadID:
		return &Invalid{Reason: fmt.Sprintf("message %s belongs to thread %q, not %s", trunc(messageID), trunc(m.ConversationsThreadID), threadID)}
	case m.Type == "":
		return &Invalid{Reason: "message without type"}
	case m.CreatedAt.IsZero():
		return &Invalid{Reason: "message without createdAt"}
	}
	return nil
}

// ParseThreadJSON and ParseMessageJSON decode and check an answer's body, as the client does.
func ParseThreadJSON(body []byte, threadID string) (Thread, error) {
	var th Thread
	if err := decode(body, &th); err != nil {
		return Thread{}, err
	}
	return th, ParseThread(&th, threadID)
}

// ParseMessageJSON: see ParseThreadJSON.
func ParseMessageJSON(body []byte, threadID, messageID string) (Message, error) {
	var m Message
	if err := decode(body, &m); err != nil {
		return Message{}, err
	}
	return m, ParseMessage(&m, threadID, messageID)
}

// OwnerOfUser turns the user id of an agent actor ("A-<id>") into the owner id HubSpot assigns
// tickets with (hubspot_owner_id). The portal's owner list is read once and kept for an hour; a
// user missing from it makes it be read again, at most once a minute. An id that is already an
// owner id is its own answer. ok false: neither a user nor an owner of the portal.
func (c *Client) OwnerOfUser(ctx context.Context, a Access, tenantID, userID string) (owner string, ok bool, err error) {
	if !a.Configured() {
		return "", false, errors.New("no HubSpot access token")
	}
	t := c.tenant(tenantID)
	select {
	case t.owning <- struct{}{}:
		defer func() { <-t.owning }()
	case <-ctx.Done():
		return "", false, &Unavailable{Reason: "waiting for the owner list", Wait: DefaultRetryAfter, Err: ctx.Err()}
	}
	now := c.o.Now()
	with := a.BaseURL + "\x00" + a.Token.k.s
	if t.loadedWith != with {
		t.owners, t.loadedAt, t.loadedWith = nil, time.Time{}, with
	}
	owner, ok = t.owners[userID]
	stale := now.Sub(t.loadedAt) >= ownersFresh
	if ok && !stale {
		return owner, true, nil
	}
	if !stale && t.owners != nil && now.Sub(t.loadedAt) < ownersRetry {
		return "", false, nil
	}
	owners, err := c.owners(ctx, a, tenantID)
	if err != nil {
		if ok {
			// A stale answer beats none while HubSpot is unavailable: owner ids do not change.
			return owner, true, nil
		}
		return "", false, err
	}
	t.owners, t.loadedAt = owners, now
	owner, ok = owners[userID]
	return owner, ok, nil
}

// ownerPage is one page of GET /crm/v3/owners.
type ownerPage struct {
	Results []struct {
		ID     string          `json:"id"`
		UserID json.RawMessage `json:"userId"`
	} `json:"results"`
	Paging *struct {
		Next *struct {
			After string `json:"after"`
		} `json:"next"`
	} `json:"paging"`
}

func (c *Client) owners(ctx context.Context, a Access, tenantID string) (map[string]string, error) {
	out := map[string]string{}
	after := ""
	for range maxOwnerPages {
		q := url.Values{"limit": {"500"}}
		if after != "" {
			q.Set("after", after)
		}
		var page ownerPage
		if err := c.get(ctx, a, tenantID, "/crm/v3/owners", q, &page); err != nil {
			return nil, err
		}
		for _, o := range page.Results {
			if !numeric(o.ID) {
				continue
			}
			out[o.ID] = o.ID
			if u := strings.Trim(string(o.UserID), `"`); numeric(u) {
				out[u] = o.ID
			}
		}
		if page.Paging == nil || page.Paging.Next == nil || page.Paging.Next.After == "" {
			return out, nil
		}
		after = page.Paging.Next.After
	}
	return out, nil
}

// get makes one bounded GET and decodes its JSON answer into v.
func (c *Client) get(ctx context.Context, a Access, tenantID, path string, q url.Values, v any) error {
	if !a.Configured() {
		return errors.New("no HubSpot access token")
	}
	base := a.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	t := c.tenant(tenantID)
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	select {
	case t.slots <- struct{}{}:
		defer func() { <-t.slots }()
	case <-ctx.Done():
		return &Unavailable{Reason: "every HubSpot lookup slot of the tenant stayed busy", Wait: DefaultRetryAfter, Err: ctx.Err()}
	}
	u := strings.TrimSuffix(base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("hubspot request %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.Token.k.s)
	req.Header.Set("Accept", "application/json")
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		// The URL holds no secret, but the error may quote it; keep the path only.
		return &Unavailable{Reason: "HubSpot did not answer " + path, Wait: DefaultRetryAfter, Err: unwrapURL(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.o.MaxResponseBytes+1))
	if err != nil {
		return &Unavailable{Reason: "reading HubSpot's answer to " + path, Wait: DefaultRetryAfter, Err: unwrapURL(err)}
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case resp.StatusCode == http.StatusTooManyRequests:
		return &Unavailable{Reason: "HubSpot throttled " + path + " (429)", Wait: retryAfter(resp.Header.Get("Retry-After"))}
	case resp.StatusCode >= 500:
		return &Unavailable{Reason: fmt.Sprintf("HubSpot failed %s (%d)", path, resp.StatusCode), Wait: retryAfter(resp.Header.Get("Retry-After"))}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// A token revoked or missing a scope is the operator's to fix; until then HubSpot keeps
		// the delivery and retries it.
		return &Unavailable{Reason: fmt.Sprintf("HubSpot refused the access token for %s (%d): check the private app's token and scopes", path, resp.StatusCode), Wait: DefaultRetryAfter}
	case resp.StatusCode != http.StatusOK:
		return &Invalid{Reason: fmt.Sprintf("%s answered %d", path, resp.StatusCode)}
	}
	if int64(len(body)) > c.o.MaxResponseBytes {
		return &Invalid{Reason: fmt.Sprintf("%s answered more than %d bytes", path, c.o.MaxResponseBytes)}
	}
	return decode(body, v)
}

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &Invalid{Reason: fmt.Sprintf("%s must be a JSON %s, not %s", te.Field, te.Type.Kind(), te.Value)}
		}
		return &Invalid{Reason: "malformed JSON: " + err.Error()}
	}
	return nil
}

// retryAfter reads a Retry-After in seconds, within 1 s and a minute.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return DefaultRetryAfter
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

// unwrapURL drops the *url.Error wrapper, whose text repeats the whole URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func numeric(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
