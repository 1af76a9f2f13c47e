package store

import (
	"slices"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/platform/traffic"
)

// simTraffic is the load generator's traffic (the traffic behind the bytes-per-event figures of
// docs/performance.md) as the write path stores it: every event in its contrib form.
type simTraffic struct {
	tickets []simTicket
	events  int
}

type simTicket struct {
	id     string
	events []contrib.Event
	ids    []string
}

// newSimTraffic takes whole tickets from the generator until they hold events events, the last
// one cut short, created uniformly over the spread before now.
func newSimTraffic(seed uint64, agents, teams, events int, now time.Time, spread time.Duration) *simTraffic {
	gen, err := traffic.New(traffic.Config{
		Agents: agents, Teams: teams, Events: events, Seed: seed, Spread: spread, Interleave: 1, Prefix: "lg",
		// The generator stops a minute short of Now; the traffic ends at now.
		Now: now.Add(time.Minute),
	})
	if err != nil {
		panic(err)
	}
	g := &simTraffic{}
	for {
		evs, ok := gen.Ticket()
		if !ok {
			return g
		}
		t := simTicket{id: evs[0].TicketID}
		for _, ev := range evs {
			t.events = append(t.events, contrib.FromProto(ev.Proto()))
			t.ids = append(t.ids, ev.ID)
		}
		g.tickets = append(g.tickets, t)
		g.events += len(evs)
	}
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
