package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// The challenges of the gate's 401 and missing-scope 403 (RFC 6750).
const (
	challenge        = `Bearer realm="ticketpulse"`
	challengeInvalid = `Bearer realm="ticketpulse", error="invalid_token"`
	challengeScope   = `Bearer realm="ticketpulse", error="insufficient_scope"`
)

// wantRefusal checks a refusal of the gate: status, JSON body and WWW-Authenticate ("" for none).
func wantRefusal(t *testing.T, got response, status int, body, wwwAuthenticate string) {
	t.Helper()
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(body)); err != nil {
		t.Fatalf("bad expected JSON %s: %v", body, err)
	}
	if got.status != status || strings.TrimSpace(got.body) != want.String() {
		t.Errorf("got %d %s\nwant %d %s", got.status, strings.TrimSpace(got.body), status, want.String())
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q; want application/json", ct)
	}
	if wa := got.header.Values("WWW-Authenticate"); wwwAuthenticate == "" && len(wa) != 0 || wwwAuthenticate != "" && (len(wa) != 1 || wa[0] != wwwAuthenticate) {
		t.Errorf("WWW-Authenticate %q; want %q", wa, wwwAuthenticate)
	}
}

// postWith posts body to tenant's events with exactly the Authorization values given.
func postWith(t *testing.T, r *running, tenant, body string, authorization ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.base+"/v1/tenants/"+tenant+"/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", jsonType)
	for _, a := range authorization {
		req.Header.Add("Authorization", a)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// Every credential case against the events API, through the running service: the exact answer
// of each refusal, nothing stored for any of them, and the event stored for a valid key.
func TestEventsAPIAuthentication(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, nil)
	stream := tickets(t, url)
	k := r.keys
	unknown, _, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	const (
		wrongTenant = `{"error":"forbidden","code":"wrong_tenant","reason":"the credential is not for this tenant"}`
	)
	tests := []struct {
		name          string
		tenant        string
		authorization []string
		status        int
		body          string // "" for the 202
		challenge     string
	}{
		{name: "no credential", authorization: nil, status: 401, challenge: challenge,
			body: `{"error":"unauthenticated","code":"no_credential","reason":"no credential: send Authorization: Bearer \u003ckey or ID token\u003e"}`},
		{name: "malformed", authorization: []string{"Bearer x"}, status: 401, challenge: challengeInvalid,
			body: `{"error":"unauthenticated","code":"malformed_credential","reason":"malformed credential: neither an API key nor an ID token"}`},
		{name: "basic scheme", authorization: []string{"Basic " + k.AcmeEvents}, status: 401, challenge: challengeInvalid,
			body: `{"error":"unauthenticated","code":"malformed_credential","reason":"malformed credential: want the Bearer scheme"}`},
		{name: "two credentials", authorization: []string{"Bearer " + k.AcmeEvents, "Bearer " + k.Globex}, status: 401, challenge: challengeInvalid,
			body: `{"error":"unauthenticated","code":"malformed_credential","reason":"malformed credential: more than one authorization value"}`},
		{name: "unknown key", authorization: []string{"Bearer " + unknown}, status: 401, challenge: challengeInvalid,
			body: `{"error":"unauthenticated","code":"invalid_credential","reason":"invalid credential"}`},
		{name: "revoked key", authorization: []string{"Bearer " + k.AcmeRevoked}, status: 401, challenge: challengeInvalid,
			body: `{"error":"unauthenticated","code":"revoked_credential","reason":"revoked credential"}`},
		{name: "wrong tenant", authorization: []string{"Bearer " + k.Globex}, status: 403, body: wrongTenant},
		{name: "missing scope", authorization: []string{"Bearer " + k.AcmeKPIs}, status: 403, challenge: challengeScope,
			body: `{"error":"forbidden","code":"missing_scope","reason":"the credential lacks the scope events:write"}`},
		{name: "unknown tenant", tenant: "initech", authorization: []string{"Bearer " + k.Operator}, status: 404,
			body: `{"error":"unknown tenant","code":"unknown_tenant","reason":"unknown tenant"}`},
		// A tenant's key learns only that the tenant is not its own, never whether it exists.
		{name: "tenant key on an unknown tenant", tenant: "initech", authorization: []string{"Bearer " + k.Acme}, status: 403, body: wrongTenant},
		{name: "valid tenant key", authorization: []string{"Bearer " + k.AcmeEvents}, status: 202},
		{name: "valid key with every scope", authorization: []string{"bearer " + k.Acme}, status: 202},
		{name: "valid operator", authorization: []string{"Bearer " + k.Operator}, status: 202},
		{name: "valid operator on another tenant", tenant: "globex", authorization: []string{"Bearer " + k.Operator}, status: 202},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := tt.tenant
			if tenant == "" {
				tenant = "acme"
			}
			id := fmt.Sprintf("auth-%d", i)
			before := msgCount(t, stream)
			got := postWith(t, r, tenant, event(id, "ticket_created", ""), tt.authorization...)
			after := msgCount(t, stream)
			if tt.status == http.StatusAccepted {
				wantJSON(t, got, http.StatusAccepted, fmt.Sprintf(`{"accepted":[%q],"duplicates":0}`, id))
				if after != before+1 {
					t.Errorf("stream went from %d to %d messages; want the event stored", before, after)
				}
				return
			}
			wantRefusal(t, got, tt.status, tt.body, tt.challenge)
			if after != before {
				t.Errorf("stream went from %d to %d messages on a refusal", before, after)
			}
		})
	}
	metrics := do(t, http.MethodGet, r.AdminURL("/metrics"), "", "", nil).body
	for _, want := range []string{
		// Refused requests name no tenant: their path is whatever the caller sent.
		`ingest_http_requests_total{route="/v1/tenants/{tenant}/events",status="401",tenant="unknown"} 6`,
		`ingest_http_requests_total{route="/v1/tenants/{tenant}/events",status="403",tenant="unknown"} 3`,
		`ingest_http_requests_total{route="/v1/tenants/{tenant}/events",status="404",tenant="unknown"} 1`,
		`ingest_http_requests_total{route="/v1/tenants/{tenant}/events",status="202",tenant="acme"} 3`,
		`ingest_http_requests_total{route="/v1/tenants/{tenant}/events",status="202",tenant="globex"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// Refusals come before the rate limit: a flood without a valid credential spends none of the
// tenant's budget, and the tenant's own events still get in.
func TestRefusalsSpendNoRateLimit(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, nil)
	stream := tickets(t, url)
	// slow may send 3 events, then one per 100 s.
	for i, authorization := range [][]string{nil, {"Bearer x"}, {"Bearer " + r.keys.Globex}, {"Bearer " + r.keys.AcmeKPIs}, nil} {
		got := postWith(t, r, "slow", batchOf(fmt.Sprintf("flood-%d", i), 3), authorization...)
		if got.status != http.StatusUnauthorized && got.status != http.StatusForbidden {
			t.Fatalf("refused post %d: %d %s, want 401 or 403", i, got.status, got.body)
		}
	}
	got := r.post(t, "slow", batchOf("own", 3))
	wantJSON(t, got, http.StatusAccepted, `{"accepted":["own-0","own-1","own-2"],"duplicates":0}`)
	// And the budget is real: the next event is refused.
	if got := r.post(t, "slow", batchOf("more", 1)); got.status != http.StatusTooManyRequests {
		t.Errorf("after the burst: %d %s, want 429", got.status, got.body)
	}
	if n := msgCount(t, stream); n != 3 {
		t.Errorf("stream holds %d messages; want 3", n)
	}
}
