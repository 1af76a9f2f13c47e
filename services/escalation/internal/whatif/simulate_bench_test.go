package whatif

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// BenchmarkSimulateWeek simulates a week of 10,000 tickets (40,000 events: created, answered
// after 0 to 6 hours, solved, some reopened) with a first response target and a reopen rule.
func BenchmarkSimulateWeek(b *testing.B) {
	const tickets = 10_000
	e := new(events)
	for i := range tickets {
		id := fmt.Sprintf("T-%d", i)
		c := t0.Add(time.Duration(i) * 7 * 24 * time.Hour / tickets)
		e.created(id, c).reply(id, c.Add(time.Duration(i%360)*time.Minute)).
			status(id, c.Add(8*time.Hour), tpv1.TicketStatus_TICKET_STATUS_SOLVED)
		if i%10 == 0 {
			e.status(id, c.Add(9*time.Hour), tpv1.TicketStatus_TICKET_STATUS_OPEN)
		}
	}
	run := Run{Tenant: tenant(b), From: t0, To: t0.Add(8 * 24 * time.Hour), Max: 100_000}
	b.ReportAllocs()
	var fired int
	for b.Loop() {
		res, err := Simulate(context.Background(), run, slices.Clone(e.list))
		if err != nil {
			b.Fatal(err)
		}
		fired = len(res.Fired)
	}
	b.ReportMetric(float64(len(e.list))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(fired), "fired")
}
