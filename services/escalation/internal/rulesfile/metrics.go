package rulesfile

import (
	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Metrics are the KPI names a kpi or kpi_baseline rule may watch, in the order the docs list
// them. Duration metrics are in seconds.
var Metrics = []string{
	"first_response_mean", "first_response_p50", "first_response_p90", "first_response_p99",
	"next_response_mean", "next_response_p50", "next_response_p90", "next_response_p99",
	"resolution_mean", "resolution_p50", "resolution_p90", "resolution_p99",
	"resolution_rate", "reopen_rate", "one_touch_rate",
	"csat_mean", "csat_percent",
	"sla_first_response_compliance",
	"qa_score_mean", "qa_score_p50", "qa_score_p90", "qa_score_p99", "qa_auto_fail_rate",
	"call_abandon_rate", "call_service_level",
	"call_asa_mean", "call_asa_p50", "call_asa_p90", "call_asa_p99",
	"call_aht_mean", "call_aht_p50", "call_aht_p90", "call_aht_p99",
}

// Unit is how a metric's values are written as thresholds and shown in summaries.
type Unit int

const (
	UnitSeconds Unit = iota // a duration, in seconds
	UnitRate                // a share from 0 to 1
	UnitPercent             // 0 to 100
	UnitRating              // a mean rating from 1 to 5
)

// Metric describes one of Metrics.
type Metric struct {
	Unit Unit
	// HigherWorse: higher values are worse (durations, reopens); otherwise lower ones are.
	HigherWorse bool
	// Label names it in summaries; Noun names its sample's items.
	Label, Noun string
	// Read returns the value and the sample it is computed from.
	Read func(k *ticketpulsev1.Kpis) (value float64, sample int64)
}

var metrics = buildMetrics()

// MetricOf describes the metric of that name; false when it is not one of Metrics.
func MetricOf(name string) (Metric, bool) {
	m, ok := metrics[name]
	return m, ok
}

func buildMetrics() map[string]Metric {
	m := map[string]Metric{
		"resolution_rate": {UnitRate, false, "resolution rate", "tickets", func(k *ticketpulsev1.Kpis) (float64, int64) {
			return k.GetResolutionRate(), k.GetAssigned()
		}},
		"reopen_rate": {UnitRate, true, "reopen rate", "resolutions", func(k *ticketpulsev1.Kpis) (float64, int64) {
			return k.GetReopenRate(), k.GetSolves()
		}},
		"one_touch_rate": {UnitRate, false, "one-touch rate", "resolutions", func(k *ticketpulsev1.Kpis) (float64, int64) {
			return k.GetOneTouchRate(), k.GetResolutions()
		}},
		"csat_mean": {UnitRating, false, "CSAT mean", "ratings", func(k *ticketpulsev1.Kpis) (float64, int64) {
			return k.GetCsatMean(), k.GetCsatCount()
		}},
		"csat_percent": {UnitPercent, false, "CSAT percent", "ratings", func(k *ticketpulsev1.Kpis) (float64, int64) {
			return k.GetCsatPercent(), k.GetCsatCount()
		}},
		"sla_first_response_compliance": {UnitRate, false, "SLA first response compliance", "tickets", func(k *ticketpulsev1.Kpis) (float64, int64) {
			return k.GetSlaFirstResponseCompliance(), k.GetSlaFirstResponseMet() + k.GetSlaFirstResponseBreached()
		}},
		// Calls (call_* events): both rates are shares of the inbound calls offered.
		"call_abandon_rate": {UnitRate, true, "call abandon rate", "calls offered", func(k *ticketpulsev1.Kpis) (float64, int64) {
			return k.GetCallAbandonRate(), k.GetCallsOffered()
		}},
		"call_service_level": {UnitRate, false, "call service level", "calls offered", func(k *ticketpulsev1.Kpis) (float64, int64) {
			return k.GetCallServiceLevel(), k.GetCallsOffered()
		}},
	}
	// QA scores are percentages of the reviews (qa_scored events) credited to the agent or team.
	qaStats := []struct {
		name string
		get  func(s *ticketpulsev1.ScoreStats) float64
	}{
		{"mean", (*ticketpulsev1.ScoreStats).GetMean},
		{"p50", (*ticketpulsev1.ScoreStats).GetP50},
		{"p90", (*ticketpulsev1.ScoreStats).GetP90},
		{"p99", (*ticketpulsev1.ScoreStats).GetP99},
	}
	for _, s := range qaStats {
		m["qa_score_"+s.name] = Metric{UnitPercent, false, "QA score " + s.name, "reviews", func(k *ticketpulsev1.Kpis) (float64, int64) {
			return s.get(k.GetQaScore()), k.GetQaScore().GetCount()
		}}
	}
	m["qa_auto_fail_rate"] = Metric{UnitRate, true, "QA auto-fail rate", "reviews", func(k *ticketpulsev1.Kpis) (float64, int64) {
		return k.GetQaAutoFailRate(), k.GetQaScore().GetCount()
	}}
	clocks := []struct {
		name, label, noun string
		stats             func(k *ticketpulsev1.Kpis) *ticketpulsev1.DurationStats
	}{
		{"first_response", "first response", "tickets", (*ticketpulsev1.Kpis).GetFirstResponse},
		{"next_response", "next response", "replies", (*ticketpulsev1.Kpis).GetNextResponse},
		{"resolution", "resolution time", "resolutions", (*ticketpulsev1.Kpis).GetResolution},
		{"call_asa", "call speed of answer", "answered calls", (*ticketpulsev1.Kpis).GetCallSpeedOfAnswer},
		{"call_aht", "call handle time", "handled calls", (*ticketpulsev1.Kpis).GetCallHandleTime},
	}
	stats := []struct {
		name string
		get  func(d *ticketpulsev1.DurationStats) float64
	}{
		{"mean", (*ticketpulsev1.DurationStats).GetMeanSeconds},
		{"p50", (*ticketpulsev1.DurationStats).GetP50Seconds},
		{"p90", (*ticketpulsev1.DurationStats).GetP90Seconds},
		{"p99", (*ticketpulsev1.DurationStats).GetP99Seconds},
	}
	for _, c := range clocks {
		for _, s := range stats {
			m[c.name+"_"+s.name] = Metric{UnitSeconds, true, c.label + " " + s.name, c.noun,
				func(k *ticketpulsev1.Kpis) (float64, int64) {
					d := c.stats(k)
					return s.get(d), d.GetCount()
				}}
		}
	}
	return m
}
