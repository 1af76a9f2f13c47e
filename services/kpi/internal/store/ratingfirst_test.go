package store

import (
	"context"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// TestRatingBeforeItsTicket: a survey tool and the helpdesk deliver independently, so a
// response can reach kpi before any event of the ticket it rates. The rating is kept and
// counted (to the tenant's unassigned figures while no assignee is known), and once the
// ticket's events arrive the buckets are exactly those of the usual order: the rating moves to
// the assignee at rating time. Both with a rating that names no agent and with one whose
// survey carried the agent (assignee_id).
func TestRatingBeforeItsTicket(t *testing.T) {
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana@example.com"}
	unassigned := bucket.Scope{Kind: bucket.Unassigned}
	tests := []struct {
		name string
		// agent is the rating's assignee_id, from the survey's agent field.
		agent string
		// anaAlone and unassignedAlone are the CSAT counts of ana and of the unassigned figures after the rating
		// alone.
		anaAlone, unassignedAlone int64
	}{
		{name: "rating without agent", agent: "", anaAlone: 0, unassignedAlone: 1},
		{name: "rating naming the agent", agent: "ana@example.com", anaAlone: 1, unassignedAlone: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := life("T-9", "ana@example.com", "billing", 0)
			events[len(events)-1].Assignee = tt.agent
			ticket, rating := events[:len(events)-1], events[len(events)-1:]

			// The usual order: the helpdesk's events, then the survey's rating.
			rdb := testenv.Redis(t)
			writeT9(t, NewWriter(rdb, sla, 0, quiet), ticket)
			writeT9(t, NewWriter(rdb, sla, 0, quiet), rating)
			want := buckets(t, rdb)

			// The rating first, alone; testenv.Redis hands out a flushed server.
			rdb = testenv.Redis(t)
			w := NewWriter(rdb, sla, 0, quiet)
			writeT9(t, w, rating)
			if got := dayTotals(t, rdb, ana, t0).C[bucket.CSATCount]; got != tt.anaAlone {
				t.Errorf("rating alone: ana's CSAT count %d, want %d", got, tt.anaAlone)
			}
			if got := dayTotals(t, rdb, unassigned, t0).C[bucket.CSATCount]; got != tt.unassignedAlone {
				t.Errorf("rating alone: unassigned CSAT count %d, want %d", got, tt.unassignedAlone)
			}
			writeT9(t, w, ticket)
			got := buckets(t, rdb)
			if !equalDump(withoutIndex(got), withoutIndex(want)) || !indexCovers(got, want) {
				t.Fatalf("rating first differs from rating last:\n%s", dumpDiff(got, want))
			}
			tot := dayTotals(t, rdb, ana, t0)
			for c, want := range map[bucket.Counter]int64{bucket.CSATCount: 1, bucket.CSATScoreSum: 4, bucket.CSATPositive: 1} {
				if tot.C[c] != want {
					t.Errorf("ana's %s = %d, want %d", c.Field(), tot.C[c], want)
				}
			}
			if got := dayTotals(t, rdb, unassigned, t0).C[bucket.CSATCount]; got != 0 {
				t.Errorf("unassigned CSAT count %d once the ticket arrived, want 0", got)
			}
			checkTotals(t, rdb)
		})
	}
}

// writeT9 stores ticket T-9's events as one batch.
func writeT9(t *testing.T, w *Writer, events []contrib.Event) {
	t.Helper()
	if _, err := w.Write(context.Background(), []Ticket{{Tenant: "acme", ID: "T-9", Events: events}}); err != nil {
		t.Fatal(err)
	}
}
