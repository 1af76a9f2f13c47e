package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// The ticket lives of the load generator (tools/loadgen/internal/traffic: the traffic behind the
// bytes-per-event figures of docs/performance.md), with the same weights and delays, built
// directly as the events the write path stores (contrib.FromProto of the canonical event):
// created by a customer (5 % outbound, by an agent), answer-bot replies, assigned, private notes,
// conversation rounds with pending and open, transfers, priority raises, solved (92 %), 10 %
// reopened and solved again, 35 % rated (3 % of those twice), 50 % auto-closed 96 h later.

type simTicket struct {
	id     string
	events []contrib.Event
	ids    []string
}

type simTraffic struct {
	rng           *rand.Rand
	agents, teams int
	byTeam        [][]int
	now           time.Time
	spread        time.Duration
	prefix        string
	tickets       []simTicket
	events        int
}

// newSimTraffic builds tickets until they hold at least events events, created uniformly over the
// spread before now; events later than now are cut, as the generator does.
func newSimTraffic(seed uint64, agents, teams, events int, now time.Time, spread time.Duration) *simTraffic {
	g := &simTraffic{
		rng: rand.New(rand.NewPCG(seed, 0x7469636b6574)), agents: agents, teams: teams,
		byTeam: make([][]int, teams), now: now.UTC().Truncate(time.Second), spread: spread, prefix: "lg",
	}
	for i := range agents {
		g.byTeam[i%teams] = append(g.byTeam[i%teams], i)
	}
	for n := 0; g.events < events; n++ {
		t := g.life(n)
		if len(t.events) > g.remaining(events) {
			t.events, t.ids = t.events[:g.remaining(events)], t.ids[:g.remaining(events)]
		}
		g.tickets = append(g.tickets, t)
		g.events += len(t.events)
	}
	return g
}

func (g *simTraffic) remaining(events int) int { return events - g.events }

func simAgentID(i int) string {
	switch {
	case i%10 == 3:
		return fmt.Sprintf("agent.%04d@example.com", i)
	case i%25 == 7:
		return fmt.Sprintf("agente-%04d-josé", i)
	default:
		return fmt.Sprintf("agent-%04d", i)
	}
}

var simTeamNames = []string{"billing", "support", "onboarding", "technical", "returns", "enterprise", "payments", "shipping"}

func simTeamID(i int) string {
	if i < len(simTeamNames) {
		return simTeamNames[i]
	}
	return fmt.Sprintf("%s-%d", simTeamNames[i%len(simTeamNames)], i/len(simTeamNames))
}

type simBuilder struct {
	prefix, ticket, team, assignee, channel, tags string
	priority                                      tpv1.Priority
	seq                                           int
	t                                             simTicket
}

func (b *simBuilder) add(typ tpv1.EventType, at time.Time, actorID string, actor tpv1.ActorKind, set func(*contrib.Event)) {
	id := fmt.Sprintf("%s-%02d", b.prefix, b.seq)
	b.seq++
	ev := contrib.Event{
		Key: contrib.KeyOf(id), Type: typ, AtMillis: at.UTC().Truncate(time.Second).UnixMilli(),
		ActorID: actorID, Actor: actor, Assignee: b.assignee, Team: b.team, Priority: b.priority,
	}
	if typ == tpv1.EventType_EVENT_TYPE_TICKET_CREATED {
		ev.Channel, ev.Tags = b.channel, b.tags
	}
	if set != nil {
		set(&ev)
	}
	b.t.events = append(b.t.events, ev)
	b.t.ids = append(b.t.ids, id)
}

func (g *simTraffic) after(median time.Duration, sigma float64) time.Duration {
	d := time.Duration(float64(median) * math.Exp(sigma*g.rng.NormFloat64()))
	return min(max(d, 5*time.Second), 10*24*time.Hour)
}

func (g *simTraffic) pick(weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	r := g.rng.IntN(total)
	for i, w := range weights {
		if r < w {
			return i
		}
		r -= w
	}
	return len(weights) - 1
}

func (g *simTraffic) chance(p float64) bool { return g.rng.Float64() < p }

var (
	simPriorities = []tpv1.Priority{tpv1.Priority_PRIORITY_LOW, tpv1.Priority_PRIORITY_NORMAL, tpv1.Priority_PRIORITY_HIGH, tpv1.Priority_PRIORITY_URGENT}
	simFirstReply = map[tpv1.Priority]time.Duration{
		tpv1.Priority_PRIORITY_LOW: 5 * time.Hour, tpv1.Priority_PRIORITY_NORMAL: 90 * time.Minute,
		tpv1.Priority_PRIORITY_HIGH: 35 * time.Minute, tpv1.Priority_PRIORITY_URGENT: 12 * time.Minute,
	}
	simChannels = []string{"email", "web", "chat", "api"}
	simTagSets  = [][]string{nil, {"vip"}, {"refund"}, {"bug"}, {"how-to"}, {"invoice", "vip"}}
)

const (
	agentKind    = tpv1.ActorKind_ACTOR_KIND_AGENT
	customerKind = tpv1.ActorKind_ACTOR_KIND_CUSTOMER
)

func public(p bool) func(*contrib.Event) {
	return func(e *contrib.Event) {
		e.Public = 1
		if p {
			e.Public = 2
		}
	}
}

func status(s tpv1.TicketStatus) func(*contrib.Event) {
	return func(e *contrib.Event) { e.Status = s }
}

// life is ticket n's history, as traffic.Generator.life builds it.
func (g *simTraffic) life(n int) simTicket {
	team := g.rng.IntN(g.teams)
	members := g.byTeam[team]
	b := &simBuilder{
		prefix: fmt.Sprintf("%s-%06d", g.prefix, n), ticket: fmt.Sprintf("%s-T%06d", g.prefix, n), team: simTeamID(team),
		priority: simPriorities[g.pick(20, 50, 22, 8)], channel: simChannels[g.pick(50, 25, 20, 5)],
		tags: strings.Join(simTagSets[g.rng.IntN(len(simTagSets))], contrib.TagSep),
	}
	b.t.id = b.ticket
	customer := fmt.Sprintf("cust-%06d", g.rng.IntN(g.agents*50))
	agentOf := func() string { return simAgentID(members[g.rng.IntN(len(members))]) }
	t := g.now.Add(-time.Duration(g.rng.Int64N(int64(g.spread))))
	const (
		created  = tpv1.EventType_EVENT_TYPE_TICKET_CREATED
		assigned = tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED
		agentMsg = tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE
		custMsg  = tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE
		changed  = tpv1.EventType_EVENT_TYPE_STATUS_CHANGED
		raised   = tpv1.EventType_EVENT_TYPE_PRIORITY_CHANGED
		rated    = tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED
		open     = tpv1.TicketStatus_TICKET_STATUS_OPEN
		pendingS = tpv1.TicketStatus_TICKET_STATUS_PENDING
		solvedS  = tpv1.TicketStatus_TICKET_STATUS_SOLVED
	)
	if g.chance(0.05) {
		b.assignee = agentOf()
		b.add(created, t, b.assignee, agentKind, status(open))
		t = t.Add(g.after(2*time.Minute, 0.5))
		b.add(agentMsg, t, b.assignee, agentKind, public(true))
		if g.chance(0.6) {
			t = t.Add(g.after(3*time.Hour, 1.0))
			b.add(custMsg, t, customer, customerKind, nil)
			t = t.Add(g.after(simFirstReply[b.priority], 1.0))
			b.add(agentMsg, t, b.assignee, agentKind, public(true))
		}
		t = t.Add(g.after(30*time.Minute, 0.8))
		b.add(changed, t, b.assignee, agentKind, status(solvedS))
		return g.finish(b)
	}
	b.add(created, t, customer, customerKind, status(tpv1.TicketStatus_TICKET_STATUS_NEW))
	if (b.channel == "chat" || b.channel == "web") && g.chance(0.25) {
		b.add(agentMsg, t.Add(g.after(20*time.Second, 0.5)), "answerbot", tpv1.ActorKind_ACTOR_KIND_BOT, public(true))
	}
	assignDelay := g.after(8*time.Minute, 1.0)
	if g.chance(0.03) {
		assignDelay = g.after(2*time.Hour, 0.7)
	}
	t = t.Add(assignDelay)
	b.assignee = agentOf()
	assigner, assignerKind := "router", tpv1.ActorKind_ACTOR_KIND_AUTOMATION
	if g.chance(0.3) {
		assigner, assignerKind = b.assignee, agentKind
	}
	b.add(assigned, t, assigner, assignerKind, nil)
	if g.chance(0.15) {
		t = t.Add(g.after(10*time.Minute, 0.8))
		b.add(agentMsg, t, b.assignee, agentKind, public(false))
	}
	t = t.Add(g.after(simFirstReply[b.priority], 1.0))
	b.add(agentMsg, t, b.assignee, agentKind, public(true))
	pending := false
	if g.chance(0.4) {
		t = t.Add(g.after(20*time.Second, 0.5))
		b.add(changed, t, b.assignee, agentKind, status(pendingS))
		pending = true
	}
	rounds := g.pick(35, 30, 20, 10, 5)
	for range rounds {
		t = t.Add(g.after(50*time.Minute, 1.2))
		b.add(custMsg, t, customer, customerKind, nil)
		if pending {
			t = t.Add(time.Second)
			b.add(changed, t, "helpdesk", tpv1.ActorKind_ACTOR_KIND_SYSTEM, status(open))
			pending = false
		}
		if g.chance(0.04) {
			from := b.assignee
			if g.chance(0.15) {
				team = g.rng.IntN(g.teams)
				members = g.byTeam[team]
				b.team = simTeamID(team)
			}
			b.assignee = agentOf()
			t = t.Add(g.after(10*time.Minute, 0.8))
			b.add(assigned, t, from, agentKind, nil)
		}
		if g.chance(0.04) && b.priority != tpv1.Priority_PRIORITY_URGENT {
			b.priority = simPriorities[slices.Index(simPriorities, b.priority)+1]
			t = t.Add(g.after(5*time.Minute, 0.8))
			b.add(raised, t, b.assignee, agentKind, nil)
		}
		if g.chance(0.1) {
			t = t.Add(g.after(10*time.Minute, 0.8))
			b.add(agentMsg, t, b.assignee, agentKind, public(false))
		}
		t = t.Add(g.after(simFirstReply[b.priority]*6/5, 1.0))
		b.add(agentMsg, t, b.assignee, agentKind, public(true))
		if g.chance(0.4) {
			t = t.Add(g.after(20*time.Second, 0.5))
			b.add(changed, t, b.assignee, agentKind, status(pendingS))
			pending = true
		}
	}
	if !g.chance(0.92) {
		return g.finish(b)
	}
	t = t.Add(g.after(20*time.Minute, 0.8))
	b.add(changed, t, b.assignee, agentKind, status(solvedS))
	solved := t
	if g.chance(0.10) {
		t = t.Add(g.after(20*time.Hour, 1.0))
		b.add(custMsg, t, customer, customerKind, nil)
		t = t.Add(time.Second)
		b.add(changed, t, "helpdesk", tpv1.ActorKind_ACTOR_KIND_SYSTEM, status(open))
		t = t.Add(g.after(simFirstReply[b.priority], 1.0))
		b.add(agentMsg, t, b.assignee, agentKind, public(true))
		t = t.Add(g.after(30*time.Minute, 0.8))
		b.add(changed, t, b.assignee, agentKind, status(solvedS))
		solved = t
	}
	if g.chance(0.35) {
		at := solved.Add(g.after(3*time.Hour, 1.2))
		rate := func() {
			score := uint8(g.pick(8, 7, 10, 20, 55) + 1)
			g.rng.IntN(7) // the comment, which the KPIs do not keep
			b.add(rated, at, customer, customerKind, func(e *contrib.Event) { e.Score = score })
		}
		rate()
		if g.chance(0.03) {
			at = at.Add(g.after(time.Hour, 1.0))
			rate()
		}
	}
	if g.chance(0.5) {
		b.add(changed, solved.Add(96*time.Hour), "autoclose", tpv1.ActorKind_ACTOR_KIND_AUTOMATION, status(tpv1.TicketStatus_TICKET_STATUS_CLOSED))
	}
	return g.finish(b)
}

// finish orders the ticket's events by time and drops those after now.
func (g *simTraffic) finish(b *simBuilder) simTicket {
	idx := make([]int, len(b.t.events))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(x, y int) int { return int(b.t.events[x].AtMillis - b.t.events[y].AtMillis) })
	out := simTicket{id: b.t.id}
	limit := g.now.UnixMilli()
	for _, i := range idx {
		if b.t.events[i].AtMillis > limit {
			break
		}
		out.events = append(out.events, b.t.events[i])
		out.ids = append(out.ids, b.t.ids[i])
	}
	return out
}

// arrival is one event in the order a live helpdesk sends them: by time.
type arrival struct {
	ticket, event int32
	at            int64
}

// arrivals lists every event by time.
func (g *simTraffic) arrivals() []arrival {
	out := make([]arrival, 0, g.events)
	for ti, t := range g.tickets {
		for ei, ev := range t.events {
			out = append(out, arrival{ticket: int32(ti), event: int32(ei), at: ev.AtMillis})
		}
	}
	slices.SortStableFunc(out, func(a, b arrival) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	return out
}
