package web

import (
	"github.com/ticketpulse/ticketpulse/services/console/internal/chart"
	"google.golang.org/protobuf/types/known/timestamppb"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/console/internal/session"
)

// column is one column of the team table; Order is its ListAgentKpis order_by name, empty when
// the service cannot order by it. Family is the figures it shows (the Agent and Trend columns,
// always shown, have none); Cell writes one agent's figure, with a drill-down link for some.
// Abbr spells out a Label that is an abbreviation.
type column struct {
	Label, Order, Abbr, Family string
	Cell                       func(r *kpiRow) cell
}

// cell is one figure of the team table: text, and when URL is set a link to the tickets behind
// it, described by Title.
type cell struct {
	Text, URL, Title string
}

func textCell(s string) cell { return cell{Text: s} }
func countCell(n int64) cell { return cell{Text: strconv.FormatInt(n, 10)} }

var teamColumns = []column{
	{Label: "Agent", Order: "agent_id"},
	{Label: "Trend"},
	{Label: "Assigned", Order: "assigned", Family: familyTickets, Cell: func(r *kpiRow) cell { return countCell(r.K.GetAssigned()) }},
	{Label: "Resolutions", Order: "resolutions", Family: familyTickets, Cell: func(r *kpiRow) cell {
		return cell{Text: strconv.FormatInt(r.K.GetResolutions(), 10), URL: r.DrillAll, Title: "the tickets"}
	}},
	{Label: "Resolution rate", Order: "resolution_rate", Family: familyTickets, Cell: func(r *kpiRow) cell {
		return textCell(percent(r.K.GetResolutionRate(), r.K.GetAssigned()))
	}},
	{Label: "First response p50", Order: "first_response_p50", Family: familyTickets, Cell: func(r *kpiRow) cell {
		return textCell(duration(r.K.GetFirstResponse().GetP50Seconds(), r.K.GetFirstResponse().GetCount()))
	}},
	{Label: "First response p90", Order: "first_response_p90", Family: familyTickets, Cell: func(r *kpiRow) cell {
		return cell{Text: duration(r.K.GetFirstResponse().GetP90Seconds(), r.K.GetFirstResponse().GetCount()), URL: r.DrillFirst,
			Title: "the tickets at or above p90"}
	}},
	{Label: "Resolution p50", Family: familyTickets, Cell: func(r *kpiRow) cell {
		return textCell(duration(r.K.GetResolution().GetP50Seconds(), r.K.GetResolution().GetCount()))
	}},
	{Label: "Resolution p90", Order: "resolution_p90", Family: familyTickets, Cell: func(r *kpiRow) cell {
		return textCell(duration(r.K.GetResolution().GetP90Seconds(), r.K.GetResolution().GetCount()))
	}},
	{Label: "Reopen rate", Order: "reopen_rate", Family: familyTickets, Cell: func(r *kpiRow) cell {
		return cell{Text: percent(r.K.GetReopenRate(), r.K.GetSolves()), URL: r.DrillReopen, Title: "the reopened tickets"}
	}},
	{Label: "One-touch", Order: "one_touch_rate", Family: familyTickets, Cell: func(r *kpiRow) cell {
		return textCell(percent(r.K.GetOneTouchRate(), r.K.GetResolutions()))
	}},
	{Label: "CSAT mean", Order: "csat_mean", Family: familyTickets, Cell: func(r *kpiRow) cell {
		return textCell(decimal(r.K.GetCsatMean(), r.K.GetCsatCount()))
	}},
	{Label: "CSAT %", Order: "csat_percent", Family: familyTickets, Cell: func(r *kpiRow) cell {
		return cell{Text: percent(r.K.GetCsatPercent()/100, r.K.GetCsatCount()), URL: r.DrillCSAT, Title: "the tickets rated 2 or less"}
	}},
	{Label: "SLA first response", Order: "sla_first_response_compliance", Family: familyTickets, Cell: func(r *kpiRow) cell {
		return textCell(slaFirstResponse(r.K))
	}},
	{Label: "QA reviews", Order: "qa_score_count", Family: familyQA, Cell: func(r *kpiRow) cell { return countCell(r.K.GetQaScore().GetCount()) }},
	{Label: "QA mean", Order: "qa_score_mean", Family: familyQA, Cell: func(r *kpiRow) cell {
		return textCell(score(r.K.GetQaScore().GetMean(), r.K.GetQaScore().GetCount()))
	}},
	{Label: "QA auto-fail", Order: "qa_auto_fail_rate", Family: familyQA, Cell: func(r *kpiRow) cell {
		return textCell(percent(r.K.GetQaAutoFailRate(), r.K.GetQaScore().GetCount()))
	}},
	{Label: "Calls answered", Order: "calls_answered", Family: familyCalls, Cell: func(r *kpiRow) cell { return countCell(r.K.GetCallsAnswered()) }},
	{Label: "Abandon rate", Order: "call_abandon_rate", Family: familyCalls, Cell: func(r *kpiRow) cell {
		return textCell(percent(r.K.GetCallAbandonRate(), r.K.GetCallsOffered()))
	}},
	{Label: "Service level", Order: "call_service_level", Family: familyCalls, Cell: func(r *kpiRow) cell {
		return textCell(percent(r.K.GetCallServiceLevel(), r.K.GetCallsOffered()))
	}},
	{Label: "ASA", Abbr: "average speed of answer", Order: "call_speed_of_answer_mean", Family: familyCalls, Cell: func(r *kpiRow) cell {
		return textCell(duration(r.K.GetCallSpeedOfAnswer().GetMeanSeconds(), r.K.GetCallSpeedOfAnswer().GetCount()))
	}},
	{Label: "AHT", Abbr: "average handle time", Order: "call_handle_time_mean", Family: familyCalls, Cell: func(r *kpiRow) cell {
		return textCell(duration(r.K.GetCallHandleTime().GetMeanSeconds(), r.K.GetCallHandleTime().GetCount()))
	}},
}

// Bounds on one team page: ListAgentKpis' largest page, and how many agents a page shows at most.
const (
	agentPageSize = 1000
	maxAgents     = 20000
)

// header is a column heading as the page shows it: its sort link and state, and why its
// figures are missing when a secondary call failed.
type header struct {
	Label, Abbr, URL, Sort string // Sort: "ascending", "descending" or "" (aria-sort)
	Missing                string
}

// familyChoice is a column family's box in the filters, ticked when the person chose it.
type familyChoice struct {
	Name, Label string
	Checked     bool
}

type kpiRow struct {
	ID, URL string
	K       *tpv1.Kpis
	// Spark is the agent's sparkline; the Drill links open the tickets behind a figure.
	Spark                                        template.HTML
	DrillAll, DrillFirst, DrillCSAT, DrillReopen string
	// Cells are the row's figures under the columns shown, after Agent and Trend.
	Cells []cell
}

type teamData struct {
	Tenant, Team, Order string
	Window              windowSel
	Resolved            *tpv1.ResolvedWindow
	Headers             []header
	Rows                []kpiRow
	Total               *tpv1.Kpis
	Unassigned          *tpv1.Kpis
	// TotalMissing, UnassignedMissing and SparkMissing say why a secondary figure is missing.
	TotalMissing, UnassignedMissing, SparkMissing string
	// Unsortable are the KPI columns kpi cannot order agents by.
	Unsortable []string
	Truncated  bool
	Windows    []string
	Self       string
	Refresh    int
	// Spark is the KPI the sparklines show, one of Metrics.
	Spark   string
	Metrics []metric
	// Families are the column families a person can tick; Hidden the labels of those without
	// figures that the page left out on its own.
	Families []familyChoice
	Hidden   []string
}

// parseOrder returns order as ListAgentKpis takes it and the family of its column, or ok false
// when it names no column.
func parseOrder(order string) (name string, desc bool, fam string, ok bool) {
	if order == "" {
		return "agent_id", false, "", true
	}
	name, desc = strings.CutSuffix(order, " desc")
	i := slices.IndexFunc(teamColumns, func(c column) bool { return c.Order == name })
	if name == "" || i < 0 {
		return "", false, "", false
	}
	return name, desc, teamColumns[i].Family, true
}

func (h *Handler) team(w http.ResponseWriter, r *http.Request, s *session.Session) {
	q := r.URL.Query()
	win, sel, err := parseWindow(q)
	if err != nil {
		h.fail(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	team, ok := boundedParam(r, "team")
	if !ok {
		h.fail(w, r, s, http.StatusBadRequest, "team: longer than 512 bytes")
		return
	}
	orderName, desc, orderFamily, ok := parseOrder(q.Get("order"))
	if !ok {
		h.fail(w, r, s, http.StatusBadRequest, "order: "+q.Get("order")+" is not a column the table sorts by")
		return
	}
	chosen, err := parseFamilies(q["cols"])
	if err != nil {
		h.fail(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	// Without a spark the sparklines show the first KPI of the families shown, known once the
	// agents' figures are.
	spark := q.Get("spark")
	var sparkM metric
	if spark != "" {
		if sparkM, ok = metricNamed(spark); !ok {
			h.fail(w, r, s, http.StatusBadRequest, "spark: "+spark+" is not a KPI the sparklines show")
			return
		}
	}
	order := orderName
	if desc {
		order += " desc"
	}
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	d := teamData{Tenant: s.Tenant, Team: team, Order: order, Window: sel, Windows: []string{"24h", "7d", "30d"},
		Refresh: int(h.o.Refresh.Seconds()), Metrics: metrics}
	// The agents' figures are the page; the totals, the unassigned figures and the sparklines
	// are secondary: when one of them fails the table still renders and says what is missing.
	err = func() error {
		token := ""
		for {
			resp, err := h.o.KPI.ListAgentKpis(ctx, &tpv1.ListAgentKpisRequest{Tenant: s.Tenant, TeamId: team, Window: win,
				OrderBy: order, PageSize: agentPageSize, PageToken: token})
			if err != nil {
				return err
			}
			d.Resolved = resp.GetWindow()
			for _, a := range resp.GetAgents() {
				d.Rows = append(d.Rows, kpiRow{ID: a.GetAgentId(), K: a.GetKpis(),
					URL: link("/t/"+s.Tenant+"/agent", "id", a.GetAgentId(), "tz", sel.TZ)})
			}
			token = resp.GetNextPageToken()
			if token == "" {
				return nil
			}
			if len(d.Rows) >= maxAgents {
				d.Truncated = true
				return nil
			}
		}
	}()
	if err != nil {
		h.rpcFail(w, r, s, "team KPIs", err)
		return
	}
	h.afterPrimary("team")
	ids := make([]string, len(d.Rows))
	ks := make([]*tpv1.Kpis, len(d.Rows))
	for i, row := range d.Rows {
		ids[i], ks[i] = row.ID, row.K
	}
	shown := shownFamilies(chosen, ks, orderFamily)
	if spark == "" {
		sparkM = defaultSpark(shown)
	}
	d.Spark = sparkM.Name
	var series map[string]*tpv1.KpiSeries
	var wg sync.WaitGroup
	if team != "" {
		wg.Go(func() {
			resp, err := h.o.KPI.GetTeamKpis(ctx, &tpv1.GetTeamKpisRequest{Tenant: s.Tenant, TeamId: team, Window: win})
			d.Total, d.TotalMissing = resp.GetKpis(), h.degraded(s, "team totals", err)
		})
	}
	wg.Go(func() {
		resp, err := h.o.KPI.GetUnassignedKpis(ctx, &tpv1.GetUnassignedKpisRequest{Tenant: s.Tenant, Window: win})
		d.Unassigned, d.UnassignedMissing = resp.GetKpis(), h.degraded(s, "unassigned KPIs", err)
	})
	wg.Go(func() {
		var err error
		series, err = h.agentSeries(ctx, s.Tenant, ids, win, sparkGranularity(sel, win), sparkM.Fields)
		d.SparkMissing = h.degraded(s, "team sparklines", err)
	})
	wg.Wait()
	var cols []column
	for _, c := range teamColumns {
		if c.Family == "" || shown[c.Family] {
			cols = append(cols, c)
		}
	}
	for _, f := range families {
		d.Families = append(d.Families, familyChoice{Name: f.Name, Label: f.Label, Checked: chosen[f.Name]})
		if len(chosen) == 0 && !shown[f.Name] {
			d.Hidden = append(d.Hidden, f.Label)
		}
	}
	for i := range d.Rows {
		row := &d.Rows[i]
		if d.SparkMissing == "" {
			row.Spark = sparkline(series[row.ID], sparkM)
		}
		row.DrillAll = ticketsLink(s.Tenant, row.ID, "", sel)
		row.DrillFirst = ticketsLink(s.Tenant, row.ID, "", sel, "min_first_response", minutesAtLeast(row.K.GetFirstResponse()))
		row.DrillCSAT = ticketsLink(s.Tenant, row.ID, "", sel, "max_rating", "2")
		row.DrillReopen = ticketsLink(s.Tenant, row.ID, "", sel, "min_reopens", "1")
		row.Cells = make([]cell, 0, len(cols))
		for _, c := range cols {
			if c.Cell != nil {
				row.Cells = append(row.Cells, c.Cell(row))
			}
		}
	}
	base := sel.Query()
	if team != "" {
		base.Set("team", team)
	}
	if spark != "" {
		base.Set("spark", spark)
	}
	for _, f := range families {
		if chosen[f.Name] {
			base.Add("cols", f.Name)
		}
	}
	for _, c := range cols {
		hd := header{Label: c.Label, Abbr: c.Abbr}
		if c.Label == "Trend" {
			hd.Missing = d.SparkMissing
		} else if c.Order == "" {
			d.Unsortable = append(d.Unsortable, c.Label)
		}
		if c.Order != "" {
			next := c.Order
			if c.Order == orderName {
				hd.Sort = "ascending"
				if desc {
					hd.Sort = "descending"
				} else {
					next += " desc"
				}
			}
			v := url.Values{}
			for k, vs := range base {
				v[k] = vs
			}
			v.Set("order", next)
			hd.URL = "/t/" + s.Tenant + "/team?" + v.Encode()
		}
		d.Headers = append(d.Headers, hd)
	}
	self := url.Values{}
	for k, vs := range base {
		self[k] = vs
	}
	self.Set("order", order)
	d.Self = "/t/" + s.Tenant + "/team?" + self.Encode()
	h.render(w, http.StatusOK, "team", page{Title: "Team overview", Session: s, Nav: "team", Data: d})
}

// minutesAtLeast is the drill-down's min_first_response for the tickets at or above the p90: the
// slow tail behind the figure ("" lists them all when there is none).
func minutesAtLeast(d *tpv1.DurationStats) string {
	if d.GetCount() == 0 {
		return ""
	}
	return strconv.FormatFloat(math.Floor(d.GetP90Seconds()/60*100)/100, 'f', -1, 64)
}

type agentWindow struct {
	Name     string
	K        *tpv1.Kpis
	Resolved *tpv1.ResolvedWindow
}

// agentChart is one KPI of the agent over time.
type agentChart struct {
	Label string
	SVG   template.HTML
}

// granLink is a granularity choice of the agent page's charts.
type granLink struct {
	Name, URL string
	Current   bool
}

// agentGranularities are the agent page's chart periods and the window each one covers.
type agentGran struct {
	Name string
	G    tpv1.Granularity
	// Rolling is the window covered, or empty for a range of Days up to the end of today.
	Rolling string
	Days    int
}

var agentGranularities = []agentGran{
	{"hour", tpv1.Granularity_GRANULARITY_HOUR, "24h", 0},
	{"day", tpv1.Granularity_GRANULARITY_DAY, "30d", 0},
	{"week", tpv1.Granularity_GRANULARITY_WEEK, "", 26 * 7},
}

type agentData struct {
	Tenant, Agent, TZ string
	Charts            []agentChart
	Grans             []granLink
	Drill             map[string]string
	Windows           []agentWindow
	Escalations       []*tpv1.Escalation
	CanWrite          bool
	// QA and Calls say whether the agent has QA reviews or calls in any of the windows: their
	// sections are left out otherwise.
	QA, Calls bool
	// ChartsMissing and EscalationsMissing say why a secondary section is empty.
	ChartsMissing, EscalationsMissing string
}

func (h *Handler) agent(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id, ok := boundedParam(r, "id")
	if !ok || id == "" {
		h.fail(w, r, s, http.StatusBadRequest, "id: the agent id is missing or longer than 512 bytes")
		return
	}
	_, sel, err := parseWindow(url.Values{"tz": {r.URL.Query().Get("tz")}})
	if err != nil {
		h.fail(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	gname := r.URL.Query().Get("g")
	if gname == "" {
		gname = "day"
	}
	gi := slices.IndexFunc(agentGranularities, func(g agentGran) bool {
		return g.Name == gname
	})
	if gi < 0 {
		h.fail(w, r, s, http.StatusBadRequest, "g: "+gname+": want hour, day or week")
		return
	}
	loc, _ := time.LoadLocation(sel.TZ) // parseWindow checked it; "" is UTC
	gran := agentGranularities[gi]
	chartWin := &tpv1.Window{Kind: &tpv1.Window_Rolling{Rolling: gran.Rolling}, TimeZone: sel.TZ}
	if gran.Rolling == "" {
		y, m, dd := h.o.Now().In(loc).Date()
		to := time.Date(y, m, dd+1, 0, 0, 0, 0, loc)
		chartWin.Kind = &tpv1.Window_Range{Range: &tpv1.TimeRange{From: timestamppb.New(to.AddDate(0, 0, -gran.Days)), To: timestamppb.New(to)}}
	}
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	d := agentData{Tenant: s.Tenant, Agent: id, TZ: sel.TZ, Windows: []agentWindow{{Name: "24h"}, {Name: "7d"}, {Name: "30d"}}}
	// The charts and the open escalations are secondary: they run beside the figures but do not
	// cancel them, and when one fails the figures still render and its section says why.
	var series *tpv1.KpiSeries
	var chartsErr, escErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		var resp *tpv1.ListKpiSeriesResponse
		resp, chartsErr = h.o.KPI.ListKpiSeries(ctx, &tpv1.ListKpiSeriesRequest{Tenant: s.Tenant, Scope: tpv1.ScopeKind_SCOPE_KIND_AGENT,
			Ids: []string{id}, Window: chartWin, Granularity: gran.G, PageSize: 1, Kpis: chartFields()})
		if len(resp.GetSeries()) > 0 {
			series = resp.GetSeries()[0]
		}
	})
	wg.Go(func() {
		var resp *tpv1.ListEscalationsResponse
		resp, escErr = h.o.Esc.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: s.Tenant, AgentId: id,
			State: tpv1.EscalationState_ESCALATION_STATE_OPEN, PageSize: 100})
		d.Escalations = resp.GetEscalations()
	})
	g, gctx := errgroup.WithContext(ctx)
	for i := range d.Windows {
		g.Go(func() error {
			resp, err := h.o.KPI.GetAgentKpis(gctx, &tpv1.GetAgentKpisRequest{Tenant: s.Tenant, AgentId: id,
				Window: &tpv1.Window{Kind: &tpv1.Window_Rolling{Rolling: d.Windows[i].Name}, TimeZone: sel.TZ}})
			d.Windows[i].K, d.Windows[i].Resolved = resp.GetAgent().GetKpis(), resp.GetWindow()
			return err
		})
	}
	err = g.Wait()
	wg.Wait()
	if err != nil {
		h.rpcFail(w, r, s, "agent KPIs", err)
		return
	}
	// Only now, with the page standing, is a failed secondary call worth a log line.
	d.ChartsMissing, d.EscalationsMissing = h.degraded(s, "agent charts", chartsErr), h.degraded(s, "agent escalations", escErr)
	for _, wn := range d.Windows {
		d.QA = d.QA || hasQA(wn.K)
		d.Calls = d.Calls || hasCalls(wn.K)
	}
	for _, m := range metrics {
		if d.ChartsMissing != "" {
			break
		}
		// A QA or call chart only where the charted period has such figures: an agent who
		// takes no calls gets no empty call charts.
		if m.Family != familyTickets && !seriesHas(series, m.Family) {
			continue
		}
		ps := points(series, m)
		d.Charts = append(d.Charts, agentChart{Label: m.Label, SVG: chart.Line{Title: m.Label + " of " + id + " by " + gran.Name + ": " + describe(m, ps),
			Label: m.Label, Points: ps, Format: m.Format, Location: loc, Width: 600, Height: 180}.SVG()})
	}
	for _, g := range agentGranularities {
		d.Grans = append(d.Grans, granLink{Name: g.Name, Current: g.Name == gran.Name, URL: link("/t/"+s.Tenant+"/agent", "id", id, "tz", sel.TZ, "g", g.Name)})
	}
	d.Drill = map[string]string{}
	for _, wn := range d.Windows {
		ws := windowSel{Rolling: wn.Name, TZ: sel.TZ}
		d.Drill[wn.Name] = ticketsLink(s.Tenant, id, "", ws)
		d.Drill[wn.Name+" first"] = ticketsLink(s.Tenant, id, "", ws, "min_first_response", minutesAtLeast(wn.K.GetFirstResponse()))
		d.Drill[wn.Name+" csat"] = ticketsLink(s.Tenant, id, "", ws, "max_rating", "2")
		d.Drill[wn.Name+" reopen"] = ticketsLink(s.Tenant, id, "", ws, "min_reopens", "1")
	}
	h.render(w, http.StatusOK, "agent", page{Title: "Agent " + id, Session: s, Nav: "team", Data: d})
}
