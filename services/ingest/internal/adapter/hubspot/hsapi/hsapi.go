// Package hsapi is the small part of HubSpot's API the hubspot adapter reads: a conversation
// thread (for the ticket it is associated with), one message of it (who sent it, which way, a
// message or an internal comment) and the portal's owners (to turn a user id into the owner id
// that tickets are assigned with). Every call is bounded: one timeout per request, a cap on the
// lookups in flight per tenant, and a cap on the bytes read from an answer (package vendorapi).
package hsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/vendorapi"
)

// DefaultBaseURL is HubSpot's API; a tenant's api_url replaces it (tests point it at a local
// server acting as HubSpot).
const DefaultBaseURL = "https://api.hubapi.com"

// Defaults of Options.
const (
	DefaultTimeout          = vendorapi.DefaultTimeout
	DefaultConcurrency      = vendorapi.DefaultConcurrency
	DefaultMaxResponseBytes = vendorapi.DefaultMaxResponseBytes
	// ownersFresh is how long a portal's owner list is trusted; ownersRetry how soon a user
	// missing from it may make the list be read again (a user added since).
	ownersFresh = time.Hour
	ownersRetry = time.Minute
	// maxOwnerPages bounds the owner list at 20 pages of 500.
	maxOwnerPages = 20
	// DefaultRetryAfter is the wait a 503 asks for when HubSpot's own answer names none.
	DefaultRetryAfter = vendorapi.DefaultRetryAfter
)

// Token is a private app's access token; it never prints (vendorapi.Token).
type Token = vendorapi.Token

// NewToken returns a Token holding s.
func NewToken(s string) Token { return vendorapi.NewToken(s) }

// Access is a tenant's way into its portal: the private app's token and the API's base URL
// (DefaultBaseURL unless the tenants file says otherwise).
type Access = vendorapi.Access

// CheckBaseURL reports what makes u unusable as an API base URL (vendorapi.CheckBaseURL).
func CheckBaseURL(u string) error { return vendorapi.CheckBaseURL(u, DefaultBaseURL) }

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

// vendor is how HubSpot's API is asked: a bearer token.
var vendor = vendorapi.Vendor{Name: "HubSpot", DefaultBaseURL: DefaultBaseURL, Credentials: "the private app's token and scopes"}

// Client makes the lookups of every tenant; its per-tenant state (slots, owner lists) lives as
// long as it does.
type Client struct {
	api *vendorapi.Client
	now func() time.Time
	mu  sync.Mutex
	// tenants holds each tenant's owner list.
	tenants map[string]*tenant
}

type tenant struct {
	// owning guards the owner list; a channel so that waiting for it ends with the request.
	owning chan struct{}
	// owners maps a user id to its owner id, with every owner id mapping to itself.
	owners   map[string]string
	loadedAt time.Time
	// loadedWith is the access the list was read with: another token or base URL is another portal.
	loadedWith Access
}

// New returns a client bounded by o.
func New(o Options) *Client {
	if o.Now == nil {
		o.Now = time.Now
	}
	api := vendorapi.New(vendor, vendorapi.Options{Timeout: o.Timeout, Concurrency: o.Concurrency, MaxResponseBytes: o.MaxResponseBytes, HTTP: o.HTTP})
	return &Client{api: api, now: o.Now, tenants: map[string]*tenant{}}
}

// Concurrency is the most requests one tenant may have in flight.
func (c *Client) Concurrency() int { return c.api.Concurrency() }

func (c *Client) tenant(id string) *tenant {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tenants[id]
	if !ok {
		t = &tenant{owning: make(chan struct{}, 1)}
		c.tenants[id] = t
	}
	return t
}

// ErrNotFound is a thread, message or owner HubSpot answers 404 for.
var ErrNotFound = vendorapi.ErrNotFound

// Unavailable is a lookup that may work later (vendorapi.Unavailable): the delivery is answered
// 503 with RetryAfter and HubSpot sends it again.
type Unavailable = vendorapi.Unavailable

// Invalid is an answer that is not what the API documents (vendorapi.Invalid).
type Invalid = vendorapi.Invalid

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
		return &Invalid{Vendor: vendor.Name, Reason: fmt.Sprintf("asked for thread %s, got thread %q", threadID, trunc(th.ID))}
	}
	if t := th.TicketID(); t != "" && !numeric(t) {
		return &Invalid{Vendor: vendor.Name, Reason: fmt.Sprintf("associatedTicketId %q is not a ticket id", trunc(t))}
	}
	return nil
}

// ParseMessage checks a decoded message against the one asked for.
func ParseMessage(m *Message, threadID, messageID string) error {
	switch {
	case m.ID != messageID:
		return &Invalid{Vendor: vendor.Name, Reason: fmt.Sprintf("asked for message %s, got %q", trunc(messageID), trunc(m.ID))}
	case m.ConversationsThreadID != "" && m.ConversationsThreadID != threadID:
		return &Invalid{Vendor: vendor.Name, Reason: fmt.Sprintf("message %s belongs to thread %q, not %s", trunc(messageID), trunc(m.ConversationsThreadID), threadID)}
	case m.Type == "":
		return &Invalid{Vendor: vendor.Name, Reason: "message without type"}
	case m.CreatedAt.IsZero():
		return &Invalid{Vendor: vendor.Name, Reason: "message without createdAt"}
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
	now := c.now()
	if !t.loadedWith.Same(a) {
		t.owners, t.loadedAt, t.loadedWith = nil, time.Time{}, a
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
	return c.api.Get(ctx, a, tenantID, path, q, v)
}

func decode(body []byte, v any) error { return vendorapi.Decode(vendor.Name, body, v) }

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
