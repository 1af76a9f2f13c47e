package judge

import (
	"fmt"
	"strings"
	"testing"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
)

// kpis returns figures where metric has value over a sample of the given size, set in the fields
// the KPI service fills (a transcription of the rules' sample sizes, independent of rulesfile's
// metrics table).
func kpis(metric string, value float64, sample int64) *ticketpulsev1.Kpis {
	k := &ticketpulsev1.Kpis{}
	switch metric {
	case "resolution_rate":
		k.ResolutionRate, k.Assigned = value, sample
	case "reopen_rate":
		k.ReopenRate, k.Solves = value, sample
	case "one_touch_rate":
		k.OneTouchRate, k.Resolutions = value, sample
	case "csat_mean":
		k.CsatMean, k.CsatCount = value, sample
	case "csat_percent":
		k.CsatPercent, k.CsatCount = value, sample
	case "qa_score_mean":
		k.QaScore = &ticketpulsev1.ScoreStats{Mean: value, Count: sample}
	case "qa_score_p50":
		k.QaScore = &ticketpulsev1.ScoreStats{P50: value, Count: sample}
	case "qa_score_p90":
		k.QaScore = &ticketpulsev1.ScoreStats{P90: value, Count: sample}
	case "qa_score_p99":
		k.QaScore = &ticketpulsev1.ScoreStats{P99: value, Count: sample}
	case "qa_auto_fail_rate":
		k.QaAutoFailRate, k.QaScore = value, &ticketpulsev1.ScoreStats{Count: sample}
	case "sla_first_response_compliance":
		k.SlaFirstResponseCompliance, k.SlaFirstResponseMet, k.SlaFirstResponseBreached = value, sample/2, sample-sample/2
	case "call_abandon_rate":
		k.CallAbandonRate, k.CallsOffered = value, sample
	case "call_service_level":
		k.CallServiceLevel, k.CallsOffered = value, sample
	default:
		clock, stat, _ := strings.Cut(strings.Replace(metric, "_response_", "_response.", 1), ".")
		if clock == metric {
			clock, stat, _ = strings.Cut(metric, "_")
		}
		if c, st, ok := strings.Cut(metric, "call_asa_"); ok && c == "" {
			clock, stat = "call_asa", st
		}
		if c, st, ok := strings.Cut(metric, "call_aht_"); ok && c == "" {
			clock, stat = "call_aht", st
		}
		d := &ticketpulsev1.DurationStats{Count: sample}
		switch stat {
		case "mean":
			d.MeanSeconds = value
		case "p50":
			d.P50Seconds = value
		case "p90":
			d.P90Seconds = value
		case "p99":
			d.P99Seconds = value
		}
		switch clock {
		case "first_response":
			k.FirstResponse = d
		case "next_response":
			k.NextResponse = d
		case "resolution":
			k.Resolution = d
		case "call_asa":
			k.CallSpeedOfAnswer = d
		case "call_aht":
			k.CallHandleTime = d
		}
	}
	return k
}

func snapshot(scope, id string, windows map[string]*ticketpulsev1.Kpis) *ticketpulsev1.KpiSnapshot {
	return &ticketpulsev1.KpiSnapshot{Tenant: "acme", Scope: scope, Id: id, Windows: windows}
}

func ptr(v float64) *float64 { return &v }

func kpiRule(metric, window string, min int64) *rulesfile.QualityRule {
	return &rulesfile.QualityRule{Name: "r", Kind: rulesfile.KindKPI, Scope: "agent", Metric: metric, Window: window, MinSample: min}
}

func TestKPI(t *testing.T) {
	below70 := kpiRule("resolution_rate", "7d", 20)
	below70.Below = ptr(0.7)
	above2h := kpiRule("first_response_p90", "24h", 10)
	above2h.Scope, above2h.Above = "team", ptr(7200)
	noMin := kpiRule("csat_mean", "1h", 0)
	noMin.Below = ptr(3)
	csatDrop := &rulesfile.QualityRule{Name: "csat-drop", Kind: rulesfile.KindKPIBaseline, Scope: "agent", Metric: "csat_percent", Window: "7d", Drop: 0.25, MinSample: 10}
	reopenRise := &rulesfile.QualityRule{Name: "reopens", Kind: rulesfile.KindKPIBaseline, Scope: "team", Metric: "reopen_rate", Window: "30d", Drop: 0.5, MinSample: 5}
	rate := func(v float64, n int64) map[string]*ticketpulsev1.Kpis {
		return map[string]*ticketpulsev1.Kpis{"7d": kpis("resolution_rate", v, n)}
	}
	csat := func(v float64, n int64, base float64, baseN int64) map[string]*ticketpulsev1.Kpis {
		return map[string]*ticketpulsev1.Kpis{"7d": kpis("csat_percent", v, n), BaselineWindow: kpis("csat_percent", base, baseN)}
	}
	queueAbandons := kpiRule("call_abandon_rate", "1h", 20)
	queueAbandons.Scope, queueAbandons.Above = "queue", ptr(0.1)
	queueCalls := map[string]*ticketpulsev1.Kpis{"1h": kpis("call_abandon_rate", 0.15, 40)}
	qaLow := kpiRule("qa_score_mean", "7d", 5)
	qaLow.Scope, qaLow.Below = "team", ptr(80)
	qaP90 := kpiRule("qa_score_p90", "30d", 5)
	qaP90.Below = ptr(95)
	qaFails := kpiRule("qa_auto_fail_rate", "7d", 5)
	qaFails.Above = ptr(0.1)
	qa := func(metric, window string, v float64, n int64) map[string]*ticketpulsev1.Kpis {
		return map[string]*ticketpulsev1.Kpis{window: kpis(metric, v, n)}
	}
	reopens := func(v, base float64) map[string]*ticketpulsev1.Kpis {
		return map[string]*ticketpulsev1.Kpis{"30d": kpis("reopen_rate", v, 8), BaselineWindow: kpis("reopen_rate", base, 40)}
	}
	abandons := kpiRule("call_abandon_rate", "24h", 20)
	abandons.Scope, abandons.Above = "team", ptr(0.08)
	serviceLevel := kpiRule("call_service_level", "1h", 10)
	serviceLevel.Scope, serviceLevel.Below = "team", ptr(0.8)
	slowAnswer := kpiRule("call_asa_p90", "24h", 10)
	slowAnswer.Above = ptr(60)
	calls := func(metric, window string, v float64, n int64) map[string]*ticketpulsev1.Kpis {
		return map[string]*ticketpulsev1.Kpis{window: kpis(metric, v, n)}
	}
	tests := []struct {
		name string
		rule *rulesfile.QualityRule
		snap *ticketpulsev1.KpiSnapshot
		want Verdict // Facts are checked elsewhere
	}{
		{
			name: "call abandon rate above the threshold (higher is worse)",
			rule: abandons, snap: snapshot("team", "phones", calls("call_abandon_rate", "24h", 0.125, 40)),
			want: Verdict{Judged: true, Breached: true, Value: 0.125, Sample: 40, Threshold: 0.08,
				Summary: "team phones: call abandon rate over 24h is 0.12, above 0.08 (40 calls offered)"},
		},
		{
			name: "call service level at the threshold is not a breach",
			rule: serviceLevel, snap: snapshot("team", "phones", calls("call_service_level", "1h", 0.8, 25)),
			want: Verdict{Judged: true, Value: 0.8, Sample: 25, Threshold: 0.8,
				Summary: "team phones: call service level over 1h is 0.80, not below 0.80 (25 calls offered)"},
		},
		{
			name: "call service level with too few calls is not judged",
			rule: serviceLevel, snap: snapshot("team", "phones", calls("call_service_level", "1h", 0.2, 9)),
			want: Verdict{Value: 0.2, Sample: 9,
				Summary: "team phones: call service level over 1h has 9 calls offered, fewer than the 10 needed to judge"},
		},
		{
			name: "call speed of answer p90 above the threshold",
			rule: slowAnswer, snap: snapshot("agent", "ana", calls("call_asa_p90", "24h", 95, 30)),
			want: Verdict{Judged: true, Breached: true, Value: 95, Sample: 30, Threshold: 60,
				Summary: "agent ana: call speed of answer p90 over 24h is 1m35s, above 1m0s (30 answered calls)"},
		},
		{
			name: "below the threshold",
			rule: below70, snap: snapshot("agent", "ana", rate(0.62, 24)),
			want: Verdict{Judged: true, Breached: true, Value: 0.62, Sample: 24, Threshold: 0.7,
				Summary: "agent ana: resolution rate over 7d is 0.62, below 0.70 (24 tickets)"},
		},
		{
			name: "exactly at a below threshold is not a breach",
			rule: below70, snap: snapshot("agent", "ana", rate(0.7, 24)),
			want: Verdict{Judged: true, Value: 0.7, Sample: 24, Threshold: 0.7,
				Summary: "agent ana: resolution rate over 7d is 0.70, not below 0.70 (24 tickets)"},
		},
		{
			name: "sample exactly the minimum is judged",
			rule: below70, snap: snapshot("agent", "ana", rate(0.9, 20)),
			want: Verdict{Judged: true, Value: 0.9, Sample: 20, Threshold: 0.7,
				Summary: "agent ana: resolution rate over 7d is 0.90, not below 0.70 (20 tickets)"},
		},
		{
			name: "sample below the minimum is not judged",
			rule: below70, snap: snapshot("agent", "ana", rate(0.1, 19)),
			want: Verdict{Value: 0.1, Sample: 19,
				Summary: "agent ana: resolution rate over 7d has 19 tickets, fewer than the 20 needed to judge"},
		},
		{
			name: "the window is missing",
			rule: below70, snap: snapshot("agent", "ana", map[string]*ticketpulsev1.Kpis{"24h": kpis("resolution_rate", 0.1, 50)}),
			want: Verdict{Summary: "agent ana: the snapshot has no 7d figures"},
		},
		{
			name: "an agent rule does not judge a team",
			rule: below70, snap: snapshot("team", "billing", rate(0.1, 50)),
			want: Verdict{Summary: "team billing: rule r judges only agent figures"},
		},
		{
			name: "a team rule does not judge an agent",
			rule: above2h, snap: snapshot("agent", "ana", map[string]*ticketpulsev1.Kpis{"24h": kpis("first_response_p90", 9000, 50)}),
			want: Verdict{Summary: "agent ana: rule r judges only team figures"},
		},
		{
			name: "a queue rule judges a queue",
			rule: queueAbandons, snap: snapshot("queue", "sales: {EU}", queueCalls),
			want: Verdict{Judged: true, Breached: true, Value: 0.15, Sample: 40, Threshold: 0.1,
				Summary: "queue sales: {EU}: call abandon rate over 1h is 0.15, above 0.10 (40 calls offered)"},
		},
		{
			name: "a queue rule does not judge the team of the same name",
			rule: queueAbandons, snap: snapshot("team", "sales: {EU}", queueCalls),
			want: Verdict{Summary: "team sales: {EU}: rule r judges only queue figures"},
		},
		{
			name: "a team rule does not judge a queue",
			rule: above2h, snap: snapshot("queue", "sales", queueCalls),
			want: Verdict{Summary: "queue sales: rule r judges only team figures"},
		},
		{
			name: "above the threshold, durations",
			rule: above2h, snap: snapshot("team", "billing", map[string]*ticketpulsev1.Kpis{"24h": kpis("first_response_p90", 7500, 12)}),
			want: Verdict{Judged: true, Breached: true, Value: 7500, Sample: 12, Threshold: 7200,
				Summary: "team billing: first response p90 over 24h is 2h5m0s, above 2h0m0s (12 tickets)"},
		},
		{
			name: "exactly at an above threshold is not a breach",
			rule: above2h, snap: snapshot("team", "billing", map[string]*ticketpulsev1.Kpis{"24h": kpis("first_response_p90", 7200, 12)}),
			want: Verdict{Judged: true, Value: 7200, Sample: 12, Threshold: 7200,
				Summary: "team billing: first response p90 over 24h is 2h0m0s, not above 2h0m0s (12 tickets)"},
		},
		{
			name: "no sample is never judged, even with MinSample 0",
			rule: noMin, snap: snapshot("agent", "ana", map[string]*ticketpulsev1.Kpis{"1h": {}}),
			want: Verdict{Summary: "agent ana: CSAT mean over 1h has 0 ratings, fewer than the 1 needed to judge"},
		},
		{
			name: "QA score mean below the threshold",
			rule: qaLow, snap: snapshot("team", "billing", qa("qa_score_mean", "7d", 77.42, 12)),
			want: Verdict{Judged: true, Breached: true, Value: 77.42, Sample: 12, Threshold: 80,
				Summary: "team billing: QA score mean over 7d is 77.4, below 80.0 (12 reviews)"},
		},
		{
			name: "QA score mean at the threshold is not a breach",
			rule: qaLow, snap: snapshot("team", "billing", qa("qa_score_mean", "7d", 80, 12)),
			want: Verdict{Judged: true, Value: 80, Sample: 12, Threshold: 80,
				Summary: "team billing: QA score mean over 7d is 80.0, not below 80.0 (12 reviews)"},
		},
		{
			name: "QA score with too few reviews is not judged",
			rule: qaLow, snap: snapshot("team", "billing", qa("qa_score_mean", "7d", 10, 4)),
			want: Verdict{Value: 10, Sample: 4,
				Summary: "team billing: QA score mean over 7d has 4 reviews, fewer than the 5 needed to judge"},
		},
		{
			name: "QA score p90",
			rule: qaP90, snap: snapshot("agent", "ana", qa("qa_score_p90", "30d", 92.3, 6)),
			want: Verdict{Judged: true, Breached: true, Value: 92.3, Sample: 6, Threshold: 95,
				Summary: "agent ana: QA score p90 over 30d is 92.3, below 95.0 (6 reviews)"},
		},
		{
			name: "QA auto-fail rate above the threshold (higher is worse)",
			rule: qaFails, snap: snapshot("agent", "ana", qa("qa_auto_fail_rate", "7d", 1.0/3, 6)),
			want: Verdict{Judged: true, Breached: true, Value: 1.0 / 3, Sample: 6, Threshold: 0.1,
				Summary: "agent ana: QA auto-fail rate over 7d is 0.33, above 0.10 (6 reviews)"},
		},
		{
			name: "baseline: down by exactly the drop is a breach",
			rule: csatDrop, snap: snapshot("agent", "ana", csat(60, 30, 80, 120)),
			want: Verdict{Judged: true, Breached: true, Value: 60, Sample: 30, Threshold: 60, Baseline: 80, BaselineSample: 120,
				Summary: "agent ana: CSAT percent over 7d is 60.0, down 25% from its 28-day baseline of 80.0, worse by at least 25% (30 ratings, baseline 120)"},
		},
		{
			name: "baseline: down by less than the drop",
			rule: csatDrop, snap: snapshot("agent", "ana", csat(60.5, 30, 80, 120)),
			want: Verdict{Judged: true, Value: 60.5, Sample: 30, Threshold: 60, Baseline: 80, BaselineSample: 120,
				Summary: "agent ana: CSAT percent over 7d is 60.5, down 24.38% from its 28-day baseline of 80.0, not worse by 25% (30 ratings, baseline 120)"},
		},
		{
			name: "baseline: better than the baseline",
			rule: csatDrop, snap: snapshot("agent", "ana", csat(90, 30, 80, 120)),
			want: Verdict{Judged: true, Value: 90, Sample: 30, Threshold: 60, Baseline: 80, BaselineSample: 120,
				Summary: "agent ana: CSAT percent over 7d is 90.0, up 12.5% from its 28-day baseline of 80.0, not worse by 25% (30 ratings, baseline 120)"},
		},
		{
			name: "baseline: higher is worse, up by exactly the drop",
			rule: reopenRise, snap: snapshot("team", "billing", reopens(0.75, 0.5)),
			want: Verdict{Judged: true, Breached: true, Value: 0.75, Sample: 8, Threshold: 0.75, Baseline: 0.5, BaselineSample: 40,
				Summary: "team billing: reopen rate over 30d is 0.75, up 50% from its 28-day baseline of 0.50, worse by at least 50% (8 resolutions, baseline 40)"},
		},
		{
			name: "baseline: higher is worse, up by less",
			rule: reopenRise, snap: snapshot("team", "billing", reopens(0.74, 0.5)),
			want: Verdict{Judged: true, Value: 0.74, Sample: 8, Threshold: 0.75, Baseline: 0.5, BaselineSample: 40,
				Summary: "team billing: reopen rate over 30d is 0.74, up 48% from its 28-day baseline of 0.50, not worse by 50% (8 resolutions, baseline 40)"},
		},
		{
			name: "baseline: higher is worse, lower is fine",
			rule: reopenRise, snap: snapshot("team", "billing", reopens(0.1, 0.5)),
			want: Verdict{Judged: true, Value: 0.1, Sample: 8, Threshold: 0.75, Baseline: 0.5, BaselineSample: 40,
				Summary: "team billing: reopen rate over 30d is 0.10, down 80% from its 28-day baseline of 0.50, not worse by 50% (8 resolutions, baseline 40)"},
		},
		{
			name: "baseline of zero: equal is not worse",
			rule: reopenRise, snap: snapshot("team", "billing", reopens(0, 0)),
			want: Verdict{Judged: true, Sample: 8, BaselineSample: 40,
				Summary: "team billing: reopen rate over 30d is 0.00, level with its 28-day baseline of 0.00, not worse by 50% (8 resolutions, baseline 40)"},
		},
		{
			name: "baseline of zero: anything more is worse",
			rule: reopenRise, snap: snapshot("team", "billing", reopens(0.1, 0)),
			want: Verdict{Judged: true, Breached: true, Value: 0.1, Sample: 8, BaselineSample: 40,
				Summary: "team billing: reopen rate over 30d is 0.10, up from its 28-day baseline of 0.00, worse by at least 50% (8 resolutions, baseline 40)"},
		},
		{
			name: "baseline missing",
			rule: csatDrop, snap: snapshot("agent", "ana", map[string]*ticketpulsev1.Kpis{"7d": kpis("csat_percent", 10, 30)}),
			want: Verdict{Value: 10, Sample: 30, Summary: "agent ana: the snapshot has no 28-day baseline"},
		},
		{
			name: "baseline sample too small",
			rule: csatDrop, snap: snapshot("agent", "ana", csat(10, 30, 80, 9)),
			want: Verdict{Value: 10, Sample: 30, Threshold: 60, Baseline: 80, BaselineSample: 9,
				Summary: "agent ana: the 28-day baseline of CSAT percent has 9 ratings, fewer than the 10 needed to judge"},
		},
		{
			name: "window sample too small for a baseline rule",
			rule: csatDrop, snap: snapshot("agent", "ana", csat(10, 9, 80, 120)),
			want: Verdict{Value: 10, Sample: 9,
				Summary: "agent ana: CSAT percent over 7d has 9 ratings, fewer than the 10 needed to judge"},
		},
		{
			name: "not a KPI rule",
			rule: &rulesfile.QualityRule{Name: "bad", Kind: rulesfile.KindBadRating, MaxScore: 2},
			snap: snapshot("agent", "ana", rate(0.1, 50)),
			want: Verdict{Summary: "rule bad does not judge KPIs"},
		},
		{
			name: "no snapshot",
			rule: below70, snap: nil,
			want: Verdict{Summary: "rule r: no snapshot"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := KPI(tt.rule, tt.snap)
			got.Facts = nil
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("KPI =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestKPIFacts(t *testing.T) {
	below := kpiRule("resolution_rate", "7d", 20)
	below.Below = ptr(0.7)
	drop := &rulesfile.QualityRule{Name: "d", Kind: rulesfile.KindKPIBaseline, Metric: "resolution_p50", Window: "7d", Drop: 0.2, MinSample: 1}
	tests := []struct {
		name string
		rule *rulesfile.QualityRule
		snap *ticketpulsev1.KpiSnapshot
		want string
	}{
		{"fixed threshold", below, snapshot("agent", "ana", map[string]*ticketpulsev1.Kpis{"7d": kpis("resolution_rate", 0.62, 24)}),
			"metric=resolution_rate window=7d value=0.62 threshold=0.70 sample=24"},
		{"too few", below, snapshot("agent", "ana", map[string]*ticketpulsev1.Kpis{"7d": kpis("resolution_rate", 0.62, 2)}),
			"metric=resolution_rate window=7d value=0.62 sample=2"},
		{"no window", below, snapshot("agent", "ana", nil), "metric=resolution_rate window=7d"},
		{"baseline", drop, snapshot("agent", "ana", map[string]*ticketpulsev1.Kpis{
			"7d": kpis("resolution_p50", 5400, 3), BaselineWindow: kpis("resolution_p50", 3600, 40)}),
			"metric=resolution_p50 window=7d value=1h30m0s threshold=1h12m0s sample=3 baseline=1h0m0s baseline_sample=40 drop=20%"},
	}
	for _, tt := range tests {
		v := KPI(tt.rule, tt.snap)
		var got []string
		for _, f := range v.Facts {
			got = append(got, f.Name+"="+f.Value)
		}
		if s := strings.Join(got, " "); s != tt.want {
			t.Errorf("%s: facts %s\nwant %s", tt.name, s, tt.want)
		}
	}
}

// TestKPIDirections runs a baseline rule over every metric: worse is higher for
// durations, reopen_rate and qa_auto_fail_rate, lower for the rest, and each metric's sample comes from its own
// count.
func TestKPIDirections(t *testing.T) {
	higherWorse := func(m string) bool {
		return m == "reopen_rate" || m == "qa_auto_fail_rate" || strings.HasPrefix(m, "first_response_") || strings.HasPrefix(m, "next_response_") ||
			(strings.HasPrefix(m, "resolution_") && m != "resolution_rate") ||
			m == "call_abandon_rate" || strings.HasPrefix(m, "call_asa_") || strings.HasPrefix(m, "call_aht_")
	}
	for _, m := range rulesfile.Metrics {
		r := &rulesfile.QualityRule{Name: "r", Kind: rulesfile.KindKPIBaseline, Scope: "agent", Metric: m, Window: "7d", Drop: 0.2, MinSample: 5}
		judge := func(value float64, sample int64) Verdict {
			return KPI(r, snapshot("agent", "ana", map[string]*ticketpulsev1.Kpis{
				"7d": kpis(m, value, sample), BaselineWindow: kpis(m, 0.5, 10)}))
		}
		up, down, few := judge(0.65, 5), judge(0.35, 5), judge(0.01, 4)
		if !up.Judged || !down.Judged || few.Judged {
			t.Errorf("%s: judged up %v, down %v, with 4 of 5 %v", m, up.Judged, down.Judged, few.Judged)
		}
		if up.Breached != higherWorse(m) || down.Breached == higherWorse(m) {
			t.Errorf("%s: breached going up %v, going down %v; higher is worse: %v", m, up.Breached, down.Breached, higherWorse(m))
		}
		if mt, _ := rulesfile.MetricOf(m); mt.HigherWorse != higherWorse(m) {
			t.Errorf("%s: higherWorse = %v", m, mt.HigherWorse)
		}
	}
}
