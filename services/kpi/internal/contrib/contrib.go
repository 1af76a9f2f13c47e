package contrib

import (
	"slices"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Field identifies one figure of a bucket: a counter (below numCounterFields, or from
// laterCounterFields on) or a histogram bin. Fields are stored with each ticket's applied
// contribution, so a number once given keeps its meaning: counters added later are numbered above
// every bin rather than shifting the bins.
type Field uint32

const (
	numCounterFields   = Field(bucket.NextSLAMet)
	laterCounterFields = Field(1 << 24)
	binOffset          = 2048 // bins from -2047 to +2047 cover 1 ms .. far beyond a century at 1 % steps
	binsPerDuration    = 4096
)

// CounterField is the field of a counter.
func CounterField(c bucket.Counter) Field {
	if Field(c) < numCounterFields {
		return Field(c)
	}
	return laterCounterFields + Field(c) - numCounterFields
}

// BinField is the field of histogram bin b of duration d. The zero bin is stored at slot 0.
func BinField(d bucket.Duration, b int32) Field {
	slot := int64(0)
	if b != hist.ZeroBin {
		slot = min(max(int64(b)+binOffset, 1), binsPerDuration-1)
	}
	return numCounterFields + Field(int64(d)*binsPerDuration+slot)
}

// Name is the Redis hash field name (see package bucket).
func (f Field) Name() string {
	if f < numCounterFields {
		return bucket.Counter(f).Field()
	}
	if f >= laterCounterFields {
		return bucket.Counter(f - laterCounterFields + numCounterFields).Field()
	}
	rel := int64(f - numCounterFields)
	d, slot := bucket.Duration(rel/binsPerDuration), rel%binsPerDuration
	if slot == 0 {
		return bucket.BinField(d, hist.ZeroBin)
	}
	return bucket.BinField(d, int32(slot-binOffset))
}

// Cell is one scope's bucket for one UTC hour (hours since the epoch).
type Cell struct {
	Kind bucket.Kind
	ID   string
	Hour int64
}

// Key is one figure of one cell.
type Key struct {
	Cell
	Field Field
}

// Membership says an agent was credited samples of a team (or of no team) on a UTC day; it feeds the
// listing index.
type Membership struct {
	Agent, Team string
	Day         int64
}

// Contribution is what one ticket adds to the KPI buckets.
type Contribution struct {
	Values      map[Key]int64
	Memberships []Membership
	// Ticket is the ticket's own figures (the drill-down row), computed in the same walk.
	Ticket Ticket
}

func (c *Contribution) add(kind bucket.Kind, id string, atMillis int64, f Field, v int64) {
	if v == 0 {
		return
	}
	k := Key{Cell: Cell{Kind: kind, ID: id, Hour: floorDiv(atMillis, 3_600_000)}, Field: f}
	if n := c.Values[k] + v; n == 0 {
		delete(c.Values, k)
	} else {
		c.Values[k] = n
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// credit adds a figure to whoever it is credited to: the agent (or, with no agent, the tenant's
// unassigned figures) and the team, in the hour of atMillis.
func (c *Contribution) credit(agent, team string, atMillis int64, f Field, v int64) {
	if agent != "" {
		c.add(bucket.Agent, agent, atMillis, f, v)
		c.member(agent, team, atMillis)
	} else {
		c.add(bucket.Unassigned, "", atMillis, f, v)
	}
	if team != "" {
		c.add(bucket.Team, team, atMillis, f, v)
	}
}

func (c *Contribution) member(agent, team string, atMillis int64) {
	m := Membership{Agent: agent, Team: team, Day: floorDiv(atMillis, 86_400_000)}
	if !slices.Contains(c.Memberships, m) {
		c.Memberships = append(c.Memberships, m)
	}
}

func (c *Contribution) duration(agent, team string, atMillis int64, d bucket.Duration, count, sum bucket.Counter, millis int64) {
	millis = max(millis, 0)
	c.credit(agent, team, atMillis, CounterField(count), 1)
	c.credit(agent, team, atMillis, CounterField(sum), millis)
	c.credit(agent, team, atMillis, BinField(d, hist.Bin(float64(millis)/1000)), 1)
}

func resolved(s tpv1.TicketStatus) bool {
	return s == tpv1.TicketStatus_TICKET_STATUS_SOLVED || s == tpv1.TicketStatus_TICKET_STATUS_CLOSED
}
