package contrib

import (
	"slices"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Compute returns the contribution of one ticket's events. events may be in any order and may hold
// duplicates (same Key); the result depends only on the set. Each step below computes the KPIs of
// one definition of DESIGN.md §5 from the ticket's history.
func Compute(events []Event, sla SLA) Contribution {
	// A ticket's figures number about eight per event (36-42 for a solved ticket of five):
	// sized for that, the map is not grown step by step on the write path.
	c := Contribution{Values: make(map[Key]int64, 8*len(events))}
	var buf [16]fields
	h := walkHistory(orderEvents(events), buf[:])
	if len(h.evs) == 0 {
		return c
	}
	c.Ticket.FirstResponseMillis, c.Ticket.ResolutionMillis = -1, -1
	// With a rules file its SLA policies judge every SLA figure; the calendar-time targets judge
	// only the first response otherwise.
	calendarSLA := sla
	var policy *slapolicy.Policy
	if sla.Rules {
		calendarSLA = SLA{}
		policy = ticketPolicy(&h, sla.Policies)
		policySLA(&c, &h, policy)
	}
	firstResponse(&c, &h, calendarSLA)
	nextResponses(&c, &h)
	if i := lastSolve(&h); i >= 0 {
		resolution(&c, &h, i)
		oneTouch(&c, &h, i)
	}
	solves(&c, &h)
	reopens(&c, &h)
	csat(&c, &h)
	qaReviews(&c, &h)
	calls(&c, &h, sla)
	assignments(&c, &h)
	breachWithoutReply(&c, &h, calendarSLA)
	businessHours(&c, &h, policy)
	c.ticketRow(&h)
	return c
}

// firstResponse credits first response time and the first-response SLA (§5 "first response time",
// "SLA first response"): creation to the first public agent reply, to the agent who sent it. An
// outbound ticket has no sample.
func firstResponse(c *Contribution, h *history, sla SLA) {
	if h.firstReply < 0 || h.created == nil || h.outbound {
		return
	}
	e, at := &h.evs[h.firstReply], h.at[h.firstReply]
	wait := e.AtMillis - h.created.AtMillis
	c.duration(replier(e), at.team, e.AtMillis, bucket.FirstResponse, bucket.FirstCount, bucket.FirstSumMillis, wait)
	c.figure(FirstResponseFigure, replier(e), at.team, e.AtMillis)
	c.Ticket.FirstResponseMillis, c.Ticket.FirstResponseAt = max(wait, 0), e.AtMillis
	if target := sla.target(at.priority); target > 0 {
		counter := bucket.SLAMet
		if wait > target.Milliseconds() {
			counter = bucket.SLABreached
		}
		c.credit(replier(e), at.team, e.AtMillis, CounterField(counter), 1)
	}
}

// nextResponses credits next response times (§5 "next response time"): the first unanswered
// customer message to the next public agent reply, to the agent who sent it. Before the first reply
// the customer is waiting for a first response, which is measured from creation; a resolution
// answers whatever was waiting.
func nextResponses(c *Contribution, h *history) {
	waiting, since := false, int64(0)
	for i := range h.evs {
		e := &h.evs[i]
		switch {
		case isPublicReply(e):
			if waiting && i != h.firstReply {
				c.duration(replier(e), h.at[i].team, e.AtMillis, bucket.NextResponse, bucket.NextCount, bucket.NextSumMillis, e.AtMillis-since)
			}
			waiting = false
		case e.Type == tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE:
			replied := h.firstReply >= 0 && h.firstReply < i
			if (replied || h.outbound) && !waiting {
				waiting, since = true, e.AtMillis
			}
		case h.solves(i):
			waiting = false
		}
	}
}

// lastSolve returns the index of the ticket's latest resolution, -1 if it was never solved: a
// re-solve after a reopen replaces the earlier resolution.
func lastSolve(h *history) int {
	for i := len(h.evs) - 1; i >= 0; i-- {
		if h.solves(i) {
			return i
		}
	}
	return -1
}

// resolution credits the resolution and its time (§5 "resolution time"): creation to the latest
// resolution evs[i], to the assignee at solve time.
func resolution(c *Contribution, h *history, i int) {
	e, at := &h.evs[i], h.at[i]
	c.credit(at.agent, at.team, e.AtMillis, CounterField(bucket.Resolutions), 1)
	c.figure(ResolutionFigure, at.agent, at.team, e.AtMillis)
	c.Ticket.ResolvedAt = e.AtMillis
	if h.created != nil {
		c.Ticket.ResolutionMillis = max(e.AtMillis-h.created.AtMillis, 0)
		c.duration(at.agent, at.team, e.AtMillis, bucket.Resolution, bucket.ResolutionCount, bucket.ResolutionSumMillis, e.AtMillis-h.created.AtMillis)
	}
}

// oneTouch credits a resolution evs[i] reached with at most one public agent reply (§5 "one-touch
// resolution") to the assignee at solve time.
func oneTouch(c *Contribution, h *history, i int) {
	replies := 0
	for j := range h.evs[:i] {
		if isPublicReply(&h.evs[j]) {
			replies++
		}
	}
	if replies <= 1 {
		c.credit(h.at[i].agent, h.at[i].team, h.evs[i].AtMillis, CounterField(bucket.OneTouch), 1)
	}
}

// solves credits every resolution, a re-solve included, in its hour to the assignee and team at
// solve time: the resolutions reopens are counted against, so reopen_rate = reopens ÷ solves stays
// the share of an agent's own resolutions that did not hold, however often a ticket bounced.
func solves(c *Contribution, h *history) {
	for i := range h.evs {
		if h.solves(i) {
			c.credit(h.at[i].agent, h.at[i].team, h.evs[i].AtMillis, CounterField(bucket.Solves), 1)
		}
	}
}

// reopens credits every reopen (§5 "reopen rate"), in its hour, to the agent and team credited
// with the resolution it undoes: the assignee and team at the latest solve before it, whoever the
// ticket was reassigned to or closed by since, so reopen_rate is the share of an agent's own
// resolutions that did not hold. A ticket that was never solved before (it started out solved) has
// no such resolution; its reopen goes to the assignee just before it.
func reopens(c *Contribution, h *history) {
	undone := -1
	for i := range h.evs {
		switch {
		case h.solves(i):
			undone = i
		case h.reopens(i):
			by := h.before(i)
			if undone >= 0 {
				by = h.at[undone]
			}
			c.credit(by.agent, by.team, h.evs[i].AtMillis, CounterField(bucket.Reopens), 1)
			c.figure(ReopenFigure, by.agent, by.team, h.evs[i].AtMillis)
			c.Ticket.Reopens++
		}
	}
}

// qaReviews credits each QA review's latest score (a re-score replaces the earlier one, as a
// re-rating does) to the reviewed agent and team named in the review, in the hour it was scored.
// A review whose agent is unknown (an older producer) counts for the team and the unassigned
// figures, like any figure without an agent.
func qaReviews(c *Contribution, h *history) {
	latest := map[uint64]int{}
	var order []uint64
	for i := range h.evs {
		e := &h.evs[i]
		if e.Type != tpv1.EventType_EVENT_TYPE_QA_SCORED || e.QAReview == 0 {
			continue
		}
		if _, ok := latest[e.QAReview]; !ok {
			order = append(order, e.QAReview)
		}
		latest[e.QAReview] = i // the events are in order: the last one is the latest score
	}
	for _, r := range order {
		e := &h.evs[latest[r]]
		c.credit(e.QAAgent, e.QATeam, e.AtMillis, CounterField(bucket.QACount), 1)
		c.credit(e.QAAgent, e.QATeam, e.AtMillis, CounterField(bucket.QAScoreSum), int64(e.QAScore))
		c.credit(e.QAAgent, e.QATeam, e.AtMillis, BinField(bucket.QAScore, bucket.QABin(int64(e.QAScore))), 1)
		if e.QAAutoFail {
			c.credit(e.QAAgent, e.QATeam, e.AtMillis, CounterField(bucket.QAAutoFails), 1)
		}
	}
}

// csat credits the ticket's latest valid rating (§5 "CSAT": a re-rating replaces the earlier one)
// to the assignee at rating time.
func csat(c *Contribution, h *history) {
	for i := len(h.evs) - 1; i >= 0; i-- {
		e := &h.evs[i]
		if e.Type != tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED || e.Score < 1 || e.Score > 5 {
			continue
		}
		at := h.at[i]
		c.credit(at.agent, at.team, e.AtMillis, CounterField(bucket.CSATCount), 1)
		c.figure(RatingFigure, at.agent, at.team, e.AtMillis)
		c.Ticket.Rating = e.Score
		c.credit(at.agent, at.team, e.AtMillis, CounterField(bucket.CSATScoreSum), int64(e.Score))
		if e.Score >= 4 {
			c.credit(at.agent, at.team, e.AtMillis, CounterField(bucket.CSATPositive), 1)
		}
		return
	}
}

// assignments credits §5 "assigned" and "resolution rate": every agent and team the ticket was ever
// assigned to, in the hour it first was, and whether the ticket is now solved with them.
func assignments(c *Contribution, h *history) {
	var agents, teams []string
	now := h.last()
	nowResolved := resolved(now.status)
	for i := range h.evs {
		e := &h.evs[i]
		if id := e.Assignee; setsAssignee(e) && id != "" && !slices.Contains(agents, id) {
			agents = append(agents, id)
			c.add(bucket.Agent, id, e.AtMillis, CounterField(bucket.Assigned), 1)
			c.member(id, "", e.AtMillis)
			if nowResolved && now.agent == id {
				c.add(bucket.Agent, id, e.AtMillis, CounterField(bucket.AssignedNowResolved), 1)
			}
		}
		if id := e.Team; id != "" && !slices.Contains(teams, id) {
			teams = append(teams, id)
			c.add(bucket.Team, id, e.AtMillis, CounterField(bucket.Assigned), 1)
			if nowResolved && now.team == id {
				c.add(bucket.Team, id, e.AtMillis, CounterField(bucket.AssignedNowResolved), 1)
			}
		}
	}
}

// breachWithoutReply credits a first-response SLA breach with no reply at all (§5 "SLA first
// response": breaches with no reply go to the assignee). It is known once some event is later than
// the deadline (the ticket was solved late, the customer wrote again, ...) and credited to the
// assignee as of the deadline. Until then the escalation service's timers are what see it.
func breachWithoutReply(c *Contribution, h *history, sla SLA) {
	if h.created == nil || h.outbound || h.firstReply >= 0 {
		return
	}
	target := sla.target(h.last().priority)
	if target <= 0 {
		return
	}
	deadline := h.created.AtMillis + target.Milliseconds()
	if h.evs[len(h.evs)-1].AtMillis > deadline {
		at := h.asOf(deadline)
		c.credit(at.agent, at.team, deadline, CounterField(bucket.SLABreached), 1)
	}
}

// Diff returns next − prev, without zero entries.
func Diff(prev, next map[Key]int64) map[Key]int64 {
	d := make(map[Key]int64)
	for k, v := range next {
		if dv := v - prev[k]; dv != 0 {
			d[k] = dv
		}
	}
	for k, v := range prev {
		if _, ok := next[k]; !ok {
			d[k] = -v
		}
	}
	return d
}
