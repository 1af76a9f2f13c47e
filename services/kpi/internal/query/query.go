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

// read is one key of a cover; hourly detail hashes carry the hours of the day that count.
type read struct {
	key      string
	hourly   bool
	from, to int
}

// hashCmd is an HGETALL queued in a pipeline, in either reply shape.
type hashCmd struct {
	flat *redis.StringSliceCmd
	m    *redis.MapStringStringCmd
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
			plan = append(plan, read{key: bucket.WeekKey(tenant, q.Scope, w)})
		}
		for _, d := range c.Days {
			plan = append(plan, read{key: bucket.DayKey(tenant, q.Scope, d)})
		}
		for _, h := range c.Hours {
			plan = append(plan, read{key: bucket.HourKey(tenant, q.Scope, h.Day), hourly: true, from: h.From, to: h.To})
		}
		for _, rd := range plan {
			if _, ok := cmds[rd.key]; ok {
				continue
			}
			if r.flat {
				cmd := redis.NewStringSliceCmd(ctx, "hgetall", rd.key)
				_ = pipe.Process(ctx, cmd) // queued; errors come from Exec
				cmds[rd.key] = hashCmd{flat: cmd}
			} else {
				cmds[rd.key] = hashCmd{m: pipe.HGetAll(ctx, rd.key)}
			}
		}
		plans[i] = plan
	}
	if len(cmds) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read %d kpi buckets of tenant %s: %w", len(cmds), tenant, err)
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

// Agents returns the ids of the agents credited with anything on the UTC days the window touches
// (of one team's tickets when team is not empty), sorted. The index is per day, so an agent active
// only outside the window's hours of a partial day is listed too, with the figures of the window.
func (r *Reader) Agents(ctx context.Context, tenant, team string, fromHour, toHour int64) ([]string, error) {
	if fromHour >= toHour {
		return nil, nil
	}
	first, last := bucket.DayOf(fromHour), bucket.DayOf(toHour-1)
	keys := make([]string, 0, last-first+1)
	for d := first; d <= last; d++ {
		if team == "" {
			keys = append(keys, bucket.AgentsKey(tenant, d))
		} else {
			keys = append(keys, bucket.TeamAgentsKey(tenant, team, d))
		}
	}
	// One slot ({tenant:ix}), so one command on a cluster too.
	tokens, err := r.rdb.SUnion(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("list agents of tenant %s over %d days: %w", tenant, len(keys), err)
	}
	ids := make([]string, len(tokens))
	for i, tok := range tokens {
		id, err := idtoken.Unescape(tok)
		if err != nil {
			return nil, fmt.Errorf("%w: agent index of tenant %s: member %q: %w", ErrCorrupt, tenant, tok, err)
		}
		ids[i] = id
	}
	slices.Sort(ids)
	return ids, nil
}
