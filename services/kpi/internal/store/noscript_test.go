package store

import (
	"context"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// A Redis that lost its script cache (a restart, SCRIPT FLUSH) between two batches still gets
// every figure once.
func TestWriteAfterScriptFlush(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	w := NewWriter(rdb, sla, 0, quiet)
	for i, id := range []string{"T-1", "T-2"} {
		if i > 0 {
			if err := rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		res, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: id, Events: life(id, "ana", "billing", 5*i)}})
		if err != nil {
			t.Fatalf("write %s: %v", id, err)
		}
		if res.NewEvents != 5 {
			t.Fatalf("write %s: %d new events, want 5", id, res.NewEvents)
		}
	}
	tot := dayTotals(t, rdb, bucket.Scope{Kind: bucket.Agent, ID: "ana"}, t0)
	if tot.C[bucket.Resolutions] != 2 || tot.C[bucket.FirstCount] != 2 {
		t.Errorf("resolutions %d first responses %d, want 2 and 2", tot.C[bucket.Resolutions], tot.C[bucket.FirstCount])
	}
	if f, _ := rdb.HKeys(ctx, TicketKey("acme", "T-2")).Result(); !sameFields(f, "v", "s", "t") {
		t.Errorf("ticket hash has fields %q, want v, s and t only: pending deltas left", f)
	}
}
