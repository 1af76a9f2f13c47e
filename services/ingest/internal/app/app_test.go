package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

const jsonType = "application/json"

type running struct {
	*servicetest.Running
	base string
	keys *testTenants
}

// testTenants is the tenants file every app test runs with, and its keys.
type testTenants struct {
	*servicetest.Tenants
	// AcmeKPIs is a key of acme with kpis:read only: it lacks events:write.
	AcmeKPIs string
	// env is the environment the file's {env: NAME} references read.
	env map[string]string
}

func (k *testTenants) getenv(name string) string { return k.env[name] }

// globexSources marks where the tenants file has room for globex's webhook sources.
const globexSources = "    # globex's sources\n"

// writeTenants writes servicetest's tenants file (acme and globex, their keys and an operator's)
// with acme's generic webhook, a key of acme without events:write, and after globex the tenants
// the rate limit and admission tests use, which have no key (the operator's posts for them).
func writeTenants(t *testing.T) *testTenants {
	t.Helper()
	kpis, kpisHash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k := &testTenants{AcmeKPIs: kpis, env: map[string]string{
		"ACME_GENERIC_SECRET": "whsec_" + base64.StdEncoding.EncodeToString(genericKey),
		"ACME_KPIS_KEY_HASH":  kpisHash.String(),
	}}
	k.Tenants = servicetest.WriteTenants(t, map[string]string{
		"acme": `      - {name: kpis, scopes: [kpis:read], hash: {env: ACME_KPIS_KEY_HASH}}
    sources:
      generic:
        secrets: [{env: ACME_GENERIC_SECRET}]
`,
		"globex": globexSources + `  slow:
    rate_limit: {events_per_second: 0.01, burst: 3}
    sources:
      generic:
        secrets: [{env: ACME_GENERIC_SECRET}]
  busy:
    rate_limit: {events_per_second: 10, burst: 10}
    sources:
      generic:
        secrets: [{env: ACME_GENERIC_SECRET}]
  flood:
    rate_limit: {events_per_second: 10, burst: 25}
  quiet:
    rate_limit: {events_per_second: 10, burst: 25}
`,
	})
	return k
}

// start runs the whole service in-process against the NATS server at natsURL, with the tenants
// file of writeTenants.
func start(t *testing.T, natsURL string, mod func(*Config, *Deps)) *running {
	t.Helper()
	keys := writeTenants(t)
	cfg := Defaults()
	cfg.Common = servicetest.Settings(natsURL, "")
	cfg.TenantsFile = keys.File
	cfg.PublishTimeout = time.Second
	cfg.MaxEvents = 5
	cfg.MaxBodyBytes = 16 << 10
	deps := Deps{Getenv: keys.getenv}
	if mod != nil {
		mod(&cfg, &deps)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := servicetest.Start(t, func(ctx context.Context, h service.Hooks) error {
		deps.Hooks = h
		return deps.Run(ctx, cfg, log)
	})
	return &running{Running: r, base: "http://" + r.HTTP, keys: keys}
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, contentType, body string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// post sends body to tenant's events with the tenant's own events key (acme's events:write key,
// globex's), or the operator's for the tenants without a key.
func (r *running) post(t *testing.T, tenant, body string) response {
	t.Helper()
	return do(t, http.MethodPost, r.base+"/v1/tenants/"+tenant+"/events", jsonType, body, r.bearer(tenant))
}

// bearer is the Authorization header post sends for tenant.
func (r *running) bearer(tenant string) map[string]string {
	key := r.keys.Operator
	switch tenant {
	case "acme":
		key = r.keys.AcmeEvents
	case "globex":
		key = r.keys.Globex
	}
	return map[string]string{"Authorization": "Bearer " + key}
}

// with adds the headers of extra to h.
func with(h map[string]string, extra map[string]string) map[string]string {
	for k, v := range extra {
		h[k] = v
	}
	return h
}

// jetStream connects a test client, closed when the test ends.
func jetStream(t *testing.T, natsURL string) jetstream.JetStream {
	return testenv.JetStream(t, natsURL)
}

// tickets connects a test client to the TICKETS stream.
func tickets(t *testing.T, natsURL string) jetstream.Stream {
	t.Helper()
	s, err := jetStream(t, natsURL).Stream(context.Background(), stream.TicketsName)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	return s
}

func msgCount(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

func wantJSON(t *testing.T, got response, status int, body string) {
	t.Helper()
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(body)); err != nil {
		t.Fatalf("bad expected JSON %s: %v", body, err)
	}
	if got.status != status || strings.TrimSpace(got.body) != want.String() {
		t.Errorf("got %d %s\nwant %d %s", got.status, strings.TrimSpace(got.body), status, want.String())
	}
	if ct := got.header.Get("Content-Type"); ct != jsonType {
		t.Errorf("Content-Type %q; want %q", ct, jsonType)
	}
}

func event(id, typ, extra string) string {
	s := fmt.Sprintf(`{"id":%q,"ticket_id":"T-77","type":%q,"occurred_at":"2026-03-02T09:14:05Z","actor":{"id":"ana","kind":"agent"}`, id, typ)
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func TestPostStoresEachEventOnce(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, nil)
	stream := tickets(t, url)

	batch := "[" + strings.Join([]string{
		event("evt-1", "ticket_created", `"status":"new","priority":"high"`),
		event("évt/2 ✓", "agent_message", `"public":false,"source":"zendesk"`),
		`{"id":"evt-3","ticket_id":"T-77","type":"customer_message","occurred_at":"2026-03-02T09:20:00Z","actor":{"id":"cus","kind":"customer"},"sequence":9007199254740991}`,
	}, ",") + "]"
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	before := time.Now()
	got := do(t, http.MethodPost, r.base+"/v1/tenants/acme/events", "application/json; charset=UTF-8", batch,
		with(r.bearer("acme"), map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01", "baggage": "user=" + strings.Repeat("b", 4000)}))
	wantJSON(t, got, http.StatusAccepted, `{"accepted":["evt-1","évt/2 ✓","evt-3"],"duplicates":0}`)
	if n := msgCount(t, stream); n != 3 {
		t.Fatalf("stream holds %d messages; want 3", n)
	}

	wants := []struct {
		subject, msgID string
		typ            ticketpulsev1.EventType
		source         string
		public         *bool
		sequence       uint64
	}{
		{"tickets.acme.ticket_created", "acme/generic/evt-1", ticketpulsev1.EventType_EVENT_TYPE_TICKET_CREATED, "generic", nil, 0},
		{"tickets.acme.agent_message", "acme/zendesk/évt/2 ✓", ticketpulsev1.EventType_EVENT_TYPE_AGENT_MESSAGE, "zendesk", proto.Bool(false), 0},
		{"tickets.acme.customer_message", "acme/generic/evt-3", ticketpulsev1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE, "generic", proto.Bool(true), 1<<53 - 1},
	}
	for i, w := range wants {
		m, err := stream.GetMsg(context.Background(), uint64(i+1))
		if err != nil {
			t.Fatalf("get message %d: %v", i+1, err)
		}
		if m.Subject != w.subject {
			t.Errorf("message %d subject %q; want %q", i+1, m.Subject, w.subject)
		}
		if id := m.Header.Get(jetstream.MsgIDHeader); id != w.msgID {
			t.Errorf("message %d Nats-Msg-Id %q; want %q", i+1, id, w.msgID)
		}
		if tp := m.Header.Get("traceparent"); !strings.HasPrefix(tp, "00-"+traceID+"-") {
			t.Errorf("message %d traceparent %q; want trace %s", i+1, tp, traceID)
		}
		// The caller's baggage is not stored with its events.
		if b := m.Header.Get("baggage"); b != "" {
			t.Errorf("message %d carries %d bytes of the caller's baggage", i+1, len(b))
		}
		var ev ticketpulsev1.TicketEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("message %d payload: %v", i+1, err)
		}
		if ev.GetTenant() != "acme" || ev.GetType() != w.typ || ev.GetSource() != w.source || ev.GetTicketId() != "T-77" {
			t.Errorf("message %d payload %v", i+1, &ev)
		}
		if ev.GetSequence() != w.sequence {
			t.Errorf("message %d sequence %d; want %d", i+1, ev.GetSequence(), w.sequence)
		}
		if (ev.Public == nil) != (w.public == nil) || (w.public != nil && *ev.Public != *w.public) {
			t.Errorf("message %d public %v; want %v", i+1, ev.Public, w.public)
		}
		if rt := ev.GetReceivedAt().AsTime(); rt.Before(before.Add(-time.Second)) || rt.After(time.Now()) {
			t.Errorf("message %d received_at %v not the time of the request", i+1, rt)
		}
	}

	t.Run("same request again is acknowledged as duplicates", func(t *testing.T) {
		got := r.post(t, "acme", batch)
		wantJSON(t, got, http.StatusAccepted, `{"accepted":["evt-1","évt/2 ✓","evt-3"],"duplicates":3}`)
		if n := msgCount(t, stream); n != 3 {
			t.Errorf("stream holds %d messages; want still 3", n)
		}
	})
	t.Run("overlapping batch stores only the new event", func(t *testing.T) {
		got := r.post(t, "acme", "["+event("evt-1", "ticket_created", "")+","+event("evt-4", "ticket_assigned", `"assignee_id":"ana"`)+"]")
		wantJSON(t, got, http.StatusAccepted, `{"accepted":["evt-1","evt-4"],"duplicates":1}`)
		if n := msgCount(t, stream); n != 4 {
			t.Errorf("stream holds %d messages; want 4", n)
		}
	})
	t.Run("same id for another tenant is a different event", func(t *testing.T) {
		got := r.post(t, "globex", event("evt-1", "ticket_created", ""))
		wantJSON(t, got, http.StatusAccepted, `{"accepted":["evt-1"],"duplicates":0}`)
		if n := msgCount(t, stream); n != 5 {
			t.Errorf("stream holds %d messages; want 5", n)
		}
	})
}

func TestRejectedRequestsChangeNothing(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, nil) // MaxEvents 5, MaxBodyBytes 16 KiB
	stream := tickets(t, url)
	valid := event("evt-1", "ticket_created", "")
	six := "[" + strings.Repeat(valid+",", 5) + valid + "]"
	tests := []struct {
		name        string
		method      string
		tenant      string
		contentType string
		body        string
		wantStatus  int
		wantBody    string
		wantHeader  [2]string
	}{
		{
			name: "invalid events list every problem", body: "[" + valid + `,{"id":"","ticket_id":"T","type":"agent_message","occurred_at":"yesterday","actor":{"kind":"agent"},"tenant":"acme"}]`,
			wantStatus: 400,
			wantBody: `{"error":"invalid request","problems":[
				{"index":1,"field":"id","reason":"must not be empty"},
				{"index":1,"field":"occurred_at","reason":"not an RFC 3339 timestamp (e.g. 2026-03-02T09:14:05Z): \"yesterday\""},
				{"index":1,"field":"actor.id","reason":"required for agent and customer actors"},
				{"index":1,"field":"tenant","reason":"unknown field"},
				{"index":1,"field":"public","reason":"required for agent_message (false marks a private note)"}]}`,
		},
		{
			name: "sequence out of range or not an integer",
			body: "[" + event("s1", "ticket_created", `"sequence":-1`) + "," + event("s2", "ticket_created", `"sequence":2.5`) + "," +
				event("s3", "ticket_created", `"sequence":"3"`) + "," + event("s4", "ticket_created", `"sequence":9007199254740992`) + "]",
			wantStatus: 400,
			wantBody: `{"error":"invalid request","problems":[
				{"index":0,"field":"sequence","reason":"must not be negative"},
				{"index":1,"field":"sequence","reason":"must be a whole number, without a fraction or exponent"},
				{"index":2,"field":"sequence","reason":"must be a JSON integer, not a string"},
				{"index":3,"field":"sequence","reason":"greater than 9007199254740991 (2^53-1), the largest integer every JSON client reads exactly"}]}`,
		},
		{
			name: "malformed JSON", body: `[{"id":"x"`, wantStatus: 400,
			wantBody: `{"error":"invalid request","problems":[{"index":0,"field":"","reason":"malformed JSON at byte offset 10: unexpected end of JSON input"}]}`,
		},
		{
			name: "wrong JSON type", body: event("e", "ticket_created", `"tags":[1]`), wantStatus: 400,
			wantBody: `{"error":"invalid request","problems":[{"index":0,"field":"tags[0]","reason":"must be a string"}]}`,
		},
		{
			name: "empty array", body: `[]`, wantStatus: 400,
			wantBody: `{"error":"invalid request","problems":[{"index":0,"field":"","reason":"empty array: send at least one event"}]}`,
		},
		{
			name: "body too large", body: "[" + valid + "," + event(strings.Repeat("x", 200), "ticket_created", `"tags":["`+strings.Repeat("t", 17<<10)+`"]`) + "]",
			wantStatus: 413, wantBody: `{"error":"request too large","reason":"body exceeds 16384 bytes"}`,
		},
		{
			name: "too many events", body: six, wantStatus: 413,
			wantBody: `{"error":"request too large","reason":"too many events: 6 events, at most 5 per request"}`,
		},
		{
			name: "text/plain", contentType: "text/plain", body: valid, wantStatus: 415,
			wantBody: `{"error":"unsupported media type","reason":"Content-Type must be application/json"}`,
		},
		{
			name: "no content type", contentType: "-", body: valid, wantStatus: 415,
			wantBody: `{"error":"unsupported media type","reason":"Content-Type must be application/json"}`,
		},
		{
			name: "latin-1 charset", contentType: "application/json; charset=iso-8859-1", body: valid, wantStatus: 415,
			wantBody: `{"error":"unsupported media type","reason":"charset must be utf-8"}`,
		},
		{
			name: "upper-case tenant", tenant: "Acme", body: valid, wantStatus: 400,
			wantBody: `{"error":"invalid request","problems":[{"index":0,"field":"tenant","reason":"must match [a-z0-9][a-z0-9_-]{0,62}"}]}`,
		},
		{
			name: "tenant with a subject wildcard", tenant: "acme%2A", body: valid, wantStatus: 400,
			wantBody: `{"error":"invalid request","problems":[{"index":0,"field":"tenant","reason":"must match [a-z0-9][a-z0-9_-]{0,62}"}]}`,
		},
		{
			name: "tenant too long", tenant: strings.Repeat("a", 64), body: valid, wantStatus: 400,
			wantBody: `{"error":"invalid request","problems":[{"index":0,"field":"tenant","reason":"must match [a-z0-9][a-z0-9_-]{0,62}"}]}`,
		},
		{
			name: "GET", method: http.MethodGet, wantStatus: 405,
			wantBody:   `{"error":"method not allowed","reason":"use POST"}`,
			wantHeader: [2]string{"Allow", "POST"},
		},
		{
			name: "PUT", method: http.MethodPut, body: valid, wantStatus: 405,
			wantBody:   `{"error":"method not allowed","reason":"use POST"}`,
			wantHeader: [2]string{"Allow", "POST"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, tenant, ct := tt.method, tt.tenant, tt.contentType
			if method == "" {
				method = http.MethodPost
			}
			if tenant == "" {
				tenant = "acme"
			}
			switch ct {
			case "":
				ct = jsonType
			case "-":
				ct = ""
			}
			got := do(t, method, r.base+"/v1/tenants/"+tenant+"/events", ct, tt.body, r.bearer(tenant))
			wantJSON(t, got, tt.wantStatus, tt.wantBody)
			if h := tt.wantHeader; h[0] != "" && got.header.Get(h[0]) != h[1] {
				t.Errorf("header %s = %q; want %q", h[0], got.header.Get(h[0]), h[1])
			}
			if n := msgCount(t, stream); n != 0 {
				t.Errorf("stream holds %d messages after a rejected request; want 0", n)
			}
		})
	}
}

// TestBodyLimitDoesNotReadWholeBody sends a body far over the limit without Content-Length and
// checks the answer comes before the client finished sending it; without a credential, the
// answer is the refusal, which reads none of it.
func TestBodyLimitDoesNotReadWholeBody(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, nil) // MaxBodyBytes 16 KiB
	for _, tt := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"authorized", r.bearer("acme"), http.StatusRequestEntityTooLarge},
		{"no credential", nil, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) { postEndless(t, r, tt.header, tt.want) })
	}
}

func postEndless(t *testing.T, r *running, header map[string]string, want int) {
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest(http.MethodPost, r.base+"/v1/tenants/acme/events", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", jsonType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	written := make(chan int64, 1)
	go func() {
		// Up to 64 MiB; stops as soon as the server closes the connection.
		n, _ := io.Copy(pw, io.LimitReader(zeroReader{}, 64<<20))
		written <- n
	}()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	resp.Body.Close()
	pr.CloseWithError(errors.New("done"))
	if resp.StatusCode != want {
		t.Fatalf("status %d; want %d", resp.StatusCode, want)
	}
	if n := <-written; n >= 64<<20 {
		t.Errorf("client wrote the whole %d-byte body; the server should have stopped reading", n)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestJetStreamNotAcknowledging(t *testing.T) {
	const publishTimeout = 500 * time.Millisecond
	body := event("evt-1", "ticket_created", "")
	tests := []struct {
		name string
		// fail breaks JetStream for the running service.
		fail func(t *testing.T, srv *server.Server, url string)
		// minWait is how long the request must wait before giving up (0: fail fast).
		minWait time.Duration
	}{
		{
			name: "NATS server down",
			fail: func(t *testing.T, srv *server.Server, _ string) { srv.Shutdown(); srv.WaitForShutdown() },
		},
		{
			name: "stream deleted",
			fail: func(t *testing.T, _ *server.Server, url string) { deleteTickets(t, url) },
		},
		{
			name: "stream replaced by a subscriber that never acknowledges",
			fail: func(t *testing.T, _ *server.Server, url string) {
				deleteTickets(t, url)
				nc, err := nats.Connect(url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(nc.Close)
				if _, err := nc.Subscribe("tickets.>", func(*nats.Msg) {}); err != nil {
					t.Fatal(err)
				}
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
			},
			minWait: publishTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, url := testenv.NATS(t)
			r := start(t, url, func(c *Config, _ *Deps) { c.PublishTimeout = publishTimeout })
			if got := r.post(t, "acme", body); got.status != http.StatusAccepted {
				t.Fatalf("before the failure: %d %s", got.status, got.body)
			}
			tt.fail(t, srv, url)
			began := time.Now()
			got := r.post(t, "acme", event("evt-2", "ticket_created", ""))
			took := time.Since(began)
			wantJSON(t, got, http.StatusServiceUnavailable,
				`{"error":"events not stored","reason":"the event stream did not acknowledge every event; sending the same request again is safe"}`)
			if ra := got.header.Get("Retry-After"); ra != "2" {
				t.Errorf("Retry-After %q; want 2", ra)
			}
			if took < tt.minWait || took > publishTimeout+time.Second {
				t.Errorf("answered after %v; want between %v and %v", took, tt.minWait, publishTimeout+time.Second)
			}
			if got := do(t, http.MethodGet, r.base+"/readyz", "", "", nil); got.status != http.StatusServiceUnavailable {
				t.Errorf("/readyz %d %s; want 503", got.status, got.body)
			}
		})
	}
}

func deleteTickets(t *testing.T, url string) {
	t.Helper()
	if err := jetStream(t, url).DeleteStream(context.Background(), stream.TicketsName); err != nil {
		t.Fatalf("delete stream: %v", err)
	}
}

func TestRecoversAfterNATSRestart(t *testing.T) {
	srv, url := testenv.NATS(t)
	addr, storeDir := srv.Addr().String(), srv.StoreDir()
	r := start(t, url, func(c *Config, _ *Deps) { c.PublishTimeout = 500 * time.Millisecond })
	srv.Shutdown()
	srv.WaitForShutdown()
	if got := r.post(t, "acme", event("evt-1", "ticket_created", "")); got.status != http.StatusServiceUnavailable {
		t.Fatalf("while NATS is down: %d %s; want 503", got.status, got.body)
	}
	testenv.RestartNATS(t, addr, storeDir)
	deadline := time.Now().Add(10 * time.Second)
	for do(t, http.MethodGet, r.base+"/readyz", "", "", nil).status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not ready 10s after NATS came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := r.post(t, "acme", event("evt-1", "ticket_created", ""))
	wantJSON(t, got, http.StatusAccepted, `{"accepted":["evt-1"],"duplicates":0}`)
}

func TestRunFinishesInFlightRequestOnStop(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, nil)
	stream := tickets(t, url)
	body := event("evt-late", "ticket_created", "")
	half := len(body) / 2

	conn, err := net.Dial("tcp", r.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/tenants/acme/events HTTP/1.1\r\nHost: ingest\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		r.bearer("acme")["Authorization"], len(body), body[:half])
	time.Sleep(100 * time.Millisecond) // let the server start on the request

	r.Cancel()
	// The listener closes once shutdown began; the in-flight request keeps Run from returning.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.HTTP, 100*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 5s after stop")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-r.Done():
		t.Fatalf("Run returned (%v) while a request was in flight", r.Err())
	case <-time.After(200 * time.Millisecond):
	}

	if _, err := io.WriteString(conn, body[half:]); err != nil {
		t.Fatalf("finish body: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("in-flight request: %d %s; want 202", resp.StatusCode, b)
	}
	select {
	case <-r.Done():
		if err := r.Err(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the in-flight request finished")
	}
	if n := msgCount(t, stream); n != 1 {
		t.Errorf("stream holds %d messages; want the in-flight event", n)
	}
}

func TestOperationalEndpoints(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, nil)
	if got := r.post(t, "acme", "["+event("evt-1", "ticket_created", "")+","+event("evt-2", "ticket_created", "")+"]"); got.status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", got.status, got.body)
	}
	r.post(t, "acme", event("evt-1", "ticket_created", ""))   // one duplicate
	r.post(t, "acme", event("evt-x", "ticket_created", "}{")) // malformed: 400
	metrics := do(t, http.MethodGet, r.AdminURL("/metrics"), "", "", nil).body
	tests := []struct {
		name string
		path string
		want int
		body string
	}{
		{name: "healthz", path: "/healthz", want: 200, body: `"status":"ok"`},
		{name: "readyz", path: "/readyz", want: 200, body: `"status":"ready"`},
		{name: "unknown path", path: "/v1/tenants/acme", want: 404},
		{name: "metrics only on the admin address", path: "/metrics", want: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, http.MethodGet, r.base+tt.path, "", "", nil)
			if got.status != tt.want || !strings.Contains(got.body, tt.body) {
				t.Errorf("GET %s: %d %s; want %d containing %s", tt.path, got.status, got.body, tt.want, tt.body)
			}
		})
	}
	for _, want := range []string{
		`ingest_http_requests_total{route="/v1/tenants/{tenant}/events",status="202",tenant="acme"} 2`,
		`ingest_http_requests_total{route="/v1/tenants/{tenant}/events",status="400",tenant="acme"} 1`,
		`ingest_events_accepted_total 3`,
		`ingest_events_duplicates_total 1`,
		`ingest_publish_duration_seconds_count 2`,
	} {
		t.Run("metric "+strings.Fields(want)[0], func(t *testing.T) {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    func(Config) bool
		wantErr string
	}{
		{
			name: "defaults",
			want: func(c Config) bool { return reflect.DeepEqual(c, Defaults()) },
		},
		{
			name: "environment",
			env: map[string]string{"TICKETPULSE_PUBLISH_TIMEOUT": "2s", "TICKETPULSE_STREAM_RETENTION": "48h", "TICKETPULSE_MAX_BODY_BYTES": "1024",
				"TICKETPULSE_TICKETS_COMPRESSION": "none"},
			want: func(c Config) bool {
				return c.PublishTimeout == 2*time.Second && c.StreamRetention == 48*time.Hour && c.MaxBodyBytes == 1024 &&
					c.TicketsCompression == "none"
			},
		},
		{
			name: "TICKETS is kept forever, uncompressed, by default",
			want: func(c Config) bool { return c.StreamRetention == 0 && c.TicketsCompression == "none" },
		},
		{
			name:    "unknown compression",
			args:    []string{"-tickets-compression", "zstd"},
			wantErr: `-tickets-compression "zstd": want none or s2`,
		},
		{
			name: "flag wins over environment",
			env:  map[string]string{"TICKETPULSE_MAX_EVENTS": "10"},
			args: []string{"-max-events", "20", "-http-addr", "127.0.0.1:9999"},
			want: func(c Config) bool { return c.MaxEvents == 20 && c.HTTPAddr == "127.0.0.1:9999" },
		},
		{
			name: "admission settings from the environment",
			env: map[string]string{"TICKETPULSE_MAX_BACKLOG": "20000", "TICKETPULSE_MAX_STREAM_FILL": "0.75",
				"TICKETPULSE_ADMISSION_CONSUMERS": "kpi, escalation", "TICKETPULSE_TICKETS_MAX_BYTES": "0",
				"TICKETPULSE_PRESSURE_TENANT_RATE": "0", "TICKETPULSE_ADMISSION_REFRESH": "100ms"},
			want: func(c Config) bool {
				return c.MaxBacklog == 20000 && c.MaxStreamFill == 0.75 && reflect.DeepEqual(c.AdmissionConsumers, []string{"kpi", "escalation"}) &&
					c.TicketsMaxBytes == 0 && c.AdmissionRefresh == 100*time.Millisecond
			},
		},
		{
			name:    "admission bounds must be sane",
			args:    []string{"-max-backlog", "-1", "-tickets-max-bytes", "-5", "-admission-refresh", "1ms"},
			wantErr: "-tickets-max-bytes -5: must be at least 0\n-max-backlog -1: must be at least 0\n-admission-refresh 1ms: must be at least 10ms",
		},
		{
			name:    "invalid values are reported together",
			args:    []string{"-max-events", "0", "-publish-timeout", "0s", "-stream-replicas", "7"},
			wantErr: "-stream-replicas 7: must be between 1 and 5\n-max-events 0: must be at least 1\n-publish-timeout 0s: must be positive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := envflag.New("ingest", "test", func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			s.SetOutput(io.Discard)
			var cfg Config
			cfg.Register(s)
			if err := s.Parse(tt.args); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err := cfg.Validate()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Validate = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !tt.want(cfg) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

// ingest reads the tenants file every service has (webhook sources included): -h names it once,
// with the environment variable and the webhook part.
func TestHelpNamesTheTenantsFileOnce(t *testing.T) {
	s := envflag.New("ingest", "test", func(string) (string, bool) { return "", false })
	var help strings.Builder
	s.SetOutput(&help)
	var cfg Config
	cfg.Register(s)
	s.PrintUsage(&help)
	if n := strings.Count(help.String(), "  -tenants-file "); n != 1 {
		t.Errorf("-h lists -tenants-file %d times, want once:\n%s", n, help.String())
	}
	for _, want := range []string{"TICKETPULSE_TENANTS_FILE", "for ingest also their webhook sources"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h lacks %q", want)
		}
	}
}

// ingest creates TICKETS kept for ever and uncompressed by default, and S2-compressed when
// -tickets-compression is s2.
func TestTicketsStreamRetentionAndCompression(t *testing.T) {
	for _, tt := range []struct {
		compression string
		want        jetstream.StoreCompression
	}{{"", jetstream.NoCompression}, {"s2", jetstream.S2Compression}, {"none", jetstream.NoCompression}} {
		t.Run("compression="+tt.compression, func(t *testing.T) {
			_, url := testenv.NATS(t)
			start(t, url, func(c *Config, _ *Deps) {
				if tt.compression != "" {
					c.TicketsCompression = tt.compression
				}
			})
			info, err := tickets(t, url).Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.Config.Compression != tt.want || info.Config.MaxAge != 0 {
				t.Errorf("TICKETS compression %v max age %v, want %v and forever", info.Config.Compression, info.Config.MaxAge, tt.want)
			}
		})
	}
}
