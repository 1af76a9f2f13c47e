package store

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// The rollup packs an ended day's hour hash of more than packAbove fields into one field, keeping
// its expiry; every read (whole day, a few of its hours, the rollup's own sums) answers the same
// from it, and a late event unpacks it in place before changing an hour.
func TestRollupPacksTheHoursOfEndedDays(t *testing.T) {
	ctx := context.Background()
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana"}
	day := t0.Unix() / 86400
	hourKey := bucket.HourKey("acme", ana, day)
	const retention = 1000 * 24 * time.Hour // t0 is last year: its hours must outlive it
	setup := func(t *testing.T) (redis.UniversalClient, *Writer) {
		rdb := testenv.Redis(t)
		w := NewWriter(rdb, sla, retention, quiet)
		var tickets []Ticket
		for i := range 6 {
			id := fmt.Sprintf("T-%d", i)
			tickets = append(tickets, Ticket{Tenant: "acme", ID: id, Events: life(id, "ana", "billing", i*110)})
		}
		if _, err := w.Write(ctx, tickets); err != nil {
			t.Fatal(err)
		}
		return rdb, w
	}
	read := func(t *testing.T, rdb redis.UniversalClient, fromHour, toHour int64) *bucket.Totals {
		t.Helper()
		got, err := query.NewReaderCache(rdb, 0).Totals(ctx, "acme", []bucket.Scope{ana}, fromHour, toHour)
		if err != nil {
			t.Fatal(err)
		}
		return got[0]
	}
	equal := func(a, b *bucket.Totals) bool {
		for i := range a.H {
			if !maps.Equal(a.H[i], b.H[i]) {
				return false
			}
		}
		return a.C == b.C
	}
	first := day * 24
	windows := [][2]int64{{first, first + 24}, {first + 9, first + 12}, {first + 11, first + 20}, {first - 24, first + 48}}

	t.Run("at the limit stays a hash", func(t *testing.T) {
		rdb, _ := setup(t)
		n := rdb.HLen(ctx, hourKey).Val()
		rollup := NewRollup(rdb, retention)
		rollup.packAbove = int(n)
		if _, err := rollup.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if got := rdb.HLen(ctx, hourKey).Val(); got != n || rdb.HExists(ctx, hourKey, bucket.PackedHoursField).Val() {
			t.Fatalf("hour hash of %d fields at a limit of %d: %d fields after the rollup, want it left alone", n, n, got)
		}
	})

	t.Run("a hash table is packed whatever its size", func(t *testing.T) {
		rdb, _ := setup(t)
		n := rdb.HLen(ctx, hourKey).Val()
		// A value longer than a listpack holds turns the hash into a hash table for good.
		if err := rdb.HSet(ctx, hourKey, "23|long", strings.Repeat("1", 70)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.HDel(ctx, hourKey, "23|long").Err(); err != nil {
			t.Fatal(err)
		}
		if enc := rdb.ObjectEncoding(ctx, hourKey).Val(); enc != "hashtable" {
			t.Fatalf("fixture: hour hash encoded as %q", enc)
		}
		rollup := NewRollup(rdb, retention)
		rollup.packAbove = int(n)
		if _, err := rollup.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if got := rdb.HKeys(ctx, hourKey).Val(); len(got) != 1 || got[0] != bucket.PackedHoursField {
			t.Fatalf("hash table of %d fields after the rollup has fields %v, want it packed", n, got)
		}
	})

	// Packed hours name each hour once (v2); those an older release packed name it in every item
	// (v1), and read, sum and unpack the same.
	for _, version := range []string{"v2", "v1"} {
		t.Run("packed "+version, func(t *testing.T) { packedDay(t, version, setup, read, equal, windows) })
	}
}

func packedDay(t *testing.T, version string, setup func(*testing.T) (redis.UniversalClient, *Writer), read func(*testing.T, redis.UniversalClient, int64, int64) *bucket.Totals,
	equal func(a, b *bucket.Totals) bool, windows [][2]int64) {
	ctx := context.Background()
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana"}
	day := t0.Unix() / 86400
	hourKey := bucket.HourKey("acme", ana, day)
	const retention = 1000 * 24 * time.Hour
	first := day * 24
	rdb, w := setup(t)
	before := rdb.HGetAll(ctx, hourKey).Val()
	ttl := rdb.PTTL(ctx, hourKey).Val()
	if len(before) < 10 || ttl <= 0 {
		t.Fatalf("fixture: %d hour fields, TTL %v", len(before), ttl)
	}
	var want []*bucket.Totals
	for _, win := range windows {
		want = append(want, read(t, rdb, win[0], win[1]))
	}
	rollup := NewRollup(rdb, retention)
	rollup.packAbove = len(before) - 1
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	packed := rdb.HGetAll(ctx, hourKey).Val()
	if len(packed) != 1 || packed[bucket.PackedHoursField] == "" {
		t.Fatalf("hour hash after the rollup has fields %v, want only %q", slicesKeys(packed), bucket.PackedHoursField)
	}
	if got := rdb.PTTL(ctx, hourKey).Val(); got <= 0 || got > ttl || ttl-got > time.Minute {
		t.Fatalf("packed hour hash TTL %v, want the %v it had", got, ttl)
	}
	unpacked := map[string]string{}
	if err := bucket.EachPackedHours(packed[bucket.PackedHoursField], func(hh int, f, v string) error {
		unpacked[bucket.HourField(hh, f)] = v
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(unpacked, before) {
		t.Fatalf("packed hours hold %v, want %v", unpacked, before)
	}
	text := packed[bucket.PackedHoursField]
	named := map[string]bool{}
	for _, item := range strings.Fields(text)[1:] {
		if hh, _, ok := strings.Cut(item, "|"); ok {
			if named[hh] {
				t.Fatalf("packed hours %q name hour %s twice", text, hh)
			}
			named[hh] = true
		}
	}
	if !strings.HasPrefix(text, "v2 ") || len(named) < 3 || len(named) == len(before) {
		t.Fatalf("packed hours %q: want v2, %d hours each named once", text, len(named))
	}
	if version == "v1" {
		v1 := "v1"
		for f, v := range before {
			v1 += " " + f + "=" + v
		}
		if err := rdb.HSet(ctx, hourKey, bucket.PackedHoursField, v1).Err(); err != nil {
			t.Fatal(err)
		}
		packed = rdb.HGetAll(ctx, hourKey).Val()
	}
	for i, win := range windows {
		if got := read(t, rdb, win[0], win[1]); !equal(got, want[i]) {
			t.Fatalf("hours %v from the packed day: %v, want %v", win, got.C, want[i].C)
		}
	}
	hours := bucket.NewTotals()
	if err := hours.AddHourHash(packed, 0, 24); err != nil {
		t.Fatal(err)
	}
	if !equal(hours, want[0]) {
		t.Fatalf("AddHourHash of the packed day: %v, want %v", hours.C, want[0].C)
	}
	checkTotals(t, rdb) // the day, week, month and year totals equal the packed hours

	// A late reopen at 14:00 unpacks the day and changes one hour of it.
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: []contrib.Event{
		e("T-1/o", tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 300, func(ev *contrib.Event) { ev.Status = tpv1.TicketStatus_TICKET_STATUS_OPEN }),
	}}}); err != nil {
		t.Fatal(err)
	}
	after := rdb.HGetAll(ctx, hourKey).Val()
	if _, ok := after[bucket.PackedHoursField]; ok || len(after) < len(before) {
		t.Fatalf("hour hash after a late event has %d fields (%v), want it unpacked", len(after), slicesKeys(after))
	}
	if got := rdb.PTTL(ctx, hourKey).Val(); got <= 0 || ttl-got > time.Minute {
		t.Fatalf("unpacked hour hash TTL %v, want the %v it had", got, ttl)
	}
	if got := read(t, rdb, first, first+24); got.C[bucket.Reopens] != want[0].C[bucket.Reopens]+1 || got.C[bucket.Assigned] != want[0].C[bucket.Assigned] {
		t.Fatalf("day after the late reopen: reopens %d assigned %d, want %d and %d",
			got.C[bucket.Reopens], got.C[bucket.Assigned], want[0].C[bucket.Reopens]+1, want[0].C[bucket.Assigned])
	}
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if !rdb.HExists(ctx, hourKey, bucket.PackedHoursField).Val() {
		t.Fatal("the rollup did not pack the day again after the late event")
	}
	checkTotals(t, rdb)
}

func slicesKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
