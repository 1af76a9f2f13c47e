package web

import (
	"fmt"
	"slices"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// A family is a set of figures that come from one kind of event: tickets, QA reviews
// (qa_scored) or contact-centre calls (call_*). A tenant may send any of them, so the pages show
// a family's figures only where there are some, instead of rows and columns of dashes.
const (
	familyTickets = "tickets"
	familyQA      = "qa"
	familyCalls   = "calls"
)

type family struct {
	Name, Label string
	// Has reports whether k holds any figure of the family.
	Has func(k *tpv1.Kpis) bool
	// Fields are the Kpis fields (proto names) Has reads.
	Fields []string
}

var families = []family{
	{familyTickets, "Tickets", hasTickets, []string{"assigned", "resolutions", "solves", "reopens", "first_response", "next_response",
		"resolution", "csat_count", "sla_first_response_met", "sla_first_response_breached"}},
	{familyQA, "QA", hasQA, []string{"qa_score"}},
	{familyCalls, "Calls", hasCalls, []string{"calls_offered", "call_speed_of_answer", "call_handle_time"}},
}

func hasTickets(k *tpv1.Kpis) bool {
	return k.GetAssigned() > 0 || k.GetResolutions() > 0 || k.GetSolves() > 0 || k.GetReopens() > 0 ||
		k.GetFirstResponse().GetCount() > 0 || k.GetNextResponse().GetCount() > 0 || k.GetResolution().GetCount() > 0 ||
		k.GetCsatCount() > 0 || k.GetSlaFirstResponseMet()+k.GetSlaFirstResponseBreached() > 0
}

func hasQA(k *tpv1.Kpis) bool { return k.GetQaScore().GetCount() > 0 }

// hasCalls counts outbound calls too: they have a handle time but are never offered.
func hasCalls(k *tpv1.Kpis) bool {
	return k.GetCallsOffered() > 0 || k.GetCallSpeedOfAnswer().GetCount() > 0 || k.GetCallHandleTime().GetCount() > 0
}

func familyNamed(name string) (family, bool) {
	i := slices.IndexFunc(families, func(f family) bool { return f.Name == name })
	if i < 0 {
		return family{}, false
	}
	return families[i], true
}

// parseFamilies reads the team page's cols parameter: the families a person ticked, each once.
// None ticked leaves the choice to the page (shownFamilies).
func parseFamilies(vals []string) (map[string]bool, error) {
	chosen := map[string]bool{}
	for _, v := range vals {
		if _, ok := familyNamed(v); !ok {
			return nil, fmt.Errorf("cols: %q is not a column family; want tickets, qa or calls", v)
		}
		chosen[v] = true
	}
	return chosen, nil
}

// shownFamilies are the families whose columns the team table shows: those chosen, or when
// none is, those with a figure for at least one agent listed (the tickets alone when no agent
// has any, so an empty window keeps the familiar table). The family of the column the table is
// ordered by is always shown, so the order the rows are in is visible.
func shownFamilies(chosen map[string]bool, ks []*tpv1.Kpis, orderFamily string) map[string]bool {
	shown := map[string]bool{}
	if len(chosen) > 0 {
		for f := range chosen {
			shown[f] = true
		}
	} else {
		for _, f := range families {
			shown[f.Name] = slices.ContainsFunc(ks, f.Has)
		}
		if !slices.ContainsFunc(families, func(f family) bool { return shown[f.Name] }) {
			shown[familyTickets] = true
		}
	}
	if orderFamily != "" {
		shown[orderFamily] = true
	}
	return shown
}

// seriesHas reports whether any period of s has a figure of the family named.
func seriesHas(s *tpv1.KpiSeries, name string) bool {
	f, ok := familyNamed(name)
	return ok && slices.ContainsFunc(s.GetPoints(), func(p *tpv1.KpiPoint) bool { return f.Has(p.GetKpis()) })
}

// defaultSpark is the KPI of the team page's sparklines when none is asked for: the first of
// metrics of a family shown (first-response p90 whenever the ticket columns are shown).
func defaultSpark(shown map[string]bool) metric {
	if i := slices.IndexFunc(metrics, func(m metric) bool { return shown[m.Family] }); i >= 0 {
		return metrics[i]
	}
	return metrics[0]
}
