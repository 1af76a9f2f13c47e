package escalationstore

import (
	"context"
	"slices"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// A Redis that lost its script cache (a restart, SCRIPT FLUSH) still takes each change once.
func TestReconcileAfterScriptFlush(t *testing.T) {
	rdb := testenv.Redis(t)
	s := New(rdb, time.Hour)
	ctx := context.Background()
	if _, err := s.Reconcile(ctx, verdict(true, warning, 1, t0)); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Reconcile(ctx, verdict(true, critical, 1, t0.Add(5*time.Minute)))
	if err != nil {
		t.Fatalf("after SCRIPT FLUSH: %v", err)
	}
	if got := kinds(t, r); !slices.Equal(got, []tpv1.ChangeKind{tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, tpv1.ChangeKind_CHANGE_KIND_UPDATED}) {
		t.Errorf("outbox %v, want triggered then updated", got)
	}
	if n, err := rdb.ZCard(ctx, IndexKey("acme")).Result(); err != nil || n != 1 {
		t.Errorf("index holds %d (%v), want the one escalation", n, err)
	}
}
