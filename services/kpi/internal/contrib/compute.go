package contrib

import (
	"slices"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Compute returns the contribution of one ticket's events. events may be in any order and may hold
// duplicates (same Key); the result depends only on the set.
func Compute(events []Event, sla SLA) Contribution {
	evs := dedupeSorted(events)
	c := Contribution{Values: map[Key]int64{}}
	if len(evs) == 0 {
		return c
	}

	// The created event anchors first response and resolution time; until it has arrived those
	// samples are left out (they appear when it does, since everything is recomputed).
	var created *Event
	for i := range evs {
		if evs[i].Type == tpv1.EventType_EVENT_TYPE_TICKET_CREATED {
			created = &evs[i]
			break
		}
	}
	outbound := created != nil && created.Actor == tpv1.ActorKind_ACTOR_KIND_AGENT

	type resolution struct {
		at            int64
		agent, team   string
		publicReplies int
	}
	type rating struct {
		at          int64
		score       int64
		agent, team string
	}
	type firstAssign struct {
		id string
		at int64
	}
	var (
		assignee, team string
		priority       tpv1.Priority
		status         = tpv1.TicketStatus_TICKET_STATUS_NEW
		firstReplied   bool
		pending        bool
		pendingSince   int64
		publicReplies  int
		lastResolution *resolution
		lastRating     *rating
		agentAssigns   []firstAssign
		teamAssigns    []firstAssign
	)
	noteAssignee := func(id string, at int64) {
		if id != "" && !slices.ContainsFunc(agentAssigns, func(a firstAssign) bool { return a.id == id }) {
			agentAssigns = append(agentAssigns, firstAssign{id, at})
		}
	}
	noteTeam := func(id string, at int64) {
		if id != "" && !slices.ContainsFunc(teamAssigns, func(a firstAssign) bool { return a.id == id }) {
			teamAssigns = append(teamAssigns, firstAssign{id, at})
		}
	}

	for i := range evs {
		e := &evs[i]
		beforeAgent, beforeTeam := assignee, team

		// Fields "as of this event", when the source says. Only an assignment event can clear the
		// assignee; elsewhere an empty id means "not said".
		if e.Type == tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED || e.Assignee != "" {
			assignee = e.Assignee
			noteAssignee(assignee, e.AtMillis)
		}
		if e.Team != "" {
			team = e.Team
			noteTeam(team, e.AtMillis)
		}
		if e.Priority != tpv1.Priority_PRIORITY_UNSPECIFIED {
			priority = e.Priority
		}

		switch e.Type {
		case tpv1.EventType_EVENT_TYPE_TICKET_CREATED:
			if e.Status != tpv1.TicketStatus_TICKET_STATUS_UNSPECIFIED && e == created {
				status = e.Status
			}

		case tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE:
			// Bots, automations and private notes are not responses.
			if e.Actor != tpv1.ActorKind_ACTOR_KIND_AGENT || e.Public != 2 {
				break
			}
			publicReplies++
			if !firstReplied {
				firstReplied = true
				pending = false
				if created != nil && !outbound {
					wait := e.AtMillis - created.AtMillis
					c.duration(e.ActorID, team, e.AtMillis, bucket.FirstResponse, bucket.FirstCount, bucket.FirstSumMillis, wait)
					if target := sla.target(priority); target > 0 {
						counter := bucket.SLAMet
						if wait > target.Milliseconds() {
							counter = bucket.SLABreached
						}
						c.credit(e.ActorID, team, e.AtMillis, CounterField(counter), 1)
					}
				}
				break
			}
			if pending {
				c.duration(e.ActorID, team, e.AtMillis, bucket.NextResponse, bucket.NextCount, bucket.NextSumMillis, e.AtMillis-pendingSince)
				pending = false
			}

		case tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE:
			// Before the first reply the customer is waiting for a first response, which is measured
			// from creation; afterwards the first unanswered message starts the next-response clock.
			if (firstReplied || outbound) && !pending {
				pending, pendingSince = true, e.AtMillis
			}

		case tpv1.EventType_EVENT_TYPE_STATUS_CHANGED:
			next := e.Status
			switch {
			case !resolved(status) && resolved(next):
				// A re-solve after a reopen replaces the earlier resolution.
				lastResolution = &resolution{at: e.AtMillis, agent: assignee, team: team, publicReplies: publicReplies}
				pending = false
			case resolved(status) && !resolved(next) && next != tpv1.TicketStatus_TICKET_STATUS_UNSPECIFIED:
				c.credit(beforeAgent, beforeTeam, e.AtMillis, CounterField(bucket.Reopens), 1)
			}
			if next != tpv1.TicketStatus_TICKET_STATUS_UNSPECIFIED {
				status = next
			}

		case tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED:
			if e.Score >= 1 && e.Score <= 5 {
				// A re-rating replaces the earlier rating.
				lastRating = &rating{at: e.AtMillis, score: int64(e.Score), agent: assignee, team: team}
			}
		}
	}

	if r := lastResolution; r != nil {
		c.credit(r.agent, r.team, r.at, CounterField(bucket.Resolutions), 1)
		if r.publicReplies <= 1 {
			c.credit(r.agent, r.team, r.at, CounterField(bucket.OneTouch), 1)
		}
		if created != nil {
			c.duration(r.agent, r.team, r.at, bucket.Resolution, bucket.ResolutionCount, bucket.ResolutionSumMillis, r.at-created.AtMillis)
		}
	}
	if r := lastRating; r != nil {
		c.credit(r.agent, r.team, r.at, CounterField(bucket.CSATCount), 1)
		c.credit(r.agent, r.team, r.at, CounterField(bucket.CSATScoreSum), r.score)
		if r.score >= 4 {
			c.credit(r.agent, r.team, r.at, CounterField(bucket.CSATPositive), 1)
		}
	}

	// Resolution rate: of the tickets assigned to an agent (team), is it now solved with them?
	nowResolved := resolved(status)
	for _, a := range agentAssigns {
		c.add(bucket.Agent, a.id, a.at, CounterField(bucket.Assigned), 1)
		c.member(a.id, "", a.at)
		if nowResolved && assignee == a.id {
			c.add(bucket.Agent, a.id, a.at, CounterField(bucket.AssignedNowResolved), 1)
		}
	}
	for _, a := range teamAssigns {
		c.add(bucket.Team, a.id, a.at, CounterField(bucket.Assigned), 1)
		if nowResolved && team == a.id {
			c.add(bucket.Team, a.id, a.at, CounterField(bucket.AssignedNowResolved), 1)
		}
	}

	// A first-response breach without any reply is known once some event is later than the deadline
	// (the ticket was solved late, the customer wrote again, ...); it is credited to the assignee as
	// of the deadline. Until then the escalation service's timers are what see it.
	if created != nil && !outbound && !firstReplied {
		if target := sla.target(priority); target > 0 {
			deadline := created.AtMillis + target.Milliseconds()
			if last := evs[len(evs)-1].AtMillis; last > deadline {
				agent, tm := stateAt(evs, deadline)
				c.credit(agent, tm, deadline, CounterField(bucket.SLABreached), 1)
			}
		}
	}
	return c
}

// stateAt returns the assignee and team as of time t.
func stateAt(evs []Event, t int64) (agent, team string) {
	for i := range evs {
		e := &evs[i]
		if e.AtMillis > t {
			break
		}
		if e.Type == tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED || e.Assignee != "" {
			agent = e.Assignee
		}
		if e.Team != "" {
			team = e.Team
		}
	}
	return agent, team
}

// dedupeSorted returns the events sorted by (time, key) with duplicate keys removed. When a source
// resends an id with different content, the earliest copy in that order wins, whatever the arrival.
func dedupeSorted(events []Event) []Event {
	evs := slices.Clone(events)
	slices.SortFunc(evs, func(a, b Event) int {
		switch {
		case Less(&a, &b):
			return -1
		case Less(&b, &a):
			return 1
		}
		return 0
	})
	seen := make(map[uint64]struct{}, len(evs))
	out := evs[:0]
	for _, e := range evs {
		if _, dup := seen[e.Key]; dup {
			continue
		}
		seen[e.Key] = struct{}{}
		out = append(out, e)
	}
	return out
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
