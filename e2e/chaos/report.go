package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run did and found.
type Report struct {
	Config Config
	// Topology is the servers' description (Topology.Describe).
	Topology string
	Faults   []Fault
	// Tickets and Acked count the acknowledged tickets and their events; Unacked the tickets
	// never acknowledged; NotOffered those the load could not queue; Repeats the acknowledged
	// tickets posted again.
	Tickets, Acked, Unacked, NotOffered, Repeats int
	Answers                                      map[string]int
	// StreamMsgs is what TICKETS holds; Lost and Doubled count acknowledged events missing from it
	// or in it more than once.
	StreamMsgs, Lost, Doubled int
	// StreamRead says whether TICKETS could be read: Lost and Doubled mean nothing otherwise.
	StreamRead  bool
	KPIChecked  int
	Escalations int
	// Changes is what ESCALATIONS holds; Notified those that reached the receiver in exactly one
	// message, NotifiedTwice in more, DeadLettered those dead-lettered.
	Changes, Notified, NotifiedTwice, DeadLettered int
	DeadLetters                                    []string
	Settled                                        bool
	Problems                                       []string
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Print writes the report as tables.
func (r *Report) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "\nchaos run: seed %d, %s at %d events/s, a fault every ~%s of %s\n",
		c.Seed, c.Duration, c.Rate, c.Interval, strings.Join(c.Kinds, ","))
	fmt.Fprintf(w, "topology: %s\n\n", r.Topology)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\ttarget\tat\toutage\tfirst 2xx after\tlag 0 after\tnote")
	start := time.Time{}
	if len(r.Faults) > 0 {
		start = r.Faults[0].Start
	}
	since := func(from, to time.Time) string {
		if to.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%.1fs", to.Sub(from).Seconds())
	}
	for _, f := range r.Faults {
		note := f.Note
		if f.NotInjected != "" {
			note = "not injected: " + f.NotInjected
		}
		if f.Err != nil {
			note = "harness error: " + f.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t+%.1fs\t%s\t%s\t%s\t%s\n", f.Kind, f.Target, f.Start.Sub(start).Seconds(),
			since(f.Start, f.Healed), since(f.Healed, f.FirstAck), since(f.Healed, f.LagZero), note)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "kind\tinjected\tnot injected\tfirst 2xx after (max)\tlag 0 after (max)")
	for _, k := range Kinds {
		var inj, not int
		var ack, zero time.Duration
		missing := false
		for _, f := range r.Faults {
			if f.Kind != k {
				continue
			}
			if f.NotInjected != "" {
				not++
				continue
			}
			inj++
			if f.FirstAck.IsZero() || f.LagZero.IsZero() {
				missing = true
			}
			ack = max(ack, f.FirstAck.Sub(f.Healed))
			zero = max(zero, f.LagZero.Sub(f.Healed))
		}
		if inj+not == 0 {
			continue
		}
		mark := ""
		if missing {
			mark = " (some not seen before the next fault)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1fs\t%.1fs%s\n", k, inj, not, ack.Seconds(), zero.Seconds(), mark)
	}
	tw.Flush()
	fmt.Fprintln(w)
	var answers []string
	for s, n := range r.Answers {
		answers = append(answers, fmt.Sprintf("%s: %d", s, n))
	}
	sort.Strings(answers)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	lost, doubled := fmt.Sprint(r.Lost), fmt.Sprint(r.Doubled)
	if !r.StreamRead {
		lost, doubled = "not checked: TICKETS could not be read", "not checked"
	}
	rows := [][2]string{
		{"events acknowledged", fmt.Sprintf("%d (%d tickets; %d posted twice)", r.Acked, r.Tickets, r.Repeats)},
		{"tickets never acknowledged", fmt.Sprint(r.Unacked)},
		{"tickets not offered (senders busy)", fmt.Sprint(r.NotOffered)},
		{"ingest's answers", strings.Join(answers, ", ")},
		{"messages in TICKETS", fmt.Sprint(r.StreamMsgs)},
		{"lost", lost},
		{"doubled", doubled},
		{"KPI figures compared (agents + teams)", fmt.Sprint(r.KPIChecked)},
		{"tickets with escalations", fmt.Sprint(r.Escalations)},
		{"escalation changes in ESCALATIONS", fmt.Sprint(r.Changes)},
		{"notified once / more than once / dead-lettered", fmt.Sprintf("%d / %d / %d", r.Notified, r.NotifiedTwice, r.DeadLettered)},
		{"dead letters", fmt.Sprint(len(r.DeadLetters))},
		{"settled", fmt.Sprint(r.Settled)},
		{"problems", fmt.Sprint(len(r.Problems))},
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	tw.Flush()
	for _, d := range r.DeadLetters {
		fmt.Fprintf(w, "dead letter: %s\n", d)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
}
