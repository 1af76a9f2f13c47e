package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// A keyspace taken off the rollup's list while a pass wrote to it is deleted again, grace after
// the pass saw it gone, and only then: readers that resolved it before the switch may still read.
func TestRollupDeletesAKeyspaceRetiredDuringAPass(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	r := NewRollup(rdb, 0)
	r.now = func() time.Time { return now }
	var deleted []string
	r.OnRetired(time.Minute, func(_ context.Context, ks string) error {
		deleted = append(deleted, ks)
		return nil
	})
	if err := rdb.SAdd(ctx, bucket.TenantsKey, "acme@2").Err(); err != nil {
		t.Fatal(err)
	}
	// acme@1 was listed when the pass began and is gone when its writes end; acme@2 stays.
	for _, ks := range []string{"acme@1", "acme@2"} {
		if err := r.noteIfRetired(ctx, ks); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 0 {
		t.Fatalf("deleted %v within the grace", deleted)
	}
	now = now.Add(time.Minute)
	if _, err := r.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deleted, []string{"acme@1"}) {
		t.Fatalf("deleted %v after the grace, want [acme@1]", deleted)
	}
	now = now.Add(time.Hour)
	if _, err := r.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 {
		t.Fatalf("deleted %v: a retired keyspace is deleted once", deleted)
	}
}
