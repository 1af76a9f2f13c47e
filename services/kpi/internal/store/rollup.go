package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// SealLookback is how many ended weeks the rollup keeps sealed for every known agent and team,
// idle ones included: enough for any rolling window (30 days) to read week totals only.
const SealLookback = 6

// totalsScript derives packed totals (see bucket.Pack) from hour hashes, atomically in the scope's
// slot: KEYS[1] is the totals key, KEYS[2..] the hour hashes it sums, then the scope's
// first-figures mark (bucket.FirstKey), the last key the scope's totals generation
// (bucket.GenKey), dropped when totals are written with an expiry (totals that
// expired may come back with other content; totals without one only ever go away through the
// write path, which drops the generation itself); ARGV[1] its expire-at (0:
// none), ARGV[2] the period's end (unix day) to write empty totals too unless the period ends
// on or before the first-figures mark ("0": never). Totals that exist are up to date (the write path
// deletes them when an hour changes), so they are left alone. Returns 1 when it wrote the totals.
// Sums are exact up to 2^53, Lua's integer range.
//
// ARGV[3], when given (day totals only, KEYS[2] their day's hour hash), packs that hour hash into
// one field (bucket.PackedHoursField) when it has more fields than ARGV[3] or Redis keeps it as a
// hash table: a day that has ended only changes again through a late event, and one packed field
// costs a fraction of what hundreds of hash fields do once Redis has left its compact encoding
// (listpack, about 12 bytes a field against about 60 in a hash table).
var totalsScript = redis.NewScript(totalsLua + `
if ARGV[3] then packHours(KEYS[2], tonumber(ARGV[3])) end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local sum = {}
local any = false
for i = 2, #KEYS - 2 do
  any = addHours(sum, KEYS[i]) or any
end
return writeTotals(sum, any)
`)

// totalsLua are the pieces both derive scripts share. addHours adds an hour hash's counters to
// sum (its fields carry a three-character prefix, also inside a packed day, see
// bucket.PackedHoursField, of either version) and says whether it had any. packHours packs an hour
// hash of more than limit fields, or kept as a hash table, into one field, each hour named once
// (bucket.EachPackedHours), keeping its expiry. beforeFirst
// says whether a period ending on unix day end ends on or before the scope's first figures
// (KEYS[#KEYS - 1]); there is nothing to say without a mark. writeTotals writes sum as packed
// totals to KEYS[1], unless it is empty and ARGV[2] is "0" or the period is before the first
// figures (an empty key then costs memory and says nothing readers do not know), with the
// expire-at ARGV[1] (0: none), dropping the scope's totals generation (the last key) when it
// sets one; it returns 1 when it wrote.
const totalsLua = `
local function addHours(sum, key)
  local kv = redis.call('HGETALL', key)
  for j = 1, #kv, 2 do
    if kv[j] == 'd' then
      for f, v in string.gmatch(kv[j + 1], ' ([^ =]+)=(%-?%d+)') do
        if string.sub(f, 3, 3) == '|' then f = string.sub(f, 4) end
        sum[f] = (sum[f] or 0) + tonumber(v)
      end
    else
      local f = string.sub(kv[j], 4)
      sum[f] = (sum[f] or 0) + tonumber(kv[j + 1])
    end
  end
  return #kv > 0
end
local function packHours(key, limit)
  if redis.call('HLEN', key) <= limit and redis.call('OBJECT', 'ENCODING', key) ~= 'hashtable' then return end
  local kv = redis.call('HGETALL', key)
  local fields = {}
  local values = {}
  for j = 1, #kv, 2 do
    if kv[j] == 'd' then return end
    fields[#fields + 1] = kv[j]
    values[kv[j]] = kv[j + 1]
  end
  table.sort(fields)
  local parts = {'v2'}
  local hour
  for _, f in ipairs(fields) do
    local hh = string.sub(f, 1, 3)
    if hh == hour then
      parts[#parts + 1] = string.sub(f, 4) .. '=' .. values[f]
    else
      hour = hh
      parts[#parts + 1] = f .. '=' .. values[f]
    end
  end
  local ttl = redis.call('PTTL', key)
  redis.call('DEL', key)
  redis.call('HSET', key, 'd', table.concat(parts, ' '))
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
local function beforeFirst(endDay)
  local first = redis.call('GET', KEYS[#KEYS - 1])
  return first ~= false and tonumber(first) >= endDay
end
local function writeTotals(sum, any)
  if not any and (ARGV[2] == '0' or beforeFirst(tonumber(ARGV[2]))) then return 0 end
  local parts = {'v1'}
  for f, v in pairs(sum) do
    if v ~= 0 then parts[#parts + 1] = f .. '=' .. string.format('%d', v) end
  end
  redis.call('SET', KEYS[1], table.concat(parts, ' '))
  if tonumber(ARGV[1]) > 0 then
    redis.call('EXPIREAT', KEYS[1], ARGV[1])
    redis.call('DEL', KEYS[#KEYS])
  end
  return 1
end
`

// PackHoursAbove is how many fields an ended day's hour hash may have before the rollup packs it
// into one field: Redis's default hash-max-listpack-entries, past which a hash costs about 60
// bytes per field instead of about 12. A hash Redis keeps as a hash table (it had more fields
// once) is packed whatever its size.
const PackHoursAbove = 128

// MonthLookback is how many ended months the rollup keeps derived for every known agent and team,
// idle ones included, and YearLookback the same for years: the longest window (ten years, the
// rolling "all") and every month of its years, so that any window reads at most a few dozen keys
// per scope, idle years before a tenant's first figures included. Periods whose totals would already have expired under the
// retention are left out. An idle scope costs one small key per month and year (about 13 KB).
const (
	MonthLookback = 12*YearLookback + 11
	YearLookback  = 10
)

// periodScript derives packed totals from the packed totals of shorter periods, atomically in the
// scope's slot: KEYS[1] is the totals key, the last two keys the scope's first-figures mark and
// totals generation (as for totalsScript); ARGV[1] its expire-at (0: none), ARGV[2] as for
// totalsScript, ARGV[3] the stride. With stride 2, KEYS[2..] are pairs of a day's totals and
// its hour hash, read when the day's totals are missing (not derived yet or made stale); with
// stride 1, KEYS[2..] are month totals, ARGV[4..] the end (unix day) of each, that must all
// exist unless they end on or before the first figures (then they are empty), else nothing is
// written and the script returns -1. Totals that exist are up to date and left alone. Returns 1 when it wrote.
var periodScript = redis.NewScript(totalsLua + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local stride = tonumber(ARGV[3])
local sum = {}
local any = false
for i = 2, #KEYS - 2, stride do
  local packed = redis.call('GET', KEYS[i])
  if packed then
    for f, v in string.gmatch(packed, ' ([^ =]+)=(%-?%d+)') do
      sum[f] = (sum[f] or 0) + tonumber(v)
      any = true
    end
  elseif stride == 1 then
    if not beforeFirst(tonumber(ARGV[2 + i])) then return -1 end
  else
    any = addHours(sum, KEYS[i + 1]) or any
  end
end
return writeTotals(sum, any)
`)

// Rollup derives, for every tenant, the totals that readers use instead of the hours: the day
// totals of every ended day that got figures, the week totals of every ended week that got
// figures and of the last SealLookback ended weeks, the month totals (from day totals) of every
// ended month that got figures and of the last MonthLookback ended months, and the year totals
// (from month totals) of every ended year that got figures and of the last YearLookback ended
// years, from the queues the Writer fills. Weeks, months and years are derived for every scope
// the tenant ever had, so an idle one reads one empty key. Every pass is idempotent, so every
// replica may run it; a period that changes while it runs is queued again by the write path,
// which deletes its stale totals in the same step as it changes the hour.
type Rollup struct {
	rdb       redis.UniversalClient
	retention time.Duration
	now       func() time.Time
	// packAbove is PackHoursAbove; tests lower it.
	packAbove int

	// sealedScopes remembers, per tenant and week, a digest of the scopes the last complete seal
	// covered and of their first-figures marks. Pass runs from one goroutine.
	sealedScopes map[string]uint64
	// sealed remembers, per tenant and level (months, years), the scopes whose lookback periods
	// were all derived, with their first-figures marks then, and the current period then: a later
	// pass derives the periods that ended since for every scope, and the whole lookback only for
	// scopes that appeared since or whose mark a late event lowered (the periods between the old
	// and the new mark got no empty totals).
	sealed map[string]*sealMemo
	// retired, when set, deletes a keyspace that left the list while a pass wrote to it, grace
	// after the pass saw it gone (retiredDue).
	retired    func(ctx context.Context, keyspace string) error
	grace      time.Duration
	retiredDue map[string]time.Time
}

// OnRetired sets what deletes a keyspace taken off the rollup's list (bucket.TenantsKey) while a
// pass was writing its totals. Only the deletion of an old key generation takes a keyspace off
// the list, and it deletes the keyspace's keys a grace period later; a pass slower than that grace
// would otherwise leave the totals it wrote afterwards behind for ever. The check runs after the
// keyspace's writes, so either it sees the keyspace gone, and this replica deletes it again grace
// later (readers that resolved the old generation just before the switch may still read it until
// then), or the retirement came later and the deletion, later still, finds every key the pass
// wrote. A replica that stops before the second deletion leaves those few totals behind.
func (r *Rollup) OnRetired(grace time.Duration, f func(ctx context.Context, keyspace string) error) {
	r.retired, r.grace, r.retiredDue = f, grace, map[string]time.Time{}
}

type sealMemo struct {
	scopes  map[bucket.Scope]int64 // scope -> its first-figures mark (noMark: none)
	current int64
}

// noMark stands for a scope without a first-figures mark.
const noMark = math.MinInt64

// marks reads the first-figures mark (bucket.FirstKey) of every scope.
func (r *Rollup) marks(ctx context.Context, tenant string, scopes []bucket.Scope) (map[bucket.Scope]int64, error) {
	out := make(map[bucket.Scope]int64, len(scopes))
	const chunk = 1000
	for start := 0; start < len(scopes); start += chunk {
		part := scopes[start:min(start+chunk, len(scopes))]
		pipe := r.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(part))
		for i, s := range part {
			cmds[i] = pipe.Get(ctx, bucket.FirstKey(tenant, s))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("first-figures marks of tenant %s: %w", tenant, err)
		}
		for i, c := range cmds {
			out[part[i]] = noMark
			v, err := c.Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return nil, fmt.Errorf("first-figures mark of tenant %s: %w", tenant, err)
			}
			if err == nil {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("first-figures mark %q of tenant %s: %w", v, tenant, err)
				}
				out[part[i]] = n
			}
		}
	}
	return out, nil
}

// NewRollup returns a rollup. retention 0 keeps totals forever; otherwise they expire that long
// after their period ends, as the Writer's buckets do.
func NewRollup(rdb redis.UniversalClient, retention time.Duration) *Rollup {
	return &Rollup{rdb: rdb, retention: retention, now: time.Now, packAbove: PackHoursAbove, sealedScopes: map[string]uint64{}, sealed: map[string]*sealMemo{}}
}

// RollupResult counts the totals a rollup pass wrote.
type RollupResult struct {
	Days, Weeks, Months, Years int
}

// Pass derives the totals of every tenant's ended days, weeks, months and years that are queued
// or in the lookback, once.
func (r *Rollup) Pass(ctx context.Context) (RollupResult, error) {
	var res RollupResult
	tenants, err := r.rdb.SMembers(ctx, bucket.TenantsKey).Result()
	if err != nil {
		return res, fmt.Errorf("list tenants: %w", err)
	}
	if err := r.deleteRetired(ctx); err != nil {
		return res, err
	}
	today := r.now().UTC().Unix() / 86400
	for _, tenant := range tenants {
		n, err := r.packDays(ctx, tenant, today)
		res.Days += n
		if err != nil {
			return res, err
		}
		n, err = r.sealWeeks(ctx, tenant, bucket.WeekOf(today))
		res.Weeks += n
		if err != nil {
			return res, err
		}
		n, _, err = r.sealPeriods(ctx, tenant, monthLevel, bucket.MonthOf(today))
		res.Months += n
		if err != nil {
			return res, err
		}
		var months int
		n, months, err = r.sealPeriods(ctx, tenant, yearLevel, bucket.YearOf(today))
		res.Years += n
		res.Months += months
		if err != nil {
			return res, err
		}
		if err := r.noteIfRetired(ctx, tenant); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (r *Rollup) noteIfRetired(ctx context.Context, keyspace string) error {
	if r.retired == nil {
		return nil
	}
	listed, err := r.rdb.SIsMember(ctx, bucket.TenantsKey, keyspace).Result()
	if err != nil {
		return fmt.Errorf("rollup: is %s still listed: %w", keyspace, err)
	}
	if _, noted := r.retiredDue[keyspace]; !listed && !noted {
		r.retiredDue[keyspace] = r.now().Add(r.grace)
	}
	return nil
}

// deleteRetired deletes the keyspaces noted retired whose grace has passed.
func (r *Rollup) deleteRetired(ctx context.Context) error {
	now := r.now()
	for ks, due := range r.retiredDue {
		if now.Before(due) {
			continue
		}
		if err := r.retired(ctx, ks); err != nil {
			return fmt.Errorf("rollup: delete %s, retired during a pass: %w", ks, err)
		}
		delete(r.retiredDue, ks)
	}
	return nil
}

// periodLevel is months or years, as the rollup derives them.
type periodLevel struct {
	name     string
	lookback int64
	queue    func(tenant string) string
	end      func(period int64) int64 // the unix second the period ends
	totals   func(tenant string, s bucket.Scope, period int64) string
	// keys are the totals key of the period and what periodScript derives it from, with stride.
	keys   func(tenant string, s bucket.Scope, period int64) []string
	stride int
	// ends, with stride 1, are the ends (unix days) of what keys names after the totals key.
	ends func(period int64) []any
	// before, when set, derives what the period is derived from first (a year's months).
	before func(ctx context.Context, r *Rollup, tenant string, scopes []bucket.Scope, period int64) (int, error)
}

var monthLevel = &periodLevel{
	name: "month", lookback: MonthLookback, queue: bucket.ToMonthKey,
	end:    func(m int64) int64 { return bucket.FirstDayOfMonth(m+1) * 86400 },
	totals: bucket.MonthTotalsKey,
	keys: func(tenant string, s bucket.Scope, m int64) []string {
		keys := []string{bucket.MonthTotalsKey(tenant, s, m)}
		for d := bucket.FirstDayOfMonth(m); d < bucket.FirstDayOfMonth(m+1); d++ {
			keys = append(keys, bucket.DayTotalsKey(tenant, s, d), bucket.HourKey(tenant, s, d))
		}
		return keys
	},
	stride: 2,
}

var yearLevel = &periodLevel{
	name: "year", lookback: YearLookback, queue: bucket.ToYearKey,
	end:    func(y int64) int64 { return bucket.FirstDayOfYear(y+1) * 86400 },
	totals: bucket.YearTotalsKey,
	keys: func(tenant string, s bucket.Scope, y int64) []string {
		keys := []string{bucket.YearTotalsKey(tenant, s, y)}
		for m := bucket.FirstMonthOfYear(y); m < bucket.FirstMonthOfYear(y+1); m++ {
			keys = append(keys, bucket.MonthTotalsKey(tenant, s, m))
		}
		return keys
	},
	stride: 1,
	ends: func(y int64) []any {
		var ends []any
		for m := bucket.FirstMonthOfYear(y); m < bucket.FirstMonthOfYear(y+1); m++ {
			ends = append(ends, bucket.FirstDayOfMonth(m+1))
		}
		return ends
	},
	before: func(ctx context.Context, r *Rollup, tenant string, scopes []bucket.Scope, y int64) (int, error) {
		// The months of the lookback were derived by the month step of this pass (or are queued
		// again, and the year with them): only older ones are left to derive here.
		oldest := bucket.MonthOf(r.now().UTC().Unix()/86400) - MonthLookback
		total := 0
		for m := bucket.FirstMonthOfYear(y); m < min(bucket.FirstMonthOfYear(y+1), oldest); m++ {
			n, _, err := r.derivePeriod(ctx, tenant, monthLevel, scopes, m)
			total += n
			if err != nil {
				return total, err
			}
		}
		return total, nil
	},
}

// derivePeriod derives the totals of one period for every scope that has none; incomplete
// reports whether some could not be derived yet (a year whose month a late write has just made
// stale).
func (r *Rollup) derivePeriod(ctx context.Context, tenant string, lv *periodLevel, scopes []bucket.Scope, period int64) (written int, incomplete bool, err error) {
	// Most totals of the lookback exist already (a restart derives the whole lookback again):
	// asking first is far cheaper than a script naming every day of the period.
	missing := make([]bucket.Scope, 0, len(scopes))
	const chunk = 1000
	for start := 0; start < len(scopes); start += chunk {
		part := scopes[start:min(start+chunk, len(scopes))]
		pipe := r.rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(part))
		for i, s := range part {
			cmds[i] = pipe.Exists(ctx, lv.totals(tenant, s, period))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, false, fmt.Errorf("check %s totals: %w", lv.name, err)
		}
		for i, c := range cmds {
			if c.Val() == 0 {
				missing = append(missing, part[i])
			}
		}
	}
	if len(missing) == 0 {
		return 0, false, nil
	}
	args := []any{r.expireAt(lv.end(period)), lv.end(period) / 86400, lv.stride}
	if lv.stride == 1 {
		args = append(args, lv.ends(period)...)
	}
	return r.deriveWith(ctx, tenant, periodScript, missing, func(s bucket.Scope) []string { return lv.keys(tenant, s, period) }, args...)
}

// sealPeriods derives the totals of the tenant's ended months (or years) that got figures and of
// the lookback ones, for every scope the tenant ever had. A year first gets its months derived.
// It returns how many totals of the level it wrote, and how many of the level below.
func (r *Rollup) sealPeriods(ctx context.Context, tenant string, lv *periodLevel, current int64) (total, below int, err error) {
	queued, err := r.ended(ctx, lv.queue(tenant), current)
	if err != nil {
		return 0, 0, err
	}
	changed := map[int64]bool{}
	for _, p := range queued {
		changed[p] = true
	}
	periods := slices.Clone(queued)
	for p := current - lv.lookback; p < current; p++ {
		// Totals that would expire at once are not worth deriving for idle scopes.
		if r.retention > 0 && !changed[p] && time.Unix(lv.end(p), 0).Add(r.retention).Before(r.now()) {
			continue
		}
		if !changed[p] {
			periods = append(periods, p)
		}
	}
	slices.Sort(periods)
	all, err := r.scopes(ctx, tenant)
	var marks map[bucket.Scope]int64
	if err == nil {
		marks, err = r.marks(ctx, tenant, all)
	}
	if err != nil {
		r.requeue(ctx, lv.queue(tenant), queued)
		return 0, 0, err
	}
	memoKey := tenant + "/" + lv.name
	memo := r.sealed[memoKey]
	var fresh []bucket.Scope // scopes the last complete seal did not cover, or with a lower mark
	for _, s := range all {
		if memo == nil {
			fresh = append(fresh, s)
		} else if m, ok := memo.scopes[s]; !ok || m != marks[s] {
			fresh = append(fresh, s)
		}
	}
	complete := true
	for _, p := range periods {
		scopes := fresh
		if changed[p] || memo == nil || p >= memo.current {
			scopes = all
		}
		if len(scopes) == 0 {
			continue
		}
		var n int
		incomplete := false
		if lv.before != nil {
			n, err = lv.before(ctx, r, tenant, scopes, p)
			below += n
		}
		if err == nil {
			n, incomplete, err = r.derivePeriod(ctx, tenant, lv, scopes, p)
			total += n
		}
		if err != nil {
			r.requeue(ctx, lv.queue(tenant), queued)
			return total, below, fmt.Errorf("derive %s %d of tenant %s: %w", lv.name, p, tenant, err)
		}
		// A period left incomplete was changed meanwhile, and the write path queued it again;
		// the lookback is then done again in full next time.
		complete = complete && !incomplete
	}
	if complete {
		r.sealed[memoKey] = &sealMemo{scopes: marks, current: current}
	} else {
		delete(r.sealed, memoKey)
	}
	return total, below, nil
}

// ended pops the members of a to-do set (days or weeks) that are before current. Each is removed
// before its totals are derived: a change that lands after that queues it again.
func (r *Rollup) ended(ctx context.Context, key string, current int64) ([]int64, error) {
	members, err := r.rdb.SMembers(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	var out []int64
	var done []any
	for _, m := range members {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: member %q: %w", key, m, err)
		}
		if n < current {
			out = append(out, n)
			done = append(done, m)
		}
	}
	if len(done) > 0 {
		if err := r.rdb.SRem(ctx, key, done...).Err(); err != nil {
			return nil, fmt.Errorf("take from %s: %w", key, err)
		}
	}
	return out, nil
}

// requeue puts back what a failed pass took, so a later pass does it.
func (r *Rollup) requeue(ctx context.Context, key string, items []int64) {
	members := make([]any, len(items))
	for i, n := range items {
		members[i] = strconv.FormatInt(n, 10)
	}
	if len(members) > 0 {
		// Best effort: the pass already failed, and the error it returns is the one that matters.
		_ = r.rdb.SAdd(context.WithoutCancel(ctx), key, members...).Err()
	}
}

// packDays writes the totals of the tenant's ended days that got figures, for every scope credited
// on them.
func (r *Rollup) packDays(ctx context.Context, tenant string, today int64) (int, error) {
	days, err := r.ended(ctx, bucket.ToPackKey(tenant), today)
	if err != nil {
		return 0, err
	}
	total := 0
	for i, day := range days {
		scopes, err := r.dayScopes(ctx, tenant, day)
		if err == nil {
			var n int
			n, _, err = r.deriveWith(ctx, tenant, totalsScript, scopes, func(s bucket.Scope) []string {
				return []string{bucket.DayTotalsKey(tenant, s, day), bucket.HourKey(tenant, s, day)}
			}, r.expireAt((day+1)*86400), "0", r.packAbove)
			total += n
		}
		if err != nil {
			r.requeue(ctx, bucket.ToPackKey(tenant), days[i:])
			return total, fmt.Errorf("pack day %d of tenant %s: %w", day, tenant, err)
		}
	}
	return total, nil
}

// sealWeeks writes the week totals of the tenant's ended weeks that got figures and of the
// lookback weeks, for every scope the tenant ever had.
func (r *Rollup) sealWeeks(ctx context.Context, tenant string, thisWeek int64) (int, error) {
	queued, err := r.ended(ctx, bucket.ToSealKey(tenant), thisWeek)
	if err != nil {
		return 0, err
	}
	todo := map[int64]bool{}
	for wk := thisWeek - SealLookback; wk < thisWeek; wk++ {
		todo[wk] = false
	}
	for _, wk := range queued {
		todo[wk] = true
	}
	scopes, err := r.scopes(ctx, tenant)
	var marks map[bucket.Scope]int64
	if err == nil {
		marks, err = r.marks(ctx, tenant, scopes)
	}
	if err != nil {
		r.requeue(ctx, bucket.ToSealKey(tenant), queued)
		return 0, err
	}
	// The digest changes when a scope appears or a late event lowers a scope's mark (the weeks
	// between its old and new mark got no empty totals).
	var count uint64
	for s, m := range marks {
		h := fnv.New64a()
		fmt.Fprintf(h, "%v/%s/%d", s.Kind, s.ID, m)
		count += h.Sum64()
	}
	total := 0
	for wk, changed := range todo {
		// The lookback weeks only need sealing again when a scope appeared since the last pass
		// or a mark was lowered; the digest tells.
		key := tenant + "/" + strconv.FormatInt(wk, 10)
		if !changed && r.sealedScopes[key] == count {
			continue
		}
		first := bucket.FirstDayOfWeek(wk)
		n, err := r.derive(ctx, tenant, scopes, r.expireAt((first+7)*86400), first+7, func(s bucket.Scope) []string {
			keys := []string{bucket.WeekTotalsKey(tenant, s, wk)}
			for d := first; d < first+7; d++ {
				keys = append(keys, bucket.HourKey(tenant, s, d))
			}
			return keys
		})
		total += n
		if err != nil {
			r.requeue(ctx, bucket.ToSealKey(tenant), queued)
			return total, fmt.Errorf("seal week %d of tenant %s: %w", wk, tenant, err)
		}
		r.sealedScopes[key] = count
	}
	return total, nil
}

// expireAt is when totals covering up to unix second end expire: never without a retention.
func (r *Rollup) expireAt(end int64) int64 {
	if r.retention <= 0 {
		return 0
	}
	return time.Unix(end, 0).Add(r.retention).Unix()
}

// derive runs totalsScript for each scope over the keys that keys names (the totals key first,
// then the hour hashes it sums) and returns how many totals it wrote; totals of a period ending
// on unix day end are written empty too unless the scope's first figures are on or after it.
func (r *Rollup) derive(ctx context.Context, tenant string, scopes []bucket.Scope, expireAt, end int64, keys func(bucket.Scope) []string) (int, error) {
	n, _, err := r.deriveWith(ctx, tenant, totalsScript, scopes, keys, expireAt, end)
	return n, err
}

// deriveWith runs script for each scope over the keys that keys names, with args, and returns
// how many totals it wrote and whether any answered -1 (could not be derived yet).
func (r *Rollup) deriveWith(ctx context.Context, tenant string, script *redis.Script, scopes []bucket.Scope, keys func(bucket.Scope) []string, args ...any) (int, bool, error) {
	written := 0
	incomplete := false
	// Small pipelines: Redis runs a client's pipelined commands back to back, and a script that
	// sums seven hour hashes takes a fraction of a millisecond, so a long run of them would hold
	// up the queries and writes that share the server (100 per pipeline put 40 ms on their p99).
	const chunk = 16
	for start := 0; start < len(scopes); start += chunk {
		part := scopes[start:min(start+chunk, len(scopes))]
		cmds := make([]*redis.Cmd, len(part))
		_, err := execScripts(ctx, r.rdb, func(pipe redis.Pipeliner) {
			for i, s := range part {
				cmds[i] = script.EvalSha(ctx, pipe, append(keys(s), bucket.FirstKey(tenant, s), bucket.GenKey(tenant, s)), args...)
			}
		})
		if err != nil {
			return written, incomplete, err
		}
		for _, c := range cmds {
			switch n, _ := c.Int(); n {
			case 1:
				written++
			case -1:
				incomplete = true
			}
		}
	}
	return written, incomplete, nil
}

// dayScopes lists the scopes credited with anything on a day: the day's agents, teams and queues
// from the listing index, and the unassigned figures.
func (r *Rollup) dayScopes(ctx context.Context, tenant string, day int64) ([]bucket.Scope, error) {
	return r.scopeSets(ctx, tenant, bucket.AgentsKey(tenant, day), bucket.TeamsKey(tenant, day), bucket.QueuesKey(tenant, day))
}

// scopes lists every agent, team and queue the tenant ever had, and the unassigned figures.
func (r *Rollup) scopes(ctx context.Context, tenant string) ([]bucket.Scope, error) {
	return r.scopeSets(ctx, tenant, bucket.AllAgentsKey(tenant), bucket.AllTeamsKey(tenant), bucket.AllQueuesKey(tenant))
}

func (r *Rollup) scopeSets(ctx context.Context, tenant, agentsKey, teamsKey, queuesKey string) ([]bucket.Scope, error) {
	pipe := r.rdb.Pipeline()
	agents := pipe.SMembers(ctx, agentsKey)
	teams := pipe.SMembers(ctx, teamsKey)
	queues := pipe.SMembers(ctx, queuesKey)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("scopes of tenant %s: %w", tenant, err)
	}
	scopes := []bucket.Scope{{Kind: bucket.Unassigned}}
	for _, set := range []struct {
		kind   bucket.Kind
		tokens []string
	}{{bucket.Agent, agents.Val()}, {bucket.Team, teams.Val()}, {bucket.Queue, queues.Val()}} {
		for _, tok := range set.tokens {
			id, err := idtoken.Unescape(tok)
			if err != nil {
				return nil, fmt.Errorf("scopes of tenant %s: %q: %w", tenant, tok, err)
			}
			scopes = append(scopes, bucket.Scope{Kind: set.kind, ID: id})
		}
	}
	return scopes, nil
}
