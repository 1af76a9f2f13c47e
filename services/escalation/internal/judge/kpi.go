package judge

import (
	"cmp"
	"fmt"
	"math"
	"strconv"
	"time"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
)

// BaselineWindow is the snapshot window kpi_baseline rules compare with: the 28 days before
// the 7d window.
const BaselineWindow = "baseline_28d"

// Verdict is a KPI rule's judgement of one snapshot.
type Verdict struct {
	Judged    bool // false: sample too small or window/baseline missing, so no judgement
	Breached  bool
	Value     float64 // the metric in the window
	Sample    int64
	Threshold float64 // the fixed threshold, or for kpi_baseline the baseline value adjusted by Drop
	// Baseline and BaselineSample are the metric in BaselineWindow (kpi_baseline only).
	Baseline       float64
	BaselineSample int64
	// Summary is one line for people, e.g. "agent ana: resolution rate over 7d is 0.62, below
	// 0.70 (24 tickets)"; it says why when there is no judgement.
	Summary string
	// Facts are the figures behind the verdict, formatted like Summary: metric, window, value,
	// threshold, sample, and for kpi_baseline baseline, baseline_sample and drop. Figures the
	// snapshot lacks are left out.
	Facts []Fact
}

// Fact is one named figure behind a Verdict or a Condition.
type Fact struct{ Name, Value string }

// KPI judges a KPI snapshot by a kpi or kpi_baseline rule. It reads nothing but its
// arguments. A rule judges only snapshots of its own scope, and only when the metric's sample
// reaches MinSample in the window (and, for kpi_baseline, in the baseline too): a rate over
// three tickets says nothing about an agent.
func KPI(r *rulesfile.QualityRule, snap *ticketpulsev1.KpiSnapshot) Verdict {
	m, ok := rulesfile.MetricOf(r.Metric)
	switch {
	case (r.Kind != rulesfile.KindKPI && r.Kind != rulesfile.KindKPIBaseline) || !ok:
		return Verdict{Summary: fmt.Sprintf("rule %s does not judge KPIs", r.Name)}
	case snap == nil:
		return Verdict{Summary: fmt.Sprintf("rule %s: no snapshot", r.Name)}
	}
	who := snap.GetScope() + " " + snap.GetId()
	if scope := cmp.Or(r.Scope, "agent"); snap.GetScope() != scope {
		return Verdict{Summary: fmt.Sprintf("%s: rule %s judges only %s figures", who, r.Name, scope)}
	}
	e := evaluation{rule: r, m: m, who: who}
	k := snap.GetWindows()[r.Window]
	if k == nil {
		e.v.Summary = fmt.Sprintf("%s: the snapshot has no %s figures", who, r.Window)
		return e.verdict()
	}
	e.haveWindow = true
	e.v.Value, e.v.Sample = m.Read(k)
	if e.v.Sample < e.minSample() {
		e.v.Summary = fmt.Sprintf("%s: %s over %s has %d %s, fewer than the %d needed to judge",
			who, m.Label, r.Window, e.v.Sample, m.Noun, e.minSample())
		return e.verdict()
	}
	if r.Kind == rulesfile.KindKPI {
		e.fixed()
	} else {
		e.baseline(snap.GetWindows()[BaselineWindow])
	}
	return e.verdict()
}

// evaluation is one KPI call in progress.
type evaluation struct {
	rule *rulesfile.QualityRule
	m    rulesfile.Metric
	who  string
	v    Verdict
	// haveWindow, haveThreshold and haveBaseline say which figures exist, for Facts.
	haveWindow, haveThreshold, haveBaseline bool
}

// minSample is at least 1: with no sample, a metric is 0 and means nothing.
func (e *evaluation) minSample() int64 { return max(e.rule.MinSample, 1) }

// fixed judges against the rule's fixed threshold; both comparisons are strict, so a value
// exactly at the threshold is not a breach.
func (e *evaluation) fixed() {
	r, v := e.rule, &e.v
	var word string
	switch {
	case r.Above != nil:
		word, v.Threshold, v.Breached = "above", *r.Above, v.Value > *r.Above
	case r.Below != nil:
		word, v.Threshold, v.Breached = "below", *r.Below, v.Value < *r.Below
	default:
		v.Summary = fmt.Sprintf("%s: rule %s has no threshold", e.who, r.Name)
		return
	}
	v.Judged, e.haveThreshold = true, true
	if !v.Breached {
		word = "not " + word
	}
	v.Summary = fmt.Sprintf("%s: %s over %s is %s, %s %s (%d %s)",
		e.who, e.m.Label, r.Window, format(e.m, v.Value), word, format(e.m, v.Threshold), v.Sample, e.m.Noun)
}

// baseline judges against the metric in the baseline window: a breach is a value worse than
// the baseline by at least Drop of it. A value no worse than the baseline is never a breach,
// which matters only for a baseline of 0 (no reopens, say), where "at least 20 % worse" would
// otherwise hold for an equal value.
func (e *evaluation) baseline(b *ticketpulsev1.Kpis) {
	r, v := e.rule, &e.v
	if b == nil {
		v.Summary = fmt.Sprintf("%s: the snapshot has no 28-day baseline", e.who)
		return
	}
	e.haveBaseline, e.haveThreshold = true, true
	v.Baseline, v.BaselineSample = e.m.Read(b)
	if e.m.HigherWorse {
		v.Threshold = v.Baseline * (1 + r.Drop)
		v.Breached = v.Value >= v.Threshold && v.Value > v.Baseline
	} else {
		v.Threshold = v.Baseline * (1 - r.Drop)
		v.Breached = v.Value <= v.Threshold && v.Value < v.Baseline
	}
	if v.BaselineSample < e.minSample() {
		v.Breached = false
		v.Summary = fmt.Sprintf("%s: the 28-day baseline of %s has %d %s, fewer than the %d needed to judge",
			e.who, e.m.Label, v.BaselineSample, e.m.Noun, e.minSample())
		return
	}
	v.Judged = true
	judgement := "worse by at least " + formatShare(r.Drop)
	if !v.Breached {
		judgement = "not worse by " + formatShare(r.Drop)
	}
	v.Summary = fmt.Sprintf("%s: %s over %s is %s, %s its 28-day baseline of %s, %s (%d %s, baseline %d)",
		e.who, e.m.Label, r.Window, format(e.m, v.Value), change(v.Value, v.Baseline), format(e.m, v.Baseline),
		judgement, v.Sample, e.m.Noun, v.BaselineSample)
}

func (e *evaluation) verdict() Verdict {
	r, v := e.rule, e.v
	v.Facts = []Fact{{"metric", r.Metric}, {"window", r.Window}}
	if e.haveWindow {
		v.Facts = append(v.Facts, Fact{"value", format(e.m, v.Value)})
	}
	if e.haveThreshold {
		v.Facts = append(v.Facts, Fact{"threshold", format(e.m, v.Threshold)})
	}
	if e.haveWindow {
		v.Facts = append(v.Facts, Fact{"sample", strconv.FormatInt(v.Sample, 10)})
	}
	if e.haveBaseline {
		v.Facts = append(v.Facts,
			Fact{"baseline", format(e.m, v.Baseline)},
			Fact{"baseline_sample", strconv.FormatInt(v.BaselineSample, 10)},
			Fact{"drop", formatShare(r.Drop)})
	}
	return v
}

// change says how value compares with baseline: "down 25% from".
func change(value, baseline float64) string {
	switch {
	case value == baseline:
		return "level with"
	case baseline == 0 && value > 0:
		return "up from"
	case baseline == 0:
		return "down from"
	case value > baseline:
		return "up " + formatShare((value-baseline)/baseline) + " from"
	}
	return "down " + formatShare((baseline-value)/baseline) + " from"
}

// formatShare writes 0.2 as "20%", to at most two decimals of a percent.
func formatShare(s float64) string {
	return strconv.FormatFloat(math.Round(s*10000)/100, 'f', -1, 64) + "%"
}

// format writes a value of the metric as people read it: durations like 2h5m0s, percentages
// with one decimal, rates and ratings with two.
func format(m rulesfile.Metric, v float64) string {
	switch m.Unit {
	case rulesfile.UnitSeconds:
		return formatSeconds(v)
	case rulesfile.UnitPercent:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// formatSeconds writes seconds as a duration rounded to the second.
func formatSeconds(s float64) string {
	const limit = float64(math.MaxInt64 / int64(time.Second))
	if math.IsNaN(s) || math.Abs(s) >= limit {
		return strconv.FormatFloat(s, 'g', -1, 64) + "s"
	}
	return (time.Duration(math.Round(s)) * time.Second).String()
}
