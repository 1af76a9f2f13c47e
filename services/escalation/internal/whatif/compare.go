package whatif

import (
	"cmp"
	"slices"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
)

// Real is an escalation that did fire, or a level it was raised to, as Fired.
type Real struct {
	ID string
	Fired
}

// Levels are what a stored escalation fired: its trigger at level 1, then the first time it
// reached each higher level. Repeats of a level are not levels.
func Levels(r *escalationstore.Record) []Real {
	at := func(level int32, t time.Time) Real {
		return Real{ID: r.ID, Fired: Fired{Rule: r.Rule, SubjectKind: r.Subject.Kind, SubjectID: r.Subject.ID, Level: level,
			Severity: r.Severity, At: t, Summary: r.Summary, Facts: r.Facts}}
	}
	out := []Real{at(1, r.TriggeredAt)}
	top := int32(1)
	for _, e := range r.Timeline {
		if e.Kind == tpv1.ChangeKind_CHANGE_KIND_RAISED && e.Level > top {
			top = e.Level
			out = append(out, at(e.Level, e.At))
		}
	}
	return out
}

// Diff is one line of the comparison.
type Diff struct {
	Fired
	Difference tpv1.Difference
	// EscalationID is the real escalation's, for SAME and REMOVED.
	EscalationID string
}

type match struct {
	rule, kind, id string
	level          int32
}

// Compare pairs what the simulation fired with what really fired by rule, subject and level,
// in time order within each: a pair is SAME, a simulated one left over ADDED, a real one left
// over REMOVED. The result is ordered by time, then rule, subject and level.
func Compare(fired []Fired, real []Real) []Diff {
	reals := map[match][]Real{}
	for _, r := range real {
		k := match{r.Rule, r.SubjectKind, r.SubjectID, r.Level}
		reals[k] = append(reals[k], r)
	}
	for _, rs := range reals {
		slices.SortStableFunc(rs, func(a, b Real) int { return a.At.Compare(b.At) })
	}
	sorted := slices.Clone(fired)
	slices.SortStableFunc(sorted, func(a, b Fired) int { return a.At.Compare(b.At) })
	out := make([]Diff, 0, len(fired)+len(real))
	for _, f := range sorted {
		k := match{f.Rule, f.SubjectKind, f.SubjectID, f.Level}
		if rs := reals[k]; len(rs) > 0 {
			out = append(out, Diff{Fired: f, Difference: tpv1.Difference_DIFFERENCE_SAME, EscalationID: rs[0].ID})
			reals[k] = rs[1:]
			continue
		}
		out = append(out, Diff{Fired: f, Difference: tpv1.Difference_DIFFERENCE_ADDED})
	}
	for _, rs := range reals {
		for _, r := range rs {
			out = append(out, Diff{Fired: r.Fired, Difference: tpv1.Difference_DIFFERENCE_REMOVED, EscalationID: r.ID})
		}
	}
	slices.SortStableFunc(out, func(a, b Diff) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.SubjectKind, b.SubjectKind),
			cmp.Compare(a.SubjectID, b.SubjectID), cmp.Compare(a.Level, b.Level), cmp.Compare(a.Difference, b.Difference))
	})
	return out
}
