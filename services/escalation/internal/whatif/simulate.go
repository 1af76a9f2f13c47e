// Package whatif is the escalation service's what-if: it replays a time range of a tenant's
// ticket events through the live service's judge with a given set of rules, entirely in memory,
// and compares what would have fired with what did.
//
// Simulated time is event time. Events are applied in the order they occurred (equal instants in
// stream order), and the wake-ups the judge asks for (an SLA clock reaching at risk or breach) and
// the raises of unacknowledged escalations are in-memory deadlines fired as simulated time
// passes them, each before the events of its instant, as a live timer would be. Nothing is
// stored, scheduled, published or sent.
package whatif

import (
	"cmp"
	"container/heap"
	"context"
	"slices"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/engine"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/judge"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
)

// Event is one replayed ticket event: its ticket, its stream sequence (which orders events of
// one instant) and what the judge reads.
type Event struct {
	Ticket string
	Seq    uint64
	judge.Event
}

// Fired is an escalation the simulation opened (level 1), or a level it raised one to.
type Fired struct {
	Rule        string
	SubjectKind string
	SubjectID   string
	Level       int32
	Severity    tpv1.Severity
	At          time.Time
	Summary     string
	Facts       []judge.Fact
}

// Run is what one simulation judges.
type Run struct {
	Tenant *rulesfile.Tenant
	// From and To bound what is reported, [From, To). Events before From are the tickets'
	// history: judged like the rest, so the tickets' clocks are right, but not reported.
	From, To time.Time
	// Horizon is the service's -history-horizon, for escalation policies without their own.
	Horizon time.Duration
	// Max is the most escalations reported; at the one past it the simulation stops.
	Max int
}

// Result is what a simulation fired.
type Result struct {
	// Fired is in the order it fired.
	Fired []Fired
	// End is where the simulation stopped: To, or with Truncated the instant at which one more
	// escalation than Max would have fired (Fired holds only those before it).
	End       time.Time
	Truncated bool
	// NotSimulated names the tenant's KPI rules (kpi, kpi_baseline): they judge KPI snapshots,
	// and the KPI stream keeps only each agent's and team's latest one, not one as of each
	// simulated instant.
	NotSimulated []string
}

// checkEvery is how many events go by between looks at the context.
const checkEvery = 1024

// Simulate replays events (any order; they are sorted by time, then stream sequence) through the
// judge with run's rules.
func Simulate(ctx context.Context, run Run, events []Event) (Result, error) {
	slices.SortStableFunc(events, func(a, b Event) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	s := &sim{run: run, tickets: map[string]*ticketState{}, open: map[key]*escState{}, had: map[key]bool{}, end: run.To}
	for _, q := range run.Tenant.Quality {
		if q.Kind == rulesfile.KindKPI || q.Kind == rulesfile.KindKPIBaseline {
			s.res.NotSimulated = append(s.res.NotSimulated, q.Name)
		}
	}
	for i, ev := range events {
		if i%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return Result{}, err
			}
		}
		if !ev.At.Before(run.To) {
			break
		}
		// A deadline of this instant fires first: live, the timer is due before the event can
		// arrive.
		s.advance(ev.At, true)
		if s.stopped {
			break
		}
		ts := s.ticket(ev.Ticket)
		ts.events = append(ts.events, ev.Event)
		// The ticket's events of one instant are judged together, as one batch would be.
		if i+1 < len(events) && events[i+1].Ticket == ev.Ticket && events[i+1].At.Equal(ev.At) {
			continue
		}
		s.judge(ev.Ticket, ev.At)
		if s.stopped {
			break
		}
	}
	if !s.stopped {
		s.advance(run.To, false)
	}
	s.res.End = s.end
	s.res.Fired = slices.DeleteFunc(s.res.Fired, func(f Fired) bool { return !f.At.Before(s.end) })
	return s.res, nil
}

type key struct{ rule, ticket string }

type ticketState struct {
	events []judge.Event
	// wake is the instant the latest judgement asked to be judged again; zero for none.
	wake time.Time
}

// escState is an open simulated escalation.
type escState struct {
	gen   int64
	level int32
	pol   *rulesfile.EscalationPolicy
	// entry is its level's index in the result, -1 when not reported (before From).
	entry int
	cond  judge.Condition
}

// deadline is a ticket's wake-up (rule empty) or an escalation's raise (gen names which one).
type deadline struct {
	at     time.Time
	ticket string
	rule   string
	gen    int64
}

type deadlines []deadline

func (d deadlines) Len() int { return len(d) }
func (d deadlines) Less(i, j int) bool {
	if c := d[i].at.Compare(d[j].at); c != 0 {
		return c < 0
	}
	if d[i].ticket != d[j].ticket {
		return d[i].ticket < d[j].ticket
	}
	return d[i].rule < d[j].rule
}
func (d deadlines) Swap(i, j int) { d[i], d[j] = d[j], d[i] }
func (d *deadlines) Push(x any)   { *d = append(*d, x.(deadline)) }
func (d *deadlines) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}

type sim struct {
	run     Run
	tickets map[string]*ticketState
	open    map[key]*escState
	// had is what the live store's pointer keys say: the rule ever escalated on the ticket.
	had     map[key]bool
	due     deadlines
	gen     int64
	res     Result
	stopped bool
	end     time.Time
}

func (s *sim) ticket(id string) *ticketState {
	ts, ok := s.tickets[id]
	if !ok {
		ts = &ticketState{}
		s.tickets[id] = ts
	}
	return ts
}

// advance fires, in order, the deadlines before t (at t too with inclusive).
func (s *sim) advance(t time.Time, inclusive bool) {
	for len(s.due) > 0 && !s.stopped {
		d := s.due[0]
		if d.at.After(t) || !inclusive && d.at.Equal(t) {
			return
		}
		heap.Pop(&s.due)
		if d.rule == "" {
			if ts := s.tickets[d.ticket]; ts != nil && ts.wake.Equal(d.at) {
				s.judge(d.ticket, d.at)
			}
			continue
		}
		if e := s.open[key{d.rule, d.ticket}]; e != nil && e.gen == d.gen {
			e.level++
			s.emit(e, d.rule, d.ticket, d.at)
			s.planRaise(e, d.rule, d.ticket, d.at)
		}
	}
}

// judge judges the ticket at now as the engine's reconciler does, and keeps what it would
// store in memory.
func (s *sim) judge(ticket string, now time.Time) {
	ts := s.ticket(ticket)
	j := judge.Ticket(ticket, ts.events, s.run.Tenant, now)
	ts.wake = j.Wake
	if !j.Wake.IsZero() {
		heap.Push(&s.due, deadline{at: j.Wake, ticket: ticket})
	}
	for _, c := range j.Conditions {
		k := key{c.Rule, ticket}
		e := s.open[k]
		switch {
		case c.Active && e == nil:
			pol, _ := s.run.Tenant.EscalationPolicy(c.Escalation)
			// Judged at its own instant, a breach is history only when the judge dates it
			// further back than the horizon: what a live service would have done then.
			if !s.had[k] && engine.Historical(c, pol, s.run.Horizon, now) {
				continue
			}
			s.had[k] = true
			s.gen++
			e = &escState{gen: s.gen, level: 1, pol: pol, cond: c}
			s.open[k] = e
			s.emit(e, c.Rule, ticket, now)
			s.planRaise(e, c.Rule, ticket, now)
		case c.Active:
			// Still open: the latest verdict (at risk → breached) is what the escalation shows.
			e.cond = c
			if e.entry >= 0 {
				f := &s.res.Fired[e.entry]
				f.Severity, f.Summary, f.Facts = c.Severity, c.Summary, facts(c.Facts)
			}
		case e != nil:
			delete(s.open, k)
		}
		if s.stopped {
			return
		}
	}
}

// planRaise plans the raise to the next level after the level's acknowledgement timeout, as
// the store does. Nobody acknowledges in a simulation; the last level's repeats re-notify the
// same level and are not simulated.
func (s *sim) planRaise(e *escState, rule, ticket string, at time.Time) {
	if e.pol == nil || int(e.level) >= len(e.pol.Levels) {
		return
	}
	if wait := e.pol.Levels[e.level-1].AckTimeout; wait > 0 {
		heap.Push(&s.due, deadline{at: at.Add(wait), ticket: ticket, rule: rule, gen: e.gen})
	}
}

func (s *sim) emit(e *escState, rule, ticket string, at time.Time) {
	e.entry = -1
	if at.Before(s.run.From) {
		return
	}
	if len(s.res.Fired) >= s.run.Max {
		s.stopped, s.res.Truncated, s.end = true, true, at
		return
	}
	e.entry = len(s.res.Fired)
	s.res.Fired = append(s.res.Fired, Fired{
		Rule: rule, SubjectKind: escalationstore.Ticket, SubjectID: ticket, Level: e.level, Severity: e.cond.Severity,
		At: at, Summary: e.cond.Summary, Facts: facts(e.cond.Facts),
	})
}

func facts(fs []judge.Fact) []judge.Fact { return slices.Clone(fs) }
