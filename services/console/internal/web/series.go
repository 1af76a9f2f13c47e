package web

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/console/internal/chart"
)

// metric is a KPI a chart or sparkline can show. Value is chart.Gap where the KPI is undefined
// (a percentile or mean of no samples), so the line breaks instead of showing a false zero.
type metric struct {
	Name, Label string
	Value       func(*tpv1.Kpis) float64
	Format      func(float64) string
	// Family is the figures the metric belongs to: the agent page charts a QA or call metric only
	// when the charted period has figures of its family.
	Family string
	// Fields are the Kpis fields (proto names) Value reads: all a series drawing the metric
	// asks ListKpiSeries for.
	Fields []string
}

func orGap(v float64, n int64) float64 {
	if n == 0 {
		return chart.Gap
	}
	return v
}

func durationText(v float64) string { return duration(v, 1) }

var metrics = []metric{
	{"first_response_p90", "First response p90", func(k *tpv1.Kpis) float64 {
		return orGap(k.GetFirstResponse().GetP90Seconds(), k.GetFirstResponse().GetCount())
	}, durationText, familyTickets, []string{"first_response"}},
	{"resolutions", "Resolutions", func(k *tpv1.Kpis) float64 { return float64(k.GetResolutions()) },
		func(v float64) string { return fmt.Sprintf("%.0f", v) }, familyTickets, []string{"resolutions"}},
	{"resolution_p90", "Resolution p90", func(k *tpv1.Kpis) float64 {
		return orGap(k.GetResolution().GetP90Seconds(), k.GetResolution().GetCount())
	}, durationText, familyTickets, []string{"resolution"}},
	{"csat_mean", "CSAT mean", func(k *tpv1.Kpis) float64 { return orGap(k.GetCsatMean(), k.GetCsatCount()) },
		func(v float64) string { return fmt.Sprintf("%.2f", v) }, familyTickets, []string{"csat_mean", "csat_count"}},
	{"reopen_rate", "Reopen rate", func(k *tpv1.Kpis) float64 { return orGap(100*k.GetReopenRate(), k.GetSolves()) },
		func(v float64) string { return fmt.Sprintf("%.1f %%", v) }, familyTickets, []string{"reopen_rate", "solves"}},
	{"qa_score_mean", "QA score mean", func(k *tpv1.Kpis) float64 { return orGap(k.GetQaScore().GetMean(), k.GetQaScore().GetCount()) },
		scoreText, familyQA, []string{"qa_score"}},
	{"call_speed_of_answer_mean", "Average speed of answer", func(k *tpv1.Kpis) float64 {
		return orGap(k.GetCallSpeedOfAnswer().GetMeanSeconds(), k.GetCallSpeedOfAnswer().GetCount())
	}, durationText, familyCalls, []string{"call_speed_of_answer"}},
	{"call_handle_time_mean", "Average handle time", func(k *tpv1.Kpis) float64 {
		return orGap(k.GetCallHandleTime().GetMeanSeconds(), k.GetCallHandleTime().GetCount())
	}, durationText, familyCalls, []string{"call_handle_time"}},
}

func metricNamed(name string) (metric, bool) {
	for _, m := range metrics {
		if m.Name == name {
			return m, true
		}
	}
	return metric{}, false
}

// points are a series' values of m, each at the start of its period.
func points(s *tpv1.KpiSeries, m metric) []chart.Point {
	ps := make([]chart.Point, 0, len(s.GetPoints()))
	for _, p := range s.GetPoints() {
		ps = append(ps, chart.Point{At: p.GetFrom().AsTime(), Value: m.Value(p.GetKpis())})
	}
	return ps
}

// describe is the text alternative of a sparkline: every value, "no data" for gaps.
func describe(m metric, ps []chart.Point) string {
	var b strings.Builder
	b.WriteString(m.Label)
	b.WriteString(" by period: ")
	if len(ps) == 0 {
		b.WriteString("no data")
	}
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		if math.IsNaN(p.Value) {
			b.WriteString("no data")
		} else {
			b.WriteString(m.Format(p.Value))
		}
	}
	return b.String()
}

// sparkGranularity is the period of a team page's sparklines: hours for a day, days up to two
// months, then weeks, then months, so a sparkline holds at most about 60 points.
func sparkGranularity(sel windowSel, win *tpv1.Window) tpv1.Granularity {
	switch sel.Rolling {
	case "24h":
		return tpv1.Granularity_GRANULARITY_HOUR
	case "7d", "30d":
		return tpv1.Granularity_GRANULARITY_DAY
	}
	days := win.GetRange().GetTo().AsTime().Sub(win.GetRange().GetFrom().AsTime()) / (24 * time.Hour)
	switch {
	case days <= 62:
		return tpv1.Granularity_GRANULARITY_DAY
	case days <= 420:
		return tpv1.Granularity_GRANULARITY_WEEK
	}
	return tpv1.Granularity_GRANULARITY_MONTH
}

// seriesIDs is how many ids one ListKpiSeries call takes: 500 series of ten years by month
// stay below the 100,000 points a page may hold.
const seriesIDs = 500

// agentSeries returns the series of the agents ids in win at gran, by agent id, with the Kpis
// fields named (every field with none): one call per 500 agents (pages followed), at most 4 at
// once.
func (h *Handler) agentSeries(ctx context.Context, tenant string, ids []string, win *tpv1.Window, gran tpv1.Granularity, fields []string) (map[string]*tpv1.KpiSeries, error) {
	out := make(map[string]*tpv1.KpiSeries, len(ids))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for start := 0; start < len(ids); start += seriesIDs {
		chunk := ids[start:min(start+seriesIDs, len(ids))]
		g.Go(func() error {
			token := ""
			for {
				resp, err := h.o.KPI.ListKpiSeries(gctx, &tpv1.ListKpiSeriesRequest{Tenant: tenant, Scope: tpv1.ScopeKind_SCOPE_KIND_AGENT,
					Ids: chunk, Window: win, Granularity: gran, PageSize: int32(len(chunk)), PageToken: token, Kpis: fields})
				if err != nil {
					return fmt.Errorf("series of %d agents: %w", len(chunk), err)
				}
				mu.Lock()
				for _, s := range resp.GetSeries() {
					out[s.GetScopeId()] = s
				}
				mu.Unlock()
				if token = resp.GetNextPageToken(); token == "" {
					return nil
				}
			}
		})
	}
	return out, g.Wait()
}

// chartFields are the Kpis fields the agent page's charts read: every metric's, and for a QA
// or call metric those its family's test (seriesHas) reads.
func chartFields() []string {
	var out []string
	add := func(fs []string) {
		for _, f := range fs {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	for _, m := range metrics {
		add(m.Fields)
		if m.Family != familyTickets {
			f, _ := familyNamed(m.Family)
			add(f.Fields)
		}
	}
	return out
}

// sparkline is the agent's sparkline of m, labelled with its values.
func sparkline(s *tpv1.KpiSeries, m metric) template.HTML {
	ps := points(s, m)
	return chart.Sparkline(describe(m, ps), ps, 100, 24)
}
