package measure

import (
	"fmt"
	"strings"
)

// Markdown renders one column per result (e.g. one per NATS sync setting) as a table that can be
// pasted into docs/performance.md, with the settings and the machine under it.
func Markdown(results []*Result) string {
	type row struct {
		name string
		cell func(*Result) string
	}
	first := results[0].Settings
	query := func(i int) func(*Result) string {
		return func(r *Result) string {
			if i >= len(r.Queries) {
				return "n/a"
			}
			return pq(r.Queries[i].Latency)
		}
	}
	queryName := func(i int, fallback string) string {
		for _, r := range results {
			if i < len(r.Queries) {
				return r.Queries[i].Name
			}
		}
		return fallback
	}
	rows := []row{
		{"raw JetStream async publish (msgs/s)", func(r *Result) string { return rate(r.JetStream) }},
		{"raw Redis EVALSHA, 3×HINCRBY in one slot, pipelined (scripts/s)", func(r *Result) string { return rate(r.Redis) }},
		{"**pipeline, POST → KPI-visible (events/s)**", func(r *Result) string {
			if r.Pipeline == nil {
				return "n/a"
			}
			s := "**" + Count(r.Pipeline.VisibleRate) + "**"
			if !r.Pipeline.Drained {
				s += " (not drained: lower bound)"
			}
			return s
		}},
		{"pipeline ÷ raw JetStream publish", func(r *Result) string {
			if r.Pipeline == nil {
				return "n/a"
			}
			return fmtRatio(Ratio(r.Pipeline.VisibleRate, rateOf(r.JetStream)))
		}},
		{"pipeline ÷ raw Redis scripts", func(r *Result) string {
			if r.Pipeline == nil {
				return "n/a"
			}
			return fmtRatio(Ratio(r.Pipeline.VisibleRate, rateOf(r.Redis)))
		}},
		{fmt.Sprintf("**durable ingest, sync always: POST of %d → KPI-visible ÷ raw one-fsync-per-message publish** (goal ≥ %s events/s and ≥ %.0f ×)", first.Batch, Count(DurableGoalRate), DurableGoalRatio), func(r *Result) string {
			d := durable(r)
			if d == nil {
				return "n/a"
			}
			return fmt.Sprintf("**%s** (%s ÷ %s; %s)", fmtRatio(d.Ratio), Count(d.Rate), Count(d.Raw), d.verdict())
		}},
		{"ingest accept rate (events/s)", func(r *Result) string {
			if r.Pipeline == nil {
				return "n/a"
			}
			return fmt.Sprintf("%s (%s × raw JetStream)", Count(r.Pipeline.IngestRate), fmtRatio(Ratio(r.Pipeline.IngestRate, rateOf(r.JetStream))))
		}},
		{"kpi drain rate after full-speed posting (events/s)", func(r *Result) string {
			if r.Pipeline == nil || r.Pipeline.DrainRate == 0 {
				return "n/a"
			}
			return Count(r.Pipeline.DrainRate)
		}},
		{"full speed: kpi backlog, max (msgs), trend while posting", func(r *Result) string {
			if r.Pipeline == nil {
				return "n/a"
			}
			return fmt.Sprintf("%s, %s", Count(float64(r.Pipeline.Lag.Max)), r.Pipeline.Lag.TrendString())
		}},
		{fmt.Sprintf("full speed: POST of %d events, p50 / p99 (ms)", first.Batch), func(r *Result) string {
			if r.Pipeline == nil {
				return "n/a"
			}
			return pq(r.Pipeline.Post)
		}},
		{fmt.Sprintf("**POST → KPI readable over gRPC at %s events/s, p50 / p99 (ms)**", Count(float64(first.Rate))), func(r *Result) string {
			if r.Latency == nil || r.Latency.Visible.N == 0 {
				return "n/a"
			}
			s := "**" + pq(r.Latency.Visible) + "**"
			if r.Latency.TimedOut > 0 {
				s += fmt.Sprintf(" (%d of %d probes timed out)", r.Latency.TimedOut, r.Latency.Probes)
			}
			return s
		}},
		{"fixed rate: rate achieved (events/s)", func(r *Result) string {
			if r.Latency == nil {
				return "n/a"
			}
			if !r.Latency.RateHeld() {
				return Count(r.Latency.AchievedRate) + " (target not held)"
			}
			return Count(r.Latency.AchievedRate)
		}},
		{"fixed rate: POST p50 / p99 (ms)", func(r *Result) string {
			if r.Latency == nil {
				return "n/a"
			}
			return pq(r.Latency.Post)
		}},
		{"fixed rate: kpi backlog, max (msgs), trend", func(r *Result) string {
			if r.Latency == nil {
				return "n/a"
			}
			kept, _ := r.Latency.Lag.KeptUp(float64(r.Latency.TargetRate))
			verdict := "kept up"
			if !kept {
				verdict = "fell behind"
			}
			return fmt.Sprintf("%s, %s (%s)", Count(float64(r.Latency.Lag.Max)), r.Latency.Lag.TrendString(), verdict)
		}},
		{queryName(0, "GetAgentKpis 24h") + ", p50 / p99 (ms)", query(0)},
		{queryName(1, "GetAgentKpis 30d") + ", p50 / p99 (ms)", query(1)},
		{queryName(2, "ListAgentKpis 30d") + ", p50 / p99 (ms)", query(2)},
		{"Redis memory per stored event (used_memory, bytes)", func(r *Result) string {
			if r.Memory == nil {
				return "n/a"
			}
			return Count(r.Memory.BytesPerEvent)
		}},
		{"JetStream TICKETS bytes per event", func(r *Result) string {
			if r.Memory == nil {
				return "n/a"
			}
			return Count(r.Memory.StreamPerMsg)
		}},
		{"**overload: kpi backlog max ÷ ingest's -max-backlog**", func(r *Result) string {
			if r.Overload == nil {
				return "n/a"
			}
			return fmt.Sprintf("**%s** (%s of %s)", fmtRatio(r.Overload.MaxRatio), Count(float64(r.Overload.Lag.Max)), Count(float64(r.Overload.Bound)))
		}},
		{"overload: requests answered 429 / 503 (share refused)", func(r *Result) string {
			if r.Overload == nil {
				return "n/a"
			}
			o := r.Overload
			return fmt.Sprintf("%s / %s of %s (%s)", Count(float64(o.TooMany)), Count(float64(o.Unavailable)), Count(float64(o.Requests)), fmtRatio(o.RefusedShare()))
		}},
		{"overload: accepted rate (events/s)", func(r *Result) string {
			if r.Overload == nil {
				return "n/a"
			}
			return fmt.Sprintf("%s (%s × raw JetStream)", Count(r.Overload.AcceptedRate), fmtRatio(Ratio(r.Overload.AcceptedRate, rateOf(r.JetStream))))
		}},
		{"overload: accepted events stored once and processed by kpi", func(r *Result) string {
			if r.Overload == nil {
				return "n/a"
			}
			o := r.Overload
			verdict := "yes"
			if !o.CountedOnce() {
				verdict = "NO"
			}
			return fmt.Sprintf("%s (%s accepted, %s stored)", verdict, Count(float64(o.AcceptedEvents)), Count(float64(o.StoredEvents)))
		}},
	}
	var b strings.Builder
	b.WriteString("| figure |")
	for _, r := range results {
		fmt.Fprintf(&b, " %s |", r.Label)
	}
	b.WriteString("\n|---|")
	for range results {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s |", row.name)
		for _, r := range results {
			fmt.Fprintf(&b, " %s |", row.cell(r))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\n%s agents in %d teams; full speed: %s events in batches of %d from %d concurrent posters; fixed rate: %s events/s for %.0f s with %.0f probe tickets/s. Everything (NATS, Redis, ingest, kpi, the load generator) ran on one machine: %s.\n",
		Count(float64(first.Agents)), first.Teams, Count(float64(first.Events)), first.Batch, first.Posters,
		Count(float64(first.Rate)), first.RateSeconds, first.ProbeRate, results[0].Machine)
	for _, r := range results {
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "\n- %s: FAILED %s", r.Label, e)
		}
		for _, n := range r.Extra {
			fmt.Fprintf(&b, "\n- %s: %s", r.Label, n)
		}
	}
	return b.String()
}

func rate(r *Rate) string {
	if r == nil {
		return "n/a"
	}
	return Count(r.PerSec)
}

func pq(q Quantiles) string {
	if q.N == 0 {
		return "n/a"
	}
	return fmtMS(q.P50) + " / " + fmtMS(q.P99)
}
