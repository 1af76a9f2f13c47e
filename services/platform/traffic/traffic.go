// Package traffic generates realistic helpdesk traffic in the canonical JSON form of DESIGN.md §2:
// agents in teams, tickets spread over the last weeks, each with a plausible life (created by a
// customer, assigned, conversation with private notes and bot replies, solved, sometimes reopened
// and re-solved, sometimes rated), emitted interleaved across tickets.
//
// Everything is a pure function of Config: the same Config yields the same events with the same
// ids, so a retried batch is a duplicate to ingest, and two runs with different prefixes never
// share an id. The load benchmark posts the events as they are; code that stores events directly
// (the KPI memory benchmarks) takes them ticket by ticket (Generator.Ticket) in their proto form
// (Event.Proto), so both measure the same traffic.
package traffic

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Actor is who caused an event.
type Actor struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

// Satisfaction is a rating normalised to 1..5.
type Satisfaction struct {
	Score   int    `json:"score"`
	Comment string `json:"comment,omitempty"`
}

// Event is one canonical event as POST /v1/tenants/{tenant}/events accepts it.
type Event struct {
	ID           string        `json:"id"`
	TicketID     string        `json:"ticket_id"`
	Type         string        `json:"type"`
	OccurredAt   time.Time     `json:"occurred_at"`
	Actor        Actor         `json:"actor"`
	AssigneeID   string        `json:"assignee_id,omitempty"`
	TeamID       string        `json:"team_id,omitempty"`
	Priority     string        `json:"priority,omitempty"`
	Status       string        `json:"status,omitempty"`
	Public       *bool         `json:"public,omitempty"`
	Satisfaction *Satisfaction `json:"satisfaction,omitempty"`
	Channel      string        `json:"channel,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
}

// Event types of the canonical form.
const (
	TicketCreated     = "ticket_created"
	TicketAssigned    = "ticket_assigned"
	AgentMessage      = "agent_message"
	CustomerMessage   = "customer_message"
	StatusChanged     = "status_changed"
	PriorityChanged   = "priority_changed"
	SatisfactionRated = "satisfaction_rated"
)

// Actor kinds of the canonical form.
const (
	KindAgent      = "agent"
	KindCustomer   = "customer"
	KindBot        = "bot"
	KindAutomation = "automation"
	KindSystem     = "system"
)

// Config bounds and shapes the traffic. At least one of Tickets and Events must be positive.
type Config struct {
	// Agents and Teams: agent i belongs to team i mod Teams.
	Agents, Teams int
	// Tickets is the most tickets started; 0 leaves it to Events.
	Tickets int
	// Events is the most events emitted; 0 leaves it to Tickets. The last tickets may be cut short.
	Events int
	// Seed makes the traffic reproducible.
	Seed uint64
	// Now is the newest possible occurred_at; events that would lie later are not emitted
	// (those tickets are still in progress).
	Now time.Time
	// Spread is how far back tickets are created: uniformly over [Now-Spread, Now).
	Spread time.Duration
	// Interleave is how many tickets have events in flight at once; emission picks among them at
	// random, so a batch mixes many tickets and a ticket spans many batches.
	Interleave int
	// Prefix namespaces event and ticket ids, e.g. a run id plus a phase letter.
	Prefix string
}

// Validate reports settings that would make the traffic unbounded or empty.
func (c Config) Validate() error {
	var errs []error
	if c.Agents < 1 {
		errs = append(errs, fmt.Errorf("agents %d: want at least 1", c.Agents))
	}
	if c.Teams < 1 || c.Teams > max(c.Agents, 1) {
		errs = append(errs, fmt.Errorf("teams %d: want 1..agents (%d)", c.Teams, c.Agents))
	}
	if c.Tickets < 0 || c.Events < 0 || c.Tickets == 0 && c.Events == 0 {
		errs = append(errs, fmt.Errorf("tickets %d, events %d: want non-negative, at least one positive so the traffic ends", c.Tickets, c.Events))
	}
	if c.Spread < time.Hour {
		errs = append(errs, fmt.Errorf("spread %s: want at least 1h", c.Spread))
	}
	if c.Interleave < 1 {
		errs = append(errs, fmt.Errorf("interleave %d: want at least 1", c.Interleave))
	}
	if c.Prefix == "" {
		errs = append(errs, errors.New("prefix: want a non-empty id namespace"))
	}
	if c.Now.IsZero() {
		errs = append(errs, errors.New("now: want a time"))
	}
	return errors.Join(errs...)
}

// AgentID is the helpdesk id of agent i. Most are plain handles; some are e-mail addresses and some
// carry non-ASCII letters, as real helpdesk ids do, so the escaping of subjects and keys is exercised.
func AgentID(i int) string {
	switch {
	case i%10 == 3:
		return fmt.Sprintf("agent.%04d@example.com", i)
	case i%25 == 7:
		return fmt.Sprintf("agente-%04d-josé", i)
	default:
		return fmt.Sprintf("agent-%04d", i)
	}
}

var teamNames = []string{"billing", "support", "onboarding", "technical", "returns", "enterprise", "payments", "shipping"}

// TeamID is the id of team i.
func TeamID(i int) string {
	if i < len(teamNames) {
		return teamNames[i]
	}
	return fmt.Sprintf("%s-%d", teamNames[i%len(teamNames)], i/len(teamNames))
}

// AgentIDs lists every agent id of the configuration, agent i at index i.
func (c Config) AgentIDs() []string {
	ids := make([]string, c.Agents)
	for i := range ids {
		ids[i] = AgentID(i)
	}
	return ids
}

// Generator emits the traffic of a Config one event at a time.
type Generator struct {
	cfg     Config
	rng     *rand.Rand
	now     time.Time
	active  []*life
	started int
	emitted int
	byTeam  [][]int
}

type life struct {
	events []Event
	next   int
}

// New returns a generator for a valid Config.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("traffic config: %w", err)
	}
	g := &Generator{
		cfg: cfg,
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x7469636b6574)),
		// Whole seconds, as helpdesks report them; the margin keeps every event in the past of any
		// clock that is a little behind ours.
		now:    cfg.Now.UTC().Truncate(time.Second).Add(-time.Minute),
		byTeam: make([][]int, cfg.Teams),
	}
	for i := range cfg.Agents {
		g.byTeam[i%cfg.Teams] = append(g.byTeam[i%cfg.Teams], i)
	}
	return g, nil
}

// Emitted is how many events Next has returned.
func (g *Generator) Emitted() int { return g.emitted }

// Started is how many tickets have begun.
func (g *Generator) Started() int { return g.started }

// Next returns the next event, or false when the traffic is exhausted.
func (g *Generator) Next() (Event, bool) {
	if g.cfg.Events > 0 && g.emitted >= g.cfg.Events {
		return Event{}, false
	}
	for len(g.active) < g.cfg.Interleave && (g.cfg.Tickets == 0 || g.started < g.cfg.Tickets) {
		l := g.life(g.started)
		g.started++
		if len(l.events) > 0 {
			g.active = append(g.active, l)
		}
	}
	if len(g.active) == 0 {
		return Event{}, false
	}
	i := g.rng.IntN(len(g.active))
	l := g.active[i]
	ev := l.events[l.next]
	l.next++
	if l.next == len(l.events) {
		g.active[i] = g.active[len(g.active)-1]
		g.active = g.active[:len(g.active)-1]
	}
	g.emitted++
	return ev, true
}

// Ticket returns the next ticket's whole life in time order, cut where Next cuts it, or false when the
// traffic is exhausted: the tickets one after the other instead of interleaved, for callers that
// order the events themselves. It counts towards Started, Emitted and the Tickets and Events
// bounds like Next, the last ticket cut short at Events. Mixing it with Next on one generator
// draws the random stream in another order, so the traffic is reproducible only per method.
func (g *Generator) Ticket() ([]Event, bool) {
	for {
		if g.cfg.Events > 0 && g.emitted >= g.cfg.Events || g.cfg.Tickets > 0 && g.started >= g.cfg.Tickets {
			return nil, false
		}
		l := g.life(g.started)
		g.started++
		events := l.events
		if g.cfg.Events > 0 {
			events = events[:min(len(events), g.cfg.Events-g.emitted)]
		}
		if len(events) == 0 {
			continue
		}
		g.emitted += len(events)
		return events, true
	}
}

// Batch appends up to n events to dst[:0] and returns it; an empty result means the traffic is exhausted.
func (g *Generator) Batch(dst []Event, n int) []Event {
	dst = dst[:0]
	for len(dst) < n {
		ev, ok := g.Next()
		if !ok {
			break
		}
		dst = append(dst, ev)
	}
	return dst
}

// Proto is the event as ingest hands it on, without tenant and source, which belong to the
// request that carries it. A word the proto does not know becomes the UNSPECIFIED value.
func (e Event) Proto() *tpv1.TicketEvent {
	pe := &tpv1.TicketEvent{
		Id:         e.ID,
		TicketId:   e.TicketID,
		Type:       tpv1.EventType(enumValue(tpv1.EventType_value, "EVENT_TYPE_", e.Type)),
		OccurredAt: timestamppb.New(e.OccurredAt),
		Actor:      &tpv1.Actor{Id: e.Actor.ID, Kind: tpv1.ActorKind(enumValue(tpv1.ActorKind_value, "ACTOR_KIND_", e.Actor.Kind))},
		AssigneeId: e.AssigneeID,
		TeamId:     e.TeamID,
		Priority:   tpv1.Priority(enumValue(tpv1.Priority_value, "PRIORITY_", e.Priority)),
		Status:     tpv1.TicketStatus(enumValue(tpv1.TicketStatus_value, "TICKET_STATUS_", e.Status)),
		Channel:    e.Channel,
		Tags:       slices.Clone(e.Tags),
	}
	if e.Public != nil {
		pe.Public = boolp(*e.Public)
	}
	if e.Satisfaction != nil {
		pe.Satisfaction = &tpv1.Satisfaction{Score: int32(e.Satisfaction.Score), Comment: e.Satisfaction.Comment}
	}
	return pe
}

// enumValue is the proto value of a canonical word ("agent_message" is EVENT_TYPE_AGENT_MESSAGE),
// 0 for the empty or an unknown word. It reads the generated name map rather than eventcodec's
// words so that a traffic generator does not pull the NATS and telemetry code into its users.
func enumValue(values map[string]int32, prefix, word string) int32 {
	if word == "" {
		return 0
	}
	return values[prefix+strings.ToUpper(word)]
}

// builder accumulates one ticket's events, stamping each with the ticket's state as of that event.
type builder struct {
	prefix   string
	seq      int
	events   []Event
	ticketID string
	team     string
	assignee string
	priority string
	channel  string
	tags     []string
}

func (b *builder) add(typ string, at time.Time, actor Actor, set func(*Event)) {
	ev := Event{
		ID:         fmt.Sprintf("%s-%02d", b.prefix, b.seq),
		TicketID:   b.ticketID,
		Type:       typ,
		OccurredAt: at.UTC().Truncate(time.Second),
		Actor:      actor,
		AssigneeID: b.assignee,
		TeamID:     b.team,
		Priority:   b.priority,
	}
	if typ == TicketCreated {
		ev.Channel = b.channel
		ev.Tags = b.tags
	}
	if set != nil {
		set(&ev)
	}
	b.seq++
	b.events = append(b.events, ev)
}

func boolp(v bool) *bool { return &v }

// after is a positive gap with a log-normal spread around median: most replies come in about the
// median, a long tail much later, none at the same second.
func (g *Generator) after(median time.Duration, sigma float64) time.Duration {
	d := time.Duration(float64(median) * math.Exp(sigma*g.rng.NormFloat64()))
	return min(max(d, 5*time.Second), 10*24*time.Hour)
}

func (g *Generator) pick(weights ...int) int {
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

func (g *Generator) chance(p float64) bool { return g.rng.Float64() < p }

var (
	priorities     = []string{"low", "normal", "high", "urgent"}
	priorityWeight = []int{20, 50, 22, 8}
	// firstReply is the median first response time per priority: urgent work is picked up first.
	firstReply = map[string]time.Duration{"low": 5 * time.Hour, "normal": 90 * time.Minute, "high": 35 * time.Minute, "urgent": 12 * time.Minute}
	channels   = []string{"email", "web", "chat", "api"}
	chanWeight = []int{50, 25, 20, 5}
	// csatWeight is the share of scores 1..5: mostly happy, with a bad tail.
	csatWeight = []int{8, 7, 10, 20, 55}
	comments   = []string{"", "", "", "quick and friendly", "took too long", "problem solved, thanks", "had to explain twice"}
	tagSets    = [][]string{nil, {"vip"}, {"refund"}, {"bug"}, {"how-to"}, {"invoice", "vip"}}
)

// life builds ticket n's whole history, sorted by time, cut at the generator's now.
func (g *Generator) life(n int) *life {
	team := g.rng.IntN(g.cfg.Teams)
	members := g.byTeam[team]
	b := &builder{
		prefix:   fmt.Sprintf("%s-%06d", g.cfg.Prefix, n),
		ticketID: fmt.Sprintf("%s-T%06d", g.cfg.Prefix, n),
		team:     TeamID(team),
		priority: priorities[g.pick(priorityWeight...)],
		channel:  channels[g.pick(chanWeight...)],
		tags:     tagSets[g.rng.IntN(len(tagSets))],
	}
	customer := Actor{ID: fmt.Sprintf("cust-%06d", g.rng.IntN(g.cfg.Agents*50)), Kind: KindCustomer}
	agentOf := func() string { return AgentID(members[g.rng.IntN(len(members))]) }
	created := g.now.Add(-time.Duration(g.rng.Int64N(int64(g.cfg.Spread))))
	t := created

	if g.chance(0.05) {
		// Outbound: an agent opens the ticket and writes first; it has no first response sample.
		b.assignee = agentOf()
		agent := Actor{ID: b.assignee, Kind: KindAgent}
		b.add(TicketCreated, t, agent, func(e *Event) { e.Status = "open" })
		t = t.Add(g.after(2*time.Minute, 0.5))
		b.add(AgentMessage, t, agent, func(e *Event) { e.Public = boolp(true) })
		if g.chance(0.6) {
			t = t.Add(g.after(3*time.Hour, 1.0))
			b.add(CustomerMessage, t, customer, nil)
			t = t.Add(g.after(firstReply[b.priority], 1.0))
			b.add(AgentMessage, t, agent, func(e *Event) { e.Public = boolp(true) })
		}
		t = t.Add(g.after(30*time.Minute, 0.8))
		b.add(StatusChanged, t, agent, func(e *Event) { e.Status = "solved" })
		return g.finish(b)
	}

	b.add(TicketCreated, t, customer, func(e *Event) { e.Status = "new" })
	if (b.channel == "chat" || b.channel == "web") && g.chance(0.25) {
		// An answer bot replies in seconds; it is public but never a response by an agent.
		b.add(AgentMessage, t.Add(g.after(20*time.Second, 0.5)), Actor{ID: "answerbot", Kind: KindBot},
			func(e *Event) { e.Public = boolp(true) })
	}
	assignDelay := g.after(8*time.Minute, 1.0)
	if g.chance(0.03) {
		assignDelay = g.after(2*time.Hour, 0.7) // sat unassigned in the queue
	}
	t = t.Add(assignDelay)
	b.assignee = agentOf()
	assigner := Actor{ID: "router", Kind: KindAutomation}
	if g.chance(0.3) {
		assigner = Actor{ID: b.assignee, Kind: KindAgent} // self-assigned from the queue
	}
	b.add(TicketAssigned, t, assigner, nil)
	if g.chance(0.15) {
		t = t.Add(g.after(10*time.Minute, 0.8))
		b.add(AgentMessage, t, Actor{ID: b.assignee, Kind: KindAgent}, func(e *Event) { e.Public = boolp(false) })
	}
	t = t.Add(g.after(firstReply[b.priority], 1.0))
	b.add(AgentMessage, t, Actor{ID: b.assignee, Kind: KindAgent}, func(e *Event) { e.Public = boolp(true) })
	pending := false
	if g.chance(0.4) {
		t = t.Add(g.after(20*time.Second, 0.5))
		b.add(StatusChanged, t, Actor{ID: b.assignee, Kind: KindAgent}, func(e *Event) { e.Status = "pending" })
		pending = true
	}
	rounds := g.pick(35, 30, 20, 10, 5)
	for range rounds {
		t = t.Add(g.after(50*time.Minute, 1.2))
		b.add(CustomerMessage, t, customer, nil)
		if pending {
			t = t.Add(time.Second)
			b.add(StatusChanged, t, Actor{ID: "helpdesk", Kind: KindSystem}, func(e *Event) { e.Status = "open" })
			pending = false
		}
		if g.chance(0.04) {
			// Transfer, now and then to another team.
			from := b.assignee
			if g.chance(0.15) {
				team = g.rng.IntN(g.cfg.Teams)
				members = g.byTeam[team]
				b.team = TeamID(team)
			}
			b.assignee = agentOf()
			t = t.Add(g.after(10*time.Minute, 0.8))
			b.add(TicketAssigned, t, Actor{ID: from, Kind: KindAgent}, nil)
		}
		if g.chance(0.04) && b.priority != "urgent" {
			b.priority = priorities[slices.Index(priorities, b.priority)+1]
			t = t.Add(g.after(5*time.Minute, 0.8))
			b.add(PriorityChanged, t, Actor{ID: b.assignee, Kind: KindAgent}, nil)
		}
		if g.chance(0.1) {
			t = t.Add(g.after(10*time.Minute, 0.8))
			b.add(AgentMessage, t, Actor{ID: b.assignee, Kind: KindAgent}, func(e *Event) { e.Public = boolp(false) })
		}
		t = t.Add(g.after(firstReply[b.priority]*6/5, 1.0))
		b.add(AgentMessage, t, Actor{ID: b.assignee, Kind: KindAgent}, func(e *Event) { e.Public = boolp(true) })
		if g.chance(0.4) {
			t = t.Add(g.after(20*time.Second, 0.5))
			b.add(StatusChanged, t, Actor{ID: b.assignee, Kind: KindAgent}, func(e *Event) { e.Status = "pending" })
			pending = true
		}
	}
	if !g.chance(0.92) {
		return g.finish(b) // still being worked on
	}
	t = t.Add(g.after(20*time.Minute, 0.8))
	b.add(StatusChanged, t, Actor{ID: b.assignee, Kind: KindAgent}, func(e *Event) { e.Status = "solved" })
	solved := t
	if g.chance(0.10) {
		// Reopened by the customer writing back, answered, solved again.
		t = t.Add(g.after(20*time.Hour, 1.0))
		b.add(CustomerMessage, t, customer, nil)
		t = t.Add(time.Second)
		b.add(StatusChanged, t, Actor{ID: "helpdesk", Kind: KindSystem}, func(e *Event) { e.Status = "open" })
		t = t.Add(g.after(firstReply[b.priority], 1.0))
		b.add(AgentMessage, t, Actor{ID: b.assignee, Kind: KindAgent}, func(e *Event) { e.Public = boolp(true) })
		t = t.Add(g.after(30*time.Minute, 0.8))
		b.add(StatusChanged, t, Actor{ID: b.assignee, Kind: KindAgent}, func(e *Event) { e.Status = "solved" })
		solved = t
	}
	if g.chance(0.35) {
		rated := solved.Add(g.after(3*time.Hour, 1.2))
		rate := func() {
			score := g.pick(csatWeight...) + 1
			comment := comments[g.rng.IntN(len(comments))]
			b.add(SatisfactionRated, rated, customer, func(e *Event) { e.Satisfaction = &Satisfaction{Score: score, Comment: comment} })
		}
		rate()
		if g.chance(0.03) {
			rated = rated.Add(g.after(time.Hour, 1.0)) // changed their mind: the new rating replaces the old
			rate()
		}
	}
	if g.chance(0.5) {
		b.add(StatusChanged, solved.Add(96*time.Hour), Actor{ID: "autoclose", Kind: KindAutomation},
			func(e *Event) { e.Status = "closed" })
	}
	return g.finish(b)
}

// finish orders the ticket's events by time (ratings and auto-close are stamped off the
// conversation's cursor) and drops what lies in the future.
func (g *Generator) finish(b *builder) *life {
	slices.SortStableFunc(b.events, func(x, y Event) int { return x.OccurredAt.Compare(y.OccurredAt) })
	cut := len(b.events)
	for cut > 0 && b.events[cut-1].OccurredAt.After(g.now) {
		cut--
	}
	return &life{events: b.events[:cut]}
}

// ProbeTicket is a short ticket whose last event gives agent one first response and one assignment
// now: created by a customer 90 s ago, assigned 60 s ago, answered publicly now. Its ids are
// prefix-based like the generator's.
func ProbeTicket(prefix string, n int, agent, team string, now time.Time) []Event {
	now = now.UTC().Truncate(time.Second)
	b := &builder{prefix: fmt.Sprintf("%s-%06d", prefix, n), ticketID: fmt.Sprintf("%s-T%06d", prefix, n), team: team, priority: "normal", channel: "web"}
	b.add(TicketCreated, now.Add(-90*time.Second), Actor{ID: fmt.Sprintf("cust-probe-%06d", n), Kind: KindCustomer}, func(e *Event) { e.Status = "new" })
	b.assignee = agent
	b.add(TicketAssigned, now.Add(-60*time.Second), Actor{ID: "router", Kind: KindAutomation}, nil)
	b.add(AgentMessage, now, Actor{ID: agent, Kind: KindAgent}, func(e *Event) { e.Public = boolp(true) })
	return b.events
}
