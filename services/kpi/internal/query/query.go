// Package query reads KPI figures back from the Redis bucket layout of package bucket: the totals
// of any set of scopes over any window of hours, the agents active in a window, and the API form of
// the figures.
package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/redisscript"
)

// ErrCorrupt marks stored data that the bucket layout cannot have produced: a read that failed
// for that reason will fail again, unlike one that met an unreachable server.
var ErrCorrupt = errors.New("corrupt kpi data")

// Reader reads figures with one pipelined round trip per call. Any go-redis client works; a
// cluster client splits the pipeline by slot on its own, since every key names its slot.
type Reader struct {
	rdb    redis.UniversalClient
	cache  *totalsCache
	unions *unionCache
	// scriptSent is set once readScript's body went to Redis; later calls send its hash.
	scriptSent atomic.Bool
	unionSent  atomic.Bool // the same for unionScript
}

// NewReader returns a Reader over rdb that keeps up to DefaultCacheBytes of decoded totals.
func NewReader(rdb redis.UniversalClient) *Reader {
	return NewReaderCache(rdb, DefaultCacheBytes)
}

// NewReaderCache returns a Reader over rdb that keeps up to about cacheBytes of decoded totals
// (none with 0).
func NewReaderCache(rdb redis.UniversalClient, cacheBytes int) *Reader {
	return &Reader{rdb: rdb, cache: newTotalsCache(max(cacheBytes, 0)), unions: newUnionCache(max(cacheBytes, 0) / 8)}
}

// Query asks for the totals of one scope over the unix hours [FromHour, ToHour).
type Query struct {
	Scope            bucket.Scope
	FromHour, ToHour int64
	// Fields, when not zero, are the Kpis fields the totals are read for: the histograms of the
	// durations and scores not among them are left empty (their counters are kept), which
	// spares building them for every point of a series that charts one figure.
	Fields Fields
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
	hours                       // some hours of a day's hourly detail
	// dayLess is most hours of a day: the day's totals less its other hours, or, while the day
	// has no totals, its hours. Counters and histogram bins are sums, so the difference is exact,
	// and the few other hours are all that is read of the hourly detail.
	dayLess
)

// part is one key of a cover.
type part struct {
	kind   partKind
	key    string // the totals key, or for hours the key of the extract in the replies
	scope  *bucket.Scope
	period int64 // the year, month, week or day of totals, the day of hours
	// For hours and dayLess parts: the key of the extract they read (the day's totals key and
	// the mask), the day's totals key and the mask (see extract).
	xkey, dayKey, mask string
}

// extract is a read of some hours of one day's hourly detail, made by the read script in the
// same atomic step as the scope's totals (see readScript). The hours of the mask count for an
// hours part; a dayLess part subtracts them from the day's totals, or, while the day has none,
// takes the other hours instead. Parts of a Read that name the same hours share one extract.
type extract struct {
	key     string // the day's totals key and the mask: the extract's key in the replies and the cache
	day     int64
	hourKey string
	dayKey  string // the day's totals key
	mask    string
	// plain is set when an hours part needs the mask's hours, other when a dayLess part needs
	// the other hours (both only while the day has no totals).
	plain, other bool
}

// masks holds every mask: masks[from][to] has '1' for the hours [from, to) of a day, '0' for
// the others, as readScript takes them.
var masks = func() (m [25][25]string) {
	for from := range 25 {
		for to := from; to < 25; to++ {
			var b [24]byte
			for h := range b {
				b[h] = '0'
				if h >= from && h < to {
					b[h] = '1'
				}
			}
			m[from][to] = string(b[:])
		}
	}
	return m
}()

// hoursPart reads the hours [from, to) of day: for most of the day, as the day's totals less
// the other hours, so that no more than twelve hours of the detail are read. The other hours
// of a day in a series are the hours of the day the period before or after reads: [0, from)
// or [to, 24).
func hoursPart(tenant string, s *bucket.Scope, day int64, from, to int) part {
	dk := bucket.DayTotalsKey(tenant, *s, day)
	if to-from > 12 && (from == 0 || to == 24) {
		m := masks[0][from]
		if from == 0 {
			m = masks[to][24]
		}
		return part{kind: dayLess, key: dk, scope: s, period: day, xkey: dk + "\x00" + m, dayKey: dk, mask: m}
	}
	m := masks[from][to]
	xk := dk + "\x00" + m
	return part{kind: hours, key: xk, scope: s, period: day, xkey: xk, dayKey: dk, mask: m}
}

// reply is a part's key read back: decoded totals or hours, or a missing totals key.
type reply struct {
	dec     *decoded
	missing bool
	// For an extract: dayTotals is true when the day's totals existed as it was read; other is
	// the day's other hours, read when they did not and a dayLess part needs them.
	dayTotals bool
	other     *decoded
}

// scopeRead is the read of one scope's totals keys and hour extracts in a round: one readScript.
type scopeRead struct {
	scope *bucket.Scope
	gen   string // the generation held decoded totals were read under
	keys  []string
	ends  []int64    // per key, the end (unix day) of its period
	held  []*decoded // per key, then per extract, what is held under gen, or nil
	exts  []*extract
	cmd   *redis.Cmd
	// allHeld is true when every key is held, without an expiry, under gen: if it stands, only
	// the generation is answered.
	allHeld bool
}

// Read answers every query with pipelined round trips: one for the keys of the covers (packed
// year, month, week and day totals, a few hours of the hourly detail for partial days; a key
// that several queries need is read once), then, only for totals the rollup has not derived yet,
// one for what they are derived from (a year's months, a month's or a week's days, then a day's
// hours). Missing keys count as zeros.
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
			plan = append(plan, hoursPart(tenant, s, h.Day, h.From, h.To))
		}
		plans[i] = plan
	}
	replies := make(map[string]reply)
	for round := 1; ; round++ {
		queued := 0
		queuedExts := make(map[string]*extract)
		scopes := make(map[string]*scopeRead)
		var order []string
		sent := r.scriptSent.Load()
		fill := func(pipe redis.Pipeliner) {
			var lastScope *bucket.Scope
			var tag string
			var sr *scopeRead
			for _, plan := range plans {
				for _, p := range plan {
					if p.scope != lastScope { // a plan's parts share their scope
						lastScope, tag = p.scope, bucket.GenKey(tenant, *p.scope)
						if sr = scopes[tag]; sr == nil {
							sr = &scopeRead{scope: p.scope}
							scopes[tag] = sr
							order = append(order, tag)
						}
					}
					if p.kind != hours {
						if _, ok := replies[p.key]; !ok {
							replies[p.key] = reply{}
							queued++
							sr.keys = append(sr.keys, p.key)
							sr.ends = append(sr.ends, p.end())
						}
					}
					if p.xkey != "" {
						if _, ok := replies[p.xkey]; !ok {
							replies[p.xkey] = reply{}
							queued++
							x := &extract{key: p.xkey, day: p.period, hourKey: bucket.HourKey(tenant, *p.scope, p.period), dayKey: p.dayKey,
								mask: p.mask, plain: p.kind == hours, other: p.kind == dayLess}
							sr.exts = append(sr.exts, x)
							queuedExts[x.key] = x
						} else if x := queuedExts[p.xkey]; x != nil {
							x.plain, x.other = x.plain || p.kind == hours, x.other || p.kind == dayLess
						}
					}
				}
			}
			for _, genKey := range order {
				sr := scopes[genKey]
				if len(sr.keys)+len(sr.exts) == 0 {
					continue
				}
				sr.held = make([]*decoded, 0, len(sr.keys)+len(sr.exts))
				for _, key := range sr.keys {
					sr.hold(r.cache, key)
				}
				for _, x := range sr.exts {
					sr.hold(r.cache, x.key)
				}
				flags := make([]byte, len(sr.held))
				sr.allHeld = sr.gen != ""
				for i, d := range sr.held {
					switch {
					case d == nil:
						flags[i] = '0'
						sr.allHeld = false
					case d.expires:
						flags[i] = '1'
						sr.allHeld = false
					default:
						flags[i] = '2'
					}
				}
				keys := make([]string, 0, 2+len(sr.keys)+2*len(sr.exts))
				keys = append(append(keys, genKey, bucket.FirstKey(tenant, *sr.scope)), sr.keys...)
				args := make([]any, 0, 4+len(sr.exts))
				args = append(args, r.cache.newGen(), sr.gen, string(flags), len(sr.keys))
				for _, x := range sr.exts {
					keys = append(keys, x.hourKey, x.dayKey)
					args = append(args, x.mask+flag(x.plain)+flag(x.other))
				}
				sr.cmd = r.script(pipe, sent, ctx, keys, args...)
			}
		}
		if err := r.exec(ctx, fill); err != nil {
			return nil, fmt.Errorf("read kpi keys of tenant %s (round %d): %w", tenant, round, err)
		}
		if queued > 0 {
			first := true
			for _, genKey := range order {
				sr := scopes[genKey]
				if sr.cmd == nil {
					continue
				}
				if first && !sent && sr.cmd.Err() == nil {
					r.scriptSent.Store(true)
				}
				first = false
				if err := r.resolve(sr, replies); err != nil {
					return nil, fmt.Errorf("read %d kpi keys of tenant %s (round %d): %w", queued, tenant, round, err)
				}
			}
		}
		if !expandMissing(tenant, plans, replies) && queued == 0 {
			break
		}
	}
	out := make([]*bucket.Totals, len(qs))
	m := newMerger()
	lastFields, want := Fields(0), Fields(0).histograms()
	for i, plan := range plans {
		for _, p := range plan {
			if err := m.addPart(p, replies); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, p.key, err)
			}
		}
		if f := qs[i].Fields; f != lastFields { // a read's queries mostly share their fields
			lastFields, want = f, f.histograms()
		}
		out[i] = m.finish(want)
	}
	return out, nil
}

// hold appends what the cache holds of key under the generation the scope's other held keys
// were read under (any, for the first), or nil.
func (sr *scopeRead) hold(c *totalsCache, key string) {
	var held *decoded
	if e, ok := c.get(key); ok && (sr.gen == "" || sr.gen == e.gen) {
		sr.gen, held = e.gen, e.d
	}
	sr.held = append(sr.held, held)
}

// addPart adds what a part of a plan read.
func (m *merger) addPart(p part, replies map[string]reply) error {
	switch p.kind {
	case hours:
		d := replies[p.key].dec
		if d == nil {
			return fmt.Errorf("the hours %q were not read", p.key)
		}
		if d.noHours {
			return nil
		}
		return m.addDecoded(d)
	case dayLess:
		x := replies[p.xkey]
		if !x.dayTotals {
			if x.other == nil {
				return fmt.Errorf("the other hours of %q were not read", p.xkey)
			}
			if x.other.noHours {
				return nil
			}
			return m.addDecoded(x.other)
		}
		if x.dec == nil || x.dec.noHours {
			// As when the hours are read: a day whose hourly detail is gone (expired before its
			// totals) has no figures for part of it.
			return nil
		}
		day := replies[p.key].dec
		if day == nil {
			return fmt.Errorf("hours %q were read less than day totals that are missing", p.xkey)
		}
		if err := m.addDecoded(day); err != nil {
			return err
		}
		return m.subDecoded(x.dec)
	}
	if d := replies[p.key].dec; d != nil {
		return m.addDecoded(d)
	}
	return nil
}

// expandMissing replaces, in every plan, the totals the rollup has not derived yet by what they
// are derived from: a year by its months, a month or a week by its days, a day by its hours. It
// reports whether it replaced any. A dayLess part is never replaced: its extract already holds
// its hours when the day has no totals.
func expandMissing(tenant string, plans [][]part, replies map[string]reply) bool {
	changed := false
	for i, plan := range plans {
		var expanded []part
		for j, p := range plan {
			if rep, ok := replies[p.key]; !ok || !rep.missing || p.kind == dayLess || p.kind == hours {
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
				// The day has no totals: a dayLess part of it would read all of its hours too.
				xk := p.key + "\x00" + masks[0][24]
				expanded = append(expanded, part{kind: hours, key: xk, scope: p.scope, period: p.period, xkey: xk, dayKey: p.key, mask: masks[0][24]})
			}
		}
		if expanded != nil {
			plans[i] = expanded
			changed = true
		}
	}
	return changed
}

// end is the unix day that the period of a totals part ends on (exclusive).
func (p part) end() int64 {
	switch p.kind {
	case yearTotals:
		return bucket.FirstDayOfYear(p.period + 1)
	case monthTotals:
		return bucket.FirstDayOfMonth(p.period + 1)
	case weekTotals:
		return bucket.FirstDayOfWeek(p.period) + 7
	}
	return p.period + 1
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

// script queues readScript; the first call sends its body, which also loads it, sparing a
// NOSCRIPT round trip.
func (r *Reader) script(pipe redis.Pipeliner, sent bool, ctx context.Context, keys []string, args ...any) *redis.Cmd {
	if sent {
		return readScript.EvalSha(ctx, pipe, keys, args...)
	}
	return readScript.Eval(ctx, pipe, keys, args...)
}

// exec sends what fill queues in one pipeline, loading the read script if Redis lost it. Errors
// are checked per reply: a missing key answers redis.Nil.
func (r *Reader) exec(ctx context.Context, fill func(redis.Pipeliner)) error {
	cmds, err := redisscript.Exec(ctx, r.rdb, fill, readScript, unionScript)
	if err == nil || len(cmds) == 0 {
		return err
	}
	return nil
}

// resolve turns a scope's script reply into the replies of its keys and extracts, decoding what
// was read and keeping it under the generation it was read under.
func (r *Reader) resolve(sr *scopeRead, replies map[string]reply) error {
	vals, err := sr.cmd.Slice()
	if err != nil {
		return err
	}
	if len(vals) == 0 {
		return fmt.Errorf("%w: read script answered nothing", ErrCorrupt)
	}
	gen, ok := vals[0].(string)
	if !ok {
		return fmt.Errorf("%w: read script answered generation %T", ErrCorrupt, vals[0])
	}
	nk := len(sr.keys)
	if len(vals) == 1 {
		if !sr.allHeld || gen != sr.gen {
			return fmt.Errorf("%w: read script answered only generation %q", ErrCorrupt, gen)
		}
		for i, key := range sr.keys {
			replies[key] = reply{dec: sr.held[i]}
		}
		for i, x := range sr.exts {
			replies[x.key] = reply{dec: sr.held[nk+i], dayTotals: true}
		}
		return nil
	}
	if len(vals) != 2+nk+len(sr.exts) {
		return fmt.Errorf("%w: read script answered %d values for %d keys and %d hour extracts", ErrCorrupt, len(vals), nk, len(sr.exts))
	}
	first, hasFirst := int64(0), false
	if v, ok := vals[1].(string); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: first-figures mark %q: %w", ErrCorrupt, v, err)
		}
		first, hasFirst = n, true
	} else if vals[1] != nil {
		return fmt.Errorf("%w: read script answered first-figures mark %T", ErrCorrupt, vals[1])
	}
	for i, key := range sr.keys {
		switch v := vals[2+i].(type) {
		case nil:
			if !hasFirst || sr.ends[i] > first {
				replies[key] = reply{missing: true}
				break
			}
			// A period that ends before the scope's first figures has none: the rollup does not
			// write its empty totals, and nothing below them needs reading. It is kept as empty
			// under the generation, which the write path drops when it lowers the mark.
			d, err := decode(bucket.Pack(nil))
			if err != nil {
				return err
			}
			r.cache.put(key, gen, d)
			replies[key] = reply{dec: d}
		case int64:
			if v != 1 || sr.held[i] == nil || gen != sr.gen {
				return fmt.Errorf("%w: read script answered %d for %s", ErrCorrupt, v, key)
			}
			replies[key] = reply{dec: sr.held[i]}
		case string, []any:
			blob, expires := v, false
			if a, ok := v.([]any); ok {
				blob, expires = nil, true
				if len(a) == 1 {
					blob = a[0]
				}
			}
			packed, ok := blob.(string)
			if !ok {
				return fmt.Errorf("%w: read script answered %T for %s", ErrCorrupt, blob, key)
			}
			d, err := decode(packed)
			if err != nil {
				return fmt.Errorf("%w: %s: %w", ErrCorrupt, key, err)
			}
			d.expires = expires
			r.cache.put(key, gen, d)
			replies[key] = reply{dec: d}
		default:
			return fmt.Errorf("%w: read script answered %T for %s", ErrCorrupt, v, key)
		}
	}
	for i, x := range sr.exts {
		rep, keep, err := resolveExtract(vals[2+nk+i], x, sr.held[nk+i], gen == sr.gen)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, x.hourKey, err)
		}
		// No hour of a day before the scope's first figures has any, and lowering the mark drops
		// the generation.
		keep = keep || (!rep.dayTotals && hasFirst && x.day+1 <= first && noHours(rep.dec) && noHours(rep.other))
		if keep && rep.dec != nil {
			r.cache.put(x.key, gen, rep.dec)
		}
		replies[x.key] = rep
	}
	return nil
}

// resolveExtract turns readScript's answer for an extract into its reply, and says whether it
// may be kept under the generation: only hours of a day whose totals existed without an expiry
// when they were read, which no write can change without dropping the generation.
func resolveExtract(v any, x *extract, held *decoded, sameGen bool) (reply, bool, error) {
	if n, ok := v.(int64); ok {
		if n != 1 || held == nil || !sameGen {
			return reply{}, false, fmt.Errorf("read script answered %d for hours", n)
		}
		return reply{dec: held, dayTotals: true}, false, nil
	}
	a, ok := v.([]any)
	if !ok || len(a) < 4 {
		return reply{}, false, fmt.Errorf("read script answered %T for hours", v)
	}
	if len(a) == 6 {
		return reply{}, false, fmt.Errorf("hourly field %q value %q: want hh|field and a number", a[4], a[5])
	}
	keep, _ := a[2].(int64)
	dayTotals, _ := a[3].(int64)
	rep := reply{dayTotals: dayTotals == 1}
	var err error
	if rep.dec, err = decodeHours(a[0]); err != nil {
		return reply{}, false, err
	}
	if !rep.dayTotals && x.other {
		if rep.other, err = decodeHours(a[1]); err != nil {
			return reply{}, false, err
		}
	}
	return rep, keep == 1 && rep.dec != nil, nil
}

// decodeHours decodes an extract: packed figures, nil for a day without hourly detail, or 0
// for hours that were not asked for.
func decodeHours(v any) (*decoded, error) {
	switch s := v.(type) {
	case nil:
		d, err := decode(bucket.Pack(nil))
		if err != nil {
			return nil, err
		}
		d.noHours = true
		return d, nil
	case string:
		return decode(s)
	case int64:
		if s == 0 {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("read script answered %T for hours", v)
}

// noHours is true for an extract of a day without hourly detail, or one not read (nil).
func noHours(d *decoded) bool { return d == nil || d.noHours }

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Teams returns the ids of the teams credited with anything on the UTC days the window touches,
// sorted.
func (r *Reader) Teams(ctx context.Context, tenant string, fromHour, toHour int64) ([]string, error) {
	return r.members(ctx, tenant, fromHour, toHour, "teams", func(d int64) string { return bucket.TeamsKey(tenant, d) })
}

// Queues returns the ids of the queues credited with call figures on the UTC days the window
// touches, sorted.
func (r *Reader) Queues(ctx context.Context, tenant string, fromHour, toHour int64) ([]string, error) {
	return r.members(ctx, tenant, fromHour, toHour, "queues", func(d int64) string { return bucket.QueuesKey(tenant, d) })
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
	key := what + "\x00" + keys[0] + "\x00" + keys[len(keys)-1]
	held, _ := r.unions.get(key)
	sent := r.unionSent.Load()
	// One slot ({tenant:ix}), so one script on a cluster too.
	var cmd *redis.Cmd
	if err := r.exec(ctx, func(pipe redis.Pipeliner) {
		args := []any{r.cache.newGen(), held.gen, held.keys}
		if sent {
			cmd = unionScript.EvalSha(ctx, pipe, append([]string{bucket.IndexGenKey(tenant)}, keys...), args...)
		} else {
			cmd = unionScript.Eval(ctx, pipe, append([]string{bucket.IndexGenKey(tenant)}, keys...), args...)
		}
	}); err != nil {
		return nil, fmt.Errorf("list %s of tenant %s over %d days: %w", what, tenant, len(keys), err)
	}
	vals, err := cmd.Slice()
	if err != nil {
		return nil, fmt.Errorf("list %s of tenant %s over %d days: %w", what, tenant, len(keys), err)
	}
	r.unionSent.Store(true)
	gen, _ := vals[0].(string)
	n, _ := vals[1].(int64)
	if len(vals) == 2 {
		if gen != held.gen || n != held.keys || gen == "" {
			return nil, fmt.Errorf("%w: %s index of tenant %s: the union script answered no members", ErrCorrupt, what, tenant)
		}
		return slices.Clone(held.ids), nil
	}
	tokens, ok := vals[2].([]any)
	if len(vals) != 3 || !ok {
		return nil, fmt.Errorf("%w: %s index of tenant %s: the union script answered %d values", ErrCorrupt, what, tenant, len(vals))
	}
	ids := make([]string, len(tokens))
	for i, t := range tokens {
		tok, _ := t.(string)
		id, err := idtoken.Unescape(tok)
		if err != nil {
			return nil, fmt.Errorf("%w: %s index of tenant %s: member %q: %w", ErrCorrupt, what, tenant, tok, err)
		}
		ids[i] = id
	}
	slices.Sort(ids)
	r.unions.put(key, heldUnion{gen: gen, keys: n, ids: ids})
	return slices.Clone(ids), nil
}
