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

// toSealKey, toMonthKey and toYearKey are the same for weeks, months and years (package
// bucket's ToSealKey, ToMonthKey and ToYearKey).
func toSealKey(tenant string) string  { return "tp:{" + tenant + ":ix}:toseal" }
func toMonthKey(tenant string) string { return "tp:{" + tenant + ":ix}:tomonth" }
func toYearKey(tenant string) string  { return "tp:{" + tenant + ":ix}:toyear" }

// waitRollup waits until kpi's rollup has derived the totals of every ended day, week, month and year the
// traffic touched, so the query figures are those of a settled store rather than of reads that fall back
// to hours while a backfill is being rolled up. A pass takes its queue when it starts, so the
// queues must stay empty for quiet (longer than a rollup interval) before the store counts as
// settled. It returns how long that took.
func (e *env) waitRollup(ctx context.Context, quiet, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	var emptySince time.Time
	deadline := start.Add(timeout)
	now := time.Now().UTC()
	today := now.Unix() / 86400
	thisWeek := (today + 3) / 7 // weeks start on Monday; 1970-01-01 was a Thursday
	thisMonth := int64(now.Year()-1970)*12 + int64(now.Month()-1)
	thisYear := int64(now.Year() - 1970)
	for {
		pending := 0
		for _, q := range []struct {
			key     string
			current int64
		}{{toPackKey(e.cfg.Tenant), today}, {toSealKey(e.cfg.Tenant), thisWeek},
			{toMonthKey(e.cfg.Tenant), thisMonth}, {toYearKey(e.cfg.Tenant), thisYear}} {
			members, err := e.rdb.SMembers(ctx, q.key).Result()
			if err != nil {
				return 0, fmt.Errorf("read the rollup's queue: %w", err)
			}
			for _, m := range members {
				if n, err := strconv.ParseInt(m, 10, 64); err == nil && n < q.current {
					pending++
				}
			}
		}
		switch {
		case pending > 0:
			emptySince = time.Time{}
		case emptySince.IsZero():
			emptySince = time.Now()
		case time.Since(emptySince) >= quiet:
			return time.Since(start) - quiet, nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("%d ended days, weeks, months or years still not rolled up after %s", pending, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
