package measure

import (
	"fmt"
	"io"
	"math"
)

// The durable-ingest goal (issue: durable ingest at full speed): with sync "always", POSTs of
// 100 events reach KPIs at this rate, and at this multiple of the raw publish rate measured on
// the same server in the same run, where every message is one fsync.
const (
	DurableGoalRate  = 15_000
	DurableGoalRatio = 2.0
)

// Durable is the durable-ingest figure of a run on a server with sync "always": the pipeline's
// POST → KPI-visible rate set against the raw one-fsync-per-message publish rate.
type Durable struct {
	Rate   float64 `json:"rate"`
	Raw    float64 `json:"raw"`
	Ratio  float64 `json:"ratio"`
	Batch  int     `json:"batch"`
	GoalOK bool    `json:"goal_met"`
}

// durable derives the figure from a run's results, or nil when the run is not on sync "always"
// or lacks either measurement.
func durable(r *Result) *Durable {
	if r.Settings.Sync != "always" || r.Pipeline == nil || r.JetStream == nil || r.JetStream.PerSec <= 0 {
		return nil
	}
	d := &Durable{Rate: r.Pipeline.VisibleRate, Raw: r.JetStream.PerSec, Batch: r.Settings.Batch}
	d.Ratio = Ratio(d.Rate, d.Raw)
	d.GoalOK = r.Pipeline.Drained && d.Rate >= DurableGoalRate && !math.IsNaN(d.Ratio) && d.Ratio >= DurableGoalRatio
	return d
}

func (d *Durable) verdict() string {
	if d.GoalOK {
		return "met"
	}
	return "NOT met"
}

func printDurable(out io.Writer, d *Durable) {
	fmt.Fprintf(out, "%-14s sync always: %s events/s POST of %d → KPI-visible = %s × raw one-fsync-per-message publish (%s msgs/s); goal ≥ %s events/s and ≥ %.0f ×: %s\n",
		"durable", Count(d.Rate), d.Batch, fmtRatio(d.Ratio), Count(d.Raw), Count(DurableGoalRate), DurableGoalRatio, d.verdict())
}
