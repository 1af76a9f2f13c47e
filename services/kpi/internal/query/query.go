// Package query reads KPI figures back from the Redis bucket layout of package bucket: the totals
// of any set of scopes over any window of hours, the agents active in a window, and the API form of
// the figures.
package query

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// ErrCorrupt marks stored data that the bucket layout cannot have produced: a read that failed
// for that reason will fail again, unlike one that met an unreachable server.
var ErrCorrupt = errors.New("corrupt kpi data")

// Reader reads figures with one pipelined round trip per call. Any go-redis client works; a
// cluster client splits the pipeline by slot on its own, since every key names its slot.
type Reader struct {
	rdb redis.UniversalClient
	// flat is true when the client speaks RESP2, where HGETALL answers a flat list that can be
	// read into a []string, sparing a map per key.
	flat bool
}

// NewReader returns a Reader over rdb.
func NewReader(rdb redis.UniversalClient) *Reader {
	flat := false
	switch c := rdb.(type) {
	case *redis.Client:
		flat = c.Options().Protocol == 2
	case *redis.ClusterClient:
		flat = c.Options().Protocol == 2
	}
	return &Reader{rdb: rdb, flat: flat}
}

// Query asks for the totals of one scope over the unix hours [FromHour, ToHour).
type Query struct {
	Scope            bucket.Scope
	FromHour, ToHour int64
}

// Totals returns the totals of each scope over [fromHour, toHour), in the order of scopes.
func (r *Reader) Totals(ctx context.Context, tenant string, scopes []bucket.Scope, fromHour, toHour int64) ([]*bucket.Totals, error) {
	qs := make([]Query, len(scopes))
	for i, s := range scopes {
		qs[i] = Query{Scope: s, FromHour: fromHour, ToHour: toHour}
	}
	return r.Read(ctx, tenant, qs)
}

// partKind says how a part of a cover is read.
type partKind byte

const (
	yearTotals  partKind = iota // packed year totals, or else its twelve months
	monthTotals                 // packed month totals, or else its days
	weekTotals                  // packed week totals, or else its seven days
	dayTotals                   // packed day totals, or else its hours
	hours                       // hours [from, to) of a day's hourly detail
)

// part is one key of a cover.
type part struct {
	kind     partKind
	key      string
	scope    *bucket.Scope
	period   int64 // the year, month, week or day of totals
	day      int64 // the day of hours
	from, to int   // the hours of the day that count
}

// reply is a queued read of a part's key in either of its shapes.
type reply struct {
	blob *redis.StringCmd
	hash hashCmd
}

// hashCmd is an HGETALL queued in a pipeline, in either reply shape.
type hashCmd struct {
	flat *redis.StringSliceCmd
	m    *redis.MapStringStringCmd
}

func (r reply) err() error {
	switch {
	case r.blob != nil:
		return r.blob.Err()
	case r.hash.flat != nil:
		return r.hash.flat.Err()
	default:
		return r.hash.m.Err()
	}
}

// missing reports whether a totals key does not exist (yet), so its part is read from the keys it
// is derived from.
func (r reply) missing() bool { return r.blob != nil && errors.Is(r.blob.Err(), redis.Nil) }

// each calls f with every field and value of the hash.
func (h hashCmd) each(f func(field, value string) error) error {
	if h.flat != nil {
		kv := h.flat.Val()
		for i := 0; i+1 < len(kv); i += 2 {
			if err := f(kv[i], kv[i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	for field, value := range h.m.Val() {
		if err := f(field, value); err != nil {
			return err
		}
	}
	return nil
}

// Read answers every query with pipelined round trips: one for the keys of the covers (packed
// year, month, week and day totals, hourly detail for partial days; a key that several queries
// need is read once), then, only for totals the rollup has not derived yet, one for what they are
// derived from (a year's months, a month's or a week's days, then a day's hours). Missing keys
// count as zeros.
func (r *Reader) Read(ctx context.Context, tenant string, qs []Query) ([]*bucket.Totals, error) {
	covers := make(map[[2]int64]window.Reads)
	plans := make([][]part, len(qs))
	for i, q := range qs {
		span := [2]int64{q.FromHour, q.ToHour}
		c, ok := covers[span]
		if !ok {
			c = window.Cover(q.FromHour, q.ToHour)
			covers[span] = c
		}
		s := &qs[i].Scope
		plan := make([]part, 0, c.Len())
		for _, y := range c.Years {
			plan = append(plan, yearPart(tenant, s, y))
		}
		for _, m := range c.Months {
			plan = append(plan, monthPart(tenant, s, m))
		}
		for _, w := range c.Weeks {
			plan = append(plan, part{kind: weekTotals, key: bucket.WeekTotalsKey(tenant, *s, w), scope: s, period: w})
		}
		for _, d := range c.Days {
			plan = append(plan, dayPart(tenant, s, d))
		}
		for _, h := range c.Hours {
			plan = append(plan, part{kind: hours, key: bucket.HourKey(tenant, *s, h.Day), day: h.Day, from: h.From, to: h.To})
		}
		plans[i] = plan
	}
	replies := make(map[string]reply)
	for round := 1; ; round++ {
		pipe := r.rdb.Pipeline()
		var queued []string
		for _, plan := range plans {
			for _, p := range plan {
				if _, ok := replies[p.key]; !ok {
					replies[p.key] = r.queue(ctx, pipe, p)
					queued = append(queued, p.key)
				}
			}
		}
		if len(queued) > 0 {
			// A missing totals key makes Exec report redis.Nil: each reply is checked instead.
			_, _ = pipe.Exec(ctx)
			for _, key := range queued {
				if err := replies[key].err(); err != nil && !errors.Is(err, redis.Nil) {
					return nil, fmt.Errorf("read %d kpi keys of tenant %s (round %d): %w", len(queued), tenant, round, err)
				}
			}
		}
		if !expandMissing(tenant, plans, replies) && len(queued) == 0 {
			break
		}
	}
	out := make([]*bucket.Totals, len(qs))
	m := newMerger()
	for i, plan := range plans {
		for _, p := range plan {
			rep := replies[p.key]
			var err error
			if p.kind == hours {
				from, to := p.from, p.to
				err = rep.hash.each(func(field, value string) error { return m.addHourly(field, value, from, to) })
			} else {
				err = bucket.EachPacked(rep.blob.Val(), m.add)
			}
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, p.key, err)
			}
		}
		out[i] = m.finish()
	}
	return out, nil
}

// expandMissing replaces, in every plan, the totals the rollup has not derived yet by what they
// are derived from: a year by its months, a month or a week by its days, a day by its hours. It reports whether it replaced any.
func expandMissing(tenant string, plans [][]part, replies map[string]reply) bool {
	changed := false
	for i, plan := range plans {
		var expanded []part
		for j, p := range plan {
			if rep, ok := replies[p.key]; !ok || !rep.missing() {
				if expanded != nil {
					expanded = append(expanded, p)
				}
				continue
			}
			if expanded == nil {
				expanded = append(make([]part, 0, len(plan)+6), plan[:j]...)
			}
			switch p.kind {
			case yearTotals:
				first := bucket.FirstMonthOfYear(p.period)
				for m := first; m < first+12; m++ {
					expanded = append(expanded, monthPart(tenant, p.scope, m))
				}
			case monthTotals:
				for d := bucket.FirstDayOfMonth(p.period); d < bucket.FirstDayOfMonth(p.period+1); d++ {
					expanded = append(expanded, dayPart(tenant, p.scope, d))
				}
			case weekTotals:
				first := bucket.FirstDayOfWeek(p.period)
				for d := first; d < first+7; d++ {
					expanded = append(expanded, dayPart(tenant, p.scope, d))
				}
			case dayTotals:
				expanded = append(expanded, part{kind: hours, key: bucket.HourKey(tenant, *p.scope, p.period), day: p.period, from: 0, to: 24})
			}
		}
		if expanded != nil {
			plans[i] = expanded
			changed = true
		}
	}
	return changed
}

func yearPart(tenant string, s *bucket.Scope, year int64) part {
	return part{kind: yearTotals, key: bucket.YearTotalsKey(tenant, *s, year), scope: s, period: year}
}

func monthPart(tenant string, s *bucket.Scope, month int64) part {
	return part{kind: monthTotals, key: bucket.MonthTotalsKey(tenant, *s, month), scope: s, period: month}
}

func dayPart(tenant string, s *bucket.Scope, day int64) part {
	return part{kind: dayTotals, key: bucket.DayTotalsKey(tenant, *s, day), scope: s, period: day}
}

// queue adds the read of p's key to pipe.
func (r *Reader) queue(ctx context.Context, pipe redis.Pipeliner, p part) reply {
	switch {
	case p.kind != hours:
		return reply{blob: pipe.Get(ctx, p.key)}
	case r.flat:
		cmd := redis.NewStringSliceCmd(ctx, "hgetall", p.key)
		_ = pipe.Process(ctx, cmd) // queued; errors come with the reply
		return reply{hash: hashCmd{flat: cmd}}
	default:
		return reply{hash: hashCmd{m: pipe.HGetAll(ctx, p.key)}}
	}
}

// Teams returns the ids of the teams credited with anything on the UTC days the window touches,
// sorted.
func (r *Reader) Teams(ctx context.Context, tenant string, fromHour, toHour int64) ([]string, error) {
	return r.members(ctx, tenant, fromHour, toHour, "teams", func(d int64) string { return bucket.TeamsKey(tenant, d) })
}

// Agents returns the ids of the agents credited with anything on the UTC days the window touches
// (of one team's tickets when team is not empty), sorted. The index is per day, so an agent active
// only outside the window's hours of a partial day is listed too, with the figures of the window.
func (r *Reader) Agents(ctx context.Context, tenant, team string, fromHour, toHour int64) ([]string, error) {
	key := func(d int64) string { return bucket.AgentsKey(tenant, d) }
	if team != "" {
		key = func(d int64) string { return bucket.TeamAgentsKey(tenant, team, d) }
	}
	return r.members(ctx, tenant, fromHour, toHour, "agents", key)
}

// members unions a per-day index over the days of the window and unescapes the ids, sorted.
func (r *Reader) members(ctx context.Context, tenant string, fromHour, toHour int64, what string, dayKey func(int64) string) ([]string, error) {
	if fromHour >= toHour {
		return nil, nil
	}
	first, last := bucket.DayOf(fromHour), bucket.DayOf(toHour-1)
	keys := make([]string, 0, last-first+1)
	for d := first; d <= last; d++ {
		keys = append(keys, dayKey(d))
	}
	// One slot ({tenant:ix}), so one command on a cluster too.
	tokens, err := r.rdb.SUnion(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("list %s of tenant %s over %d days: %w", what, tenant, len(keys), err)
	}
	ids := make([]string, len(tokens))
	for i, tok := range tokens {
		id, err := idtoken.Unescape(tok)
		if err != nil {
			return nil, fmt.Errorf("%w: %s index of tenant %s: member %q: %w", ErrCorrupt, what, tenant, tok, err)
		}
		ids[i] = id
	}
	slices.Sort(ids)
	return ids, nil
}
