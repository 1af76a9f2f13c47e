package app

import (
	"fmt"
	"html"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// review is a QA review of agent, credited to team, scored at at.
func review(id, agent, team string, at time.Time, score float64, autoFail bool) map[string]any {
	return map[string]any{"id": "qa-" + id, "ticket_id": "Q-" + id, "type": "qa_scored", "occurred_at": at.Format(time.RFC3339),
		"actor": map[string]any{"id": "lead", "kind": "agent"},
		"qa":    map[string]any{"review_id": id, "agent_id": agent, "team_id": team, "score": score, "auto_fail": autoFail}}
}

// inboundCall is a call with no ticket, offered to team at at: answered by agent after wait
// seconds and ended after talk seconds and 30 s of wrap-up, or, with wait 0, abandoned after 40 s
// (ringing at agent's phone, or in the queue when agent is empty).
func inboundCall(id, agent, team string, at time.Time, wait, talk int) []map[string]any {
	c := func(extra map[string]any) map[string]any {
		m := map[string]any{"call_id": id, "direction": "inbound", "team_id": team}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	t := func(sec int) string { return at.Add(time.Duration(sec) * time.Second).Format(time.RFC3339) }
	system := map[string]any{"kind": "system"}
	events := []map[string]any{{"id": id + "-o", "ticket_id": id, "type": "call_offered", "occurred_at": t(0), "actor": system, "call": c(nil)}}
	if wait == 0 {
		abandoned := map[string]any{"wait_seconds": 40}
		if agent != "" {
			abandoned["agent_id"] = agent
		}
		return append(events, map[string]any{"id": id + "-x", "ticket_id": id, "type": "call_abandoned", "occurred_at": t(40), "actor": system, "call": c(abandoned)})
	}
	return append(events,
		map[string]any{"id": id + "-a", "ticket_id": id, "type": "call_answered", "occurred_at": t(wait), "actor": map[string]any{"id": agent, "kind": "agent"},
			"call": c(map[string]any{"agent_id": agent})},
		map[string]any{"id": id + "-e", "ticket_id": id, "type": "call_ended", "occurred_at": t(wait + talk + 30), "actor": system,
			"call": c(map[string]any{"agent_id": agent, "talk_seconds": talk, "wrap_up_seconds": 30})})
}

// The page's formats, written again from docs/console.md, so a figure is checked against the
// number kpi answered and not against the console's own formatting code.
func wantPct(share float64, den int64) string {
	if den == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f %%", 100*share)
}

func wantScore(v float64, n int64) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f %%", v)
}

func wantDur(sec float64, n int64) string {
	if n == 0 {
		return "–"
	}
	d := time.Duration(math.Round(sec)) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}

// teamCells are the team column labels of the QA and call families and each one's figure.
var teamCells = []struct {
	label, order string
	want         func(k *tpv1.Kpis) string
}{
	{"QA reviews", "qa_score_count", func(k *tpv1.Kpis) string { return fmt.Sprint(k.GetQaScore().GetCount()) }},
	{"QA mean", "qa_score_mean", func(k *tpv1.Kpis) string { return wantScore(k.GetQaScore().GetMean(), k.GetQaScore().GetCount()) }},
	{"QA auto-fail", "qa_auto_fail_rate", func(k *tpv1.Kpis) string { return wantPct(k.GetQaAutoFailRate(), k.GetQaScore().GetCount()) }},
	{"Calls answered", "calls_answered", func(k *tpv1.Kpis) string { return fmt.Sprint(k.GetCallsAnswered()) }},
	{"Abandon rate", "call_abandon_rate", func(k *tpv1.Kpis) string { return wantPct(k.GetCallAbandonRate(), k.GetCallsOffered()) }},
	{"Service level", "call_service_level", func(k *tpv1.Kpis) string { return wantPct(k.GetCallServiceLevel(), k.GetCallsOffered()) }},
	{"ASA", "call_speed_of_answer_mean", func(k *tpv1.Kpis) string {
		return wantDur(k.GetCallSpeedOfAnswer().GetMeanSeconds(), k.GetCallSpeedOfAnswer().GetCount())
	}},
	{"AHT", "call_handle_time_mean", func(k *tpv1.Kpis) string {
		return wantDur(k.GetCallHandleTime().GetMeanSeconds(), k.GetCallHandleTime().GetCount())
	}},
}

var (
	headingRE = regexp.MustCompile(`<th scope="col"[^>]*>(.*?)</th>`)
	rowRE     = regexp.MustCompile(`(?s)<tr>\s*<th scope="row"><a href="[^"]*">([^<]*)</a></th>(.*?)</tr>`)
	cellRE    = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	tagRE     = regexp.MustCompile(`<[^>]*>`)
)

// plain is an HTML fragment's text.
func plain(s string) string {
	return strings.TrimSpace(html.UnescapeString(tagRE.ReplaceAllString(s, "")))
}

// table is the team table as the page shows it: its column labels, and each agent's figures
// by label, agents in the page's order.
type table struct {
	labels []string
	links  map[string]string // sort link by label
	sorted map[string]string // aria-sort by label
	ids    []string
	cells  map[string]map[string]string
}

func parseTable(t *testing.T, body string) table {
	t.Helper()
	tb := table{links: map[string]string{}, sorted: map[string]string{}, cells: map[string]map[string]string{}}
	for _, m := range headingRE.FindAllStringSubmatch(body, -1) {
		label := plain(m[1])
		if i := strings.Index(label, " ("); i > 0 { // the trend's missing note
			label = label[:i]
		}
		tb.labels = append(tb.labels, label)
		if l := regexp.MustCompile(`<a href="([^"]*)">`).FindStringSubmatch(m[1]); l != nil {
			tb.links[label] = html.UnescapeString(l[1])
		}
		if s := regexp.MustCompile(`aria-sort="([a-z]+)"`).FindStringSubmatch(m[0]); s != nil {
			tb.sorted[label] = s[1]
		}
	}
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		id := html.UnescapeString(m[1])
		tb.ids = append(tb.ids, id)
		tb.cells[id] = map[string]string{}
		for i, c := range cellRE.FindAllStringSubmatch(m[2], -1) {
			if i+1 < len(tb.labels) {
				tb.cells[id][tb.labels[i+1]] = plain(c[1])
			}
		}
	}
	return tb
}

// A tenant with QA reviews and calls: the team table's QA and call columns hold kpi's figures,
// sort by every one of them as kpi orders, and are left out for a team without such figures;
// the agent page has QA and call sections and charts only for an agent with some.
func TestQAAndCallFigures(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, "http://"+s.console.HTTP)
	if a := b.post("/signin", url.Values{"api_key": {s.tenants.Acme}}); a.code != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", a.code, a.body)
	}
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	at := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }
	events := append(ticket("T-C1", "carla", "phones", start, 4), ticket("T-B1", "bob", "billing", start, 5)...)
	events = append(events,
		review("r1", "carla", "phones", at(5), 80, false), review("r2", "carla", "phones", at(6), 95.5, false),
		review("r3", "carla", "phones", at(7), 40, true), review("r4", "dev", "phones", at(8), 90, false),
		review("r5", "dev", "phones", at(9), 100, false), review("r6", oddAgent, "phones", at(10), 60, true))
	for _, c := range []struct {
		id, agent  string
		at         int
		wait, talk int
	}{
		{"C1", "carla", 20, 10, 300}, {"C2", "carla", 30, 30, 600}, {"C3", "carla", 40, 0, 0},
		{"C4", "dev", 20, 5, 120}, {"C5", "dev", 50, 15, 240},
		{"C6", oddAgent, 60, 50, 90},
		{"C7", "", 70, 0, 0}, // abandoned in the queue: the unassigned figures
	} {
		events = append(events, inboundCall(c.id, c.agent, "phones", at(c.at), c.wait, c.talk)...)
	}
	postEvents(t, s.ingest, s.tenants.Acme, events)

	kpi, ctx := kpiClient(t, s)
	win24 := &tpv1.Window{Kind: &tpv1.Window_Rolling{Rolling: "24h"}}
	list := func(team, order string) []*tpv1.AgentKpis {
		t.Helper()
		resp, err := kpi.ListAgentKpis(ctx, &tpv1.ListAgentKpisRequest{Tenant: "acme", TeamId: team, Window: win24, OrderBy: order, PageSize: 1000})
		if err != nil {
			t.Fatalf("ListAgentKpis %s %q: %v", team, order, err)
		}
		return resp.GetAgents()
	}
	// kpi has every event once it answers what they imply.
	var phones []*tpv1.AgentKpis
	var unassigned *tpv1.GetUnassignedKpisResponse
	var total *tpv1.GetTeamKpisResponse
	eventually(t, "kpi's QA and call figures", func() bool {
		var err error
		if unassigned, err = kpi.GetUnassignedKpis(ctx, &tpv1.GetUnassignedKpisRequest{Tenant: "acme", Window: win24}); err != nil {
			t.Fatal(err)
		}
		if total, err = kpi.GetTeamKpis(ctx, &tpv1.GetTeamKpisRequest{Tenant: "acme", TeamId: "phones", Window: win24}); err != nil {
			t.Fatal(err)
		}
		if unassigned.GetKpis().GetCallsAbandoned() != 1 || total.GetKpis().GetCallsOffered() != 7 || total.GetKpis().GetQaScore().GetCount() != 6 {
			return false
		}
		phones = list("phones", "")
		got := map[string]*tpv1.Kpis{}
		for _, a := range phones {
			got[a.GetAgentId()] = a.GetKpis()
		}
		c, d, o := got["carla"], got["dev"], got[oddAgent]
		return len(phones) == 3 && c.GetQaScore().GetCount() == 3 && c.GetQaAutoFails() == 1 && c.GetCallsOffered() == 3 &&
			c.GetCallsAnswered() == 2 && c.GetCallsAbandoned() == 1 && c.GetCallHandleTime().GetCount() == 2 && c.GetResolutions() == 1 &&
			d.GetQaScore().GetCount() == 2 && d.GetCallsAnswered() == 2 && d.GetCallHandleTime().GetCount() == 2 &&
			o.GetQaScore().GetCount() == 1 && o.GetCallHandleTime().GetCount() == 1
	})

	// The team with every family: the ticket, QA and call columns, each agent's figures as kpi's.
	page := b.get("/t/acme/team?team=phones&window=24h")
	if page.code != http.StatusOK {
		t.Fatalf("team page: %d %s", page.code, page.body)
	}
	if strings.Contains(page.body, "<script>alert") {
		t.Fatal("an agent id reached the page unescaped")
	}
	tb := parseTable(t, page.body)
	if len(tb.labels) != 14+len(teamCells) || strings.Contains(page.body, `id="hidden-families"`) {
		t.Fatalf("columns %q, want the 14 ticket columns and %d of QA and calls, none hidden", tb.labels, len(teamCells))
	}
	for _, a := range phones {
		for _, c := range teamCells {
			if got, want := tb.cells[a.GetAgentId()][c.label], c.want(a.GetKpis()); got != want {
				t.Errorf("%s of %q: page %q, kpi %q", c.label, a.GetAgentId(), got, want)
			}
		}
	}
	// The cards: the team's QA and call totals, and the calls abandoned in the queue.
	tk, uk := total.GetKpis(), unassigned.GetKpis()
	for _, want := range []string{
		fmt.Sprintf("<dt>QA mean / auto-fail rate</dt><dd>%s / %s</dd>", wantScore(tk.GetQaScore().GetMean(), tk.GetQaScore().GetCount()),
			wantPct(tk.GetQaAutoFailRate(), tk.GetQaScore().GetCount())),
		fmt.Sprintf("<dt>Calls offered / answered / abandoned</dt><dd>%d / %d / %d</dd>", tk.GetCallsOffered(), tk.GetCallsAnswered(), tk.GetCallsAbandoned()),
		fmt.Sprintf("AHT</abbr></dt><dd>%s / %s</dd>", wantDur(tk.GetCallSpeedOfAnswer().GetMeanSeconds(), tk.GetCallSpeedOfAnswer().GetCount()),
			wantDur(tk.GetCallHandleTime().GetMeanSeconds(), tk.GetCallHandleTime().GetCount())),
		fmt.Sprintf("<dt>QA reviews (auto-failed)</dt><dd>%d (%d)</dd>", tk.GetQaScore().GetCount(), tk.GetQaAutoFails()),
		fmt.Sprintf("<dt>Abandon rate / service level</dt><dd>%s / %s</dd>", wantPct(tk.GetCallAbandonRate(), tk.GetCallsOffered()),
			wantPct(tk.GetCallServiceLevel(), tk.GetCallsOffered())),
		fmt.Sprintf("<dt>Calls offered / abandoned</dt><dd>%d / %d</dd>", uk.GetCallsOffered(), uk.GetCallsAbandoned()),
		fmt.Sprintf("<dt>Abandon rate / service level</dt><dd>%s / %s</dd>", wantPct(uk.GetCallAbandonRate(), uk.GetCallsOffered()),
			wantPct(uk.GetCallServiceLevel(), uk.GetCallsOffered())),
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the cards lack %s", want)
		}
	}

	// With the call columns alone, the sparklines show the first call KPI, ASA, by hour: each
	// value kpi's series has for the hour.
	callsOnly := b.get("/t/acme/team?team=phones&window=24h&cols=calls")
	if !strings.Contains(callsOnly.body, `<option value="call_speed_of_answer_mean" selected>`) {
		t.Errorf("team page with the call columns alone: the trend is not of ASA")
	}
	series, err := kpi.ListKpiSeries(ctx, &tpv1.ListKpiSeriesRequest{Tenant: "acme", Scope: tpv1.ScopeKind_SCOPE_KIND_AGENT, Ids: []string{"carla"},
		Window: win24, Granularity: tpv1.Granularity_GRANULARITY_HOUR})
	if err != nil || len(series.GetSeries()) != 1 {
		t.Fatalf("ListKpiSeries: %v %v", err, series)
	}
	var asa []string
	for _, p := range series.GetSeries()[0].GetPoints() {
		if sa := p.GetKpis().GetCallSpeedOfAnswer(); sa.GetCount() > 0 {
			asa = append(asa, wantDur(sa.GetMeanSeconds(), sa.GetCount()))
		} else {
			asa = append(asa, "no data")
		}
	}
	var spark string
	for _, m := range sparkRE.FindAllStringSubmatch(callsOnly.body, -1) {
		if html.UnescapeString(m[1]) == "carla" {
			spark = html.UnescapeString(m[2])
		}
	}
	if want := "Average speed of answer by period: " + strings.Join(asa, ", "); spark != want || slices.Index(asa, "no data") == -1 ||
		!slices.ContainsFunc(asa, func(v string) bool { return v != "no data" }) {
		t.Errorf("carla's sparkline:\n got %q\nwant %q (hours with her answers, and hours without)", spark, want)
	}

	// Sorting by every QA and call column: the page's order is kpi's, ascending then descending.
	ids := func(as []*tpv1.AgentKpis) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.GetAgentId())
		}
		return out
	}
	for _, c := range teamCells {
		link := tb.links[c.label]
		for _, dir := range []string{"ascending", "descending"} {
			if !strings.Contains(link, "order="+c.order) {
				t.Fatalf("%s: sort link %q, want order=%s", c.label, link, c.order)
			}
			a := b.get(link)
			sorted := parseTable(t, a.body)
			order := c.order
			if dir == "descending" {
				order += " desc"
			}
			if want := ids(list("phones", order)); a.code != http.StatusOK || !slices.Equal(sorted.ids, want) || sorted.sorted[c.label] != dir {
				t.Errorf("sorted by %s %s: %d, agents %q (aria-sort %q), want %q", c.label, dir, a.code, sorted.ids, sorted.sorted[c.label], want)
			}
			link = sorted.links[c.label]
		}
	}
	if a := parseTable(t, b.get("/t/acme/team?team=phones&order=qa_score_mean+desc").body); !slices.Equal(a.ids, []string{"dev", "carla", oddAgent}) {
		t.Errorf("by QA mean, best first: %q, want dev (95), carla (71.8), %q (60)", a.ids, oddAgent)
	}

	// A team with tickets only: no QA or call columns, and the page says why.
	billing := b.get("/t/acme/team?team=billing&window=24h")
	bt := parseTable(t, billing.body)
	if billing.code != http.StatusOK || len(bt.labels) != 14 || slices.Contains(bt.labels, "QA mean") || slices.Contains(bt.labels, "ASA") ||
		!strings.Contains(billing.body, `<p class="hint" id="hidden-families">Not shown, with no figures in this window: the QA and Calls columns.`) {
		t.Errorf("team with tickets only: %d, columns %q, want the 14 ticket ones and a note on the hidden families", billing.code, bt.labels)
	}
	if strings.Contains(billing.body, "QA mean / auto-fail rate") || strings.Contains(billing.body, "<dt>Calls offered / answered") {
		t.Errorf("the billing team's total card shows QA or call figures it has none of")
	}
	for _, c := range []struct {
		name, query string
		want        []string
	}{
		{"ordered by a call column", "team=billing&order=call_abandon_rate+desc", []string{"Abandon rate"}},
		{"QA columns chosen", "team=billing&cols=qa", []string{"QA reviews", "QA mean", "QA auto-fail"}},
		{"every family chosen", "team=billing&cols=tickets&cols=qa&cols=calls", nil},
	} {
		a := b.get("/t/acme/team?" + c.query)
		got := parseTable(t, a.body)
		if a.code != http.StatusOK {
			t.Errorf("%s: %d %s", c.name, a.code, a.body)
			continue
		}
		for _, w := range c.want {
			if !slices.Contains(got.labels, w) {
				t.Errorf("%s: columns %q lack %s", c.name, got.labels, w)
			}
		}
		switch c.name {
		case "QA columns chosen":
			if len(got.labels) != 5 || got.cells["bob"]["QA reviews"] != "0" || got.cells["bob"]["QA mean"] != "–" {
				t.Errorf("%s: columns %q, bob %q; want Agent, Trend and the 3 QA columns, 0 reviews and no mean", c.name, got.labels, got.cells["bob"])
			}
			// The choice is kept by the sort links and ticked in the filters.
			if !strings.Contains(got.links["QA mean"], "cols=qa") || !strings.Contains(a.body, `value="qa" checked`) {
				t.Errorf("%s: the sort links or the filters forget it", c.name)
			}
		case "every family chosen":
			if len(got.labels) != 14+len(teamCells) || strings.Contains(a.body, `id="hidden-families"`) {
				t.Errorf("%s: %d columns, want %d", c.name, len(got.labels), 14+len(teamCells))
			}
		case "ordered by a call column":
			if got.sorted["Abandon rate"] != "descending" || slices.Contains(got.labels, "QA mean") {
				t.Errorf("%s: columns %q, sorted %q", c.name, got.labels, got.sorted)
			}
		}
	}
	if a := b.get("/t/acme/team?cols=voice"); a.code != http.StatusBadRequest || !strings.Contains(a.body, "cols: &#34;voice&#34; is not a column family") {
		t.Errorf("team?cols=voice: %d, want 400 naming cols\n%s", a.code, a.body)
	}

	// The agent pages: QA and call sections with kpi's figures for each window, and charts.
	sectionRE := func(id string) *regexp.Regexp {
		return regexp.MustCompile(`(?s)<table class="kpis" id="` + id + `">.*?</table>`)
	}
	rowsOf := func(section string) map[string][]string {
		out := map[string][]string{}
		for _, m := range regexp.MustCompile(`(?s)<tr><th scope="row">(.*?)</th>(.*?)</tr>`).FindAllStringSubmatch(section, -1) {
			for _, c := range cellRE.FindAllStringSubmatch(m[2], -1) {
				out[plain(m[1])] = append(out[plain(m[1])], plain(c[1]))
			}
		}
		return out
	}
	for _, agent := range []string{"carla", "dev", oddAgent} {
		a := b.get("/t/acme/agent?" + url.Values{"id": {agent}}.Encode())
		if a.code != http.StatusOK || strings.Contains(a.body, "<script>alert") {
			t.Fatalf("agent page of %q: %d", agent, a.code)
		}
		qa, calls := rowsOf(sectionRE("qa").FindString(a.body)), rowsOf(sectionRE("calls").FindString(a.body))
		for _, w := range []string{"24h", "7d", "30d"} {
			resp, err := kpi.GetAgentKpis(ctx, &tpv1.GetAgentKpisRequest{Tenant: "acme", AgentId: agent, Window: &tpv1.Window{Kind: &tpv1.Window_Rolling{Rolling: w}}})
			if err != nil {
				t.Fatal(err)
			}
			k := resp.GetAgent().GetKpis()
			q, sa, ht := k.GetQaScore(), k.GetCallSpeedOfAnswer(), k.GetCallHandleTime()
			col := slices.Index([]string{"24h", "7d", "30d"}, w)
			for _, c := range []struct {
				rows      map[string][]string
				row, want string
			}{
				{qa, "Reviews", fmt.Sprint(q.GetCount())},
				{qa, "Score mean", wantScore(q.GetMean(), q.GetCount())},
				{qa, "Score p50 / p90", wantScore(q.GetP50(), q.GetCount()) + " / " + wantScore(q.GetP90(), q.GetCount())},
				{qa, "Auto-fails (rate)", fmt.Sprintf("%d (%s)", k.GetQaAutoFails(), wantPct(k.GetQaAutoFailRate(), q.GetCount()))},
				{calls, "Offered", fmt.Sprint(k.GetCallsOffered())},
				{calls, "Answered", fmt.Sprint(k.GetCallsAnswered())},
				{calls, "Abandoned (rate)", fmt.Sprintf("%d (%s)", k.GetCallsAbandoned(), wantPct(k.GetCallAbandonRate(), k.GetCallsOffered()))},
				{calls, "Service level (answered in it)", fmt.Sprintf("%s (%d)", wantPct(k.GetCallServiceLevel(), k.GetCallsOffered()), k.GetCallsAnsweredInServiceLevel())},
				{calls, "Speed of answer: mean (ASA) / p50 / p90", wantDur(sa.GetMeanSeconds(), sa.GetCount()) + " / " + wantDur(sa.GetP50Seconds(), sa.GetCount()) + " / " + wantDur(sa.GetP90Seconds(), sa.GetCount())},
				{calls, "Handle time: mean (AHT) / p50 / p90", wantDur(ht.GetMeanSeconds(), ht.GetCount()) + " / " + wantDur(ht.GetP50Seconds(), ht.GetCount()) + " / " + wantDur(ht.GetP90Seconds(), ht.GetCount())},
			} {
				if got := c.rows[c.row]; len(got) != 3 || got[col] != c.want {
					t.Errorf("agent %q, %s in %s: page %q, kpi %q", agent, c.row, w, got, c.want)
				}
			}
		}
		if n := strings.Count(a.body, `<svg class="chart"`); n != 8 || !strings.Contains(a.body, "<figcaption>QA score mean</figcaption>") ||
			!strings.Contains(a.body, "<figcaption>Average speed of answer</figcaption>") || !strings.Contains(a.body, "<figcaption>Average handle time</figcaption>") {
			t.Errorf("agent page of %q: %d charts, want the 5 ticket ones, QA score mean, ASA and AHT", agent, n)
		}
	}
	// An agent with tickets only has neither section nor their charts.
	bob := b.get("/t/acme/agent?id=bob")
	if bob.code != http.StatusOK || strings.Contains(bob.body, `id="qa"`) || strings.Contains(bob.body, `id="calls"`) ||
		strings.Count(bob.body, `<svg class="chart"`) != 5 || strings.Contains(bob.body, "Average handle time") {
		t.Errorf("agent page of bob: %d, %d charts; want no QA or call section and 5 charts", bob.code, strings.Count(bob.body, `<svg class="chart"`))
	}
}
