package deliveries

import (
	"context"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// A Redis that lost its script cache (a restart, SCRIPT FLUSH) still adds each change once.
func TestAddTakeAfterScriptFlush(t *testing.T) {
	rdb := testenv.Redis(t)
	s := New(rdb, time.Hour, 100)
	ctx := context.Background()
	gid := GroupID("hook", "route|team=billing")
	for i, id := range []string{"e.t.T-1.1", "e.t.T-2.1", "e.t.T-1.1"} {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		c, data := change(id, 1, t0.Add(time.Duration(i)*time.Second))
		a, err := s.Add(ctx, "acme", "hook", gid, "route|team=billing", map[string]string{"team": "billing"}, c, data, time.Hour, time.Minute)
		if err != nil {
			t.Fatalf("add %s: %v", id, err)
		}
		if a.Duplicate != (i == 2) {
			t.Errorf("add %d (%s): duplicate %v", i+1, id, a.Duplicate)
		}
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	b, err := s.Take(ctx, "acme", gid, t0.Add(time.Minute))
	if err != nil || b == nil || len(b.Changes) != 2 {
		t.Fatalf("take: %v %+v, want the two changes", err, b)
	}
}
