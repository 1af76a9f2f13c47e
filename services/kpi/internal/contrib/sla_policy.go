package contrib

import (
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
	"github.com/ticketpulse/ticketpulse/services/platform/slaclock"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
)

// policySLA credits the first-response, next-response and resolution SLA as the rules file's SLA
// policies judge them: the policy the escalation service applies to the ticket (package
// slapolicy: the first that matches the ticket's latest priority, team, channel and tags), its
// clocks in that policy's business hours, stopped while the ticket is in a pausing status. A clock
// breaches once its working time reaches the target, as the escalation service escalates it, so
// every breach here is one the escalation service raised (or would have, had it been running).
//
//   - A first or next response ends its clock: met or breached by the working time used, credited
//     to the agent who replied, in the hour of the reply.
//   - A clock that ends without a reply (the ticket was solved) or still runs counts only when it
//     has breached, which is known once some event of the ticket is past the deadline; it is
//     credited to the assignee as of the deadline, in the deadline's hour.
//   - The resolution clock counts from creation to the latest solve, going on across reopens: a
//     solved ticket is met or breached by the working time used, credited to the assignee at the
//     solve; an open one counts only when breached, as above.
//
// The policies are those in force when the ticket is computed; events are the only input that
// decides which tickets are computed, so a rules change applies to the tickets that change after
// it, and a rebuild recomputes every ticket with the rules then in force.
func policySLA(c *Contribution, h *history, p *slapolicy.Policy) {
	if p == nil {
		return
	}
	last := h.last()
	targets, ok := p.TargetsFor(last.priority)
	if !ok {
		return
	}
	w := slaWalk{c: c, h: h, p: p, clocks: slapolicy.Clocks{Outbound: h.outbound}}
	w.first.target, w.next.target, w.res.target = targets.FirstResponse, targets.NextResponse, targets.Resolution
	lastSolve := -1
	for i := range h.evs {
		e := &h.evs[i]
		at := time.UnixMilli(e.AtMillis)
		w.overdue(at)
		before := w.clocks
		// An answered call is a reply to the clocks as to every kpi figure (slapolicy.IsReply).
		ev := e.slaEvent()
		w.clocks.Apply(p, ev)
		reply := slapolicy.IsReply(ev) && before.Started
		if before.FirstWaiting() && !w.clocks.FirstWaiting() {
			w.end(&w.first, w.clocks.First, reply, i, bucket.SLAMet, bucket.SLABreached)
		}
		if before.NextWaiting && !w.clocks.NextWaiting {
			w.end(&w.next, w.clocks.Next, reply, i, bucket.NextSLAMet, bucket.NextSLABreached)
		}
		if before.ResolutionWaiting() && !w.clocks.ResolutionWaiting() {
			lastSolve = i
		}
	}
	// Clocks still running count when they have breached.
	if w.clocks.FirstWaiting() {
		w.breachedUnanswered(&w.first, bucket.SLABreached)
	}
	if w.clocks.NextWaiting {
		w.breachedUnanswered(&w.next, bucket.NextSLABreached)
	}
	switch {
	case w.res.target <= 0:
	case w.clocks.ResolutionWaiting():
		w.breachedUnanswered(&w.res, bucket.ResolutionSLABreached)
	case lastSolve >= 0:
		e, at := &h.evs[lastSolve], h.at[lastSolve]
		counter := bucket.ResolutionSLAMet
		if w.clocks.Resolution.Elapsed(p.Calendar, time.UnixMilli(e.AtMillis)) >= w.res.target {
			counter = bucket.ResolutionSLABreached
		}
		c.credit(at.agent, at.team, e.AtMillis, CounterField(counter), 1)
	}
}

// ticketPolicy is the SLA policy of the ticket: the first that matches its latest priority, team,
// channel and tags, as the escalation service matches it; nil when none does.
func ticketPolicy(h *history, policies []*slapolicy.Policy) *slapolicy.Policy {
	var tk slapolicy.Ticket
	last := h.last()
	tk.Team, tk.Priority = last.team, last.priority
	for i := range h.evs {
		if e := &h.evs[i]; e.Channel != "" {
			tk.Channel = e.Channel
		}
		if e := &h.evs[i]; e.Tags != "" {
			tk.Tags = strings.Split(e.Tags, TagSep)
		}
	}
	return slapolicy.First(policies, tk)
}

// businessHours credits first response and resolution time in business hours: the same samples
// as the calendar-time figures (firstResponse, resolution), measured in the calendar of the
// ticket's SLA policy. Pauses do not count here (they are the SLA's, not the hours'); a ticket
// without a policy, a policy without a calendar, or a service without a rules file counts every
// hour, so the two figures have the same samples and differ only by the hours off.
func businessHours(c *Contribution, h *history, p *slapolicy.Policy) {
	if h.created == nil {
		return
	}
	var cal *calendar.Calendar
	if p != nil {
		cal = p.Calendar
	}
	since := time.UnixMilli(h.created.AtMillis)
	elapsed := func(at int64) int64 {
		if at <= h.created.AtMillis {
			return at - h.created.AtMillis
		}
		return cal.Elapsed(since, time.UnixMilli(at)).Milliseconds()
	}
	if h.firstReply >= 0 && !h.outbound {
		e, at := &h.evs[h.firstReply], h.at[h.firstReply]
		c.duration(replier(e), at.team, e.AtMillis, bucket.BusinessFirstResponse, bucket.BusinessFirstCount, bucket.BusinessFirstSumMillis, elapsed(e.AtMillis))
	}
	if i := lastSolve(h); i >= 0 {
		e, at := &h.evs[i], h.at[i]
		c.duration(at.agent, at.team, e.AtMillis, bucket.BusinessResolution, bucket.BusinessResolutionCount, bucket.BusinessResolutionSumMillis, elapsed(e.AtMillis))
	}
}

// slaWalk is the replay of one ticket's SLA clocks.
type slaWalk struct {
	c                *Contribution
	h                *history
	p                *slapolicy.Policy
	clocks           slapolicy.Clocks
	first, next, res slaTarget
}

// slaTarget is one clock's target and, once the clock has reached it, when (Unix ms; 0: not yet).
type slaTarget struct {
	target   time.Duration
	deadline int64
}

// overdue records the deadline of every clock that is still counting and has reached its target
// by at (the instant of the next event).
func (w *slaWalk) overdue(at time.Time) {
	for _, k := range []struct {
		t       *slaTarget
		clock   slaclock.Clock
		waiting bool
	}{
		{&w.first, w.clocks.First, w.clocks.FirstWaiting()},
		{&w.next, w.clocks.Next, w.clocks.NextWaiting},
		{&w.res, w.clocks.Resolution, w.clocks.ResolutionWaiting()},
	} {
		if !k.waiting || k.t.target <= 0 || k.t.deadline != 0 || k.clock.Elapsed(w.p.Calendar, at) < k.t.target {
			continue
		}
		due, ok := k.clock.Due(w.p.Calendar, k.t.target, 1)
		if !ok {
			// Reached while it was paused: only possible at the instant it paused.
			due = at
		}
		k.t.deadline = due.UnixMilli()
	}
}

// end judges a response clock that stopped at evs[i]: by a reply (met or breached, to the agent
// who replied) or by a solve (breached only).
func (w *slaWalk) end(t *slaTarget, clock slaclock.Clock, reply bool, i int, met, breached bucket.Counter) {
	defer func() { t.deadline = 0 }()
	if t.target <= 0 {
		return
	}
	if !reply {
		w.breachedUnanswered(t, breached)
		return
	}
	e := &w.h.evs[i]
	counter := met
	if clock.Elapsed(w.p.Calendar, time.UnixMilli(e.AtMillis)) >= t.target {
		counter = breached
	}
	w.c.credit(replier(e), w.h.at[i].team, e.AtMillis, CounterField(counter), 1)
}

// breachedUnanswered credits a clock that breached without an answer to the assignee as of its
// deadline.
func (w *slaWalk) breachedUnanswered(t *slaTarget, breached bucket.Counter) {
	if t.target <= 0 || t.deadline == 0 {
		return
	}
	at := w.h.asOf(t.deadline)
	w.c.credit(at.agent, at.team, t.deadline, CounterField(breached), 1)
}
