// Package judge judges against a tenant's rules: a ticket on its events (the SLA clocks of the
// policy that matches it: first response, next response, resolution; and the ticket quality
// rules: bad rating, reopens), and an agent or team on its KPI snapshot (the kpi and kpi_baseline
// rules). A judgement is a pure function of its arguments and the instant: events arrive out of
// order and twice, and replicas judge the same ticket at different moments, so nothing here
// depends on what was judged before.
package judge

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
	"github.com/ticketpulse/ticketpulse/services/platform/eventorder"
	"github.com/ticketpulse/ticketpulse/services/platform/slaclock"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
)

// Event is the part of a ticket event the rules read.
type Event struct {
	ID   string
	Type tpv1.EventType
	At   time.Time
	// Sequence is the source's own order of the ticket's events (TicketEvent.sequence), 0 when
	// it gave none: it orders events of the same instant and type.
	Sequence  uint64
	ActorKind tpv1.ActorKind
	Public    bool
	Assignee  string
	Team      string
	Priority  tpv1.Priority
	Status    tpv1.TicketStatus
	Score     int32
	Comment   string
	Channel   string
	Tags      []string
	// CallDirection, CallAgent and CallTicket are a call event's direction, the agent the call is
	// with and the ticket it is linked to ("" for a call with no ticket); empty on other events.
	CallDirection tpv1.CallDirection
	CallAgent     string
	CallTicket    string
}

// EventOf is the part of the ticket event ev, stored under id, that the rules read.
func EventOf(id string, ev *tpv1.TicketEvent) Event {
	return Event{
		ID: id, Type: ev.GetType(), At: ev.GetOccurredAt().AsTime(), Sequence: ev.GetSequence(), ActorKind: ev.GetActor().GetKind(),
		Public: ev.GetPublic(), Assignee: ev.GetAssigneeId(), Team: ev.GetTeamId(), Priority: ev.GetPriority(),
		Status: ev.GetStatus(), Score: ev.GetSatisfaction().GetScore(), Comment: ev.GetSatisfaction().GetComment(),
		Channel: ev.GetChannel(), Tags: ev.GetTags(),
		CallDirection: ev.GetCall().GetDirection(), CallAgent: ev.GetCall().GetAgentId(), CallTicket: ev.GetCall().GetTicketId(),
	}
}

// isCall reports whether t is a call event's type.
func isCall(t tpv1.EventType) bool {
	switch t {
	case tpv1.EventType_EVENT_TYPE_CALL_OFFERED, tpv1.EventType_EVENT_TYPE_CALL_ANSWERED,
		tpv1.EventType_EVENT_TYPE_CALL_ABANDONED, tpv1.EventType_EVENT_TYPE_CALL_ENDED:
		return true
	}
	return false
}

// ofTicket keeps the events that are the ticket's: every event but those of a call not linked to
// it. A call with no ticket arrives under its call id as ticket_id (docs/events.md, "Calls"), so
// without this a call id equal to a ticket's id would answer that ticket; and a "ticket" that is
// only a call keeps no event that could start a clock. A call event stored without its call (by
// a version that did not keep it) says no link, so it is left out too: it was never a response.
func ofTicket(ticketID string, events []Event) []Event {
	keep := events[:0:0]
	for i := range events {
		if isCall(events[i].Type) && events[i].CallTicket != ticketID {
			continue
		}
		keep = append(keep, events[i])
	}
	return keep
}

// Condition is one rule's verdict on the ticket. Active conditions should have an open
// escalation; inactive ones resolve the escalation they had.
type Condition struct {
	Rule     string
	Active   bool
	Severity tpv1.Severity
	// Escalation names the escalation policy.
	Escalation string
	Summary    string
	Facts      []Fact
	// Labels name the ticket's team, agent, priority and policy, for routing.
	Labels map[string]string
	// Since is when an active condition became true: the deadline it passed (or its at-risk
	// share), the rating, the reopen that reached the rule's count. Zero when unknown.
	Since time.Time
}

// Judgement is the verdict on a ticket at one instant.
type Judgement struct {
	Conditions []Condition
	// Wake is the next instant at which a condition changes by the passing of time alone (an SLA
	// clock reaching "at risk" or its breach); zero when none will.
	Wake time.Time
}

// ticket is the ticket as its events describe it, replayed in order.
type ticket struct {
	id       string
	attrs    rulesfile.Ticket
	assignee string
	status   tpv1.TicketStatus
	reopens  int
	// reopenedAt holds when each reopen happened, in order.
	reopenedAt []time.Time
	rating     *Event
	outbound   bool
}

// Ticket replays events (any order, duplicates by id ignored) and judges the ticket at now.
func Ticket(ticketID string, events []Event, t *rulesfile.Tenant, now time.Time) Judgement {
	evs := ordered(ofTicket(ticketID, events))
	tk := describe(ticketID, evs)
	labels := map[string]string{"ticket": ticketID}
	if tk.attrs.Team != "" {
		labels["team"] = tk.attrs.Team
	}
	if tk.assignee != "" {
		labels["agent"] = tk.assignee
	}
	if tk.attrs.Priority != tpv1.Priority_PRIORITY_UNSPECIFIED {
		labels["priority"] = PriorityWord(tk.attrs.Priority)
	}

	var j Judgement
	if p := t.Policy(tk.attrs); p != nil {
		pl := clone(labels)
		pl["policy"] = p.Name
		j = judgeSLA(tk, evs, p, now, pl)
	} else {
		// No policy (any more): SLA escalations the ticket had are resolved.
		for _, rule := range []string{rulesfile.RuleFirstResponse, rulesfile.RuleNextResponse, rulesfile.RuleResolution} {
			j.Conditions = append(j.Conditions, Condition{Rule: rule, Labels: labels})
		}
	}
	for _, q := range t.Quality {
		switch q.Kind {
		case rulesfile.KindBadRating:
			j.Conditions = append(j.Conditions, badRating(tk, q, labels))
		case rulesfile.KindReopens:
			j.Conditions = append(j.Conditions, reopened(tk, q, labels))
		}
	}
	return j
}

// ordered puts a ticket's events in the one order every service uses (package eventorder): by
// time, then kind (a creation before the answer, the answer before the solve), then the
// source's sequence, then the id; and keeps the first of events with the same id. The order a
// helpdesk sent them in means nothing: any arrival order of the same events gives one history.
func ordered(events []Event) []Event {
	type keyed struct {
		key eventorder.Key
		ev  *Event
	}
	ks := make([]keyed, len(events))
	for i := range events {
		e := &events[i]
		ks[i] = keyed{eventorder.Key{AtMillis: e.At.UnixMilli(), Type: e.Type, Sequence: e.Sequence, ID: eventorder.IDHash(e.ID)}, e}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if c := eventorder.Compare(a.key, b.key); c != 0 {
			return c
		}
		// Two ids of one hash: the ids themselves decide, so the order stays total.
		return cmp.Compare(a.ev.ID, b.ev.ID)
	})
	evs := make([]Event, 0, len(ks))
	seen := make(map[string]struct{}, len(ks))
	for _, k := range ks {
		if _, dup := seen[k.ev.ID]; dup {
			continue
		}
		seen[k.ev.ID] = struct{}{}
		evs = append(evs, *k.ev)
	}
	return evs
}

func describe(id string, evs []Event) ticket {
	tk := ticket{id: id, status: tpv1.TicketStatus_TICKET_STATUS_UNSPECIFIED}
	for i := range evs {
		e := &evs[i]
		if e.Team != "" {
			tk.attrs.Team = e.Team
		}
		if e.Assignee != "" {
			tk.assignee = e.Assignee
		}
		if e.Priority != tpv1.Priority_PRIORITY_UNSPECIFIED {
			tk.attrs.Priority = e.Priority
		}
		if e.Channel != "" {
			tk.attrs.Channel = e.Channel
		}
		if len(e.Tags) > 0 {
			tk.attrs.Tags = e.Tags
		}
		switch e.Type {
		case tpv1.EventType_EVENT_TYPE_TICKET_CREATED:
			tk.outbound = e.ActorKind == tpv1.ActorKind_ACTOR_KIND_AGENT
			tk.status = statusOr(e.Status, tpv1.TicketStatus_TICKET_STATUS_NEW)
		case tpv1.EventType_EVENT_TYPE_STATUS_CHANGED:
			if solved(tk.status) && e.Status != tpv1.TicketStatus_TICKET_STATUS_UNSPECIFIED && !solved(e.Status) {
				tk.reopens++
				tk.reopenedAt = append(tk.reopenedAt, e.At)
			}
			tk.status = statusOr(e.Status, tk.status)
		case tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED:
			// A re-rating replaces the earlier one.
			tk.rating = e
		}
	}
	return tk
}

func statusOr(s, def tpv1.TicketStatus) tpv1.TicketStatus {
	if s == tpv1.TicketStatus_TICKET_STATUS_UNSPECIFIED {
		return def
	}
	return s
}

func solved(s tpv1.TicketStatus) bool {
	return s == tpv1.TicketStatus_TICKET_STATUS_SOLVED || s == tpv1.TicketStatus_TICKET_STATUS_CLOSED
}

// replay runs the policy's clocks (package slapolicy, shared with the KPI service's SLA figures)
// through the events. A response is what slapolicy.IsReply says, for kpi as here: a public agent
// message, or an inbound call on the ticket answered by a named agent.
func replay(tk ticket, evs []Event, p *rulesfile.Policy) slapolicy.Clocks {
	c := slapolicy.Clocks{Outbound: tk.outbound}
	for _, e := range evs {
		c.Apply(p, clockEvent(e))
	}
	return c
}

func clockEvent(e Event) slapolicy.Event {
	return slapolicy.Event{
		Type: e.Type, At: e.At, ActorKind: e.ActorKind, Public: e.Public, Status: e.Status,
		CallDirection: e.CallDirection, CallAgent: e.CallAgent,
	}
}

// reached is when the clock pick chooses last reached share of target while it ran: the
// instant a paused clock, which cannot say when it is due, crossed it. A clock that starts
// over (the next response, after a reply and a new customer message) forgets what an earlier
// period reached. Zero when it never did. It replays the events again, so it is only for the
// rare condition that is active on a paused clock; without it such a breach would have no
// instant, and an imported ticket left pending long after its breach would page someone.
func reached(tk ticket, evs []Event, p *rulesfile.Policy, pick func(*slapolicy.Clocks) slaclock.Clock, target time.Duration, share float64) time.Time {
	threshold := time.Duration(float64(target) * share)
	c := slapolicy.Clocks{Outbound: tk.outbound}
	var at time.Time
	for _, e := range evs {
		// Between the previous event and this one the clock ran or stood still as it was.
		if clk := pick(&c); at.IsZero() && clk.Elapsed(p.Calendar, e.At) >= threshold {
			if due, ok := clk.Due(p.Calendar, target, share); ok {
				at = due
			}
		}
		c.Apply(p, clockEvent(e))
		if pick(&c).Elapsed(p.Calendar, e.At) < threshold {
			at = time.Time{}
		}
	}
	return at
}

// judgeSLA turns each clock into a condition and finds when the next one changes.
func judgeSLA(tk ticket, evs []Event, p *rulesfile.Policy, now time.Time, labels map[string]string) Judgement {
	var j Judgement
	targets, ok := p.TargetsFor(tk.attrs.Priority)
	c := replay(tk, evs, p)
	for _, clk := range []struct {
		rule    string
		what    string
		target  time.Duration
		clock   slaclock.Clock
		waiting bool
		pick    func(*slapolicy.Clocks) slaclock.Clock
	}{
		{rulesfile.RuleFirstResponse, "first response", targets.FirstResponse, c.First, c.FirstWaiting(),
			func(c *slapolicy.Clocks) slaclock.Clock { return c.First }},
		{rulesfile.RuleNextResponse, "next response", targets.NextResponse, c.Next, c.NextWaiting,
			func(c *slapolicy.Clocks) slaclock.Clock { return c.Next }},
		{rulesfile.RuleResolution, "resolution", targets.Resolution, c.Resolution, c.ResolutionWaiting(),
			func(c *slapolicy.Clocks) slaclock.Clock { return c.Resolution }},
	} {
		cond := Condition{Rule: clk.rule, Escalation: p.Escalation, Labels: labels}
		if !ok || clk.target <= 0 || !clk.waiting {
			j.Conditions = append(j.Conditions, cond)
			continue
		}
		elapsed := clk.clock.Elapsed(p.Calendar, now)
		shares := []float64{1}
		if p.AtRisk > 0 {
			shares = append(shares, p.AtRisk)
		}
		for _, share := range shares {
			if at, ok := clk.clock.Due(p.Calendar, clk.target, share); ok && at.After(now) && (j.Wake.IsZero() || at.Before(j.Wake)) {
				j.Wake = at
			}
		}
		breached := elapsed >= clk.target
		atRisk := p.AtRisk > 0 && elapsed >= time.Duration(float64(clk.target)*p.AtRisk)
		if breached || atRisk {
			cond.Active = true
			cond.Severity = tpv1.Severity_SEVERITY_WARNING
			state := "at risk"
			share := p.AtRisk
			if breached {
				cond.Severity, state, share = tpv1.Severity_SEVERITY_CRITICAL, "breached", 1
			}
			if at, ok := clk.clock.Due(p.Calendar, clk.target, share); ok {
				cond.Since = at
			} else {
				// Paused: it reached share while it ran.
				cond.Since = reached(tk, evs, p, clk.pick, clk.target, share)
			}
			cond.Summary = fmt.Sprintf("ticket %s: %s SLA %s, %s of %s used%s", tk.id, clk.what, state,
				round(elapsed), round(clk.target), hoursNote(p.Calendar, p.CalendarName))
			cond.Facts = []Fact{
				{Name: "policy", Value: p.Name},
				{Name: "target", Value: round(clk.target).String()},
				{Name: "elapsed", Value: round(elapsed).String()},
				{Name: "state", Value: state},
			}
			if p.Calendar != nil {
				cond.Facts = append(cond.Facts, Fact{Name: "calendar", Value: p.CalendarName})
			}
			if at, ok := clk.clock.Due(p.Calendar, clk.target, 1); ok {
				cond.Facts = append(cond.Facts, Fact{Name: "deadline", Value: at.UTC().Format(time.RFC3339)})
			}
			if clk.rule == rulesfile.RuleNextResponse {
				cond.Facts = append(cond.Facts, Fact{Name: "waiting_since", Value: c.NextSince.UTC().Format(time.RFC3339)})
			}
			if c.Paused {
				cond.Facts = append(cond.Facts, Fact{Name: "paused", Value: "true"})
			}
		}
		j.Conditions = append(j.Conditions, cond)
	}
	return j
}

func hoursNote(cal *calendar.Calendar, name string) string {
	if cal == nil {
		return ""
	}
	return " (business hours: " + name + ")"
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }

func badRating(tk ticket, q *rulesfile.QualityRule, labels map[string]string) Condition {
	c := Condition{Rule: q.Name, Escalation: q.Escalation, Labels: labels}
	if !q.Match.Matches(tk.attrs) || tk.rating == nil || tk.rating.Score < 1 || tk.rating.Score > q.MaxScore {
		return c
	}
	r := tk.rating
	c.Active, c.Severity, c.Since = true, q.Severity, r.At
	c.Summary = fmt.Sprintf("ticket %s: customer rated %d of 5", tk.id, r.Score)
	if r.Comment != "" {
		c.Summary += ": " + strconv.Quote(truncate(r.Comment, 200))
	}
	c.Facts = []Fact{
		{Name: "rating", Value: strconv.Itoa(int(r.Score))},
		{Name: "max_score", Value: strconv.Itoa(int(q.MaxScore))},
		{Name: "rated_at", Value: r.At.UTC().Format(time.RFC3339)},
	}
	if r.Comment != "" {
		c.Facts = append(c.Facts, Fact{Name: "comment", Value: r.Comment})
	}
	return c
}

func reopened(tk ticket, q *rulesfile.QualityRule, labels map[string]string) Condition {
	c := Condition{Rule: q.Name, Escalation: q.Escalation, Labels: labels}
	if !q.Match.Matches(tk.attrs) || tk.reopens < q.MinReopens {
		return c
	}
	c.Active, c.Severity = true, q.Severity
	if q.MinReopens >= 1 && q.MinReopens <= len(tk.reopenedAt) {
		c.Since = tk.reopenedAt[q.MinReopens-1]
	}
	c.Summary = fmt.Sprintf("ticket %s: reopened %d times", tk.id, tk.reopens)
	c.Facts = []Fact{
		{Name: "reopens", Value: strconv.Itoa(tk.reopens)},
		{Name: "min_reopens", Value: strconv.Itoa(q.MinReopens)},
	}
	return c
}

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// PriorityWord is the lower-case word of a priority ("urgent"), as labels and the rules file use.
func PriorityWord(p tpv1.Priority) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "PRIORITY_"))
}
