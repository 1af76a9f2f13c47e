package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/console/internal/session"
)

// column is one KPI column of the team table; Order is its ListAgentKpis order_by name, empty
// when the service cannot order by it.
type column struct {
	Label, Order string
}

var teamColumns = []column{
	{"Agent", "agent_id"},
	{"Assigned", "assigned"},
	{"Resolutions", "resolutions"},
	{"Resolution rate", "resolution_rate"},
	{"First response p50", "first_response_p50"},
	{"First response p90", "first_response_p90"},
	{"Resolution p50", ""},
	{"Resolution p90", "resolution_p90"},
	{"Reopen rate", "reopen_rate"},
	{"One-touch", "one_touch_rate"},
	{"CSAT mean", "csat_mean"},
	{"CSAT %", "csat_percent"},
	{"SLA first response", "sla_first_response_compliance"},
}

// Bounds on one team page: ListAgentKpis' largest page, and how many agents a page shows at most.
const (
	agentPageSize = 1000
	maxAgents     = 20000
)

// header is a column heading as the page shows it: its sort link and state.
type header struct {
	Label, URL, Sort string // Sort: "ascending", "descending" or "" (aria-sort)
}

type kpiRow struct {
	ID, URL string
	K       *tpv1.Kpis
}

type teamData struct {
	Tenant, Team, Order string
	Window              windowSel
	Resolved            *tpv1.ResolvedWindow
	Headers             []header
	Rows                []kpiRow
	Total               *tpv1.Kpis
	Unassigned          *tpv1.Kpis
	Truncated           bool
	Windows             []string
	Self                string
	Refresh             int
}

// parseOrder returns order as ListAgentKpis takes it, or ok false when it names no column.
func parseOrder(order string) (name string, desc bool, ok bool) {
	if order == "" {
		return "agent_id", false, true
	}
	name, desc = strings.CutSuffix(order, " desc")
	ok = name != "" && slices.ContainsFunc(teamColumns, func(c column) bool { return c.Order == name })
	return name, desc, ok
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
	orderName, desc, ok := parseOrder(q.Get("order"))
	if !ok {
		h.fail(w, r, s, http.StatusBadRequest, "order: "+q.Get("order")+" is not a column the table sorts by")
		return
	}
	order := orderName
	if desc {
		order += " desc"
	}
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	d := teamData{Tenant: s.Tenant, Team: team, Order: order, Window: sel, Windows: []string{"24h", "7d", "30d"},
		Refresh: int(h.o.Refresh.Seconds())}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		token := ""
		for {
			resp, err := h.o.KPI.ListAgentKpis(gctx, &tpv1.ListAgentKpisRequest{Tenant: s.Tenant, TeamId: team, Window: win,
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
	})
	if team != "" {
		g.Go(func() error {
			resp, err := h.o.KPI.GetTeamKpis(gctx, &tpv1.GetTeamKpisRequest{Tenant: s.Tenant, TeamId: team, Window: win})
			d.Total = resp.GetKpis()
			return err
		})
	}
	g.Go(func() error {
		resp, err := h.o.KPI.GetUnassignedKpis(gctx, &tpv1.GetUnassignedKpisRequest{Tenant: s.Tenant, Window: win})
		d.Unassigned = resp.GetKpis()
		return err
	})
	if err := g.Wait(); err != nil {
		h.rpcFail(w, r, s, "team KPIs", err)
		return
	}
	base := sel.Query()
	if team != "" {
		base.Set("team", team)
	}
	for _, c := range teamColumns {
		hd := header{Label: c.Label}
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
	self := sel.Query()
	if team != "" {
		self.Set("team", team)
	}
	self.Set("order", order)
	d.Self = "/t/" + s.Tenant + "/team?" + self.Encode()
	h.render(w, http.StatusOK, "team", page{Title: "Team overview", Session: s, Nav: "team", Data: d})
}

type agentWindow struct {
	Name     string
	K        *tpv1.Kpis
	Resolved *tpv1.ResolvedWindow
}

type agentData struct {
	Tenant, Agent, TZ string
	Windows           []agentWindow
	Escalations       []*tpv1.Escalation
	CanWrite          bool
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
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	d := agentData{Tenant: s.Tenant, Agent: id, TZ: sel.TZ, Windows: []agentWindow{{Name: "24h"}, {Name: "7d"}, {Name: "30d"}}}
	g, gctx := errgroup.WithContext(ctx)
	for i := range d.Windows {
		g.Go(func() error {
			resp, err := h.o.KPI.GetAgentKpis(gctx, &tpv1.GetAgentKpisRequest{Tenant: s.Tenant, AgentId: id,
				Window: &tpv1.Window{Kind: &tpv1.Window_Rolling{Rolling: d.Windows[i].Name}, TimeZone: sel.TZ}})
			d.Windows[i].K, d.Windows[i].Resolved = resp.GetAgent().GetKpis(), resp.GetWindow()
			return err
		})
	}
	g.Go(func() error {
		resp, err := h.o.Esc.ListEscalations(gctx, &tpv1.ListEscalationsRequest{Tenant: s.Tenant, AgentId: id,
			State: tpv1.EscalationState_ESCALATION_STATE_OPEN, PageSize: 100})
		d.Escalations = resp.GetEscalations()
		return err
	})
	if err := g.Wait(); err != nil {
		h.rpcFail(w, r, s, "agent KPIs", err)
		return
	}
	h.render(w, http.StatusOK, "agent", page{Title: "Agent " + id, Session: s, Nav: "team", Data: d})
}
