package store

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Compaction (docs/kpis.md, "Compaction of quiet tickets"): a ticket solved or closed whose state
// has not changed for a while loses its events and applied contribution and keeps a tombstone,
// the keys of the events it had. Its KPIs stay in the buckets as they are. An event the tombstone
// remembers is a duplicate; any other is too late: it is recorded in the tombstone (so its
// redelivery is a duplicate), counted and logged, and not applied.

// compactScript replaces a ticket's state by its tombstone (ARGV[4..3+ARGV[3]], its pieces: see
// stateChunks), keeps its drill-down row (the rest of ARGV, its pieces as read) and bumps its
// version if the
// version is still ARGV[1]: pending deltas are only ever added with a new version, so the
// Compactor, which saw none at that version, knows there are none.
//
// The hash is written anew rather than changed in place: a ticket state is larger than Redis keeps
// in a compact listpack, and a hash once converted to a hash table stays one; written anew, a
// tombstone is a listpack (its pieces at most hash-max-listpack-value, 64), less than half the size.
var compactScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
local n = tonumber(ARGV[3])
local kv = {'v', ARGV[2], 's', ARGV[4]}
for k = 5, 3 + n do
  kv[#kv + 1] = 's' .. (k - 4)
  kv[#kv + 1] = ARGV[k]
end
for k = 4 + n, #ARGV do
  kv[#kv + 1] = k == 4 + n and 'r' or 'r' .. (k - 4 - n)
  kv[#kv + 1] = ARGV[k]
end
redis.call('HSET', KEYS[1], unpack(kv))
return 1
`)

// unfileScript removes tickets from a tenant's resolved set (KEYS[1]) unless the write path filed
// them again since they were read: ARGV is, per ticket, its id and the score it was read with.
var unfileScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) == tonumber(ARGV[i+1]) then n = n + redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return n
`)

// Metrics counts what compaction does and what tombstones catch.
type Metrics struct {
	compacted, tooLate, tombDups metric.Int64Counter
}

// NewMetrics registers the compaction counters on meter.
func NewMetrics(meter metric.Meter) (*Metrics, error) {
	var m Metrics
	var err error
	if m.compacted, err = meter.Int64Counter("kpi_tickets_compacted_total",
		metric.WithDescription("Quiet solved or closed tickets whose events were compacted into a tombstone.")); err != nil {
		return nil, err
	}
	if m.tooLate, err = meter.Int64Counter("kpi_events_too_late_total",
		metric.WithDescription("New events of compacted tickets: logged, not applied; a rebuild from TICKETS applies them.")); err != nil {
		return nil, err
	}
	if m.tombDups, err = meter.Int64Counter("kpi_tombstone_duplicates_total",
		metric.WithDescription("Redelivered or duplicated events of compacted tickets, recognised by their tombstone.")); err != nil {
		return nil, err
	}
	return &m, nil
}

// add adds n to the counter which picks of m; a nil m counts nothing.
func (m *Metrics) add(which func(*Metrics) metric.Int64Counter, n int) {
	if m != nil && n > 0 {
		which(m).Add(context.Background(), int64(n))
	}
}

func compactedTickets(m *Metrics) metric.Int64Counter { return m.compacted }
func tooLateEvents(m *Metrics) metric.Int64Counter    { return m.tooLate }
func tombstoneDups(m *Metrics) metric.Int64Counter    { return m.tombDups }

// resolved reports whether a ticket in status s is solved or closed.
func resolved(s tpv1.TicketStatus) bool {
	return s == tpv1.TicketStatus_TICKET_STATUS_SOLVED || s == tpv1.TicketStatus_TICKET_STATUS_CLOSED
}

// resolvedAfter reports whether a ticket whose events are evs, in order, is solved or closed after
// the last of them: the status the created event starts in or a status change last set, as
// contrib walks a ticket's history.
//
// A state holding only calls (a call linked to no ticket, contrib.CallState) is done, and so
// compacted like a solved ticket, once every call in it ended or was abandoned.
func resolvedAfter(evs []contrib.Event) bool {
	if callsOnlyDone(evs) {
		return true
	}
	status := tpv1.TicketStatus_TICKET_STATUS_NEW
	created := false
	for i := range evs {
		e := &evs[i]
		switch {
		case e.Status == tpv1.TicketStatus_TICKET_STATUS_UNSPECIFIED:
		case e.Type == tpv1.EventType_EVENT_TYPE_STATUS_CHANGED:
			status = e.Status
		case e.Type == tpv1.EventType_EVENT_TYPE_TICKET_CREATED && !created:
			status = e.Status
		}
		if e.Type == tpv1.EventType_EVENT_TYPE_TICKET_CREATED {
			created = true
		}
	}
	return resolved(status)
}

// callsOnlyDone reports whether evs are call events only, each call with a call_ended or
// call_abandoned among them.
func callsOnlyDone(evs []contrib.Event) bool {
	if len(evs) == 0 {
		return false
	}
	done := map[uint64]bool{}
	for i := range evs {
		e := &evs[i]
		if !contrib.IsCall(e.Type) {
			return false
		}
		end := e.Type == tpv1.EventType_EVENT_TYPE_CALL_ENDED || e.Type == tpv1.EventType_EVENT_TYPE_CALL_ABANDONED
		done[e.CallKey] = done[e.CallKey] || end
	}
	for _, d := range done {
		if !d {
			return false
		}
	}
	return true
}

// computeTombstone sorts a compacted ticket's batch into duplicates and events too late; the late
// ones are added to the tombstone, so the batch stores it again.
func (w *Writer) computeTombstone(wk *work) {
	seen := map[uint32]bool{}
	for i, ev := range wk.t.Events {
		if wk.state.saw(ev.Key) || seen[fingerprint(ev.Key)] {
			wk.tombDups++
			continue
		}
		seen[fingerprint(ev.Key)] = true
		wk.late = append(wk.late, i)
	}
	if len(wk.late) == 0 {
		return
	}
	next := slices.Clone(wk.state.Seen)
	for k := range seen {
		next = append(next, k)
	}
	slices.Sort(next)
	wk.next = encodeTombstone(next)
}

// tombstoneHits counts and logs what a stored batch's tombstones caught.
func (w *Writer) tombstoneHits(wk *work) {
	if !wk.state.Compacted {
		return
	}
	w.metrics.add(tombstoneDups, wk.tombDups)
	w.metrics.add(tooLateEvents, len(wk.late))
	for _, i := range wk.late {
		ev := wk.t.Events[i]
		id := ""
		if i < len(wk.t.IDs) {
			id = wk.t.IDs[i]
		}
		w.log.Warn("event too late: its ticket was compacted, so it is not applied; a rebuild from TICKETS applies it",
			"tenant", wk.t.Tenant, "ticket", wk.t.ID, "event_id", id, "event_key", strconv.FormatUint(ev.Key, 16),
			"type", ev.Type.String(), "occurred_at", time.UnixMilli(ev.AtMillis).UTC())
	}
}

// Compactor compacts, a batch per tenant per Pass, the tickets solved or closed whose state has
// not changed for a while. Every step is guarded by the ticket's version, so replicas may run it
// at once: a ticket that changed since it was read is left for a later pass, and one compacted by
// another replica is skipped.
type Compactor struct {
	rdb   redis.UniversalClient
	w     *Writer
	after time.Duration
	batch int
	now   func() time.Time
	log   *slog.Logger

	// hook, when set by tests, runs once the candidates of a tenant are read, before any is compacted.
	hook func()
}

// NewCompactor returns a compactor of the tickets quiet for after, at most batch per tenant per
// pass. w finishes the pending deltas a ticket still has before it is compacted.
func NewCompactor(rdb redis.UniversalClient, w *Writer, after time.Duration, batch int, log *slog.Logger) *Compactor {
	return &Compactor{rdb: rdb, w: w, after: after, batch: max(batch, 1), now: time.Now, log: log}
}

// SetClock replaces the compactor's clock (tests and benchmarks in simulated time).
func (c *Compactor) SetClock(now func() time.Time) { c.now = now }

// CompactResult counts what a pass did.
type CompactResult struct {
	// Compacted tickets; Finished: tickets whose pending deltas were applied first, compacted by
	// a later pass; Skipped: tickets that changed since they were read, or reopened.
	Compacted, Finished, Skipped int
	// More: some tenant had more quiet tickets than a batch.
	More bool
}

type candidate struct {
	id    string
	score float64
	cmd   *redis.MapStringStringCmd
}

// Pass compacts up to a batch of quiet tickets of every tenant.
func (c *Compactor) Pass(ctx context.Context) (CompactResult, error) {
	var res CompactResult
	tenants, err := c.rdb.SMembers(ctx, bucket.TenantsKey).Result()
	if err != nil {
		return res, fmt.Errorf("list tenants: %w", err)
	}
	slices.Sort(tenants)
	for _, tenant := range tenants {
		if err := c.tenant(ctx, tenant, &res); err != nil {
			return res, fmt.Errorf("compact tenant %s: %w", tenant, err)
		}
	}
	return res, nil
}

func (c *Compactor) tenant(ctx context.Context, tenant string, res *CompactResult) error {
	due := c.now().Add(-c.after).Unix()
	set := ResolvedKey(tenant)
	zs, err := c.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: set, Start: "-inf", Stop: strconv.FormatInt(due, 10), ByScore: true, Count: int64(c.batch) + 1,
	}).Result()
	if err != nil {
		return fmt.Errorf("list quiet tickets: %w", err)
	}
	if len(zs) > c.batch {
		zs, res.More = zs[:c.batch], true
	}
	if len(zs) == 0 {
		return nil
	}
	cands := make([]candidate, len(zs))
	pipe := c.rdb.Pipeline()
	for i, z := range zs {
		id, _ := z.Member.(string)
		cands[i] = candidate{id: id, score: z.Score, cmd: pipe.HGetAll(ctx, TicketKey(tenant, id))}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("read quiet tickets: %w", err)
	}
	var unfile []any        // id, score: resolved set entries that no longer stand for a quiet solved ticket
	var refile []redis.Z    // entries whose ticket changed since they were filed
	var unfinished []Ticket // tickets with pending deltas to finish
	type compaction struct {
		c       *candidate
		version int64
		tomb    []byte
		row     []any // the row's pieces, kept as read
		cmd     *redis.Cmd
	}
	var todo []*compaction
	for i := range cands {
		cd := &cands[i]
		h := cd.cmd.Val()
		v, ok := h["v"]
		if !ok { // gone
			unfile = append(unfile, cd.id, cd.score)
			continue
		}
		blob, _ := stateBlob(h)
		st, err := decodeState([]byte(blob))
		if err != nil {
			// Left to the write path, which fails on it too; filed later so it holds no batch up.
			c.log.Warn("compaction: unreadable ticket state", "tenant", tenant, "ticket", cd.id, "err", err)
			refile = append(refile, redis.Z{Score: float64(c.now().Unix()), Member: cd.id})
			res.Skipped++
			continue
		}
		if st.Compacted || !resolvedAfter(st.Events) {
			unfile = append(unfile, cd.id, cd.score)
			if !st.Compacted {
				res.Skipped++
			}
			continue
		}
		if at, err := strconv.ParseInt(h["t"], 10, 64); err == nil && at > due {
			refile = append(refile, redis.Z{Score: float64(at), Member: cd.id})
			res.Skipped++
			continue
		}
		if hasPending(h) {
			unfinished = append(unfinished, Ticket{Tenant: tenantOf(tenant), ID: cd.id, Keyspace: tenant})
			continue
		}
		ver, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("ticket %s version %q: %w", cd.id, v, err)
		}
		var row []any
		if _, n, ok := joinPieces(h, "r", rowField); ok {
			for k := range n {
				row = append(row, h[rowField(k)])
			}
		}
		todo = append(todo, &compaction{c: cd, version: ver, tomb: encodeState(st.tombstone()), row: row})
	}
	if c.hook != nil {
		c.hook()
	}
	if len(unfinished) > 0 {
		// The write path applies them exactly once, whoever else is doing it; the tickets keep
		// their version and are compacted by the next pass.
		if _, err := c.w.Write(ctx, unfinished); err != nil {
			return fmt.Errorf("finish pending deltas: %w", err)
		}
		res.Finished += len(unfinished)
	}
	if len(todo) > 0 {
		_, err := execScripts(ctx, c.rdb, func(pipe redis.Pipeliner) {
			for _, t := range todo {
				tomb := stateChunks(t.tomb)
				args := append([]any{strconv.FormatInt(t.version, 10), strconv.FormatInt(t.version+1, 10), len(tomb)}, tomb...)
				args = append(args, t.row...)
				t.cmd = compactScript.EvalSha(ctx, pipe, []string{TicketKey(tenant, t.c.id)}, args...)
			}
		})
		if err != nil {
			return fmt.Errorf("compact tickets: %w", err)
		}
		for _, t := range todo {
			if n, _ := t.cmd.Int(); n == 1 {
				res.Compacted++
				c.w.metrics.add(compactedTickets, 1)
				unfile = append(unfile, t.c.id, t.c.score)
				continue
			}
			res.Skipped++ // changed since it was read: a later pass looks again
		}
	}
	if len(unfile) == 0 && len(refile) == 0 {
		return nil
	}
	_, err = execScripts(ctx, c.rdb, func(pipe redis.Pipeliner) {
		if len(unfile) > 0 {
			unfileScript.EvalSha(ctx, pipe, []string{set}, unfile...)
		}
		if len(refile) > 0 {
			pipe.ZAddArgs(ctx, set, redis.ZAddArgs{XX: true, GT: true, Members: refile})
		}
	})
	if err != nil {
		return fmt.Errorf("update resolved tickets: %w", err)
	}
	return nil
}

func hasPending(h map[string]string) bool {
	for f := range h {
		if len(f) > 1 && f[0] == 'p' {
			return true
		}
	}
	return false
}

// tenantOf is the tenant of keyspace ks: the rollup's list, which the Compactor walks, names key
// generations (`<tenant>@<g>`, package generation) as well as tenants.
func tenantOf(ks string) string {
	tenant, _, _ := strings.Cut(ks, "@")
	return tenant
}
