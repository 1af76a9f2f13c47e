package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// The generic source's signing key, and its whsec_ form as the tenants file's env var holds it.
var genericKey = []byte("0123456789abcdef0123456789abcdef")

// startWebhooks runs ingest with the webhook body limit the tests exceed (the tenants file of
// writeTenants configures the webhooks).
func startWebhooks(t *testing.T, natsURL string) *running {
	t.Helper()
	return startWebhooksWith(t, natsURL, nil)
}

// startWebhooksWith is startWebhooks with more settings changed by mod.
func startWebhooksWith(t *testing.T, natsURL string, mod func(*Config, *Deps)) *running {
	t.Helper()
	return start(t, natsURL, func(c *Config, d *Deps) {
		c.WebhookMaxBodyBytes = 4 << 10
		if mod != nil {
			mod(c, d)
		}
	})
}

// signed returns Standard Webhooks headers for body, computed here independently of package verify.
func signed(id string, at time.Time, body string) map[string]string {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, genericKey)
	mac.Write([]byte(id + "." + ts + "." + body))
	return map[string]string{
		"webhook-id":        id,
		"webhook-timestamp": ts,
		"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)),
	}
}

func (r *running) hook(t *testing.T, tenant, source, body string, header map[string]string) response {
	t.Helper()
	return do(t, http.MethodPost, r.base+"/v1/tenants/"+tenant+"/webhooks/"+source, jsonType, body, header)
}

func TestWebhookRejectionsChangeNothing(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startWebhooks(t, url)
	stream := tickets(t, url)
	good := "[" + event("w-1", "agent_message", `"public":true`) + "]"
	now := time.Now()
	tampered := signed("d-1", now, good)
	stale := signed("d-2", now.Add(-6*time.Minute), good)
	tests := []struct {
		name   string
		method string
		path   string
		ctype  string
		body   string
		header map[string]string
		status int
		want   string
		// contains replaces want for a message that depends on the clock.
		contains []string
	}{
		{name: "GET", method: http.MethodGet, path: "/v1/tenants/acme/webhooks/generic", status: 405,
			want: `{"error":"method not allowed","reason":"use POST"}`},
		{name: "unknown source", path: "/v1/tenants/acme/webhooks/jira", body: good, header: signed("d", now, good), status: 404,
			want: `{"error":"unknown source","reason":"no webhook for source \"jira\"; the sources are [zendesk chatwoot freshdesk helpscout zammad intercom salesforce hubspot generic typeform surveymonkey qualtrics five9 genesys ringcentral]"}`},
		{name: "unknown tenant", path: "/v1/tenants/nobody/webhooks/generic", body: good, header: signed("d", now, good), status: 404,
			want: `{"error":"not configured","reason":"this tenant has no webhook configured for this source"}`},
		{name: "tenant without the source", path: "/v1/tenants/globex/webhooks/generic", body: good, header: signed("d", now, good), status: 404,
			want: `{"error":"not configured","reason":"this tenant has no webhook configured for this source"}`},
		{name: "invalid tenant", path: "/v1/tenants/Acme!/webhooks/generic", body: good, status: 400,
			want: `{"error":"invalid request","problems":[{"index":0,"field":"tenant","reason":"must match [a-z0-9][a-z0-9_-]{0,62}"}]}`},
		{name: "not JSON", ctype: "text/plain", body: good, header: signed("d", now, good), status: 415,
			want: `{"error":"unsupported media type","reason":"Content-Type must be application/json"}`},
		{name: "too large", body: strings.Repeat(" ", 5<<10) + good, status: 413,
			want: `{"error":"request too large","reason":"body exceeds 4096 bytes"}`},
		{name: "unsigned", body: good, status: 401,
			want: `{"error":"unauthorized","code":"missing_signature","reason":"no webhook-signature header"}`},
		{name: "tampered body", body: strings.Replace(good, "w-1", "w-2", 1), header: tampered, status: 401,
			want: `{"error":"unauthorized","code":"bad_signature","reason":"no webhook-signature entry matches the body"}`},
		{name: "stale timestamp", body: good, header: stale, status: 401,
			contains: []string{`{"error":"unauthorized","code":"stale_timestamp","reason":"webhook-timestamp is 6m`, `old; the tolerance is 5m0s"}`}},
		{name: "signed but invalid events", body: `[{"id":"x"}]`, header: signed("d-3", now, `[{"id":"x"}]`), status: 400,
			want: `{"error":"invalid request","problems":[{"index":0,"field":"ticket_id","reason":"required"},{"index":0,"field":"type","reason":"required"},{"index":0,"field":"occurred_at","reason":"required"},{"index":0,"field":"actor","reason":"required"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := msgCount(t, stream)
			method, path, ctype := tt.method, tt.path, tt.ctype
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/v1/tenants/acme/webhooks/generic"
			}
			if ctype == "" {
				ctype = jsonType
			}
			got := do(t, method, r.base+path, ctype, tt.body, tt.header)
			if tt.contains == nil {
				wantJSON(t, got, tt.status, tt.want)
			}
			for _, part := range tt.contains {
				if got.status != tt.status || !strings.Contains(got.body, part) {
					t.Errorf("got %d %s, want %d with %s", got.status, got.body, tt.status, part)
				}
			}
			if after := msgCount(t, stream); after != before {
				t.Errorf("stream went from %d to %d messages", before, after)
			}
		})
	}
	// Rejections are counted by source and reason, and every reason's series exists from the start.
	metrics := do(t, http.MethodGet, r.AdminURL("/metrics"), "", "", nil).body
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ingest_webhook_rejections_total\{[^}]*reason="bad_signature"[^}]*source="generic"[^}]*\} 1$`),
		regexp.MustCompile(`(?m)^ingest_webhook_rejections_total\{[^}]*reason="stale_timestamp"[^}]*source="generic"[^}]*\} 1$`),
		regexp.MustCompile(`(?m)^ingest_webhook_rejections_total\{[^}]*reason="bad_token"[^}]*source="freshdesk"[^}]*\} 0$`),
		regexp.MustCompile(`(?m)^ingest_webhook_deliveries_total\{[^}]*source="unknown"[^}]*status="404"[^}]*\} 1$`),
	} {
		if !want.MatchString(metrics) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
}

func TestWebhookDeliveryIsPublishedOnce(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startWebhooks(t, url)
	stream := tickets(t, url)
	body := "[" + event("w-1", "agent_message", `"public":true`) + "," + event("w-2", "customer_message", "") + "]"
	h := signed("delivery-1", time.Now(), body)
	wantJSON(t, r.hook(t, "acme", "generic", body, h), 202, `{"accepted":["w-1","w-2"],"duplicates":0}`)
	if n := msgCount(t, stream); n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
	// The source retries the same delivery (same id, its own new timestamp and signature).
	wantJSON(t, r.hook(t, "acme", "generic", body, signed("delivery-1", time.Now(), body)), 200, `{"accepted":[],"duplicates":0,"duplicate_delivery":true}`)
	if n := msgCount(t, stream); n != 2 {
		t.Fatalf("a repeated delivery was published: %d messages", n)
	}
	// Another delivery carrying the same events: published, and acknowledged as duplicates.
	wantJSON(t, r.hook(t, "acme", "generic", body, signed("delivery-2", time.Now(), body)), 202, `{"accepted":["w-1","w-2"],"duplicates":2}`)
	if n := msgCount(t, stream); n != 2 {
		t.Fatalf("duplicate events were stored: %d messages", n)
	}
}

func TestWebhookRateLimit(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startWebhooks(t, url)
	stream := tickets(t, url)
	batch := func(i int) string {
		return "[" + event(fmt.Sprintf("r-%d-a", i), "customer_message", "") + "," + event(fmt.Sprintf("r-%d-b", i), "customer_message", "") + "]"
	}
	first := batch(1)
	wantJSON(t, r.hook(t, "slow", "generic", first, signed("s-1", time.Now(), first)), 202, `{"accepted":["r-1-a","r-1-b"],"duplicates":0}`)
	// Two more events do not fit the one token left of the burst of 3 (refilled at 0.01/s).
	second := batch(2)
	got := r.hook(t, "slow", "generic", second, signed("s-2", time.Now(), second))
	if got.status != http.StatusTooManyRequests {
		t.Fatalf("got %d %s, want 429", got.status, got.body)
	}
	if ra, err := strconv.Atoi(got.header.Get("Retry-After")); err != nil || ra < 90 || ra > 101 {
		t.Errorf("Retry-After %q, want about 100 s (one event at 0.01/s)", got.header.Get("Retry-After"))
	}
	if n := msgCount(t, stream); n != 2 {
		t.Errorf("a rate-limited delivery was published: %d messages", n)
	}
	// Other tenants are not held back.
	other := batch(3)
	wantJSON(t, r.hook(t, "acme", "generic", other, signed("a-1", time.Now(), other)), 202, `{"accepted":["r-3-a","r-3-b"],"duplicates":0}`)
}

// The events API draws on the same per-tenant budget as the webhooks: a tenant cannot go around
// its rate limit by posting canonical events instead, and a refused request stores nothing.
func TestEventsAPISharesTheWebhookRateLimit(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startWebhooks(t, url)
	stream := tickets(t, url)
	hook := "[" + event("e-1", "customer_message", "") + "," + event("e-2", "customer_message", "") + "]"
	wantJSON(t, r.hook(t, "slow", "generic", hook, signed("s-1", time.Now(), hook)), 202, `{"accepted":["e-1","e-2"],"duplicates":0}`)
	// One token is left of the burst of 3: one event through the API fits, the next does not.
	wantJSON(t, r.post(t, "slow", "["+event("e-3", "customer_message", "")+"]"), 202, `{"accepted":["e-3"],"duplicates":0}`)
	got := r.post(t, "slow", "["+event("e-4", "customer_message", "")+"]")
	if got.status != http.StatusTooManyRequests || !strings.Contains(got.body, `"error":"rate limited"`) ||
		!strings.Contains(got.body, "tenant slow may send 0.01 events/s (bursts of 3)") {
		t.Fatalf("got %d %s, want 429 naming the limit", got.status, got.body)
	}
	if ra, err := strconv.Atoi(got.header.Get("Retry-After")); err != nil || ra < 90 || ra > 101 {
		t.Errorf("Retry-After %q, want about 100 s (one event at 0.01/s)", got.header.Get("Retry-After"))
	}
	if n := msgCount(t, stream); n != 3 {
		t.Errorf("stream holds %d messages; want 3 (the refused request stored nothing)", n)
	}
	// Tenants without a rate_limit of their own are not held back by slow's.
	for i, tenant := range []string{"acme", "globex"} {
		body := "[" + event(fmt.Sprintf("x-%d-a", i), "customer_message", "") + "," + event(fmt.Sprintf("x-%d-b", i), "customer_message", "") + "]"
		if got := r.post(t, tenant, body); got.status != http.StatusAccepted {
			t.Errorf("%s: got %d %s, want 202", tenant, got.status, got.body)
		}
	}
	// A tenant the file does not name takes no events at all, not even an operator's.
	body := "[" + event("x-u-a", "customer_message", "") + "]"
	got = r.post(t, "unlisted", body)
	wantRefusal(t, got, http.StatusNotFound, `{"error":"unknown tenant","code":"unknown_tenant","reason":"unknown tenant"}`, "")
	if n := msgCount(t, stream); n != 7 {
		t.Errorf("stream holds %d messages; want 7", n)
	}
}

// A delivery JetStream did not store is not remembered: the source's retry is published.
func TestWebhookNotStoredIsNotRemembered(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startWebhooks(t, url)
	body := "[" + event("n-1", "customer_message", "") + "]"
	deleteTickets(t, url)
	got := r.hook(t, "acme", "generic", body, signed("d-9", time.Now(), body))
	if got.status != http.StatusServiceUnavailable || got.header.Get("Retry-After") != "2" {
		t.Fatalf("got %d (Retry-After %q) %s, want 503 with Retry-After 2", got.status, got.header.Get("Retry-After"), got.body)
	}
	if _, err := stream.Ensure(context.Background(), jetStream(t, url), stream.Tickets(time.Hour, 1)); err != nil {
		t.Fatal(err)
	}
	wantJSON(t, r.hook(t, "acme", "generic", body, signed("d-9", time.Now(), body)), 202, `{"accepted":["n-1"],"duplicates":0}`)
	if n := msgCount(t, tickets(t, url)); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestBadTenantsFileStopsTheService(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(path, []byte("tenants:\n  acme:\n    sources:\n      generic:\n        secrets: [{env: MISSING}]\n    colour: blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.NATSURL = "nats://127.0.0.1:1" // never reached: the file is read first
	cfg.TenantsFile = path
	err := Deps{Getenv: func(string) string { return "" }}.Run(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("Run accepted a bad tenants file")
	}
	for _, want := range []string{path + ":5: ", "MISSING", path + ":6: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
