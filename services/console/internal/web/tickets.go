package web

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/console/internal/session"
)

// ticketPage is how many tickets one drill-down page lists.
const ticketPage = 100

// maxBackTokens bounds the previous pages a drill-down link remembers, so a link stays short;
// beyond them "previous" starts again from the first page.
const maxBackTokens = 20

// ticketFilter is the drill-down's filter as its form names it.
type ticketFilter struct {
	MinFirstResponse, MaxRating, MinReopens string // minutes, 1..5, count; "" when not set
	SLABreached, Unresolved                 bool
}

type ticketsData struct {
	Tenant, Agent, Team string
	Window              windowSel
	Windows             []string
	Resolved            *tpv1.ResolvedWindow
	Filter              ticketFilter
	Tickets             []*tpv1.TicketKpis
	Next, Prev, First   string
	// NoIndex is set when kpi keeps no drill-down index: the page explains that instead.
	NoIndex bool
}

// parseTicketFilter reads the filter; an error names the field and why.
func parseTicketFilter(q url.Values) (*tpv1.TicketFilter, ticketFilter, error) {
	f := ticketFilter{MinFirstResponse: q.Get("min_first_response"), MaxRating: q.Get("max_rating"), MinReopens: q.Get("min_reopens"),
		SLABreached: q.Get("sla_breached") == "1", Unresolved: q.Get("unresolved") == "1"}
	pf := &tpv1.TicketFilter{SlaBreached: f.SLABreached, Unresolved: f.Unresolved}
	if v := f.MinFirstResponse; v != "" {
		m, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(m) || m < 0 || m > 10*366*24*60 {
			return nil, f, fmt.Errorf("min_first_response: %q is not a number of minutes from 0 to 10 years", v)
		}
		pf.MinFirstResponseSeconds = new(m * 60)
	}
	if v := f.MaxRating; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5 {
			return nil, f, fmt.Errorf("max_rating: %q is not a rating from 1 to 5", v)
		}
		pf.MaxRating = new(int32(n))
	}
	if v := f.MinReopens; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			return nil, f, fmt.Errorf("min_reopens: %q is not a count from 0 to 1000000", v)
		}
		pf.MinReopens = new(int32(n))
	}
	return pf, f, nil
}

// ticketsLink is the drill-down page for agent or team over sel, with kv added (filters).
func ticketsLink(tenant, agent, team string, sel windowSel, kv ...string) string {
	v := sel.Query()
	for k, p := range map[string]string{"agent": agent, "team": team} {
		if p != "" {
			v.Set(k, p)
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	return "/t/" + tenant + "/tickets?" + v.Encode()
}

func (h *Handler) tickets(w http.ResponseWriter, r *http.Request, s *session.Session) {
	q := r.URL.Query()
	win, sel, err := parseWindow(q)
	if err != nil {
		h.fail(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	filter, f, err := parseTicketFilter(q)
	if err != nil {
		h.fail(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	d := ticketsData{Tenant: s.Tenant, Agent: q.Get("agent"), Team: q.Get("team"), Window: sel, Windows: []string{"24h", "7d", "30d"}, Filter: f}
	back := q["back"]
	for name, v := range map[string]string{"agent": d.Agent, "team": d.Team, "page": q.Get("page")} {
		if len(v) > maxIDBytes {
			h.fail(w, r, s, http.StatusBadRequest, name+": longer than 512 bytes")
			return
		}
	}
	if d.Agent != "" && d.Team != "" {
		h.fail(w, r, s, http.StatusBadRequest, "team: give an agent or a team, not both")
		return
	}
	if len(back) > maxBackTokens+1 {
		back = back[len(back)-maxBackTokens:]
	}
	for _, b := range back {
		if len(b) > maxIDBytes {
			h.fail(w, r, s, http.StatusBadRequest, "back: a page token longer than 512 bytes")
			return
		}
	}
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	token := q.Get("page")
	resp, err := h.o.KPI.ListTicketKpis(ctx, &tpv1.ListTicketKpisRequest{Tenant: s.Tenant, AgentId: d.Agent, TeamId: d.Team, Window: win,
		Filter: filter, PageSize: ticketPage, PageToken: token})
	if status.Code(err) == codes.FailedPrecondition {
		// Not an error of the page: this deployment chose not to keep the index.
		d.NoIndex = true
		h.render(w, http.StatusOK, "tickets", page{Title: "Tickets", Session: s, Nav: "team", Data: d})
		return
	}
	if err != nil {
		h.rpcFail(w, r, s, "tickets", err)
		return
	}
	d.Tickets, d.Resolved = resp.GetTickets(), resp.GetWindow()
	// Links keep the window and filter; the page token chain lets "previous" go back.
	base := func() url.Values {
		v := sel.Query()
		for k, p := range map[string]string{"agent": d.Agent, "team": d.Team, "min_first_response": f.MinFirstResponse,
			"max_rating": f.MaxRating, "min_reopens": f.MinReopens} {
			if p != "" {
				v.Set(k, p)
			}
		}
		if f.SLABreached {
			v.Set("sla_breached", "1")
		}
		if f.Unresolved {
			v.Set("unresolved", "1")
		}
		return v
	}
	path := "/t/" + s.Tenant + "/tickets?"
	if next := resp.GetNextPageToken(); next != "" {
		v := base()
		v.Set("page", next)
		v["back"] = append(append([]string(nil), back...), token)
		if len(v["back"]) > maxBackTokens {
			v["back"] = v["back"][len(v["back"])-maxBackTokens:]
		}
		d.Next = path + v.Encode()
	}
	if token != "" {
		v := base()
		if len(back) > 0 {
			if prev := back[len(back)-1]; prev != "" {
				v.Set("page", prev)
			}
			if len(back) > 1 {
				v["back"] = back[:len(back)-1]
			}
		}
		d.Prev = path + v.Encode()
		d.First = path + base().Encode()
	}
	h.render(w, http.StatusOK, "tickets", page{Title: "Tickets", Session: s, Nav: "team", Data: d})
}
