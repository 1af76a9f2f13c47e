package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	ptenants "github.com/ticketpulse/ticketpulse/services/platform/tenants"
)

func TestCheckContentType(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "plain", give: "application/json", want: ""},
		{name: "utf-8 charset", give: "application/json; charset=utf-8", want: ""},
		{name: "charset case and spacing", give: "Application/JSON;charset=\"UTF-8\"", want: ""},
		{name: "missing", give: "", want: "Content-Type must be application/json"},
		{name: "form", give: "application/x-www-form-urlencoded", want: "Content-Type must be application/json"},
		{name: "json suffix types are not canonical JSON", give: "application/vnd.api+json", want: "Content-Type must be application/json"},
		{name: "malformed", give: "application/json; charset", want: "Content-Type must be application/json"},
		{name: "other charset", give: "application/json; charset=utf-16", want: "charset must be utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkContentType(tt.give); got != tt.want {
				t.Errorf("checkContentType(%q) = %q; want %q", tt.give, got, tt.want)
			}
		})
	}
}

// testAuth is the gate ingest puts in front of the events route, over a real tenants file with
// tenants acme and globex; requests carry ts.Acme (every scope of acme).
func testAuth(t testing.TB) (Authorizer, *servicetest.Tenants) {
	t.Helper()
	ts := servicetest.WriteTenants(t, nil)
	reg, err := tenants.Open(context.Background(), ts.File, ptenants.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewGate(reg, nil), ts
}

func TestNewRequiresAnAuthorizer(t *testing.T) {
	_, err := New(Config{MaxEvents: 1, MaxBodyBytes: 1, PublishTimeout: time.Second}, nil, slog.New(slog.DiscardHandler),
		tracenoop.NewTracerProvider().Tracer(""), metricnoop.NewMeterProvider().Meter(""))
	if err == nil || err.Error() != "events API: no authorizer" {
		t.Fatalf("New without Auth = %v; want refused", err)
	}
}

// countingReader counts the bytes read from a request body.
type countingReader struct {
	r    io.Reader
	read int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

// A refusal is answered from the headers alone: not a byte of the body is read, so a flood
// without credential costs no body read (nor, see the app tests, any rate limit).
func TestRefusalReadsNoBody(t *testing.T) {
	authz, ts := testAuth(t)
	h, err := New(Config{Auth: authz, MaxEvents: 10, MaxBodyBytes: 1 << 20, PublishTimeout: time.Second, MaxFutureSkew: time.Minute},
		nil, slog.New(slog.DiscardHandler), tracenoop.NewTracerProvider().Tracer(""), metricnoop.NewMeterProvider().Meter(""))
	if err != nil {
		t.Fatal(err)
	}
	body := `[{"id":"e-1","ticket_id":"T-1","type":"ticket_created","occurred_at":"2026-03-02T09:14:05Z","actor":{"id":"ana","kind":"agent"}}]`
	for _, tt := range []struct {
		name, authorization, tenant string
		status                      int
	}{
		{"no credential", "", "acme", http.StatusUnauthorized},
		{"malformed", "Bearer x", "acme", http.StatusUnauthorized},
		{"revoked", "Bearer " + ts.AcmeRevoked, "acme", http.StatusUnauthorized},
		{"wrong tenant", "Bearer " + ts.Globex, "acme", http.StatusForbidden},
		{"unknown tenant", "Bearer " + ts.Operator, "initech", http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: strings.NewReader(body)}
			req := httptest.NewRequest(http.MethodPost, "/v1/tenants/"+tt.tenant+"/events", cr)
			req.Header.Set("Content-Type", "application/json")
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			req.SetPathValue("tenant", tt.tenant)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d %s; want %d", rec.Code, rec.Body, tt.status)
			}
			if cr.read != 0 {
				t.Errorf("%d bytes of the body were read", cr.read)
			}
		})
	}
}
