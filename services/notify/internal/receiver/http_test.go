package receiver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// obj and arr walk decoded JSON.
type obj = map[string]any
type arr = []any

func decode(t *testing.T, b []byte) obj {
	t.Helper()
	var v obj
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, b)
	}
	return v
}

func checkCommonHeaders(t *testing.T, r request) {
	t.Helper()
	if r.Method != http.MethodPost {
		t.Errorf("method = %s", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if ua := r.Header.Get("User-Agent"); ua != "ticketpulse-notify" {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestSlack(t *testing.T) {
	for _, tc := range []struct {
		changes      int
		blocks       int
		last         string // type of the last block
		lastContains string
	}{
		{changes: 1, blocks: 3, last: "context", lastContains: "notification ntf-0001 · group acme/billing · escalations esc-1"},
		{changes: 48, blocks: 50, last: "context", lastContains: "esc-48"},
		{changes: 49, blocks: 50, last: "section", lastContains: "…and *1 more*"},
		{changes: 60, blocks: 50, last: "section", lastContains: "…and *12 more*"},
	} {
		t.Run(strconv.Itoa(tc.changes), func(t *testing.T) {
			rec := newRecorder(t, nil)
			s, err := New(Config{Name: "ops", Kind: KindSlack, Slack: &ChatConfig{URL: rec.url("/services/T/B/x")}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			n := notification(tc.changes)
			n.Changes[0].Escalation.Summary = "Refund <urgent> & overdue"
			res := s.Send(context.Background(), n)
			if res.Err != nil || res.Status != 200 || res.Retryable || res.Gone || res.Latency <= 0 {
				t.Fatalf("Send = %+v", res)
			}
			reqs := rec.requests()
			if len(reqs) != 1 || reqs[0].Path != "/services/T/B/x" {
				t.Fatalf("requests = %+v", reqs)
			}
			checkCommonHeaders(t, reqs[0])
			msg := decode(t, reqs[0].Body)
			title := fmt.Sprintf("[CRITICAL] %s · acme · billing", plural("escalation", tc.changes))
			if text, _ := msg["text"].(string); !strings.HasPrefix(text, title+"\nTRIGGERED sla-first-response · ticket T-77") {
				t.Errorf("text = %.200q", text)
			}
			blocks := msg["blocks"].(arr)
			if len(blocks) != tc.blocks {
				t.Fatalf("%d blocks, want %d", len(blocks), tc.blocks)
			}
			header := blocks[0].(obj)
			if header["type"] != "header" || header["text"].(obj)["type"] != "plain_text" || header["text"].(obj)["text"] != title {
				t.Errorf("header = %v", header)
			}
			sec := blocks[1].(obj)
			if sec["type"] != "section" || sec["text"].(obj)["type"] != "mrkdwn" {
				t.Fatalf("section = %v", sec)
			}
			wantText := ":red_circle: *TRIGGERED* sla-first-response · ticket T-77 · level 1 → team-lead\nRefund &lt;urgent&gt; &amp; overdue"
			if got := sec["text"].(obj)["text"]; got != wantText {
				t.Errorf("section text = %q, want %q", got, wantText)
			}
			fields := sec["fields"].(arr)
			if len(fields) != 2 || fields[0].(obj)["type"] != "mrkdwn" || fields[0].(obj)["text"] != "*target*\n1h0m0s" ||
				fields[1].(obj)["text"] != "*elapsed*\n1h5m0s" {
				t.Errorf("fields = %v", fields)
			}
			for i, b := range blocks[1 : len(blocks)-1] {
				if b.(obj)["type"] != "section" {
					t.Errorf("block %d is %v", i+1, b.(obj)["type"])
				}
			}
			last := blocks[len(blocks)-1].(obj)
			var lastText string
			switch last["type"] {
			case "context":
				lastText = last["elements"].(arr)[0].(obj)["text"].(string)
			case "section":
				lastText = last["text"].(obj)["text"].(string)
			}
			if last["type"] != tc.last || !strings.Contains(lastText, tc.lastContains) {
				t.Errorf("last block = %v", last)
			}
		})
	}
}

func TestTeams(t *testing.T) {
	for _, tc := range []struct{ changes, body int }{
		{1, 4},            // title, change text + facts, ids
		{60, 1 + 100 + 2}, // 50 changes shown, "…and 10 more"
	} {
		t.Run(strconv.Itoa(tc.changes), func(t *testing.T) {
			rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.WriteHeader(http.StatusAccepted) // as Workflows answer
			})
			s, err := New(Config{Name: "ops", Kind: KindTeams, Teams: &ChatConfig{URL: rec.url("/workflows/abc")}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			res := s.Send(context.Background(), notification(tc.changes))
			if res.Err != nil || res.Status != http.StatusAccepted {
				t.Fatalf("Send = %+v", res)
			}
			r := rec.requests()[0]
			checkCommonHeaders(t, r)
			msg := decode(t, r.Body)
			if msg["type"] != "message" {
				t.Errorf("type = %v", msg["type"])
			}
			atts := msg["attachments"].(arr)
			if len(atts) != 1 {
				t.Fatalf("attachments = %v", atts)
			}
			att := atts[0].(obj)
			if att["contentType"] != "application/vnd.microsoft.card.adaptive" {
				t.Errorf("contentType = %v", att["contentType"])
			}
			card := att["content"].(obj)
			if card["$schema"] != "http://adaptivecards.io/schemas/adaptive-card.json" || card["type"] != "AdaptiveCard" || card["version"] != "1.4" {
				t.Errorf("card = %v", card)
			}
			body := card["body"].(arr)
			if len(body) != tc.body {
				t.Fatalf("%d body elements, want %d", len(body), tc.body)
			}
			title := body[0].(obj)
			if title["type"] != "TextBlock" || !strings.HasPrefix(title["text"].(string), "[CRITICAL] ") || title["weight"] != "Bolder" {
				t.Errorf("title = %v", title)
			}
			text := body[1].(obj)
			if text["type"] != "TextBlock" || text["text"] != "**TRIGGERED** sla-first-response · ticket T-77 · level 1 → team-lead\n\nFirst reply overdue on “Refund not received”" {
				t.Errorf("change text = %v", text)
			}
			facts := body[2].(obj)
			if facts["type"] != "FactSet" {
				t.Fatalf("facts = %v", facts)
			}
			fs := facts["facts"].(arr)
			if len(fs) != 2 || fs[0].(obj)["title"] != "target" || fs[0].(obj)["value"] != "1h0m0s" {
				t.Errorf("facts = %v", fs)
			}
			if tc.changes > teamsMaxChanges {
				if more := body[len(body)-2].(obj)["text"]; more != "…and **10 more**" {
					t.Errorf("more = %v", more)
				}
			}
		})
	}
}

// verifySignature checks a Standard Webhooks request against one secret, computing the HMAC
// from the spec: base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")), with
// key the base64-decoded part of "whsec_<base64>", one of the space-separated "v1,<sig>".
func verifySignature(t *testing.T, r request, secret string) bool {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(r.Header.Get("webhook-signature")) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			t.Errorf("signature %q is not v1,<base64>", sig)
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func TestWebhook(t *testing.T) {
	secretA := "whsec_" + base64.StdEncoding.EncodeToString([]byte("first secret, 32 bytes long....."))
	secretB := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the secret it is rotated to"))
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("not configured"))

	for _, tc := range []struct {
		name    string
		secrets []string
	}{
		{"one secret", []string{secretA}},
		{"rotation", []string{secretA, secretB}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t, nil)
			clk := &clock{t: t0}
			s, err := New(Config{Name: "hooks", Kind: KindWebhook, Webhook: &WebhookConfig{URL: rec.url("/ticketpulse"), Secrets: tc.secrets}},
				Options{Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			n := notification(2)
			for i := range 2 {
				if res := s.Send(context.Background(), n); res.Err != nil || res.Status != 200 {
					t.Fatalf("Send %d = %+v", i, res)
				}
			}
			reqs := rec.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests", len(reqs))
			}
			for i, r := range reqs {
				checkCommonHeaders(t, r)
				if id := r.Header.Get("webhook-id"); id != "ntf-0001" {
					t.Errorf("request %d: webhook-id = %q", i, id)
				}
				if ts := r.Header.Get("webhook-timestamp"); ts != strconv.FormatInt(t0.Add(time.Duration(i+1)*time.Second).Unix(), 10) {
					t.Errorf("request %d: webhook-timestamp = %q", i, ts)
				}
				if got := len(strings.Fields(r.Header.Get("webhook-signature"))); got != len(tc.secrets) {
					t.Errorf("request %d: %d signatures, want %d", i, got, len(tc.secrets))
				}
				for _, sec := range tc.secrets {
					if !verifySignature(t, r, sec) {
						t.Errorf("request %d: no valid signature for a configured secret", i)
					}
				}
				if verifySignature(t, r, other) {
					t.Errorf("request %d: an unconfigured secret verifies", i)
				}
				// A tampered body does not verify.
				tampered := r
				tampered.Body = append([]byte(nil), r.Body...)
				tampered.Body[len(tampered.Body)-2] ^= 1
				if verifySignature(t, tampered, tc.secrets[0]) {
					t.Errorf("request %d: tampered body verifies", i)
				}
			}
			if reqs[0].Header.Get("webhook-timestamp") == reqs[1].Header.Get("webhook-timestamp") {
				t.Error("both attempts carry the same timestamp")
			}

			body := decode(t, reqs[0].Body)
			for k, want := range map[string]any{
				"type": "ticketpulse.notification", "id": "ntf-0001", "receiver": "ops", "group_key": "acme/billing",
				"timestamp": "2026-03-04T09:30:00Z",
			} {
				if body[k] != want {
					t.Errorf("%s = %v, want %v", k, body[k], want)
				}
			}
			if gl := body["group_labels"].(obj); gl["tenant"] != "acme" || gl["team"] != "billing" {
				t.Errorf("group_labels = %v", gl)
			}
			changes := body["changes"].(arr)
			if len(changes) != 2 {
				t.Fatalf("%d changes", len(changes))
			}
			c := changes[1].(obj)
			if c["kind"] != "CHANGE_KIND_TRIGGERED" || c["sequence"] != "2" || c["at"] != "2026-03-04T09:30:01Z" {
				t.Errorf("change = %v", c)
			}
			e := c["escalation"].(obj)
			if e["id"] != "esc-2" || e["subject_id"] != "T-78" || e["severity"] != "SEVERITY_CRITICAL" ||
				e["labels"].(obj)["targets"] != "team-lead" || e["facts"].(arr)[0].(obj)["value"] != "3600s" {
				t.Errorf("escalation = %v", e)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	// A closed port: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/hook"
	ln.Close()

	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(tlsSrv.Close)

	resolver, dnsQueries := nxResolver(t)

	longBody := "invalid_payload: " + strings.Repeat("x", 100<<10)

	type want struct {
		status     int
		retryable  bool
		gone       bool
		errHas     []string
		retryAfter time.Duration
	}
	for _, tc := range []struct {
		name    string
		kind    string
		respond func(w http.ResponseWriter, r *http.Request, call int)
		url     string // instead of the recorder's
		timeout time.Duration
		dialer  ContextDialer
		sends   []want
		maxTime time.Duration // for the first Send
		check   func(t *testing.T, rec *recorder)
	}{
		{
			name: "500", kind: KindSlack,
			respond: status(500, "boom"),
			sends:   []want{{status: 500, retryable: true, errHas: []string{"HTTP 500", `"boom"`}}},
		},
		{
			name: "503 then 200", kind: KindWebhook,
			respond: func(w http.ResponseWriter, r *http.Request, call int) {
				if call == 1 {
					w.Header().Set("Retry-After", "7")
					w.WriteHeader(503)
				}
			},
			sends: []want{{status: 503, retryable: true, retryAfter: 7 * time.Second}, {status: 200}},
			check: func(t *testing.T, rec *recorder) {
				r := rec.requests()
				if r[0].Header.Get("webhook-id") != r[1].Header.Get("webhook-id") {
					t.Error("webhook-id changed across retries")
				}
			},
		},
		{name: "429", kind: KindTeams, respond: status(429, "slow down"), sends: []want{{status: 429, retryable: true}}},
		{name: "408", kind: KindSlack, respond: status(408, ""), sends: []want{{status: 408, retryable: true}}},
		{name: "410", kind: KindSlack, respond: status(410, "no_service"), sends: []want{{status: 410, gone: true, errHas: []string{"410"}}}},
		{name: "404", kind: KindTeams, respond: status(404, "not found"), sends: []want{{status: 404}}},
		{
			name: "400 with a long body", kind: KindSlack, respond: status(400, longBody),
			sends: []want{{status: 400, errHas: []string{"HTTP 400 Bad Request", "invalid_payload: xxx"}}},
		},
		{
			name: "slow receiver", kind: KindWebhook, timeout: 300 * time.Millisecond, maxTime: 5 * time.Second,
			respond: func(w http.ResponseWriter, r *http.Request, _ int) {
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			},
			sends: []want{{retryable: true, errHas: []string{"timeout"}}},
		},
		{name: "connection refused", kind: KindSlack, url: closedURL, sends: []want{{retryable: true, errHas: []string{"network", "refused"}}}},
		{
			name: "DNS failure", kind: KindWebhook, url: "https://nonexistent.invalid/hook",
			dialer: &net.Dialer{Resolver: resolver},
			sends:  []want{{retryable: true, errHas: []string{"DNS", "nonexistent.invalid"}}},
			check: func(t *testing.T, _ *recorder) {
				if dnsQueries.Load() == 0 {
					t.Error("the local DNS server was not asked")
				}
			},
		},
		{name: "untrusted TLS certificate", kind: KindSlack, url: tlsSrv.URL + "/hook", sends: []want{{errHas: []string{"TLS certificate"}}}},
		{
			name: "redirect", kind: KindWebhook,
			respond: func(w http.ResponseWriter, r *http.Request, _ int) {
				if r.URL.Path == "/hook" {
					http.Redirect(w, r, "/elsewhere", http.StatusFound)
				}
			},
			sends: []want{{status: 302, errHas: []string{"302", "redirect not followed"}}},
			check: func(t *testing.T, rec *recorder) {
				if r := rec.requests(); len(r) != 1 || r[0].Path != "/hook" {
					t.Errorf("requests = %d, the redirect was followed", len(r))
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t, tc.respond)
			url := tc.url
			if url == "" {
				url = rec.url("/hook")
			}
			cfg := Config{Name: "r", Kind: tc.kind, Limits: Limits{Timeout: tc.timeout}}
			if cfg.Limits.Timeout == 0 {
				cfg.Limits.Timeout = 5 * time.Second
			}
			switch tc.kind {
			case KindSlack:
				cfg.Slack = &ChatConfig{URL: url}
			case KindTeams:
				cfg.Teams = &ChatConfig{URL: url}
			case KindWebhook:
				cfg.Webhook = &WebhookConfig{URL: url, Secrets: []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("k"))}}
			}
			s, err := New(cfg, Options{Dialer: tc.dialer})
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.sends {
				start := time.Now()
				res := s.Send(context.Background(), notification(1))
				took := time.Since(start)
				t.Logf("send %d: %+v (took %v)", i, res, took)
				if (res.Err == nil) != (w.status >= 200 && w.status < 300) {
					t.Errorf("send %d: Err = %v", i, res.Err)
				}
				if res.Status != w.status || res.Retryable != w.retryable || res.Gone != w.gone || res.RetryAfter != w.retryAfter {
					t.Errorf("send %d: %+v, want %+v", i, res, w)
				}
				for _, s := range w.errHas {
					if res.Err == nil || !strings.Contains(res.Err.Error(), s) {
						t.Errorf("send %d: error %v lacks %q", i, res.Err, s)
					}
				}
				if res.Err != nil {
					if strings.Contains(res.Err.Error(), url) {
						t.Errorf("send %d: error quotes the URL (a secret): %v", i, res.Err)
					}
					if strings.Contains(res.Err.Error(), "xxx") && len(res.Err.Error()) > 300 {
						t.Errorf("send %d: body excerpt too long (%d bytes)", i, len(res.Err.Error()))
					}
				}
				if res.Latency <= 0 || res.Latency > took {
					t.Errorf("send %d: latency %v (took %v)", i, res.Latency, took)
				}
				if i == 0 && tc.timeout > 0 {
					if took < tc.timeout || took > tc.maxTime {
						t.Errorf("timed out after %v, want about %v", took, tc.timeout)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, rec)
			}
		})
	}
}

func status(code int, body string) func(w http.ResponseWriter, r *http.Request, call int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

func TestTrustedTLS(t *testing.T) {
	var got []byte
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = []byte(r.Header.Get("User-Agent"))
	}))
	t.Cleanup(srv.Close)
	s, err := New(Config{Name: "r", Kind: KindSlack, Slack: &ChatConfig{URL: srv.URL}}, Options{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs})
	if err != nil {
		t.Fatal(err)
	}
	if res := s.Send(context.Background(), notification(1)); res.Err != nil || string(got) != UserAgent {
		t.Fatalf("Send = %+v", res)
	}
}

func TestEmptyNotification(t *testing.T) {
	rec := newRecorder(t, nil)
	s, err := New(Config{Name: "r", Kind: KindSlack, Slack: &ChatConfig{URL: rec.url("/")}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := notification(0)
	if res := s.Send(context.Background(), n); res.Err == nil || res.Retryable {
		t.Fatalf("Send = %+v", res)
	}
	n.Changes = []*tpv1.EscalationChange{{Kind: tpv1.ChangeKind_CHANGE_KIND_TRIGGERED}} // no escalation: renders, sparse
	if res := s.Send(context.Background(), n); res.Err != nil {
		t.Fatalf("Send = %+v", res)
	}
}

func TestConcurrentSends(t *testing.T) {
	rec := newRecorder(t, nil)
	s, err := New(Config{Name: "r", Kind: KindWebhook, Webhook: &WebhookConfig{URL: rec.url("/"),
		Secrets: []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("k"))}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			n := notification(1 + i%3)
			n.ID = fmt.Sprintf("ntf-%d", i)
			errs <- s.Send(context.Background(), n).Err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := len(rec.requests()); got != 16 {
		t.Errorf("%d requests", got)
	}
}
