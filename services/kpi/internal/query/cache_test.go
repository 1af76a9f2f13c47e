package query

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// A month's totals are decoded once and kept under the scope's generation: while it stands, a
// read asks only whether the key still exists; when it is dropped (as the write path and the
// rollup do) or the key is gone, the next read goes back to Redis.
func TestDecodedTotalsFollowTheGeneration(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	r := NewReader(rdb)
	month := bucket.MonthOf(hourAt("2026-03-01T00:00:00Z") / 24)
	from, to := hourAt("2026-03-01T00:00:00Z"), hourAt("2026-04-01T00:00:00Z")
	key, gen := bucket.MonthTotalsKey(tenant, ana, month), bucket.GenKey(tenant, ana)
	assigned := func(stage string, want int64) {
		t.Helper()
		got, err := r.Totals(ctx, tenant, []bucket.Scope{ana}, from, to)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if a := got[0].C[bucket.Assigned]; a != want {
			t.Fatalf("%s: assigned %d, want %d", stage, a, want)
		}
	}
	if err := rdb.Set(ctx, key, bucket.Pack(map[string]int64{"as": 3, "F412": 2}), 0).Err(); err != nil {
		t.Fatal(err)
	}
	assigned("first read", 3)
	g1, err := rdb.Get(ctx, gen).Result()
	if err != nil || g1 == "" {
		t.Fatalf("generation after a read: %q, %v", g1, err)
	}

	// Content changed behind the generation's back (nothing in kpi does that): the held value is
	// what the read answers, which shows that it is held.
	if err := rdb.Set(ctx, key, bucket.Pack(map[string]int64{"as": 5}), 0).Err(); err != nil {
		t.Fatal(err)
	}
	assigned("same generation", 3)

	rdb.Del(ctx, gen)
	assigned("generation dropped", 5)
	if g2 := rdb.Get(ctx, gen).Val(); g2 == "" || g2 == g1 {
		t.Fatalf("generation %q after %q was dropped: want a new one", g2, g1)
	}

	// Written with an expiry (as the rollup does under a retention, dropping the generation),
	// held, then expired: the held value must not stand in for it; its days are read instead.
	if err := rdb.Set(ctx, key, bucket.Pack(map[string]int64{"as": 9}), 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, gen)
	assigned("expiring", 9)
	assigned("expiring, held", 9)
	time.Sleep(400 * time.Millisecond)
	assigned("expired", 0)

	// Held with an expiry, then expired and derived again without one (by a rollup without a
	// retention, which keeps the generation): read again.
	if err := rdb.Set(ctx, key, bucket.Pack(map[string]int64{"as": 4}), 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, gen)
	assigned("expiring again", 4)
	time.Sleep(400 * time.Millisecond)
	if err := rdb.Set(ctx, key, bucket.Pack(map[string]int64{"as": 6}), 0).Err(); err != nil {
		t.Fatal(err)
	}
	assigned("back without an expiry", 6)

	// A reader that holds nothing (another replica, or no cache) reads the same figures.
	if err := rdb.Set(ctx, key, bucket.Pack(map[string]int64{"as": 7}), 0).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, gen)
	assigned("recreated", 7)
	uncached := NewReaderCache(rdb, 0)
	got, err := uncached.Totals(ctx, tenant, []bucket.Scope{ana}, from, to)
	if err != nil || got[0].C[bucket.Assigned] != 7 {
		t.Fatalf("reader without a cache: %v, %v", got, err)
	}
	if len(uncached.cache.entries) != 0 {
		t.Fatalf("a cache of 0 bytes holds %d entries", len(uncached.cache.entries))
	}
}

// Corrupt totals fail the read with the key named, and nothing corrupt is held.
func TestCorruptTotalsAreNotHeld(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	r := NewReader(rdb)
	day := hourAt("2026-03-02T00:00:00Z") / 24
	key := bucket.DayTotalsKey(tenant, ana, day)
	for _, bad := range []string{"v1 as=x", "v1 zz=1", "v9 as=1"} {
		rdb.Set(ctx, key, bad, 0)
		_, err := r.Totals(ctx, tenant, []bucket.Scope{ana}, day*24, day*24+24)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), key) {
			t.Fatalf("%q: %v, want ErrCorrupt naming %s", bad, err, key)
		}
		if _, ok := r.cache.get(key); ok {
			t.Fatalf("%q: held", bad)
		}
	}
}

// The cache stays within its budget.
func TestCacheBudget(t *testing.T) {
	c := newTotalsCache(64 << 10)
	d, err := decode(bucket.Pack(map[string]int64{"as": 1, "F1": 1, "F2": 1, "R3": 4}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10_000 {
		c.put(string(rune('a'+i%26))+strings.Repeat("k", i%50)+string(rune(i)), "g", d)
		if c.used > c.budget {
			t.Fatalf("after %d entries: %d bytes used of %d", i+1, c.used, c.budget)
		}
	}
	if len(c.entries) == 0 {
		t.Fatal("nothing held")
	}
	if c.newGen() == c.newGen() || newTotalsCache(1).newGen() == c.newGen() {
		t.Fatal("generations repeat")
	}
}

// The union of a window's listing sets is kept under the tenant's listing generation: dropped
// (as the write path does when a set gains a member) or a set expired, the next listing unions
// again.
func TestListingUnionFollowsTheGeneration(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	r := NewReader(rdb)
	day := hourAt("2026-03-02T00:00:00Z") / 24
	gen := bucket.IndexGenKey(tenant)
	agents := func(stage string, want ...string) {
		t.Helper()
		got, err := r.Agents(ctx, tenant, "", day*24, (day+3)*24)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: %q, want %q", stage, got, want)
		}
	}
	rdb.SAdd(ctx, bucket.AgentsKey(tenant, day), "ana")
	rdb.SAdd(ctx, bucket.AgentsKey(tenant, day+1), "bo")
	rdb.PExpire(ctx, bucket.AgentsKey(tenant, day+1), 300*time.Millisecond)
	agents("first", "ana", "bo")
	g1 := rdb.Get(ctx, gen).Val()
	if g1 == "" {
		t.Fatal("no listing generation after a listing")
	}
	// Added behind the generation's back (the write path drops it): the held union answers.
	rdb.SAdd(ctx, bucket.AgentsKey(tenant, day), "cy")
	agents("held", "ana", "bo")
	rdb.Del(ctx, gen)
	agents("generation dropped", "ana", "bo", "cy")
	if g2 := rdb.Get(ctx, gen).Val(); g2 == "" || g2 == g1 {
		t.Fatalf("listing generation %q after %q was dropped: want a new one", g2, g1)
	}
	time.Sleep(400 * time.Millisecond)
	agents("a set expired", "ana", "cy")
	// The caller may change what it gets without changing what is held.
	got, _ := r.Agents(ctx, tenant, "", day*24, (day+3)*24)
	got[0] = "changed"
	agents("after the caller changed its copy", "ana", "cy")
}

// Concurrent reads through one Reader, while generations are dropped and totals rewritten the
// way the write path and the rollup do it, answer what a Reader without a cache answers.
func TestConcurrentReadsAgreeWithAnUncachedReader(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	r, plain := NewReader(rdb), NewReaderCache(rdb, 0)
	scopes := []bucket.Scope{ana, bo, billing}
	from, to := hourAt("2026-01-01T00:00:00Z"), hourAt("2026-07-01T00:00:00Z")
	write := func(v int64) {
		for _, s := range scopes {
			for m := bucket.MonthOf(from / 24); m < bucket.MonthOf(to/24); m++ {
				key := bucket.MonthTotalsKey(tenant, s, m)
				// As the write path deletes stale totals (with the generation, atomically) and
				// the rollup derives them again where they are missing.
				if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Del(ctx, key, bucket.GenKey(tenant, s))
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				rdb.SetNX(ctx, key, bucket.Pack(map[string]int64{"as": v, "F412": v}), 0)
			}
		}
	}
	write(1)
	done := make(chan error, 4)
	for range 4 {
		go func() {
			for range 30 {
				if _, err := r.Totals(ctx, tenant, scopes, from, to); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for v := int64(2); v < 6; v++ {
		write(v)
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.Totals(ctx, tenant, scopes, from, to)
	if err != nil {
		t.Fatal(err)
	}
	want, err := plain.Totals(ctx, tenant, scopes, from, to)
	if err != nil {
		t.Fatal(err)
	}
	for i := range scopes {
		if got[i].C[bucket.Assigned] != 5*6 || got[i].C != want[i].C || got[i].H[bucket.FirstResponse][412] != want[i].H[bucket.FirstResponse][412] {
			t.Fatalf("%v: %v, uncached %v", scopes[i], got[i].C, want[i].C)
		}
	}
}
