package zpage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

// An index of 700 ids over 350 instants (two per instant, so ties cross page and chunk
// bounds); records divisible by 7 are gone, and the filter keeps even ones.
func TestPages(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	t0 := time.UnixMilli(1_000_000)
	for i := range 700 {
		rdb.ZAdd(ctx, "ix", redis.Z{Score: float64(t0.UnixMilli() + int64(i/2)), Member: fmt.Sprintf("id-%03d", i)})
	}
	load := func(_ context.Context, ids []string) ([]*int, error) {
		out := make([]*int, len(ids))
		for i, id := range ids {
			n, _ := strconv.Atoi(id[3:])
			if n%7 != 0 {
				out[i] = &n
			}
		}
		return out, nil
	}
	keep := func(n *int) bool { return n != nil && *n%2 == 0 }
	want := func(from, to int) []int { // even, not divisible by 7, in [from, to), newest first
		var out []int
		for i := 699; i >= 0; i-- {
			if i >= from && i < to && i%2 == 0 && i%7 != 0 {
				out = append(out, i)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		size     int
		want     []int
	}{
		{"everything, small pages", time.Time{}, time.Time{}, 7, want(0, 700)},
		{"everything, one page", time.Time{}, time.Time{}, 1000, want(0, 700)},
		{"pages across chunks", time.Time{}, time.Time{}, 100, want(0, 700)},
		{"a range", t0.Add(100 * time.Millisecond), t0.Add(200 * time.Millisecond), 9, want(200, 400)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			tok := ""
			for pages := 0; ; pages++ {
				recs, next, err := List(ctx, rdb, Query{Key: "ix", From: tc.from, To: tc.to, Size: tc.size, Token: tok}, load, keep)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) > tc.size || pages > 200 {
					t.Fatalf("page of %d (size %d), page %d", len(recs), tc.size, pages)
				}
				for _, r := range recs {
					got = append(got, *r)
				}
				if next == "" {
					break
				}
				tok = next
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("listed %d: %v\nwant %d: %v", len(got), got, len(tc.want), tc.want)
			}
		})
	}
	if _, _, err := List(ctx, rdb, Query{Key: "ix", Size: 5, Token: "%%%"}, load, keep); !errors.Is(err, ErrBadToken) {
		t.Errorf("bad token: %v", err)
	}
}
