// Package querytest writes KPI figures straight into Redis in the layout of package bucket, for
// the tests and benchmarks of the read side: one figure at a time as the write path applies it,
// or a whole synthetic data set at once.
package querytest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// Incr adds delta to field (a plain bucket field such as "as" or "F412") of scope s at a unix
// hour: in the hour's detail hash, as the write path does, and in the packed totals of its day,
// week, month and year, as the rollup would derive them: fixtures stand for periods already
// rolled up.
func Incr(ctx context.Context, rdb redis.Cmdable, tenant string, s bucket.Scope, hour int64, field string, delta int64) error {
	day := bucket.DayOf(hour)
	if err := rdb.HIncrBy(ctx, bucket.HourKey(tenant, s, day), bucket.HourField(int(hour-24*day), field), delta).Err(); err != nil {
		return fmt.Errorf("incr %s of %v at hour %d: %w", field, s, hour, err)
	}
	for _, key := range []string{bucket.DayTotalsKey(tenant, s, day), bucket.WeekTotalsKey(tenant, s, bucket.WeekOf(day)),
		bucket.MonthTotalsKey(tenant, s, bucket.MonthOf(day)), bucket.YearTotalsKey(tenant, s, bucket.YearOf(day))} {
		packed, err := rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			packed, err = bucket.Pack(nil), nil
		}
		if err != nil {
			return fmt.Errorf("incr %s of %v at hour %d: %w", field, s, hour, err)
		}
		fields := map[string]int64{}
		err = bucket.EachPacked(packed, func(f, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			fields[f] = n
			return err
		})
		if err != nil {
			return fmt.Errorf("incr %s of %v at hour %d: %s: %w", field, s, hour, key, err)
		}
		fields[field] += delta
		if err := rdb.Set(ctx, key, bucket.Pack(fields), 0).Err(); err != nil {
			return fmt.Errorf("incr %s of %v at hour %d: %w", field, s, hour, err)
		}
	}
	return nil
}

// RolledUp writes empty totals for the days [fromDay, toDay) and their weeks, months and years
// where s has none, as a rollup that has seen every one of them end would leave them (empty
// weeks, months and years for every scope; empty days stand for days derived again after a
// change cancelled out).
func RolledUp(ctx context.Context, rdb redis.Cmdable, tenant string, s bucket.Scope, fromDay, toDay int64) error {
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for d := fromDay; d < toDay; d++ {
			p.SetNX(ctx, bucket.DayTotalsKey(tenant, s, d), bucket.Pack(nil), 0)
			p.SetNX(ctx, bucket.WeekTotalsKey(tenant, s, bucket.WeekOf(d)), bucket.Pack(nil), 0)
			p.SetNX(ctx, bucket.MonthTotalsKey(tenant, s, bucket.MonthOf(d)), bucket.Pack(nil), 0)
			p.SetNX(ctx, bucket.YearTotalsKey(tenant, s, bucket.YearOf(d)), bucket.Pack(nil), 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("roll up %v days %d to %d: %w", s, fromDay, toDay, err)
	}
	return nil
}

// Index records in the listing sets that agent (and, when team is not empty, team) was credited
// on the UTC day of hour.
func Index(ctx context.Context, rdb redis.Cmdable, tenant, agent, team string, hour int64) error {
	day := bucket.DayOf(hour)
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if agent != "" {
			p.SAdd(ctx, bucket.AgentsKey(tenant, day), idtoken.Escape(agent))
		}
		if team != "" {
			p.SAdd(ctx, bucket.TeamsKey(tenant, day), idtoken.Escape(team))
		}
		if agent != "" && team != "" {
			p.SAdd(ctx, bucket.TeamAgentsKey(tenant, team, day), idtoken.Escape(agent))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index agent %q team %q at hour %d: %w", agent, team, hour, err)
	}
	return nil
}

// Builder accumulates figures in memory and writes each key with a single HSET, which makes
// large data sets quick to load. The keys it writes must not exist yet.
type Builder struct {
	tenant string
	figs   map[scopeHour]map[string]int64
	sets   map[string]map[string]bool
}

type scopeHour struct {
	s    bucket.Scope
	hour int64
}

// NewBuilder returns an empty builder for tenant.
func NewBuilder(tenant string) *Builder {
	return &Builder{tenant: tenant, figs: make(map[scopeHour]map[string]int64), sets: make(map[string]map[string]bool)}
}

// Add adds delta to field of s at hour; Flush spreads it over the hourly detail and the day and
// week totals.
func (b *Builder) Add(s bucket.Scope, hour int64, field string, delta int64) {
	k := scopeHour{s, hour}
	f := b.figs[k]
	if f == nil {
		f = make(map[string]int64)
		b.figs[k] = f
	}
	f[field] += delta
}

// Index is Index above, accumulated.
func (b *Builder) Index(agent, team string, hour int64) {
	day := bucket.DayOf(hour)
	put := func(key, member string) {
		if b.sets[key] == nil {
			b.sets[key] = make(map[string]bool)
		}
		b.sets[key][member] = true
	}
	if agent != "" {
		put(bucket.AgentsKey(b.tenant, day), idtoken.Escape(agent))
	}
	if team != "" {
		put(bucket.TeamsKey(b.tenant, day), idtoken.Escape(team))
	}
	if agent != "" && team != "" {
		put(bucket.TeamAgentsKey(b.tenant, team, day), idtoken.Escape(agent))
	}
}

// IndexQueue records in the listing sets that queue was credited on the UTC day of hour.
func (b *Builder) IndexQueue(queue string, hour int64) {
	key := bucket.QueuesKey(b.tenant, bucket.DayOf(hour))
	if b.sets[key] == nil {
		b.sets[key] = make(map[string]bool)
	}
	b.sets[key][idtoken.Escape(queue)] = true
}

// hashes spreads the figures over the keys of the layout: the hourly detail hashes, and the day
// and week totals (fixtures stand for days and weeks the rollup has derived).
func (b *Builder) hashes() (hourly, totals map[string]map[string]int64) {
	hourly, totals = make(map[string]map[string]int64), make(map[string]map[string]int64)
	in := func(m map[string]map[string]int64, key string) map[string]int64 {
		h := m[key]
		if h == nil {
			h = make(map[string]int64, 64)
			m[key] = h
		}
		return h
	}
	var hourFields [24]map[string]string // bucket.HourField formats; a large load asks millions of times
	for k, fields := range b.figs {
		day := bucket.DayOf(k.hour)
		hk, dk := in(hourly, bucket.HourKey(b.tenant, k.s, day)), in(totals, bucket.DayTotalsKey(b.tenant, k.s, day))
		wk := in(totals, bucket.WeekTotalsKey(b.tenant, k.s, bucket.WeekOf(day)))
		mk := in(totals, bucket.MonthTotalsKey(b.tenant, k.s, bucket.MonthOf(day)))
		yk := in(totals, bucket.YearTotalsKey(b.tenant, k.s, bucket.YearOf(day)))
		hh := int(k.hour - 24*day)
		if hourFields[hh] == nil {
			hourFields[hh] = make(map[string]string)
		}
		for f, v := range fields {
			hf, ok := hourFields[hh][f]
			if !ok {
				hf = bucket.HourField(hh, f)
				hourFields[hh][f] = hf
			}
			hk[hf] += v
			dk[f] += v
			wk[f] += v
			mk[f] += v
			yk[f] += v
		}
	}
	// The rollup gives every known scope week totals, empty ones for its idle weeks, including the
	// six weeks before the data (its lookback, for the 30-day windows of fixtures that end with their data).
	// Months and years likewise, over the span of the data.
	var first, last int64 = math.MaxInt64, math.MinInt64
	var firstMonth, lastMonth int64 = math.MaxInt64, math.MinInt64
	scopes := map[bucket.Scope]bool{}
	for k := range b.figs {
		day := bucket.DayOf(k.hour)
		w, m := bucket.WeekOf(day), bucket.MonthOf(day)
		first, last = min(first, w), max(last, w)
		firstMonth, lastMonth = min(firstMonth, m), max(lastMonth, m)
		scopes[k.s] = true
	}
	for s := range scopes {
		for w := first - 6; w <= last; w++ {
			in(totals, bucket.WeekTotalsKey(b.tenant, s, w))
		}
		for m := firstMonth; m <= lastMonth; m++ {
			in(totals, bucket.MonthTotalsKey(b.tenant, s, m))
			in(totals, bucket.YearTotalsKey(b.tenant, s, bucket.YearOf(bucket.FirstDayOfMonth(m))))
		}
	}
	return hourly, totals
}

// Flush writes everything accumulated, pipelined in chunks, empties the builder and returns the
// number of keys written. It replaces what the keys held, so call it once per data set.
func (b *Builder) Flush(ctx context.Context, rdb redis.UniversalClient) (int, error) {
	const chunk = 2000
	pipe := rdb.Pipeline()
	flush := func() error {
		if pipe.Len() == 0 {
			return nil
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("load fixture: %w", err)
		}
		return nil
	}
	hourly, totals := b.hashes()
	for key, h := range hourly {
		args := make([]any, 0, 2*len(h))
		for f, v := range h {
			args = append(args, f, strconv.FormatInt(v, 10))
		}
		pipe.HSet(ctx, key, args...)
		if pipe.Len() >= chunk {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	for key, h := range totals {
		pipe.Set(ctx, key, bucket.Pack(h), 0)
		if pipe.Len() >= chunk {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	for key, m := range b.sets {
		members := make([]any, 0, len(m))
		for v := range m {
			members = append(members, v)
		}
		pipe.SAdd(ctx, key, members...)
		if pipe.Len() >= chunk {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	n := len(hourly) + len(totals) + len(b.sets)
	b.figs = make(map[scopeHour]map[string]int64)
	b.sets = make(map[string]map[string]bool)
	return n, nil
}

// Load describes a synthetic data set: Agents agents in Teams teams, each handling TicketsPerDay
// tickets on each of the Days UTC days that end with the day of EndHour (hours after EndHour are
// left empty), during working hours.
//
// DetailDays, when positive, keeps the hourly detail of the last DetailDays days only: older days
// get their packed day totals (and their weeks, months and years) but no hours. A read of whole
// days never touches their hours, so a long history reads the same keys as in a full store while
// it loads in seconds and a fraction of the memory. Such a load is written as it is generated
// (LoadedRedis does this), not through a Builder.
type Load struct {
	Agents, Teams, Days, TicketsPerDay int
	EndHour                            int64
	Seed                               uint64
	DetailDays                         int
}

// AgentID is the id of agent i in a generated load: e-mail addresses, some with non-ASCII names,
// as helpdesks send them.
func AgentID(i int) string {
	if i%7 == 3 {
		return fmt.Sprintf("zoë.%04d@example.com", i)
	}
	return fmt.Sprintf("agent.%04d@example.com", i)
}

// TeamID is the id of team i in a generated load.
func TeamID(i int) string { return fmt.Sprintf("team %d", i) }

// Generate adds l's figures to b, crediting each agent and its team (agent i is in team i mod Teams).
func Generate(b *Builder, l Load) {
	generate(l, func(scopes []bucket.Scope, hour int64, field string, delta int64) {
		for _, s := range scopes {
			b.Add(s, hour, field, delta)
		}
	}, b.Index)
}

// generate calls add with every figure of l, agent by agent and, for each, day by day in order,
// and index with every ticket's agent, team and hour.
func generate(l Load, add func(scopes []bucket.Scope, hour int64, field string, delta int64), index func(agent, team string, hour int64)) {
	rng := rand.New(rand.NewPCG(l.Seed, 7))
	endDay := bucket.DayOf(l.EndHour)
	// Log-normal durations around a median: a spread of e^1 puts ten samples into about ten bins.
	sample := func(median float64) (ms int64, bin int32) {
		s := median * math.Exp(rng.NormFloat64())
		return int64(s * 1000), hist.Bin(s)
	}
	for a := range l.Agents {
		agent, team := AgentID(a), TeamID(a%max(l.Teams, 1))
		scopes := []bucket.Scope{{Kind: bucket.Agent, ID: agent}}
		if l.Teams > 0 {
			scopes = append(scopes, bucket.Scope{Kind: bucket.Team, ID: team})
		} else {
			team = ""
		}
		add := func(hour int64, field string, delta int64) { add(scopes, hour, field, delta) }
		for d := endDay - int64(l.Days) + 1; d <= endDay; d++ {
			for range l.TicketsPerDay {
				hour := d*24 + 8 + rng.Int64N(9)
				if hour > l.EndHour {
					continue
				}
				index(agent, team, hour)
				add(hour, bucket.Assigned.Field(), 1)
				ms, bin := sample(1800)
				add(hour, bucket.FirstCount.Field(), 1)
				add(hour, bucket.FirstSumMillis.Field(), ms)
				add(hour, bucket.BinField(bucket.FirstResponse, bin), 1)
				if rng.IntN(10) < 9 {
					add(hour, bucket.SLAMet.Field(), 1)
				} else {
					add(hour, bucket.SLABreached.Field(), 1)
				}
				for range 1 + rng.IntN(2) {
					ms, bin := sample(7200)
					add(hour, bucket.NextCount.Field(), 1)
					add(hour, bucket.NextSumMillis.Field(), ms)
					add(hour, bucket.BinField(bucket.NextResponse, bin), 1)
				}
				if rng.IntN(10) < 8 {
					ms, bin := sample(6 * 3600)
					add(hour, bucket.AssignedNowResolved.Field(), 1)
					add(hour, bucket.Resolutions.Field(), 1)
					add(hour, bucket.ResolutionCount.Field(), 1)
					add(hour, bucket.ResolutionSumMillis.Field(), ms)
					add(hour, bucket.BinField(bucket.Resolution, bin), 1)
					if rng.IntN(10) < 4 {
						add(hour, bucket.OneTouch.Field(), 1)
					}
					if rng.IntN(20) == 0 {
						add(hour, bucket.Reopens.Field(), 1)
					}
				}
				if rng.IntN(10) < 3 {
					score := int64(1 + rng.IntN(5))
					add(hour, bucket.CSATCount.Field(), 1)
					add(hour, bucket.CSATScoreSum.Field(), score)
					if score >= 4 {
						add(hour, bucket.CSATPositive.Field(), 1)
					}
				}
			}
		}
	}
}

// history writes a load with DetailDays as it is generated: per scope and day the packed day
// totals, the hourly detail of the last DetailDays days, and per scope the week, month and year
// totals over the whole span (empty ones for idle periods, the six weeks before the data and the
// months and years of the rollup's lookback before it, as the rollup leaves them), and the
// listing index. It returns the number of keys written.
func history(ctx context.Context, rdb redis.UniversalClient, tenant string, l Load) (int, error) {
	detailFrom := (bucket.DayOf(l.EndHour) - int64(l.DetailDays) + 1) * 24
	type scopeDay struct {
		s   bucket.Scope
		day int64
	}
	type periods struct{ days, weeks, months, years map[int64]map[string]int64 }
	sums := map[bucket.Scope]*periods{}
	hourly := map[scopeDay]map[string]int64{}
	sets := map[string]map[string]bool{}
	keys := 0
	pipe := rdb.Pipeline()
	flush := func(force bool) error {
		if pipe.Len() == 0 || (!force && pipe.Len() < 2000) {
			return nil
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("load history: %w", err)
		}
		return nil
	}
	in := func(m map[int64]map[string]int64, k int64) map[string]int64 {
		f := m[k]
		if f == nil {
			f = make(map[string]int64, 64)
			m[k] = f
		}
		return f
	}
	// writeScope writes and forgets the totals of a scope whose figures are complete.
	writeScope := func(s bucket.Scope) error {
		p := sums[s]
		if p == nil {
			return nil
		}
		var firstDay, lastDay int64 = math.MaxInt64, math.MinInt64
		for d, f := range p.days {
			firstDay, lastDay = min(firstDay, d), max(lastDay, d)
			pipe.Set(ctx, bucket.DayTotalsKey(tenant, s, d), bucket.Pack(f), 0)
			keys++
		}
		for w := bucket.WeekOf(firstDay) - 6; w <= bucket.WeekOf(lastDay); w++ {
			pipe.Set(ctx, bucket.WeekTotalsKey(tenant, s, w), bucket.Pack(p.weeks[w]), 0)
			keys++
		}
		// The rollup keeps months and years of every scope back over its lookback, idle ones too.
		endDay := bucket.DayOf(l.EndHour)
		for m := min(bucket.MonthOf(firstDay), bucket.MonthOf(endDay)-store.MonthLookback); m <= bucket.MonthOf(lastDay); m++ {
			pipe.Set(ctx, bucket.MonthTotalsKey(tenant, s, m), bucket.Pack(p.months[m]), 0)
			keys++
		}
		for y := min(bucket.YearOf(firstDay), bucket.YearOf(endDay)-store.YearLookback); y <= bucket.YearOf(lastDay); y++ {
			pipe.Set(ctx, bucket.YearTotalsKey(tenant, s, y), bucket.Pack(p.years[y]), 0)
			keys++
		}
		for sd, f := range hourly {
			if sd.s != s {
				continue
			}
			args := make([]any, 0, 2*len(f))
			for field, v := range f {
				args = append(args, field, strconv.FormatInt(v, 10))
			}
			pipe.HSet(ctx, bucket.HourKey(tenant, s, sd.day), args...)
			keys++
			delete(hourly, sd)
		}
		delete(sums, s)
		return flush(false)
	}
	var current bucket.Scope // the agent being generated; its figures are complete when the next starts
	var err error
	generate(l, func(scopes []bucket.Scope, hour int64, field string, delta int64) {
		if scopes[0] != current && err == nil {
			err = writeScope(current)
			current = scopes[0]
		}
		day := bucket.DayOf(hour)
		for _, s := range scopes {
			p := sums[s]
			if p == nil {
				p = &periods{map[int64]map[string]int64{}, map[int64]map[string]int64{}, map[int64]map[string]int64{}, map[int64]map[string]int64{}}
				sums[s] = p
			}
			in(p.days, day)[field] += delta
			in(p.weeks, bucket.WeekOf(day))[field] += delta
			in(p.months, bucket.MonthOf(day))[field] += delta
			in(p.years, bucket.YearOf(day))[field] += delta
			if hour >= detailFrom {
				sd := scopeDay{s, day}
				if hourly[sd] == nil {
					hourly[sd] = make(map[string]int64, 64)
				}
				hourly[sd][bucket.HourField(int(hour-24*day), field)] += delta
			}
		}
	}, func(agent, team string, hour int64) {
		day := bucket.DayOf(hour)
		put := func(key, member string) {
			if sets[key] == nil {
				sets[key] = make(map[string]bool)
			}
			sets[key][member] = true
		}
		if agent != "" {
			put(bucket.AgentsKey(tenant, day), idtoken.Escape(agent))
		}
		if team != "" {
			put(bucket.TeamsKey(tenant, day), idtoken.Escape(team))
			put(bucket.TeamAgentsKey(tenant, team, day), idtoken.Escape(agent))
		}
	})
	if err != nil {
		return keys, err
	}
	for s := range sums {
		if err := writeScope(s); err != nil {
			return keys, err
		}
	}
	for key, m := range sets {
		members := make([]any, 0, len(m))
		for v := range m {
			members = append(members, v)
		}
		pipe.SAdd(ctx, key, members...)
		keys++
		if err := flush(false); err != nil {
			return keys, err
		}
	}
	return keys, flush(true)
}

// RoundTrips counts the round trips a go-redis client makes: one per command sent alone, one per
// pipeline. Add it with rdb.AddHook.
type RoundTrips struct {
	n atomic.Int64
}

// Count is the number of round trips so far.
func (r *RoundTrips) Count() int64 { return r.n.Load() }

// DialHook passes dials through.
func (r *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts a command sent alone.
func (r *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts a pipeline.
func (r *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

var loaded struct {
	once sync.Once
	srv  *testenv.RedisServer
	dir  string
	rdb  *redis.Client
	err  error
}

// LoadedRedis returns a client of a redis-server of the test binary's own (not the shared one,
// which every test flushes), loaded once with l's figures for tenant. Benchmarks use it so the
// data set is built once however often the framework reruns them; every call must pass the same
// tenant and load. Call StopLoaded from TestMain.
func LoadedRedis(tb testing.TB, tenant string, l Load) *redis.Client {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs a real redis-server; skipped in -short mode")
	}
	loaded.once.Do(func() {
		start := time.Now()
		if loaded.dir, loaded.err = os.MkdirTemp("", "ticketpulse-bench-redis-"); loaded.err != nil {
			return
		}
		// Nothing to persist: the data set is rebuilt on every run.
		if loaded.srv, loaded.err = testenv.StartRedis(loaded.dir, "--appendonly", "no"); loaded.err != nil {
			return
		}
		loaded.rdb = redis.NewClient(&redis.Options{Addr: loaded.srv.Addr, Protocol: 2, DisableIdentity: true})
		var keys int
		if l.DetailDays > 0 {
			keys, loaded.err = history(context.Background(), loaded.rdb, tenant, l)
		} else {
			b := NewBuilder(tenant)
			Generate(b, l)
			keys, loaded.err = b.Flush(context.Background(), loaded.rdb)
		}
		if loaded.err != nil {
			return
		}
		info, _ := loaded.rdb.InfoMap(context.Background(), "memory").Result()
		tb.Logf("loaded %+v for tenant %s: %d keys in %s, redis used_memory %s bytes", l, tenant, keys,
			time.Since(start).Round(time.Millisecond), info["Memory"]["used_memory"])
	})
	if loaded.err != nil {
		tb.Fatalf("loaded redis: %v", loaded.err)
	}
	return loaded.rdb
}

// StopLoaded stops the server LoadedRedis started, if any.
func StopLoaded() {
	if loaded.srv != nil {
		loaded.rdb.Close()
		loaded.srv.Kill()
		os.RemoveAll(loaded.dir)
	}
}
