package deliveries

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func change(id string, seq int64, at time.Time) (*tpv1.EscalationChange, []byte) {
	c := &tpv1.EscalationChange{Kind: tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, Sequence: seq, At: timestamppb.New(at),
		Escalation: &tpv1.Escalation{Id: id, Tenant: "acme", Rule: "r"}}
	data, _ := proto.Marshal(c)
	return c, data
}

func TestGroupAddTakeIsExactlyOnce(t *testing.T) {
	s := New(testenv.Redis(t), time.Hour, 100)
	ctx := context.Background()
	gid := GroupID("hook", "route|team=billing")
	add := func(id string, seq int64) Added {
		t.Helper()
		c, data := change(id, seq, t0.Add(time.Duration(seq)*time.Second))
		a, err := s.Add(ctx, "acme", "hook", gid, "route|team=billing", map[string]string{"team": "billing"}, c, data, time.Hour, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := add("e.t.T-1.1", 1); !a.PlanFlush || !a.LastSent.IsZero() || a.Duplicate {
		t.Errorf("first change: %+v, want a flush planned for a group never sent", a)
	}
	if a := add("e.t.T-2.1", 1); a.PlanFlush || a.Duplicate {
		t.Errorf("second change: %+v, want the flush already planned", a)
	}
	// Redelivered while the group has pending changes: the delivery that added it may have died
	// before planning the send, so it is planned again (from the same last send: never).
	if a := add("e.t.T-1.1", 1); !a.Duplicate || !a.PlanFlush || !a.LastSent.IsZero() {
		t.Errorf("a redelivered change: %+v, want a duplicate whose group's send is planned again", a)
	}
	b, err := s.Take(ctx, "acme", gid, t0.Add(time.Minute))
	if err != nil || b == nil || b.N != 1 || len(b.Changes) != 2 || b.Receiver != "hook" || b.GroupLabels["team"] != "billing" {
		t.Fatalf("take: %v %+v", err, b)
	}
	// A crash before the delivery was logged: the next take returns the same batch, not an
	// empty one and not a second number.
	again, err := s.Take(ctx, "acme", gid, t0.Add(2*time.Minute))
	if err != nil || again == nil || again.N != 1 || again.DeliveryID() != b.DeliveryID() || len(again.Changes) != 2 {
		t.Fatalf("take after a crash: %v %+v", err, again)
	}
	if _, err := s.Taken(ctx, b); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Take(ctx, "acme", gid, t0.Add(3*time.Minute)); err != nil || b != nil {
		t.Fatalf("take of an empty group: %v %+v", err, b)
	}
	// The change taken before is still known: a redelivery after the send is no second send,
	// and with nothing pending it plans nothing.
	if a := add("e.t.T-2.1", 1); !a.Duplicate || a.PlanFlush {
		t.Errorf("redelivered after its send: %+v, want a duplicate planning nothing", a)
	}
	// The next change plans a flush from the last send.
	if a := add("e.t.T-3.1", 1); !a.PlanFlush || !a.LastSent.Equal(t0.Add(time.Minute)) {
		t.Errorf("after a send: %+v, want last sent %v", a, t0.Add(time.Minute))
	}
	if b, _ := s.Take(ctx, "acme", gid, t0.Add(4*time.Minute)); b == nil || b.N != 2 || len(b.Changes) != 1 {
		t.Errorf("second flush: %+v", b)
	}
}

func TestLogCapListAndAttempts(t *testing.T) {
	s := New(testenv.Redis(t), time.Hour, 5)
	ctx := context.Background()
	for i := range 8 {
		c, data := change(fmt.Sprintf("e.t.T-%d.1", i), 1, t0)
		r := NewRecord("acme", fmt.Sprintf("g.%d", i), []string{"hook", "mail"}[i%2], "k", nil, []*tpv1.EscalationChange{c}, [][]byte{data}, t0.Add(time.Duration(i)*time.Second))
		if created, err := s.Create(ctx, r); err != nil || !created {
			t.Fatalf("create %d: %v %v", i, created, err)
		}
		if created, _ := s.Create(ctx, r); created {
			t.Fatalf("created %d twice", i)
		}
	}
	all, next, err := s.List(ctx, "acme", Filter{}, 50, "")
	if err != nil || next != "" {
		t.Fatal(err, next)
	}
	var ids []string
	for _, r := range all {
		ids = append(ids, r.ID)
	}
	if want := []string{"g.7", "g.6", "g.5", "g.4", "g.3"}; !slices.Equal(ids, want) {
		t.Errorf("log capped at 5 lists %v, want %v", ids, want)
	}
	if _, err := s.Get(ctx, "acme", "g.0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("trimmed delivery: %v", err)
	}
	page, tok, err := s.List(ctx, "acme", Filter{Receiver: "mail"}, 1, "")
	if err != nil || len(page) != 1 || page[0].ID != "g.7" || tok == "" {
		t.Fatalf("first page: %v %v %q", err, page, tok)
	}
	page, tok, err = s.List(ctx, "acme", Filter{Receiver: "mail"}, 1, tok)
	if err != nil || len(page) != 1 || page[0].ID != "g.5" {
		t.Fatalf("second page: %v %v %q", err, page, tok)
	}
	if _, _, err := s.List(ctx, "acme", Filter{}, 1, "!!"); !errors.Is(err, ErrBadPageToken) {
		t.Errorf("bad token: %v", err)
	}
	if got, _, _ := s.List(ctx, "acme", Filter{EscalationID: "e.t.T-4.1"}, 10, ""); len(got) != 1 || got[0].ID != "g.4" {
		t.Errorf("by escalation: %v", got)
	}
	if got, _, _ := s.List(ctx, "acme", Filter{From: t0.Add(4 * time.Second), To: t0.Add(6 * time.Second)}, 10, ""); len(got) != 2 {
		t.Errorf("by time: %d", len(got))
	}

	for i, st := range []tpv1.DeliveryStatus{tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING, tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED} {
		if err := s.Attempted(ctx, "acme", "g.7", Attempt{At: t0.Add(time.Duration(i) * time.Minute), Status: 500 - 300*i, Error: []string{"boom", ""}[i]}, st, "", t0); err != nil {
			t.Fatal(err)
		}
	}
	r, err := s.Get(ctx, "acme", "g.7")
	if err != nil || r.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED || len(r.Attempts) != 2 || r.Attempts[0].Error != "boom" || r.Attempts[1].Status != 200 {
		t.Errorf("attempts: %v %+v", err, r)
	}
	if cs, err := r.DecodedChanges(); err != nil || len(cs) != 1 || cs[0].GetEscalation().GetId() != "e.t.T-7.1" {
		t.Errorf("changes kept for retries: %v %v", err, cs)
	}
}

func TestDisabledUntilTheAddressChanges(t *testing.T) {
	s := New(testenv.Redis(t), time.Hour, 100)
	ctx := context.Background()
	if err := s.Disable(ctx, "hook", Disabled{Reason: "gone", At: t0, Fingerprint: "a"}); err != nil {
		t.Fatal(err)
	}
	if d, err := s.IsDisabled(ctx, "hook", "a"); err != nil || d == nil || d.Reason != "gone" {
		t.Errorf("same address: %v %v", d, err)
	}
	if d, _ := s.IsDisabled(ctx, "hook", "b"); d != nil {
		t.Errorf("new address still disabled: %v", d)
	}
	if d, _ := s.IsDisabled(ctx, "other", "a"); d != nil {
		t.Errorf("another receiver disabled: %v", d)
	}
}

func TestOpenEscalations(t *testing.T) {
	s := New(testenv.Redis(t), time.Hour, 100)
	ctx := context.Background()
	_ = s.Open(ctx, "acme", "x.a.ana.1", map[string]string{"agent": "ana"}, true)
	_ = s.Open(ctx, "acme", "y.a.bo.1", map[string]string{"agent": "bo"}, true)
	_ = s.Open(ctx, "acme", "y.a.bo.1", nil, false)
	open, err := s.OpenLabels(ctx, "acme")
	if err != nil || len(open) != 1 || open[0]["agent"] != "ana" {
		t.Errorf("open: %v %v", open, err)
	}
}

// A message lists escalations by their first change and each escalation's changes by sequence,
// even when replicas' clocks disagree about the instants.
func TestBatchOrder(t *testing.T) {
	b := &Batch{}
	for _, x := range []struct {
		id  string
		seq int64
		at  time.Duration
	}{{"b", 2, 0}, {"a", 1, 5 * time.Second}, {"b", 1, time.Second}, {"b", 3, 2 * time.Second}} {
		c, data := change(x.id, x.seq, t0.Add(x.at))
		b.Changes, b.Data = append(b.Changes, c), append(b.Data, data)
	}
	sortChanges(b)
	var got []string
	for i, c := range b.Changes {
		got = append(got, ChangeRef(c))
		if d, _ := decodeChange(b.Data[i]); ChangeRef(d) != ChangeRef(c) {
			t.Errorf("data %d does not follow its change", i)
		}
	}
	if want := []string{"b#1", "b#2", "b#3", "a#1"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

// A group lives as long as the dedupe window after its last change or send.
func TestGroupsExpire(t *testing.T) {
	rdb := testenv.Redis(t)
	s := New(rdb, time.Hour, 100)
	c, data := change("e.t.T-1.1", 1, t0)
	if _, err := s.Add(context.Background(), "acme", "hook", "g", "k", nil, c, data, time.Hour, time.Minute); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(context.Background(), groupKey("acme", "g")).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("group TTL %s, want the 1h window", ttl)
	}
}

// A delivery can be narrowed to fewer changes and settled as suppressed without an attempt; a
// delivery trimmed from the log is not brought back by either.
func TestNarrowedAndSuppressed(t *testing.T) {
	rdb := testenv.Redis(t)
	s := New(rdb, time.Hour, 100)
	ctx := context.Background()
	c1, d1 := change("e.t.T-1.1", 1, t0)
	c2, d2 := change("e.t.T-2.1", 1, t0)
	rec := NewRecord("acme", "g.1", "hook", "k", nil, []*tpv1.EscalationChange{c1, c2}, [][]byte{d1, d2}, t0)
	if _, err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	narrow := *rec
	narrow.Changes, narrow.Data, narrow.EscalationIDs = rec.Changes[1:], rec.Data[1:], rec.EscalationIDs[1:]
	if err := s.Narrowed(ctx, &narrow); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "acme", "g.1")
	if err != nil || !slices.Equal(got.Changes, []string{"e.t.T-2.1#1"}) || len(got.Data) != 1 || got.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING {
		t.Fatalf("narrowed: %v %+v", err, got)
	}
	if err := s.Suppressed(ctx, "acme", "g.1", "already delivered", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err = s.Get(ctx, "acme", "g.1")
	if err != nil || got.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED || got.Reason != "already delivered" ||
		!got.Updated.Equal(t0.Add(time.Minute)) || len(got.Attempts) != 0 {
		t.Errorf("suppressed: %v %+v", err, got)
	}
	gone := *rec
	gone.ID = "g.2"
	if err := s.Narrowed(ctx, &gone); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppressed(ctx, "acme", "g.2", "x", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "acme", "g.2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a delivery not in the log: %v, want ErrNotFound", err)
	}
	if err := rdb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppressed(ctx, "acme", "g.1", "x", t0); err == nil || err.Error() != "log delivery g.1 as suppressed: redis: client is closed" {
		t.Errorf("Suppressed on a closed client = %v", err)
	}
	if err := s.Narrowed(ctx, &narrow); err == nil || err.Error() != "narrow delivery g.1: redis: client is closed" {
		t.Errorf("Narrowed on a closed client = %v", err)
	}
}

// A delivery's id is its group, flush number and a nonce drawn at the take: a re-take of the
// same outbox keeps it, a flush number handed out again after Redis went back in time does not,
// and an outbox taken before nonces existed keeps its old id.
func TestDeliveryIDAcrossARedisRollback(t *testing.T) {
	rdb := testenv.Redis(t)
	s := New(rdb, time.Hour, 100)
	ctx := context.Background()
	gid := GroupID("hook", "k")
	c, data := change("e.t.T-1.1", 1, t0)
	if _, err := s.Add(ctx, "acme", "hook", gid, "k", nil, c, data, time.Hour, time.Minute); err != nil {
		t.Fatal(err)
	}
	before, err := rdb.Dump(ctx, groupKey("acme", gid)).Result()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Take(ctx, "acme", gid, t0.Add(time.Minute))
	if err != nil || b == nil || !regexp.MustCompile(`^`+gid+`\.1\.[0-9a-f]{8}$`).MatchString(b.DeliveryID()) {
		t.Fatalf("take: %v %+v", err, b)
	}
	if again, err := s.Take(ctx, "acme", gid, t0.Add(2*time.Minute)); err != nil || again.DeliveryID() != b.DeliveryID() {
		t.Errorf("re-take of the outbox: %v %v, want %s", err, again, b.DeliveryID())
	}
	// Redis goes back to before the take.
	if err := rdb.RestoreReplace(ctx, groupKey("acme", gid), 0, before).Err(); err != nil {
		t.Fatal(err)
	}
	lost, err := s.Take(ctx, "acme", gid, t0.Add(3*time.Minute))
	if err != nil || lost.N != 1 || lost.DeliveryID() == b.DeliveryID() || FlushOf(lost.DeliveryID()) != FlushOf(b.DeliveryID()) {
		t.Errorf("flush 1 again: %v %s, want a new id of flush %s", err, lost.DeliveryID(), FlushOf(b.DeliveryID()))
	}
	if err := rdb.HDel(ctx, groupKey("acme", gid), "ot:1").Err(); err != nil {
		t.Fatal(err)
	}
	if old, err := s.Take(ctx, "acme", gid, t0.Add(4*time.Minute)); err != nil || old.DeliveryID() != gid+".1" || FlushOf(old.DeliveryID()) != gid+".1" {
		t.Errorf("outbox without a nonce: %v %v, want id %s.1", err, old, gid)
	}
	if _, err := s.Taken(ctx, lost); err != nil {
		t.Fatal(err)
	}
	if fields, err := rdb.HKeys(ctx, groupKey("acme", gid)).Result(); err != nil || slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, "o") }) {
		t.Errorf("outbox fields left after Taken: %v %v", fields, err)
	}
}
