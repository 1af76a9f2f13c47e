package store

import (
	"context"
	"testing"
	"time"

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

// With retention, the day's listing sets a batch creates expire with their day even when that
// batch met an empty script cache: the scripts run again after the commands queued behind them.
func TestRetentionAfterScriptFlush(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(rdb, sla, 30*24*time.Hour, quiet)
	day := time.Now().UTC().Unix()/86400 - 1
	ticket := Ticket{Tenant: "acme", ID: "T-1"}
	for _, ev := range life("T-1", "ana", "billing", 0) {
		ev.AtMillis += day*86_400_000 + 10*3_600_000 - t0.UnixMilli()
		ticket.Events = append(ticket.Events, ev)
	}
	if _, err := w.Write(ctx, []Ticket{ticket}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{bucket.AgentsKey("acme", day), bucket.TeamsKey("acme", day), bucket.TeamAgentsKey("acme", "billing", day)} {
		if ttl, err := rdb.TTL(ctx, key).Result(); err != nil || ttl < 29*24*time.Hour || ttl > 31*24*time.Hour {
			t.Errorf("%s: TTL %v (%v), want about 30 days past the day's end", key, ttl, err)
		}
	}
}
