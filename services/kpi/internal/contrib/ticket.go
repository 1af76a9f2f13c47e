package contrib

import (
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// FigureKind is what a ticket's figure is, for the drill-down index: the figures that make a
// ticket one of those behind a window's KPIs.
type FigureKind uint8

const (
	FirstResponseFigure FigureKind = 1 + iota
	ResolutionFigure
	ReopenFigure
	RatingFigure
)

// Figure is one of a ticket's figures: when it counts and whom it is credited to (an empty agent
// is the tenant's unassigned figures).
type Figure struct {
	Kind        FigureKind
	AtMillis    int64
	Agent, Team string
}

// Ticket is one ticket's own figures, as they count in the KPIs: the row ListTicketKpis answers.
type Ticket struct {
	Status   tpv1.TicketStatus
	Priority tpv1.Priority
	// CreatedMillis is 0 until the created event has arrived.
	CreatedMillis, UpdatedMillis int64
	// FirstResponseMillis is -1 without a first response; FirstResponseAt is when it was sent.
	FirstResponseMillis, FirstResponseAt int64
	// ResolutionMillis is -1 without a resolution or without the created event; ResolvedAt is the
	// latest resolution's time (0: none), also once a reopen undid it.
	ResolutionMillis, ResolvedAt int64
	Reopens                      int
	// Rating is the latest valid rating, 0 for none.
	Rating                                                   uint8
	SLAFirstBreached, SLANextBreached, SLAResolutionBreached bool
	// Figures are in the order of the ticket's events.
	Figures []Figure
}

// figure records a figure of the ticket, credited like c.credit.
func (c *Contribution) figure(k FigureKind, agent, team string, atMillis int64) {
	c.Ticket.Figures = append(c.Ticket.Figures, Figure{Kind: k, AtMillis: atMillis, Agent: agent, Team: team})
}

// ticketRow fills what the steps of Compute did not: the fields of the ticket's latest event and
// whether any SLA target was breached.
func (c *Contribution) ticketRow(h *history) {
	t := &c.Ticket
	last := h.last()
	t.Status, t.Priority = last.status, last.priority
	t.UpdatedMillis = h.evs[len(h.evs)-1].AtMillis
	if h.created != nil {
		t.CreatedMillis = h.created.AtMillis
	}
	if !resolved(last.status) {
		t.ResolutionMillis = -1
	}
	for k, v := range c.Values {
		if v <= 0 {
			continue
		}
		switch k.Field {
		case CounterField(bucket.SLABreached):
			t.SLAFirstBreached = true
		case CounterField(bucket.NextSLABreached):
			t.SLANextBreached = true
		case CounterField(bucket.ResolutionSLABreached):
			t.SLAResolutionBreached = true
		}
	}
}

// TicketsField is the field under which the write path keeps, per cell, how many of the ticket's
// figures the cell's scope was credited in that hour: the ticket's entry in the drill-down
// index (package ticketindex). It is no bucket figure: it is numbered above every counter and
// bin so that it never collides with one.
const TicketsField = Field(1 << 30)

// IndexCells returns the drill-down index entries of the ticket's figures: per cell, how many
// figures were credited to the agent (the unassigned figures when none), the team and the
// tenant (bucket.Tenant) in that hour, under TicketsField.
func (t *Ticket) IndexCells() map[Key]int64 {
	m := make(map[Key]int64, 3*len(t.Figures))
	for _, f := range t.Figures {
		hour := floorDiv(f.AtMillis, 3_600_000)
		add := func(kind bucket.Kind, id string) {
			m[Key{Cell: Cell{Kind: kind, ID: id, Hour: hour}, Field: TicketsField}]++
		}
		if f.Agent != "" {
			add(bucket.Agent, f.Agent)
		} else {
			add(bucket.Unassigned, "")
		}
		if f.Team != "" {
			add(bucket.Team, f.Team)
		}
		add(bucket.Tenant, "")
	}
	return m
}
