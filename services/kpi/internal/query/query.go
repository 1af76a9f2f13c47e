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

// read is one key of a cover; hourly detail hashes carry the hours of the day that count; a week
// read remembers its scope and week so that an unsealed week can be read from its days instead.
type read struct {
	key      string
	hourly   bool
	from, to int
	week     int64
	scope    *bucket.Scope
}

// hashCmd is an HGETALL queued in a pipeline, in either reply shape.
type hashCmd struct {
	flat *redis.StringSliceCmd
	m    *redis.MapStringStringCmd
}

// sealed reports whether the hash is a sealed week (see bucket.SealedField).
func (h hashCmd) sealed() bool {
	if h.flat != nil {
		kv := h.flat.Val()
		for i := 0; i < len(kv); i += 2 {
			if kv[i] == bucket.SealedField {
				return true
			}
		}
		return false
	}
	_, ok := h.m.Val()[bucket.SealedField]
	return ok
}

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

// Read answers every query with one pipelined round trip of HGETALLs over the covers' keys; a key
// that several queries need is read once. Missing keys count as zeros.
func (r *Reader) Read(ctx context.Context, tenant string, qs []Query) ([]*bucket.Totals, error) {
	covers := make(map[[2]int64]window.Reads)
	plans := make([][]read, len(qs))
	cmds := make(map[string]hashCmd)
	pipe := r.rdb.Pipeline()
	for i, q := range qs {
		span := [2]int64{q.FromHour, q.ToHour}
		c, ok := covers[span]
		if !ok {
			c = window.Cover(q.FromHour, q.ToHour)
			covers[span] = c
		}
		plan := make([]read, 0, c.Len())
		for _, w := range c.Weeks {
			plan = append(plan, read{key: bucket.WeekKey(tenant, q.Scope, w), week: w, scope: &qs[i].Scope})
		}
		for _, d := range c.Days {
			plan = append(plan, read{key: bucket.DayKey(tenant, q.Scope, d)})
		}
		for _, h := range c.Hours {
			plan = append(plan, read{key: bucket.HourKey(tenant, q.Scope, h.Day), hourly: true, from: h.From, to: h.To})
		}
		for _, rd := range plan {
			r.queue(ctx, pipe, cmds, rd.key)
		}
		plans[i] = plan
	}
	if len(cmds) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read %d kpi buckets of tenant %s: %w", len(cmds), tenant, err)
		}
	}
	// A week the rollup has not sealed yet (the last one, shortly after it ended, or one that a
	// backfill reopened) is read from its seven days in a second round trip.
	pipe = r.rdb.Pipeline()
	queued := 0
	for i, plan := range plans {
		var expanded []read
		for j, rd := range plan {
			if rd.scope == nil || cmds[rd.key].sealed() {
				if expanded != nil {
					expanded = append(expanded, rd)
				}
				continue
			}
			if expanded == nil {
				expanded = append(make([]read, 0, len(plan)+6), plan[:j]...)
			}
			first := bucket.FirstDayOfWeek(rd.week)
			for d := first; d < first+7; d++ {
				key := bucket.DayKey(tenant, *rd.scope, d)
				if r.queue(ctx, pipe, cmds, key) {
					queued++
				}
				expanded = append(expanded, read{key: key})
			}
		}
		if expanded != nil {
			plans[i] = expanded
		}
	}
	if queued > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read %d kpi day buckets of unsealed weeks of tenant %s: %w", queued, tenant, err)
		}
	}
	out := make([]*bucket.Totals, len(qs))
	m := newMerger()
	for i, plan := range plans {
		for _, rd := range plan {
			add := m.add
			if rd.hourly {
				add = func(field, value string) error { return m.addHourly(field, value, rd.from, rd.to) }
			}
			if err := cmds[rd.key].each(add); err != nil {
				return nil, fmt.Errorf("%w: bucket %s: %w", ErrCorrupt, rd.key, err)
			}
		}
		out[i] = m.finish()
	}
	return out, nil
}

// queue adds an HGETALL of key to pipe unless one is already there; it reports whether it added.
func (r *Reader) queue(ctx context.Context, pipe redis.Pipeliner, cmds map[string]hashCmd, key string) bool {
	if _, ok := cmds[key]; ok {
		return false
	}
	if r.flat {
		cmd := redis.NewStringSliceCmd(ctx, "hgetall", key)
		_ = pipe.Process(ctx, cmd) // queued; errors come from Exec
		cmds[key] = hashCmd{flat: cmd}
	} else {
		cmds[key] = hashCmd{m: pipe.HGetAll(ctx, key)}
	}
	return true
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
