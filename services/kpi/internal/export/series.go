package export

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/grpcapi"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
)

// SeriesLister is what the agents, teams and queues exports read: KpiService.ListKpiSeries (the server
// itself, in process; the credential is checked by the HTTP handler).
type SeriesLister interface {
	ListKpiSeries(ctx context.Context, req *ticketpulsev1.ListKpiSeriesRequest) (*ticketpulsev1.ListKpiSeriesResponse, error)
}

// Series is the export of the agents', the teams' or the queues' KPI series: one row per scope
// and period.
type Series struct {
	lister SeriesLister
	scope  ticketpulsev1.ScopeKind
	word   string
	now    func() time.Time
}

var _ Source = (*Series)(nil)

// NewSeries returns the export of agents' (scope SCOPE_KIND_AGENT), teams' or contact-centre
// queues' (SCOPE_KIND_QUEUE) series read through l; now is the clock rolling windows are resolved
// with, as the server's.
func NewSeries(l SeriesLister, scope ticketpulsev1.ScopeKind, now func() time.Time) *Series {
	word := map[ticketpulsev1.ScopeKind]string{ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT: "agent",
		ticketpulsev1.ScopeKind_SCOPE_KIND_TEAM: "team", ticketpulsev1.ScopeKind_SCOPE_KIND_UNASSIGNED: "unassigned",
		ticketpulsev1.ScopeKind_SCOPE_KIND_QUEUE: "queue"}[scope]
	return &Series{lister: l, scope: scope, word: word, now: now}
}

// durationStats are the six columns of each duration KPI, in order.
var durationStats = []string{"count", "sum_seconds", "mean_seconds", "p50_seconds", "p90_seconds", "p99_seconds"}

// durations are the duration KPIs, by column prefix.
var durations = []struct {
	prefix string
	get    func(*ticketpulsev1.Kpis) *ticketpulsev1.DurationStats
}{
	{"first_response", (*ticketpulsev1.Kpis).GetFirstResponse},
	{"next_response", (*ticketpulsev1.Kpis).GetNextResponse},
	{"resolution", (*ticketpulsev1.Kpis).GetResolution},
	{"first_response_business_hours", (*ticketpulsev1.Kpis).GetFirstResponseBusinessHours},
	{"resolution_business_hours", (*ticketpulsev1.Kpis).GetResolutionBusinessHours},
}

// counts and rates are the other KPIs, in column order.
var (
	counts = []struct {
		name string
		get  func(*ticketpulsev1.Kpis) int64
	}{
		{"assigned", (*ticketpulsev1.Kpis).GetAssigned},
		{"assigned_now_resolved", (*ticketpulsev1.Kpis).GetAssignedNowResolved},
		{"resolutions", (*ticketpulsev1.Kpis).GetResolutions},
		{"solves", (*ticketpulsev1.Kpis).GetSolves},
		{"reopens", (*ticketpulsev1.Kpis).GetReopens},
		{"one_touch_resolutions", (*ticketpulsev1.Kpis).GetOneTouchResolutions},
		{"csat_count", (*ticketpulsev1.Kpis).GetCsatCount},
		{"csat_positive", (*ticketpulsev1.Kpis).GetCsatPositive},
		{"sla_first_response_met", (*ticketpulsev1.Kpis).GetSlaFirstResponseMet},
		{"sla_first_response_breached", (*ticketpulsev1.Kpis).GetSlaFirstResponseBreached},
		{"sla_next_response_met", (*ticketpulsev1.Kpis).GetSlaNextResponseMet},
		{"sla_next_response_breached", (*ticketpulsev1.Kpis).GetSlaNextResponseBreached},
		{"sla_resolution_met", (*ticketpulsev1.Kpis).GetSlaResolutionMet},
		{"sla_resolution_breached", (*ticketpulsev1.Kpis).GetSlaResolutionBreached},
	}
	rates = []struct {
		name string
		get  func(*ticketpulsev1.Kpis) float64
	}{
		{"resolution_rate", (*ticketpulsev1.Kpis).GetResolutionRate},
		{"reopen_rate", (*ticketpulsev1.Kpis).GetReopenRate},
		{"one_touch_rate", (*ticketpulsev1.Kpis).GetOneTouchRate},
		{"csat_mean", (*ticketpulsev1.Kpis).GetCsatMean},
		{"csat_percent", (*ticketpulsev1.Kpis).GetCsatPercent},
		{"sla_first_response_compliance", (*ticketpulsev1.Kpis).GetSlaFirstResponseCompliance},
		{"sla_next_response_compliance", (*ticketpulsev1.Kpis).GetSlaNextResponseCompliance},
		{"sla_resolution_compliance", (*ticketpulsev1.Kpis).GetSlaResolutionCompliance},
	}
	// qaColumns are the QA review figures, after every column that came before them so a
	// reader by position is not disturbed.
	qaColumns = []struct {
		name string
		kind Kind
		get  func(*ticketpulsev1.Kpis) float64
	}{
		{"qa_score_count", Int, func(k *ticketpulsev1.Kpis) float64 { return float64(k.GetQaScore().GetCount()) }},
		{"qa_score_mean", Float, func(k *ticketpulsev1.Kpis) float64 { return k.GetQaScore().GetMean() }},
		{"qa_score_p50", Float, func(k *ticketpulsev1.Kpis) float64 { return k.GetQaScore().GetP50() }},
		{"qa_score_p90", Float, func(k *ticketpulsev1.Kpis) float64 { return k.GetQaScore().GetP90() }},
		{"qa_score_p99", Float, func(k *ticketpulsev1.Kpis) float64 { return k.GetQaScore().GetP99() }},
		{"qa_auto_fails", Int, func(k *ticketpulsev1.Kpis) float64 { return float64(k.GetQaAutoFails()) }},
		{"qa_auto_fail_rate", Float, (*ticketpulsev1.Kpis).GetQaAutoFailRate},
	}
	// callDurations, callCounts and callRates are the call figures, after every column that came
	// before them so a reader by position is not disturbed.
	callDurations = []struct {
		prefix string
		get    func(*ticketpulsev1.Kpis) *ticketpulsev1.DurationStats
	}{
		{"call_speed_of_answer", (*ticketpulsev1.Kpis).GetCallSpeedOfAnswer},
		{"call_handle_time", (*ticketpulsev1.Kpis).GetCallHandleTime},
	}
	callCounts = []struct {
		name string
		get  func(*ticketpulsev1.Kpis) int64
	}{
		{"calls_offered", (*ticketpulsev1.Kpis).GetCallsOffered},
		{"calls_answered", (*ticketpulsev1.Kpis).GetCallsAnswered},
		{"calls_abandoned", (*ticketpulsev1.Kpis).GetCallsAbandoned},
		{"calls_answered_in_service_level", (*ticketpulsev1.Kpis).GetCallsAnsweredInServiceLevel},
	}
	callRates = []struct {
		name string
		get  func(*ticketpulsev1.Kpis) float64
	}{
		{"call_abandon_rate", (*ticketpulsev1.Kpis).GetCallAbandonRate},
		{"call_service_level", (*ticketpulsev1.Kpis).GetCallServiceLevel},
	}
)

// SeriesColumns are the columns of the agents, teams and queues exports. A queue is credited
// with call figures only, so its ticket columns are always 0; it keeps them anyway, so one
// reader (and one BI model) takes every series export, and the columns stay by position.
var SeriesColumns = func() []Column {
	cols := []Column{{Name: "tenant", Kind: Text}, {Name: "scope", Kind: Text}, {Name: "scope_id", Kind: Text}, {Name: "period_start", Kind: Instant}, {Name: "period_end", Kind: Instant}, {Name: "time_zone", Kind: Text}}
	for _, d := range durations {
		for i, s := range durationStats {
			k := Float
			if i == 0 {
				k = Int
			}
			cols = append(cols, Column{Name: d.prefix + "_" + s, Kind: k})
		}
	}
	for _, c := range counts {
		cols = append(cols, Column{Name: c.name, Kind: Int})
	}
	for _, r := range rates {
		cols = append(cols, Column{Name: r.name, Kind: Float})
	}
	for _, q := range qaColumns {
		cols = append(cols, Column{Name: q.name, Kind: q.kind})
	}
	for _, d := range callDurations {
		for i, s := range durationStats {
			k := Float
			if i == 0 {
				k = Int
			}
			cols = append(cols, Column{Name: d.prefix + "_" + s, Kind: k})
		}
	}
	for _, c := range callCounts {
		cols = append(cols, Column{Name: c.name, Kind: Int})
	}
	for _, r := range callRates {
		cols = append(cols, Column{Name: r.name, Kind: Float})
	}
	return cols
}()

// Columns implements Source.
func (s *Series) Columns() []Column { return SeriesColumns }

// Params implements Source.
func (s *Series) Params() []string {
	if s.scope == ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT {
		return []string{"from", "to", "rolling", "granularity", "time_zone", "team_id"}
	}
	return []string{"from", "to", "rolling", "granularity", "time_zone"}
}

// Rows implements Source: it pages through ListKpiSeries with pages that fit its point limit.
func (s *Series) Rows(ctx context.Context, q Query, emit func(row []Value) error) error {
	gran, ok := map[string]ticketpulsev1.Granularity{"hour": ticketpulsev1.Granularity_GRANULARITY_HOUR, "day": ticketpulsev1.Granularity_GRANULARITY_DAY,
		"week": ticketpulsev1.Granularity_GRANULARITY_WEEK, "month": ticketpulsev1.Granularity_GRANULARITY_MONTH}[q.Granularity]
	if !ok {
		return &Problem{"granularity", fmt.Sprintf("%q: not a granularity", q.Granularity)}
	}
	w := &ticketpulsev1.Window{TimeZone: q.TimeZone}
	if q.Rolling != "" {
		w.Kind = &ticketpulsev1.Window_Rolling{Rolling: q.Rolling}
	} else {
		w.Kind = &ticketpulsev1.Window_Range{Range: &ticketpulsev1.TimeRange{From: timestamppb.New(q.From), To: timestamppb.New(q.To)}}
	}
	if q.TeamID != "" && s.scope != ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT {
		return &Problem{"team_id", "only for the agents export"}
	}
	req := &ticketpulsev1.ListKpiSeriesRequest{Tenant: q.Tenant, Scope: s.scope, TeamId: q.TeamID, Window: w, Granularity: gran,
		PageSize: int32(s.pageSize(w, gran))}
	loc, err := time.LoadLocation(q.TimeZone)
	if err != nil {
		return &Problem{"time_zone", err.Error()}
	}
	row := make([]Value, len(SeriesColumns))
	row[0].S, row[1].S = q.Tenant, s.word
	for {
		resp, err := s.lister.ListKpiSeries(ctx, req)
		if err != nil {
			return err
		}
		row[5].S = resp.GetWindow().GetTimeZone()
		for _, series := range resp.GetSeries() {
			row[2].S = series.GetScopeId()
			for _, p := range series.GetPoints() {
				row[3].T, row[4].T = p.GetFrom().AsTime().In(loc), p.GetTo().AsTime().In(loc)
				fill(row[6:], p.GetKpis())
				if err := emit(row); err != nil {
					return err
				}
			}
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return nil
		}
	}
}

// pagePoints is the points an export reads per page: a tenth of what ListKpiSeries allows, so an
// export holds a few megabytes of figures at a time, whatever its range.
const pagePoints = grpcapi.MaxSeriesPoints / 10

// pageSize is the most series a page of w can hold within pagePoints. The count allows one
// period more than now, for a rolling window that grows by an hour or a day between this count
// and the server's own.
func (s *Series) pageSize(w *ticketpulsev1.Window, gran ticketpulsev1.Granularity) int {
	rw, err := window.Resolve(w, s.now())
	if err != nil {
		return grpcapi.DefaultPageSize // the server names what is wrong
	}
	n, err := window.CountPeriods(rw, grpcapi.Granularities[gran])
	if err != nil {
		return grpcapi.DefaultPageSize
	}
	return max(1, min(grpcapi.MaxPageSize, pagePoints/(n+1)))
}

// fill writes the KPI columns of k, in SeriesColumns' order after the first six.
func fill(row []Value, k *ticketpulsev1.Kpis) {
	i := 0
	stats := func(st *ticketpulsev1.DurationStats) {
		row[i].I = st.GetCount()
		row[i+1].F, row[i+2].F, row[i+3].F = st.GetSumSeconds(), st.GetMeanSeconds(), st.GetP50Seconds()
		row[i+4].F, row[i+5].F = st.GetP90Seconds(), st.GetP99Seconds()
		i += len(durationStats)
	}
	for _, d := range durations {
		stats(d.get(k))
	}
	for _, c := range counts {
		row[i].I = c.get(k)
		i++
	}
	for _, r := range rates {
		row[i].F = r.get(k)
		i++
	}
	for _, q := range qaColumns {
		if v := q.get(k); q.kind == Int {
			row[i].I = int64(v)
		} else {
			row[i].F = v
		}
		i++
	}
	for _, d := range callDurations {
		stats(d.get(k))
	}
	for _, c := range callCounts {
		row[i].I = c.get(k)
		i++
	}
	for _, r := range callRates {
		row[i].F = r.get(k)
		i++
	}
}
