package store

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/redisscript"
)

// markTTL keeps a version mark long enough to cover the window between applying a ticket's deltas
// and clearing them, even for a writer stalled for a day.
const markTTL = 2 * 24 * time.Hour

type slotKey struct {
	tenant string
	scope  bucket.Scope
}

type slotEntry struct {
	ticket  string
	version int64
	ops     []op
	// index moves the ticket's drill-down entries (contrib.TicketsField) in the slot.
	index []op
}

type op struct {
	hour  int64
	field contrib.Field
	delta int64
}

func (w *Writer) exec(ctx context.Context, fill func(redis.Pipeliner)) ([]redis.Cmder, error) {
	return execScripts(ctx, w.rdb, fill)
}

// execScripts runs a pipeline built by fill, recovering once from a lost script cache (a restart).
func execScripts(ctx context.Context, rdb redis.UniversalClient, fill func(redis.Pipeliner)) ([]redis.Cmder, error) {
	return redisscript.Exec(ctx, rdb, fill, casScript, applyScript, totalsScript, periodScript, indexScript, compactScript, unfileScript)
}

func (w *Writer) apply(ctx context.Context, done []*work, res *Result) error {
	slots := map[slotKey][]slotEntry{}
	// Many tickets of a batch share an agent and a day: each index entry is sent once.
	// Set members to add with the deltas: the listing index and the rollup's bookkeeping. The
	// per-day index sets expire with the buckets of their day; the others are kept.
	type member struct{ key, value string }
	members := map[member]struct{}{}
	daily := map[string]int64{} // per-day set key -> its day
	type listingSet struct {
		tenant, key string
	}
	listing := map[listingSet]map[string]struct{}{} // per-day listing set -> members to add
	add := func(key, value string) { members[member{key, value}] = struct{}{} }
	addDaily := func(tenant, key, value string, day int64) {
		ls := listingSet{tenant, key}
		if listing[ls] == nil {
			listing[ls] = map[string]struct{}{}
		}
		listing[ls][value] = struct{}{}
		daily[key] = day
	}
	// Days (and their weeks) that got figures, queued for the rollup once the batch is walked:
	// a batch's many deltas share a few days.
	type tenantDay struct {
		tenant string
		day    int64
	}
	touched := map[tenantDay]struct{}{}
	today := w.now().UTC().Unix() / 86400
	for _, wk := range done {
		// Keys are built from the keyspace (the tenant itself in generation 0); what changed is
		// reported per tenant.
		tenant := wk.space
		versions := make([]int64, 0, len(wk.pending))
		for v := range wk.pending {
			versions = append(versions, v)
		}
		slices.Sort(versions)
		ticketToken := idtoken.Escape(wk.t.ID)
		for _, v := range versions {
			p := wk.pending[v]
			perSlot := map[slotKey][]op{}
			perIndex := map[slotKey][]op{}
			for k, d := range p.Deltas {
				sk := slotKey{tenant, bucket.Scope{Kind: k.Kind, ID: k.ID}}
				if k.Field == contrib.TicketsField {
					perIndex[sk] = append(perIndex[sk], op{hour: k.Hour, field: k.Field, delta: d})
					continue
				}
				perSlot[sk] = append(perSlot[sk], op{hour: k.Hour, field: k.Field, delta: d})
				day := bucket.DayOf(k.Hour)
				switch k.Kind {
				case bucket.Team:
					addDaily(tenant, bucket.TeamsKey(tenant, day), idtoken.Escape(k.ID), day)
					add(bucket.AllTeamsKey(tenant), idtoken.Escape(k.ID))
				case bucket.Queue:
					addDaily(tenant, bucket.QueuesKey(tenant, day), idtoken.Escape(k.ID), day)
					add(bucket.AllQueuesKey(tenant), idtoken.Escape(k.ID))
				}
				touched[tenantDay{tenant, day}] = struct{}{}
			}
			for sk, ops := range perSlot {
				add(bucket.TenantsKey, tenant)
				slots[sk] = append(slots[sk], slotEntry{ticket: ticketToken, version: v, ops: ops})
				if sk.scope.Kind != bucket.Unassigned {
					if res.Changed[wk.t.Tenant] == nil {
						res.Changed[wk.t.Tenant] = map[bucket.Scope]struct{}{}
					}
					res.Changed[wk.t.Tenant][sk.scope] = struct{}{}
				}
			}
			// A scope's index entries move with its figures in one script; the tenant's own
			// index (bucket.Tenant) has a slot with no figures.
			for sk, idx := range perIndex {
				entries := slots[sk]
				if n := len(entries); n > 0 && entries[n-1].ticket == ticketToken && entries[n-1].version == v {
					entries[n-1].index = idx
					continue
				}
				slots[sk] = append(entries, slotEntry{ticket: ticketToken, version: v, index: idx})
			}
			for _, m := range p.Memberships {
				agent := idtoken.Escape(m.Agent)
				addDaily(tenant, bucket.AgentsKey(tenant, m.Day), agent, m.Day)
				add(bucket.AllAgentsKey(tenant), agent)
				if m.Team != "" {
					addDaily(tenant, bucket.TeamAgentsKey(tenant, m.Team, m.Day), agent, m.Day)
					addDaily(tenant, bucket.TeamsKey(tenant, m.Day), idtoken.Escape(m.Team), m.Day)
				}
			}
		}
	}
	// The rollup derives the totals of the day, week, month and year once they have ended, and
	// again after a late change (the apply script deletes the stale ones).
	for td := range touched {
		add(bucket.ToPackKey(td.tenant), strconv.FormatInt(td.day, 10))
		add(bucket.ToSealKey(td.tenant), strconv.FormatInt(bucket.WeekOf(td.day), 10))
		add(bucket.ToMonthKey(td.tenant), strconv.FormatInt(bucket.MonthOf(td.day), 10))
		add(bucket.ToYearKey(td.tenant), strconv.FormatInt(bucket.YearOf(td.day), 10))
	}
	if len(slots) == 0 {
		return nil
	}
	_, err := w.exec(ctx, func(pipe redis.Pipeliner) {
		for sk, entries := range slots {
			keys, args := w.applyArgs(sk, entries, today)
			applyScript.EvalSha(ctx, pipe, keys, args...)
		}
		for m := range members {
			pipe.SAdd(ctx, m.key, m.value)
		}
		// The per-day listing sets of a tenant share its index slot: one script adds to them and
		// drops the listing generation if any got a new member.
		perTenant := map[string][]listingSet{}
		for ls := range listing {
			perTenant[ls.tenant] = append(perTenant[ls.tenant], ls)
		}
		for tenant, sets := range perTenant {
			keys := []string{bucket.IndexGenKey(tenant)}
			var args []any
			for _, ls := range sets {
				keys = append(keys, ls.key)
				var expireAt int64
				if w.retention > 0 {
					expireAt = time.Unix((daily[ls.key]+1)*86400, 0).Add(w.retention).Unix()
				}
				args = append(args, len(listing[ls]), expireAt)
				for v := range listing[ls] {
					args = append(args, v)
				}
			}
			indexScript.EvalSha(ctx, pipe, keys, args...)
		}
	})
	if err != nil {
		return fmt.Errorf("apply deltas: %w", err)
	}
	return nil
}

func (w *Writer) applyArgs(sk slotKey, entries []slotEntry, today int64) ([]string, []any) {
	keys := []string{
		bucket.MarkKey(sk.tenant, sk.scope, today),
		bucket.MarkKey(sk.tenant, sk.scope, today-1),
	}
	var expiry []any
	keyIndex := func(k string, expireAt int64) int {
		keys = append(keys, k)
		if w.retention <= 0 {
			expireAt = 0
		}
		expiry = append(expiry, expireAt)
		return len(keys) - 2
	}
	ret := int64(w.retention / time.Second)
	// A slot's ops of one batch mostly share a few days: name each day's keys once. Totals get
	// their expiry from the rollup when it writes them.
	days := map[int64]int{} // day -> its number in the script's list of days
	var dayArgs []any
	idays := map[int64]int{} // day -> its number in the script's list of index days
	var idayArgs []any
	weeks, months, years := map[int64]int{}, map[int64]int{}, map[int64]int{}
	// once names the totals key of a period once per call.
	once := func(seen map[int64]int, period int64, key func() string) int {
		i, ok := seen[period]
		if !ok {
			i = keyIndex(key(), 0)
			seen[period] = i
		}
		return i
	}
	var body []any
	first := int64(math.MaxInt64)
	for _, e := range entries {
		body = append(body, e.ticket, e.version, len(e.ops), len(e.index))
		for _, o := range e.ops {
			day := bucket.DayOf(o.hour)
			first = min(first, day)
			n, ok := days[day]
			if !ok {
				week, month, year := bucket.WeekOf(day), bucket.MonthOf(day), bucket.YearOf(day)
				dayArgs = append(dayArgs,
					keyIndex(bucket.HourKey(sk.tenant, sk.scope, day), (day+1)*86400+ret),
					keyIndex(bucket.DayTotalsKey(sk.tenant, sk.scope, day), 0),
					once(weeks, week, func() string { return bucket.WeekTotalsKey(sk.tenant, sk.scope, week) }),
					once(months, month, func() string { return bucket.MonthTotalsKey(sk.tenant, sk.scope, month) }),
					once(years, year, func() string { return bucket.YearTotalsKey(sk.tenant, sk.scope, year) }))
				n = len(days) + 1
				days[day] = n
			}
			body = append(body, n, bucket.HourField(int(o.hour-day*24), o.field.Name()), o.delta)
		}
		for _, o := range e.index {
			day := bucket.DayOf(o.hour)
			n, ok := idays[day]
			if !ok {
				idayArgs = append(idayArgs, keyIndex(bucket.TicketIndexKey(sk.tenant, sk.scope, day), (day+1)*86400+ret))
				n = len(idays) + 1
				idays[day] = n
			}
			body = append(body, n, o.hour-day*24, o.delta)
		}
	}
	// The mark is lowered whether or not the entries were applied before: lower is always safe.
	keys = append(keys, bucket.FirstKey(sk.tenant, sk.scope), bucket.GenKey(sk.tenant, sk.scope))
	var firstArg any = first
	if len(days) == 0 {
		firstArg = "" // index entries only: no figure, no first-figures mark to lower
	}
	args := make([]any, 0, 5+len(expiry)+len(dayArgs)+len(idayArgs)+len(body))
	args = append(args, int64(markTTL/time.Second), len(entries), firstArg, len(days), len(idays))
	args = append(append(append(append(args, expiry...), dayArgs...), idayArgs...), body...)
	return keys, args
}

// clear removes the pending entries this batch applied, and files the tickets it solved, closed
// or reopened in their keyspace's set of resolved tickets (ResolvedKey) for the Compactor. The set
// is written after the ticket states (another slot), so a crash in between leaves it behind
// them: the redelivery, which finds the pending deltas, files them again, and the Compactor
// checks each ticket's own state before compacting it.
func (w *Writer) clear(ctx context.Context, done []*work) error {
	var n int
	resolved := map[string][]redis.Z{}
	reopened := map[string][]any{}
	for _, wk := range done {
		// A batch that left pending deltas found may be finishing one that crashed before this step.
		if !w.fileResolved || wk.state.Compacted || wk.next == nil && !wk.hadPending {
			continue
		}
		switch {
		case wk.resolved:
			at := wk.changedAt
			if at == 0 {
				at = w.now().Unix() // stored by a release that kept no time
			}
			resolved[wk.space] = append(resolved[wk.space], redis.Z{Score: float64(at), Member: wk.t.ID})
		case wk.wasResolved || wk.hadPending:
			reopened[wk.space] = append(reopened[wk.space], wk.t.ID)
		}
	}
	_, err := w.exec(ctx, func(pipe redis.Pipeliner) {
		for ks, zs := range resolved {
			pipe.ZAdd(ctx, ResolvedKey(ks), zs...)
			n++
		}
		for ks, ids := range reopened {
			pipe.ZRem(ctx, ResolvedKey(ks), ids...)
			n++
		}
		for _, wk := range done {
			if len(wk.pending) == 0 {
				continue
			}
			var fields []string
			for v := range wk.pending {
				for k := range max(wk.pendingPieces[v], 1) {
					fields = append(fields, pendingField(v, k))
				}
			}
			pipe.HDel(ctx, wk.key, fields...)
			n++
		}
	})
	if err != nil && n > 0 {
		return fmt.Errorf("clear pending deltas: %w", err)
	}
	return nil
}
