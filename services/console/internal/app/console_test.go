package app

import (
	"bufio"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	csrfRE  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	escIDRE = regexp.MustCompile(`data-id="([^"]+)"`)
)

// oddAgent is an agent id as helpdesks send them: a slash, quotes, markup and unicode.
const oddAgent = `ana/"q" <script>alert(1)</script> ü`

func csrf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", body)
	}
	return html.UnescapeString(m[1])
}

func TestConsoleOverTheStack(t *testing.T) {
	s := startStack(t)
	base := "http://" + s.console.HTTP
	b := newBrowser(t, base)

	a := b.get("/signin")
	if a.code != http.StatusOK {
		t.Fatalf("GET /signin: %d", a.code)
	}
	csp := a.h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || a.h.Get("X-Content-Type-Options") != "nosniff" || a.h.Get("Referrer-Policy") == "" {
		t.Errorf("security headers: CSP %q, nosniff %q, referrer %q", csp, a.h.Get("X-Content-Type-Options"), a.h.Get("Referrer-Policy"))
	}
	if a := b.get("/t/acme/team"); a.code != http.StatusSeeOther || a.h.Get("Location") != "/signin" {
		t.Fatalf("team page signed out: %d %s, want 303 to /signin", a.code, a.h.Get("Location"))
	}

	for _, c := range []struct {
		name, key string
		want      int
	}{
		{"empty", "", http.StatusBadRequest},
		{"unknown", "tp_not-a-real-key", http.StatusUnauthorized},
		{"revoked", s.tenants.AcmeRevoked, http.StatusUnauthorized},
		{"operator", s.tenants.Operator, http.StatusForbidden},
	} {
		if a := b.post("/signin", url.Values{"api_key": {c.key}}); a.code != c.want || !strings.Contains(a.body, "api_key:") {
			t.Errorf("sign in with the %s key: %d, want %d naming api_key:\n%s", c.name, a.code, c.want, a.body)
		}
	}
	// A sign-in form posted from another site is refused before the key is looked at.
	if a := b.post("/signin", url.Values{"api_key": {s.tenants.Acme}}, "Sec-Fetch-Site", "cross-site"); a.code != http.StatusForbidden {
		t.Errorf("cross-site sign-in: %d, want 403", a.code)
	}

	a = b.post("/signin", url.Values{"api_key": {s.tenants.Acme}})
	if a.code != http.StatusSeeOther || a.h.Get("Location") != "/t/acme/team" {
		t.Fatalf("sign in: %d %s\n%s", a.code, a.h.Get("Location"), a.body)
	}
	cookie := a.h.Get("Set-Cookie")
	for _, want := range []string{"tp_session=", "HttpOnly", "SameSite=Lax", "Path=/", "Expires="} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	// An API-key session lasts -session-max-age (an hour here), no longer.
	if ck, err := http.ParseSetCookie(cookie); err != nil || time.Until(ck.Expires) > s.cfg.SessionMaxAge || time.Until(ck.Expires) < s.cfg.SessionMaxAge-time.Minute {
		t.Errorf("session cookie expires %v (%v), want in %s", ck.Expires, err, s.cfg.SessionMaxAge)
	}
	if strings.Contains(cookie, "Secure") || strings.Contains(cookie, s.tenants.Acme) {
		t.Errorf("session cookie on plain loopback: %q (want no Secure flag and never the key in clear)", cookie)
	}

	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	events := append(ticket("T-1", oddAgent, "billing", start, 1), ticket("T-2", "bob", "billing", start, 5)...)
	postEvents(t, s.ingest, s.tenants.Acme, events)

	var team answer
	eventually(t, "both agents on the team page", func() bool {
		team = b.get("/t/acme/team?team=billing&window=24h")
		return team.code == http.StatusOK && strings.Contains(team.body, ">bob<") && strings.Contains(team.body, "ana/")
	})
	if strings.Contains(team.body, "<script>alert") {
		t.Fatalf("the agent id reached the page unescaped:\n%s", team.body)
	}
	if !strings.Contains(team.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the escaped agent id is not on the page:\n%s", team.body)
	}
	if !strings.Contains(team.body, "Team total") || !strings.Contains(team.body, "Unassigned") {
		t.Errorf("team page lacks the team totals or the unassigned figures")
	}

	// Sorting is the server's: each order puts the agents in its order, the heading says so.
	for _, c := range []struct {
		order, first string
	}{{"csat_mean desc", ">bob<"}, {"csat_mean", "ana/"}, {"agent_id", "ana/"}, {"agent_id desc", ">bob<"}} {
		a := b.get("/t/acme/team?" + url.Values{"team": {"billing"}, "window": {"24h"}, "order": {c.order}}.Encode())
		if a.code != http.StatusOK {
			t.Fatalf("order %q: %d %s", c.order, a.code, a.body)
		}
		bob, ana := strings.Index(a.body, ">bob<"), strings.Index(a.body, "ana/")
		if (c.first == ">bob<") != (bob < ana) {
			t.Errorf("order %q: bob at %d, ana at %d; want %s first", c.order, bob, ana, c.first)
		}
		if !strings.Contains(a.body, `aria-sort="`) {
			t.Errorf("order %q: no column says it is sorted", c.order)
		}
	}
	// Every KPI heading sorts but Resolution p50, which kpi cannot order by: the page says so.
	headings := regexp.MustCompile(`<th scope="col"[^>]*>(.*?)</th>`).FindAllStringSubmatch(team.body, -1)
	if len(headings) != 14 {
		t.Fatalf("%d column headings, want 14", len(headings))
	}
	for _, h := range headings[2:] { // Agent and Trend are no KPI
		if sortable := strings.Contains(h[1], `<a href="/t/acme/team?`); sortable == strings.HasPrefix(h[1], "Resolution p50") {
			t.Errorf("heading %q: sortable %v", h[1], sortable)
		}
	}
	if !strings.Contains(team.body, `<p class="hint" id="unsortable">Not sortable: Resolution p50. kpi cannot order agents by it`) {
		t.Errorf("the team page does not say which column cannot be sorted")
	}
	for _, c := range []struct{ query, field string }{
		{"order=resolution_p50", "order:"}, {"order=nonsense", "order:"}, {"window=2d", "window:"}, {"tz=Mars/Olympus", "tz:"},
		{"window=range&from=2026-02-10&to=2026-02-01", "to:"}, {"window=range&from=x&to=2026-02-01", "from:"},
	} {
		if a := b.get("/t/acme/team?" + c.query); a.code != http.StatusBadRequest || !strings.Contains(a.body, c.field) {
			t.Errorf("team?%s: %d, want 400 naming %s", c.query, a.code, c.field)
		}
	}
	if a := b.get("/t/acme/team?window=range&from=2020-01-01&to=2026-12-31&tz=Asia/Kolkata"); a.code != http.StatusOK {
		t.Errorf("six years in a :30 zone: %d %s", a.code, a.body)
	}
	for _, path := range []string{"/t/globex/team", "/t/globex/escalations", "/t/globex/agent?id=bob", "/t/UPPER/team"} {
		if a := b.get(path); a.code != http.StatusForbidden {
			t.Errorf("%s signed in to acme: %d, want 403", path, a.code)
		}
	}

	// The bad rating raised an escalation; the agent page lists it.
	agentURL := "/t/acme/agent?" + url.Values{"id": {oddAgent}}.Encode()
	var agent answer
	eventually(t, "the escalation on the agent page", func() bool {
		agent = b.get(agentURL)
		return agent.code == http.StatusOK && strings.Contains(agent.body, "badge sev-critical")
	})
	if strings.Contains(agent.body, "<script>alert") || !strings.Contains(agent.body, "CSAT") {
		t.Errorf("agent page:\n%s", agent.body)
	}

	esc := b.get("/t/acme/escalations")
	m := escIDRE.FindStringSubmatch(esc.body)
	if esc.code != http.StatusOK || m == nil {
		t.Fatalf("escalations page: %d, no escalation:\n%s", esc.code, esc.body)
	}
	id, token := html.UnescapeString(m[1]), csrf(t, esc.body)

	// A second tab watches live.
	live := make(chan string, 16)
	req, _ := http.NewRequest(http.MethodGet, base+"/t/acme/escalations/events", nil)
	resp, err := b.c.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream: %v %v", err, resp)
	}
	defer resp.Body.Close()
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				live <- sc.Text()
			}
		}
		close(live)
	}()
	// The per-session limit is 2 streams: the second opens, the third is refused.
	second, err := b.c.Do(req.Clone(req.Context()))
	if err != nil || second.StatusCode != http.StatusOK {
		t.Fatalf("second stream: %v %v", err, second)
	}
	if a := b.get("/t/acme/escalations/events"); a.code != http.StatusTooManyRequests {
		t.Errorf("third stream of one session: %d, want 429", a.code)
	}
	second.Body.Close()

	ack := url.Values{"id": {id}, "note": {`on it <b>"now"</b>`}}
	if a := b.post("/t/acme/escalation/acknowledge", ack); a.code != http.StatusForbidden || !strings.Contains(a.body, "csrf") {
		t.Errorf("acknowledge without the CSRF token: %d, want 403", a.code)
	}
	ack.Set("csrf", token)
	if a := b.post("/t/acme/escalation/acknowledge", ack, "Origin", "http://evil.example"); a.code != http.StatusForbidden {
		t.Errorf("acknowledge from another origin: %d, want 403", a.code)
	}
	if a := b.post("/t/globex/escalation/acknowledge", ack); a.code != http.StatusForbidden {
		t.Errorf("acknowledge on another tenant's URL: %d, want 403", a.code)
	}
	ack.Set("note", strings.Repeat("n", 2049))
	if a := b.post("/t/acme/escalation/acknowledge", ack); a.code != http.StatusBadRequest || !strings.Contains(a.body, "note:") {
		t.Errorf("acknowledge with a 2049-byte note: %d, want 400 naming note", a.code)
	}
	ack.Set("note", `on it <b>"now"</b>`)
	if a := b.post("/t/acme/escalation/acknowledge", ack, "Sec-Fetch-Site", "same-origin"); a.code != http.StatusSeeOther {
		t.Fatalf("acknowledge: %d %s", a.code, a.body)
	}
	select {
	case line := <-live:
		if !strings.Contains(line, `"state":"acknowledged"`) || !strings.Contains(line, id) {
			t.Errorf("live change %s, want %s acknowledged", line, id)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the acknowledgement never reached the live stream")
	}
	one := b.get("/t/acme/escalation?" + url.Values{"id": {id}}.Encode())
	for _, want := range []string{"acknowledged", "api-key:acme/all", "on it &lt;b&gt;&#34;now&#34;&lt;/b&gt;"} {
		if !strings.Contains(one.body, want) {
			t.Errorf("escalation page lacks %q:\n%s", want, one.body)
		}
	}
	if a := b.get("/t/acme/escalation?id=nope"); a.code != http.StatusBadRequest || !strings.Contains(a.body, "id:") {
		t.Errorf("malformed escalation id: %d, want 400 naming id", a.code)
	}

	// Deliveries: the hook received the escalation's notifications.
	eventually(t, "a delivery in the log", func() bool {
		a := b.get("/t/acme/deliveries")
		return a.code == http.StatusOK && strings.Contains(a.body, "delivered")
	})
	if a := b.get("/t/acme/deliveries?status=lost"); a.code != http.StatusBadRequest {
		t.Errorf("deliveries?status=lost: %d, want 400", a.code)
	}
	if a := b.post("/t/acme/receivers/test", url.Values{"receiver": {"hook"}, "csrf": {token}}); a.code != http.StatusOK || !strings.Contains(a.body, "Delivered.") {
		t.Errorf("test receiver: %d\n%s", a.code, a.body)
	}

	// Sign-out needs the token, and ends the session.
	if a := b.post("/signout", url.Values{"csrf": {token}}); a.code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", a.code)
	}
	if a := b.get("/t/acme/team"); a.code != http.StatusSeeOther {
		t.Errorf("team page after sign-out: %d, want 303", a.code)
	}
}

// A key without the read scopes signs in, and the services refuse its pages: the console
// passes the person's credential on and never reads with more rights than it has.
func TestConsoleUsesThePersonsCredential(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, "http://"+s.console.HTTP)
	if a := b.post("/signin", url.Values{"api_key": {s.tenants.AcmeEvents}}); a.code != http.StatusSeeOther {
		t.Fatalf("sign in with the events key: %d", a.code)
	}
	for _, path := range []string{"/t/acme/team", "/t/acme/escalations", "/t/acme/deliveries", "/t/acme/agent?id=bob"} {
		if a := b.get(path); a.code != http.StatusForbidden || !strings.Contains(a.body, "scope") {
			t.Errorf("%s with an events-only key: %d, want 403 naming the missing scope\n%s", path, a.code, a.body)
		}
	}
	// A forged cookie is no session.
	b.c.Jar.SetCookies(mustURL(t, "http://"+s.console.HTTP), []*http.Cookie{{Name: "tp_session", Value: "AAAA" + strings.Repeat("x", 60), Path: "/"}})
	if a := b.get("/t/acme/team"); a.code != http.StatusSeeOther {
		t.Errorf("forged session cookie: %d, want 303 to sign-in", a.code)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
