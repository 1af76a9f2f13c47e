package measure

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// toPackKey is kpi's set of days that got figures and wait for their day totals (package
// bucket's ToPackKey): the rollup takes each ended day off it once it has derived its totals.
func toPackKey(tenant string) string { return "tp:{" + tenant + ":ix}:topack" }

// waitRollup waits until kpi's rollup has derived the totals of every ended day the traffic
// touched, so the query figures are those of a settled store rather than of reads that fall back
// to hours while a backfill is being rolled up. It returns how long that took.
func (e *env) waitRollup(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	today := time.Now().UTC().Unix() / 86400
	for {
		days, err := e.rdb.SMembers(ctx, toPackKey(e.cfg.Tenant)).Result()
		if err != nil {
			return 0, fmt.Errorf("read the rollup's queue: %w", err)
		}
		pending := 0
		for _, d := range days {
			if n, err := strconv.ParseInt(d, 10, 64); err == nil && n < today {
				pending++
			}
		}
		if pending == 0 {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("%d ended days still not rolled up after %s", pending, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
