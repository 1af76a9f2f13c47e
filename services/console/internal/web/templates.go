package web

import (
	"fmt"
	"html/template"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

var pageNames = []string{"error", "signin", "team", "agent", "escalations", "escalation", "deliveries", "delivery", "tested", "tickets", "rules"}

// funcs format figures; every one returns plain text, which html/template escapes where it lands.
var funcs = template.FuncMap{
	"p50":   func(d *tpv1.DurationStats) string { return duration(d.GetP50Seconds(), d.GetCount()) },
	"p90":   func(d *tpv1.DurationStats) string { return duration(d.GetP90Seconds(), d.GetCount()) },
	"mean":  func(d *tpv1.DurationStats) string { return duration(d.GetMeanSeconds(), d.GetCount()) },
	"pct":   percent,
	"dec":   decimal,
	"at":    stamp,
	"link":  link,
	"sla":   slaFirstResponse,
	"score": score,
	// hasQA and hasCalls decide whether a card shows that family's figures.
	"hasQA":    hasQA,
	"hasCalls": hasCalls,
	"csat":     func(k *tpv1.Kpis) string { return percent(k.GetCsatPercent()/100, k.GetCsatCount()) },
	"reopen":   func(k *tpv1.Kpis) string { return percent(k.GetReopenRate(), k.GetSolves()) },
	"state":    func(s tpv1.EscalationState) string { return enumWord(s.String(), "ESCALATION_STATE_") },
	"severity": func(s tpv1.Severity) string { return enumWord(s.String(), "SEVERITY_") },
	"change":   func(c tpv1.ChangeKind) string { return enumWord(c.String(), "CHANGE_KIND_") },
	"dstatus":  func(s tpv1.DeliveryStatus) string { return enumWord(s.String(), "DELIVERY_STATUS_") },
	"secs":     func(f float64) string { return fmt.Sprintf("%.3f s", f) },
	"open":     func(s tpv1.EscalationState) bool { return s == tpv1.EscalationState_ESCALATION_STATE_OPEN },
	"optsecs": func(v *float64) string {
		if v == nil {
			return "–"
		}
		return duration(*v, 1)
	},
	"rating": func(v *int32) string {
		if v == nil {
			return "–"
		}
		return fmt.Sprint(*v)
	},
	"diff":   func(d tpv1.Difference) string { return enumWord(d.String(), "DIFFERENCE_") },
	"closed": func(s tpv1.EscalationState) bool { return s == tpv1.EscalationState_ESCALATION_STATE_RESOLVED },
}

func (h *Handler) parse() error {
	for _, name := range pageNames {
		t, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/base.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	return nil
}
