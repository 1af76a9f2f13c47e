package grpcapi

import (
	"sort"
	"strings"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
)

// sortKey extracts one orderable figure straight from totals, so ordering a long list computes
// only the figure it orders by (a quantile sorts one histogram, not three).
type sortKey func(t *bucket.Totals) float64

func rate(num, den int64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

func counter(c bucket.Counter) sortKey {
	return func(t *bucket.Totals) float64 { return float64(t.C[c]) }
}

func quantile(d bucket.Duration, q float64) sortKey {
	return func(t *bucket.Totals) float64 { return t.H[d].Quantiles(q)[0] }
}

// orderKeys are the figures ListAgentKpis can order by, besides agent_id.
var orderKeys = map[string]sortKey{
	"assigned":    counter(bucket.Assigned),
	"resolutions": counter(bucket.Resolutions),
	"resolution_rate": func(t *bucket.Totals) float64 {
		return rate(t.C[bucket.AssignedNowResolved], t.C[bucket.Assigned])
	},
	"reopen_rate":    func(t *bucket.Totals) float64 { return rate(t.C[bucket.Reopens], t.C[bucket.Solves]) },
	"one_touch_rate": func(t *bucket.Totals) float64 { return rate(t.C[bucket.OneTouch], t.C[bucket.Resolutions]) },
	"csat_count":     counter(bucket.CSATCount),
	"csat_mean":      func(t *bucket.Totals) float64 { return rate(t.C[bucket.CSATScoreSum], t.C[bucket.CSATCount]) },
	"csat_percent": func(t *bucket.Totals) float64 {
		return 100 * rate(t.C[bucket.CSATPositive], t.C[bucket.CSATCount])
	},
	"first_response_mean": func(t *bucket.Totals) float64 {
		return rate(t.C[bucket.FirstSumMillis], t.C[bucket.FirstCount]) / 1000
	},
	"first_response_p50": quantile(bucket.FirstResponse, 0.5),
	"first_response_p90": quantile(bucket.FirstResponse, 0.9),
	"next_response_p90":  quantile(bucket.NextResponse, 0.9),
	"resolution_p90":     quantile(bucket.Resolution, 0.9),
	"sla_first_response_compliance": func(t *bucket.Totals) float64 {
		return rate(t.C[bucket.SLAMet], t.C[bucket.SLAMet]+t.C[bucket.SLABreached])
	},
	"qa_score_count": counter(bucket.QACount),
	"qa_score_mean":  func(t *bucket.Totals) float64 { return rate(t.C[bucket.QAScoreSum], t.C[bucket.QACount]) / 100 },
	"qa_score_p50":   qaQuantile(0.5),
	"qa_score_p90":   qaQuantile(0.9),
	"qa_auto_fail_rate": func(t *bucket.Totals) float64 {
		return rate(t.C[bucket.QAAutoFails], t.C[bucket.QACount])
	},
	"calls_offered":     counter(bucket.CallsOffered),
	"calls_answered":    counter(bucket.CallsAnswered),
	"call_abandon_rate": func(t *bucket.Totals) float64 { return rate(t.C[bucket.CallsAbandoned], t.C[bucket.CallsOffered]) },
	"call_service_level": func(t *bucket.Totals) float64 {
		return rate(t.C[bucket.CallsInServiceLevel], t.C[bucket.CallsOffered])
	},
	"call_speed_of_answer_mean": func(t *bucket.Totals) float64 {
		return rate(t.C[bucket.CallAnswerSumMillis], t.C[bucket.CallAnswerCount]) / 1000
	},
	"call_speed_of_answer_p90": quantile(bucket.CallSpeedOfAnswer, 0.9),
	"call_handle_time_mean": func(t *bucket.Totals) float64 {
		return rate(t.C[bucket.CallHandleSumMillis], t.C[bucket.CallHandleCount]) / 1000
	},
	"call_handle_time_p90": quantile(bucket.CallHandleTime, 0.9),
}

func qaQuantile(q float64) sortKey {
	return func(t *bucket.Totals) float64 { return t.H[bucket.QAScore].QuantilesOf(bucket.QAValue, q)[0] }
}

// OrderNames lists what ListAgentKpis' order_by accepts, sorted.
var OrderNames = orderNames("agent_id")

// orderNames lists the accepted order_by names with idName as the id ordering, sorted.
func orderNames(idName string) []string {
	names := []string{idName}
	for n := range orderKeys {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// order is a parsed order_by.
type order struct {
	name string
	desc bool
	key  sortKey // nil for the id order
}

// String is the canonical form, used in page token fingerprints.
func (o order) String() string {
	if o.desc {
		return o.name + " desc"
	}
	return o.name
}

// parseOrder reads "<name>" or "<name> desc"; empty means idName (agent_id or team_id).
func parseOrder(s, idName string) (order, bool) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return order{name: idName}, true
	}
	if len(f) > 2 || (len(f) == 2 && f[1] != "desc") {
		return order{}, false
	}
	o := order{name: f[0], desc: len(f) == 2}
	if o.name == idName {
		return o, true
	}
	k, ok := orderKeys[o.name]
	o.key = k
	return o, ok
}
