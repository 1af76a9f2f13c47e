package app

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// oddTicket is a ticket id as hostile as helpdesks allow: a slash, quotes, markup and unicode.
const oddTicket = `T/"<script>alert(2)</script>" ü`

var (
	ticketRowRE = regexp.MustCompile(`<tr class="ticket">\s*<th scope="row">([^<]*)</th>`)
	sparkRE     = regexp.MustCompile(`<th scope="row"><a href="[^"]*">([^<]*)</a></th><td class="trend"><svg class="spark"[^>]* aria-label="([^"]*)"`)
)

// kpiClient is a client of the stack's kpi with acme's key.
func kpiClient(t *testing.T, s *stack) (tpv1.KpiServiceClient, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(s.kpi, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return tpv1.NewKpiServiceClient(conn), metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+s.tenants.Acme)
}

func TestSparklinesDrillDownAndWhatIf(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, "http://"+s.console.HTTP)
	if a := b.post("/signin", url.Values{"api_key": {s.tenants.Acme}}); a.code != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", a.code, a.body)
	}
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	var events []map[string]any
	for _, tk := range []struct {
		id, agent string
		rating    int
	}{{"T-1", oddAgent, 1}, {"T-2", oddAgent, 5}, {oddTicket, oddAgent, 2}, {"T-3", "bob", 1}, {"T-4", "bob", 4}} {
		events = append(events, ticket(tk.id, tk.agent, "billing", start, tk.rating)...)
	}
	// 101 well-rated tickets of one agent: two drill-down pages.
	for i := range 101 {
		events = append(events, ticket(fmt.Sprintf("P-%03d", i), "pat", "support", start.Add(time.Duration(i)*time.Second), 5)...)
	}
	postEvents(t, s.ingest, s.tenants.Acme, events)

	// Sparklines: the agent's text alternative holds exactly ListKpiSeries' values.
	var team answer
	sparks := map[string]string{}
	eventually(t, "both agents' resolutions in the sparklines", func() bool {
		team = b.get("/t/acme/team?team=billing&window=24h&spark=resolutions")
		clear(sparks)
		for _, m := range sparkRE.FindAllStringSubmatch(team.body, -1) {
			sparks[html.UnescapeString(m[1])] = html.UnescapeString(m[2])
		}
		return team.code == http.StatusOK && strings.Contains(sparks[oddAgent], ", 3, ") && strings.Contains(sparks["bob"], ", 2, ")
	})
	kpi, ctx := kpiClient(t, s)
	resp, err := kpi.ListKpiSeries(ctx, &tpv1.ListKpiSeriesRequest{Tenant: "acme", Scope: tpv1.ScopeKind_SCOPE_KIND_AGENT, Ids: []string{oddAgent},
		Window: &tpv1.Window{Kind: &tpv1.Window_Rolling{Rolling: "24h"}}, Granularity: tpv1.Granularity_GRANULARITY_HOUR})
	if err != nil || len(resp.GetSeries()) != 1 {
		t.Fatalf("ListKpiSeries: %v %v", err, resp)
	}
	var want []string
	for _, p := range resp.GetSeries()[0].GetPoints() {
		want = append(want, fmt.Sprint(p.GetKpis().GetResolutions()))
	}
	if got, w := sparks[oddAgent], "Resolutions by period: "+strings.Join(want, ", "); got != w {
		t.Errorf("sparkline of %q:\n got %q\nwant %q", oddAgent, got, w)
	}
	if len(sparks) != 2 {
		t.Errorf("%d sparklines, want 2 (one per agent): %v", len(sparks), sparks)
	}
	if a := b.get("/t/acme/team?spark=nonsense"); a.code != http.StatusBadRequest || !strings.Contains(a.body, "spark:") {
		t.Errorf("team?spark=nonsense: %d, want 400 naming spark", a.code)
	}

	// Drill-down from the CSAT figure: exactly the agent's tickets rated 2 or less, ids escaped.
	drill := regexp.MustCompile(`href="(/t/acme/tickets\?[^"]*max_rating=2[^"]*)"`).FindAllStringSubmatch(team.body, -1)
	var link string
	for _, m := range drill {
		if u := html.UnescapeString(m[1]); strings.Contains(u, url.QueryEscape(oddAgent)) {
			link = u
		}
	}
	if link == "" {
		t.Fatalf("no CSAT drill-down link for %q on the team page", oddAgent)
	}
	// Exactly these two, once kpi has indexed the ratings (they may trail the resolutions).
	var tickets answer
	var rows []string
	eventually(t, "the drill-down lists exactly T-1 and the odd ticket", func() bool {
		tickets = b.get(link)
		rows = rows[:0]
		for _, m := range ticketRowRE.FindAllStringSubmatch(tickets.body, -1) {
			rows = append(rows, html.UnescapeString(m[1]))
		}
		slices.Sort(rows)
		return tickets.code == http.StatusOK && slices.Equal(rows, []string{"T-1", oddTicket})
	})
	if strings.Contains(tickets.body, "<script>alert") {
		t.Errorf("a ticket or agent id reached the page unescaped")
	}
	for _, c := range []struct{ query, field string }{
		{"max_rating=9", "max_rating:"}, {"min_first_response=-1", "min_first_response:"}, {"min_reopens=x", "min_reopens:"},
		{"agent=a&team=b", "team:"}, {"window=2d", "window:"},
	} {
		if a := b.get("/t/acme/tickets?" + c.query); a.code != http.StatusBadRequest || !strings.Contains(a.body, c.field) {
			t.Errorf("tickets?%s: %d, want 400 naming %s", c.query, a.code, c.field)
		}
	}
	// Paging with the service's tokens: 100 and 1 of pat's 101 tickets, and back.
	nextRE, prevRE := regexp.MustCompile(`href="([^"]*)" rel="next"`), regexp.MustCompile(`href="([^"]*)" rel="prev"`)
	var p1 answer
	eventually(t, "pat's 101 tickets", func() bool {
		p1 = b.get("/t/acme/tickets?window=24h&agent=pat")
		return len(ticketRowRE.FindAllString(p1.body, -1)) == 100 && nextRE.MatchString(p1.body)
	})
	p2 := b.get(html.UnescapeString(nextRE.FindStringSubmatch(p1.body)[1]))
	rows2 := ticketRowRE.FindAllStringSubmatch(p2.body, -1)
	if p2.code != http.StatusOK || len(rows2) != 1 || nextRE.MatchString(p2.body) || !prevRE.MatchString(p2.body) {
		t.Fatalf("second page: %d, %d rows, want 1 with a previous link and no next", p2.code, len(rows2))
	}
	seen := map[string]bool{rows2[0][1]: true}
	for _, m := range ticketRowRE.FindAllStringSubmatch(p1.body, -1) {
		seen[m[1]] = true
	}
	if len(seen) != 101 {
		t.Errorf("the two pages hold %d distinct tickets, want 101", len(seen))
	}
	if back := b.get(html.UnescapeString(prevRE.FindStringSubmatch(p2.body)[1])); len(ticketRowRE.FindAllString(back.body, -1)) != 100 {
		t.Errorf("previous page: %d rows, want 100", len(ticketRowRE.FindAllString(back.body, -1)))
	}
	if a := b.get("/t/acme/tickets?window=24h&unresolved=1"); a.code != http.StatusOK || len(ticketRowRE.FindAllString(a.body, -1)) != 0 {
		t.Errorf("unresolved tickets: %d, %d rows, want none", a.code, len(ticketRowRE.FindAllString(a.body, -1)))
	}

	// The agent page charts each KPI, by hour, day or week.
	agentURL := "/t/acme/agent?" + url.Values{"id": {oddAgent}, "g": {"hour"}, "tz": {"Asia/Kolkata"}}.Encode()
	if a := b.get(agentURL); a.code != http.StatusOK || strings.Count(a.body, `<svg class="chart"`) != 5 || !strings.Contains(a.body, "/t/acme/tickets?") {
		t.Errorf("agent page by hour: %d, %d charts, want 5 and drill-down links", a.code, strings.Count(a.body, `<svg class="chart"`))
	}
	if a := b.get("/t/acme/agent?id=bob&g=week"); a.code != http.StatusOK || strings.Count(a.body, `<svg class="chart"`) != 5 {
		t.Errorf("agent page by week: %d", a.code)
	}
	if a := b.get("/t/acme/agent?id=bob&g=year"); a.code != http.StatusBadRequest || !strings.Contains(a.body, "g:") {
		t.Errorf("agent page by year: %d, want 400 naming g", a.code)
	}

	// What-if: the loaded rules escalate ratings of 2 or less (three tickets); 4 or less adds T-4.
	escIDs := func() string {
		a := b.get("/t/acme/escalations?state=all")
		var ids []string
		for _, m := range escIDRE.FindAllStringSubmatch(a.body, -1) {
			ids = append(ids, m[1])
		}
		return strings.Join(ids, " ")
	}
	eventually(t, "three real escalations", func() bool { return len(strings.Fields(escIDs())) == 3 })
	before := escIDs()
	// The severity filter is escalation's: every page holds only the severity asked for.
	for sev, want := range map[string]int{"critical": 3, "warning": 0} {
		if a := b.get("/t/acme/escalations?state=all&severity=" + sev); a.code != http.StatusOK || len(escIDRE.FindAllString(a.body, -1)) != want {
			t.Errorf("escalations of severity %s: %d, %d listed, want %d", sev, a.code, len(escIDRE.FindAllString(a.body, -1)), want)
		}
	}
	if a := b.get("/t/acme/escalations?severity=urgent"); a.code != http.StatusBadRequest || !strings.Contains(a.body, "severity:") {
		t.Errorf("escalations?severity=urgent: %d, want 400 naming severity", a.code)
	}
	rules := b.get("/t/acme/rules")
	if rules.code != http.StatusOK || !strings.Contains(rules.body, "max_score: 2") || !strings.Contains(rules.body, "Version <code>") {
		t.Fatalf("rules page: %d\n%s", rules.code, rules.body)
	}
	token := csrf(t, rules.body)
	tightened := strings.Replace(testRules, "max_score: 2", "max_score: 4", 1)
	form := url.Values{"rules_yaml": {tightened}, "range": {"24h"}}
	if a := b.post("/t/acme/rules/simulate", form); a.code != http.StatusForbidden || !strings.Contains(a.body, "csrf") {
		t.Errorf("what-if without the CSRF token: %d, want 403", a.code)
	}
	form.Set("csrf", token)
	sim := b.post("/t/acme/rules/simulate", form)
	if sim.code != http.StatusOK {
		t.Fatalf("what-if: %d\n%s", sim.code, sim.body)
	}
	if !strings.Contains(sim.body, "1 added · 0 removed · 3 same") {
		t.Errorf("what-if counts, want 1 added, 3 same:\n%s", sim.body)
	}
	added := regexp.MustCompile(`<tr class="diff-added">[\s\S]*?</tr>`).FindAllString(sim.body, -1)
	if len(added) != 1 || !strings.Contains(added[0], "T-4") || !strings.Contains(added[0], "bad-rating") {
		t.Errorf("added rows %q, want one for T-4 by bad-rating", added)
	}
	if strings.Contains(sim.body, "<script>alert") {
		t.Errorf("a simulated subject reached the page unescaped")
	}
	if after := escIDs(); after != before {
		t.Errorf("the what-if changed the escalations: %q, then %q", before, after)
	}
	// A custom range is of local days in the form's zone. The ratings' instant falls on local
	// day D in each zone; D (and not the day before) replays them. At every hour of the day the
	// instant's UTC date differs from D in at least one of these zones (UTC+14 and UTC-11), where
	// a range read as UTC days would miss the ratings.
	rated := start.Add(61 * time.Minute)
	for _, tz := range []string{"Pacific/Kiritimati", "Pacific/Pago_Pago"} {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			t.Fatal(err)
		}
		day := rated.In(loc)
		for _, c := range []struct{ day, want string }{
			{day.Format(time.DateOnly), "1 added · 0 removed · 3 same"},
			{day.AddDate(0, 0, -1).Format(time.DateOnly), "0 added · 0 removed · 0 same"},
		} {
			a := b.post("/t/acme/rules/simulate", url.Values{"csrf": {token}, "rules_yaml": {tightened}, "range": {"custom"}, "from": {c.day}, "to": {c.day}, "tz": {tz}})
			if a.code != http.StatusOK || !strings.Contains(a.body, c.want) {
				t.Errorf("what-if of %s in %s (ratings at %s): %d, want %q:\n%.2000s", c.day, tz, rated.In(loc), a.code, c.want, a.body)
			}
		}
	}
	for _, c := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"rules_yaml": {"tenants: [not, a, map"}, "range": {"7d"}}, `id="rules-err"`},
		{url.Values{"rules_yaml": {tightened}, "range": {"custom"}, "from": {"2026-01-01"}, "to": {"2026-03-01"}}, `id="range-err"`},
		{url.Values{"rules_yaml": {tightened}, "range": {"1y"}}, `id="range-err"`},
		{url.Values{"rules_yaml": {strings.Repeat("#", 1<<20+1)}, "range": {"7d"}}, "rules_yaml: "},
	} {
		c.form.Set("csrf", token)
		if a := b.post("/t/acme/rules/simulate", c.form); a.code != http.StatusBadRequest || !strings.Contains(a.body, c.field) {
			t.Errorf("what-if %.60v: %d, want 400 with %s", c.form, a.code, c.field)
		}
	}
}

// Without kpi's drill-down index the tickets page explains how to get it, as a page, not an error.
func TestDrillDownWithoutIndex(t *testing.T) {
	s := startStack(t)
	// A kpi of its own (own NATS and Redis, so it takes no work from the stack's), without the index.
	_, natsURL := testenv.NATS(t)
	rdb := testenv.RedisSingle(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(testRules), 0o600); err != nil {
		t.Fatal(err)
	}
	kpiAddr := freeAddr(t)
	startBinary(t, "kpi", freeAddr(t), "TICKETPULSE_NATS_URL="+natsURL, "TICKETPULSE_TENANTS_FILE="+s.tenants.File, "TICKETPULSE_STREAM_REPLICAS=1",
		fmt.Sprintf("TICKETPULSE_REDIS_URL=redis://%s/0", rdb.Options().Addr), "TICKETPULSE_GRPC_ADDR="+kpiAddr, "TICKETPULSE_RULES_FILE="+rules)
	cfg := s.cfg
	cfg.KPIAddr = kpiAddr
	c := startConsole(t, cfg)
	b := newBrowser(t, "http://"+c.HTTP)
	if a := b.post("/signin", url.Values{"api_key": {s.tenants.Acme}}); a.code != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", a.code, a.body)
	}
	a := b.get("/t/acme/tickets?" + url.Values{"agent": {oddAgent}, "window": {"7d"}}.Encode())
	if a.code != http.StatusOK || !strings.Contains(a.body, "keeps no drill-down index: start kpi with -ticket-index") {
		t.Errorf("tickets without the index: %d, want 200 explaining it:\n%s", a.code, a.body)
	}
}
