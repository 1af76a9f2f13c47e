package e2e

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// conversationsDir holds each helpdesk's recorded conversation, one directory per source (copies
// of the ingest adapters' fixtures, see the package comment).
const conversationsDir = "testdata/conversations"

// conversations are the directories under conversationsDir: a source, or a source and the shape
// of its payloads (zendesk-messaging, intercom-v1), each posted under a tenant of its own.
var conversations = []string{"zendesk", "zendesk-messaging", "chatwoot", "freshdesk", "helpscout", "helpscout-v1",
	"zammad", "intercom", "intercom-v1", "intercom-tickets", "salesforce"}

// conversationSource is the webhook source a conversation directory's deliveries are posted to.
func conversationSource(dir string) string {
	source, _, _ := strings.Cut(dir, "-")
	return source
}

// expectation is a conversation's expect.json: what the KPI engine must make of it.
type expectation struct {
	TicketID             string  `json:"ticket_id"`
	AgentID              string  `json:"agent_id"`
	TeamID               string  `json:"team_id"`
	FirstResponseSeconds float64 `json:"first_response_seconds"`
	NextResponseSeconds  float64 `json:"next_response_seconds"`
	Resolutions          int64   `json:"resolutions"`
	CSATCount            int64   `json:"csat_count"`
	CSATScore            float64 `json:"csat_score"`
}

// webhookSecret is every test tenant's secret (a Standard Webhooks key would need whsec_; the
// helpdesks take any string).
const webhookSecret = "e2e-secret-of-the-helpdesk"

// helpdeskTenants configures one tenant per conversation, e2e-<directory>, so ids cannot collide; they
// follow servicetest's acme and globex in the tenants file.
func helpdeskTenants() map[string]string {
	var b strings.Builder
	for _, dir := range conversations {
		src := conversationSource(dir)
		fmt.Fprintf(&b, "  e2e-%s:\n    sources:\n      %s:\n", dir, src)
		switch src {
		case "freshdesk":
			b.WriteString("        url_token: {env: E2E_SECRET}\n")
		case "salesforce":
			// Outbound Messages: the URL token, and the organisation the recorded ones name.
			b.WriteString("        url_token: {env: E2E_SECRET}\n        organization_id: 00D5g000004XyZaEAK\n")
		default:
			b.WriteString("        secrets: [{env: E2E_SECRET}]\n")
		}
	}
	return map[string]string{"globex": b.String()}
}

func mac(h func() hash.Hash, parts ...string) []byte {
	m := hmac.New(h, []byte(webhookSecret))
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// sign adds what each helpdesk sends to prove a delivery is theirs, computed here from their
// documentation, independently of ingest's verify package; it returns the query string.
func sign(source string, h http.Header, body string, now time.Time) string {
	switch source {
	case "zendesk":
		ts := now.UTC().Format(time.RFC3339)
		h.Set("X-Zendesk-Webhook-Signature-Timestamp", ts)
		h.Set("X-Zendesk-Webhook-Signature", base64.StdEncoding.EncodeToString(mac(sha256.New, ts, body)))
	case "chatwoot":
		ts := strconv.FormatInt(now.Unix(), 10)
		h.Set("X-Chatwoot-Timestamp", ts)
		h.Set("X-Chatwoot-Signature", "sha256="+hex.EncodeToString(mac(sha256.New, ts, ".", body)))
	case "freshdesk", "salesforce":
		// Neither signs (Salesforce's Outbound Messages); the token rides in the URL.
		return "?token=" + webhookSecret
	case "helpscout":
		h.Set("X-HelpScout-Signature", base64.StdEncoding.EncodeToString(mac(sha1.New, body)))
	case "zammad", "intercom":
		h.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(mac(sha1.New, body)))
	}
	return ""
}

// readHeaders reads a fixture's optional "Name: value" lines.
func readHeaders(t *testing.T, path string) http.Header {
	t.Helper()
	h := http.Header{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return h
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("%s: %q is not Name: value", path, line)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h
}

// Each helpdesk's recorded conversation, posted in order through ingest's webhook for that
// source (signed the way the helpdesk signs), yields over gRPC the KPIs its expect.json states:
// bot replies and private notes do not count as responses, the rating is normalised.
func TestHelpdeskConversations(t *testing.T) {
	s := newStackWith(t, helpdeskTenants())
	addr := startIngest(t, s, "E2E_SECRET="+webhookSecret)
	// The webhooks need no key, the KPI queries do: the operator's reads every tenant's.
	client := startKPI(t, s).as(s.tenants.Operator)
	for _, name := range conversations {
		source := conversationSource(name)
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(conversationsDir, name)
			raw, err := os.ReadFile(filepath.Join(dir, "expect.json"))
			if err != nil {
				t.Fatal(err)
			}
			var want expectation
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatalf("expect.json: %v", err)
			}
			// JSON deliveries, or SOAP ones (Salesforce's Outbound Messages).
			bodies, err := filepath.Glob(filepath.Join(dir, "*.*"))
			if err != nil {
				t.Fatal(err)
			}
			bodies = slices.DeleteFunc(bodies, func(p string) bool {
				ext := filepath.Ext(p)
				return filepath.Base(p) == "expect.json" || (ext != ".json" && ext != ".xml")
			})
			slices.Sort(bodies)
			if len(bodies) < 5 {
				t.Fatalf("%d deliveries in %s, want a whole ticket life", len(bodies), dir)
			}
			tenant := "e2e-" + name
			for _, path := range bodies {
				body, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				h := readHeaders(t, strings.TrimSuffix(path, filepath.Ext(path))+".headers")
				if filepath.Ext(path) == ".xml" {
					h.Set("Content-Type", "text/xml; charset=utf-8")
				} else {
					h.Set("Content-Type", "application/json")
				}
				query := sign(source, h, string(body), time.Now())
				req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/tenants/"+tenant+"/webhooks/"+source+query, strings.NewReader(string(body)))
				if err != nil {
					t.Fatal(err)
				}
				req.Header = h
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
					t.Fatalf("%s: %d %s", filepath.Base(path), resp.StatusCode, answer)
				}
			}
			// The fixtures are dated within this window.
			w := window(time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC))
			var got *tpv1.Kpis
			deadline := time.Now().Add(15 * time.Second)
			for {
				resp, err := client.GetAgentKpis(context.Background(), &tpv1.GetAgentKpisRequest{Tenant: tenant, AgentId: want.AgentID, Window: w})
				if err != nil {
					t.Fatal(err)
				}
				got = resp.GetAgent().GetKpis()
				if got.GetResolutions() >= want.Resolutions && got.GetCsatCount() >= want.CSATCount &&
					got.GetFirstResponse().GetCount() >= responses(want.FirstResponseSeconds) && got.GetNextResponse().GetCount() >= responses(want.NextResponseSeconds) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("KPIs of %s never complete: %v", want.AgentID, got)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// One sample each, so the sums are the exact durations.
			checks := []struct {
				name      string
				got, want float64
			}{
				{"first responses", float64(got.GetFirstResponse().GetCount()), float64(responses(want.FirstResponseSeconds))},
				{"first response (s)", got.GetFirstResponse().GetSumSeconds(), want.FirstResponseSeconds},
				{"next responses", float64(got.GetNextResponse().GetCount()), float64(responses(want.NextResponseSeconds))},
				{"next response (s)", got.GetNextResponse().GetSumSeconds(), want.NextResponseSeconds},
				{"resolutions", float64(got.GetResolutions()), float64(want.Resolutions)},
				{"ratings", float64(got.GetCsatCount()), float64(want.CSATCount)},
			}
			if want.CSATCount > 0 {
				checks = append(checks, struct {
					name      string
					got, want float64
				}{"rating mean", got.GetCsatMean(), want.CSATScore})
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
				}
			}
			if want.TeamID != "" {
				resp, err := client.GetTeamKpis(context.Background(), &tpv1.GetTeamKpisRequest{Tenant: tenant, TeamId: want.TeamID, Window: w})
				if err != nil {
					t.Fatal(err)
				}
				if n := resp.GetKpis().GetResolutions(); n != want.Resolutions {
					t.Errorf("team %s resolutions %d, want %d", want.TeamID, n, want.Resolutions)
				}
			}
		})
	}
}

// responses is how many responses of a kind a recorded conversation has: one, taking the
// seconds its expect.json states, or none when it states 0 (a Case closed after one reply).
func responses(seconds float64) int64 {
	if seconds > 0 {
		return 1
	}
	return 0
}
