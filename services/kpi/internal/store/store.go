// Package store is the KPI write path of DESIGN.md §4: per ticket, a compare-and-set of its event set
// and contribution (one slot), then the resulting deltas applied to each agent/team slot under a
// per-ticket version mark, then the pending deltas cleared. Each step is one pipelined round trip for
// the whole batch. A crash at any point leaves either nothing done or pending deltas that the next
// writer of that ticket (the redelivery) finishes; the version marks stop any delta being applied twice.
//
// The Writer adds to the hourly detail only and queues the days, weeks, months and years it
// touched; a Rollup, run separately, derives their totals once they have ended.
package store

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// TicketKey is the hash holding one ticket's version ("v"), state ("s", "s1", ...: see
// stateChunk), the time its state last changed ("t", Unix seconds; not on a tombstone) and
// pending deltas ("p<version>").
func TicketKey(tenant, ticket string) string {
	return "tp:{" + tenant + ":t:" + idtoken.Escape(ticket) + "}"
}

// ResolvedKey is the sorted set, in the tenant's index slot, of the tenant's solved or closed
// tickets (raw ids) by the time their state last changed (Unix seconds): what the Compactor
// walks, oldest first, to find the quiet ones.
func ResolvedKey(tenant string) string { return "tp:" + bucket.IndexTag(tenant) + ":resolved" }

// casScript writes a ticket's hash if nobody changed the ticket since it was read (its version
// is still ARGV[1]): it sets the ARGV[2] values from ARGV[3] on (field, value, ...: the new
// version, the time, pending deltas and state in pieces) and removes the fields named after
// them (the pieces a longer state left behind). The writer names every field, so the script
// only compares and copies: building the names in Lua cost Redis about a third more CPU per call.
//
// Every value is at most a piece long (see stateChunks), so the ticket's hash stays a compact
// listpack whatever passes through it (a longer value would make it a hash table for good), and
// clearing applied deltas is a plain HDEL of their pieces.
var casScript = redis.NewScript(`
if (redis.call('HGET', KEYS[1], 'v') or '0') ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 + n))
if #ARGV > 2 + n then redis.call('HDEL', KEYS[1], unpack(ARGV, 3 + n)) end
return 1
`)

// stateChunk is the size of the pieces a ticket state is stored in: field "s" holds the first,
// "s1", "s2", ... the next ones, and the last one is always shorter (empty if need be), so a
// reader knows where the state ends. Redis keeps a hash whose values are all at most
// hash-max-listpack-value (64 by default) bytes as a listpack, several times smaller than the
// hash table a whole state made of it (docs/performance.md has the figures).
const stateChunk = 64

// stateChunks splits a state blob into the pieces that casScript and compactScript store.
func stateChunks(blob []byte) []any {
	out := make([]any, 0, len(blob)/stateChunk+1)
	for {
		n := min(len(blob), stateChunk-1)
		if len(blob) >= stateChunk {
			n = stateChunk
		}
		out = append(out, string(blob[:n]))
		blob = blob[n:]
		if n < stateChunk {
			return out
		}
	}
}

// stateBlob joins the state pieces of a ticket hash; ok is false when it has none. A state
// written whole (longer than a piece, by an older release) is taken as it is.
func stateBlob(h map[string]string) (blob string, ok bool) {
	blob, _, ok = joinPieces(h, "s", stateField)
	return blob, ok
}

// stateField names piece k of a ticket's state: "s", then "s1", "s2", ...
func stateField(k int) string {
	if k == 0 {
		return "s"
	}
	return "s" + strconv.Itoa(k)
}

// pendingField names piece k of the pending deltas of version v: "p<v>", then "p<v>_1", ...
func pendingField(v int64, k int) string {
	f := "p" + strconv.FormatInt(v, 10)
	if k > 0 {
		f += "_" + strconv.Itoa(k)
	}
	return f
}

// joinPieces joins a blob stored in pieces (see stateChunks) from field first on, piece k in
// field name(k), and says how many fields it took; ok is false when first is missing. A first
// value that is not exactly a piece long is the whole blob, as an older release wrote it.
func joinPieces(h map[string]string, first string, name func(k int) string) (blob string, pieces int, ok bool) {
	s, ok := h[first]
	if !ok {
		return "", 0, false
	}
	if len(s) != stateChunk {
		return s, 1, true
	}
	var b strings.Builder
	b.WriteString(s)
	for k := 1; ; k++ {
		c, found := h[name(k)]
		b.WriteString(c)
		if len(c) != stateChunk {
			if found {
				k++
			}
			return b.String(), k, true
		}
	}
}

// applyScript adds deltas to one scope's hourly detail. KEYS[1] and KEYS[2] hold, per ticket, the
// highest version applied in this slot (today's and yesterday's hash, so marks expire after a day
// or two); KEYS[3..] are hour hashes and the day, week, month and year totals derived from them,
// and the scope's drill-down index hashes (bucket.TicketIndexKey), then the scope's first-figures
// mark (bucket.FirstKey), and the last key is the scope's totals generation (bucket.GenKey).
// ARGV: mark TTL, entry count, the first day the entries' figures touch ("" when they have
// none: an index-only scope), day count, index day count, one expire-at per key from KEYS[3]
// (0: none), then per day the key indexes of its hour hash and of its day, week, month and year
// totals, then per index day the key index of its index hash, then per entry: ticket (escaped),
// version, op count, index op count, per op: its day's number (1..day count), hour field, delta,
// and per index op: its index day's number, hour of the day, delta. Naming a day's keys once
// rather than in every op keeps the script's arguments, which Redis turns into Lua strings one by
// one, to three per op.
//
// The index ops move the ticket's drill-down entries ("<hh>|<ticket>" counts) in the same atomic
// step, under the same version mark, as its figures: a redelivery applies neither twice, and a
// late event's diff moves both.
//
// An hour hash the rollup packed (bucket.PackedHoursField, of either version: an item without an
// hour is of the hour before it) is unpacked before its first change,
// in place, so it keeps its expiry; the rollup packs it again with the day.
//
// The first-figures mark is lowered to the first day the entries touch; lowering an existing one
// drops the totals generation too, since readers keep the periods before it as empty.
//
// The deltas of all entries are summed per hour field before they are added, and the stale
// totals deleted in one call: Redis's cost here grows with the calls the script makes.
//
// Totals derived from an hour that changed are deleted here, in the same atomic step, so they
// never disagree with the hours; the Rollup derives them again (see totalsScript). Deleting any
// drops the scope's totals generation too, so readers drop what they decoded of the scope's totals.
var applyScript = redis.NewScript(`
local nkeys = #KEYS - 4
if ARGV[3] ~= '' then
  local first = redis.call('GET', KEYS[#KEYS - 1])
  if not first or tonumber(first) > tonumber(ARGV[3]) then
    redis.call('SET', KEYS[#KEYS - 1], ARGV[3])
    if first then redis.call('DEL', KEYS[#KEYS]) end
  end
end
local i = 6
local exp = {}
for k = 1, nkeys do exp[k] = tonumber(ARGV[i]); i = i + 1 end
local days = {}
for d = 1, tonumber(ARGV[4]) do
  days[d] = {KEYS[2 + tonumber(ARGV[i])], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]}
  i = i + 5
end
local idays = {}
for d = 1, tonumber(ARGV[5]) do
  idays[d] = KEYS[2 + tonumber(ARGV[i])]
  i = i + 1
end
local applied = 0
local changed = {}
local unpacked = {}
local add = {}
for e = 1, tonumber(ARGV[2]) do
  local ticket, ver, nops, nidx = ARGV[i], tonumber(ARGV[i+1]), tonumber(ARGV[i+2]), tonumber(ARGV[i+3])
  i = i + 4
  local done = math.max(tonumber(redis.call('HGET', KEYS[1], ticket) or '0'), tonumber(redis.call('HGET', KEYS[2], ticket) or '0'))
  if ver > done then
    for o = 1, nops do
      local d = tonumber(ARGV[i])
      local h, hf = days[d][1], ARGV[i+1]
      if not unpacked[h] then
        unpacked[h] = true
        local packed = redis.call('HGET', h, 'd')
        if packed then
          local kv = {}
          local hour
          for f, v in string.gmatch(packed, ' ([^ =]+)=(%-?%d+)') do
            if string.sub(f, 3, 3) == '|' then hour = string.sub(f, 1, 3) else f = hour .. f end
            kv[#kv + 1] = f
            kv[#kv + 1] = v
          end
          for s = 1, #kv, 1000 do redis.call('HSET', h, unpack(kv, s, math.min(s + 999, #kv))) end
          redis.call('HDEL', h, 'd')
        end
      end
      local sums = add[h]
      if not sums then
        sums = {}
        add[h] = sums
      end
      sums[hf] = (sums[hf] or 0) + tonumber(ARGV[i+2])
      changed[d] = true
      i = i + 3
    end
    for o = 1, nidx do
      local h = idays[tonumber(ARGV[i])]
      local sums = add[h]
      if not sums then
        sums = {}
        add[h] = sums
      end
      local hf = string.format('%02d|', tonumber(ARGV[i+1])) .. ticket
      sums[hf] = (sums[hf] or 0) + tonumber(ARGV[i+2])
      i = i + 3
    end
    redis.call('HSET', KEYS[1], ticket, ver)
    applied = applied + 1
  else
    i = i + 3 * (nops + nidx)
  end
end
for h, sums in pairs(add) do
  for hf, n in pairs(sums) do
    if n ~= 0 and redis.call('HINCRBY', h, hf, n) == 0 then redis.call('HDEL', h, hf) end
  end
end
local stale, seen = {}, {}
for d in pairs(changed) do
  for k = 2, 5 do
    local key = days[d][k]
    if not seen[key] then
      seen[key] = true
      stale[#stale + 1] = KEYS[2 + tonumber(key)]
    end
  end
end
if #stale > 0 and redis.call('DEL', unpack(stale)) > 0 then redis.call('DEL', KEYS[#KEYS]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
for k = 1, nkeys do
  if exp[k] > 0 then redis.call('EXPIREAT', KEYS[2 + k], exp[k]) end
end
return applied
`)

// indexScript adds members to per-day listing sets of one tenant, atomically in its index slot:
// KEYS[1] is the tenant's listing generation (bucket.IndexGenKey), KEYS[2..] the sets; ARGV is,
// per set, its member count, the time it expires at (Unix seconds, 0: never) and its members.
// The generation is dropped when any set gets a member it did not have, so readers drop the
// unions they keep. The expiry is set here rather than by a command after the script: when Redis
// has lost its script cache, the script runs again after the commands queued behind it, and an
// EXPIREAT sent before the set exists does nothing.
var indexScript = redis.NewScript(`
local a = 1
local added = false
for i = 2, #KEYS do
  local n, at = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  if redis.call('SADD', KEYS[i], unpack(ARGV, a + 2, a + 1 + n)) > 0 then added = true end
  if at > 0 then redis.call('EXPIREAT', KEYS[i], at) end
  a = a + 2 + n
end
if added then redis.call('DEL', KEYS[1]) end
return 0
`)

// SLAFunc returns the SLA targets of a tenant.
type SLAFunc func(tenant string) contrib.SLA

// Writer applies batches of events to Redis.
type Writer struct {
	rdb       redis.UniversalClient
	sla       SLAFunc
	retention time.Duration
	now       func() time.Time
	log       *slog.Logger
	metrics   *Metrics
	// fileResolved: keep the resolved set (ResolvedKey) the Compactor walks.
	fileResolved bool

	// hook, when set by tests, runs after each step; an error aborts the batch there, as a crash would.
	hook func(step string) error
	// noIndex (SetTicketIndex(false)) leaves the drill-down index and rows out.
	noIndex bool

	// gens, when set, names the keyspaces live events go to; spaces keeps what it last said.
	gens   Generations
	spaces spaceCache
}

// NewWriter returns a writer. retention 0 keeps buckets forever.
func NewWriter(rdb redis.UniversalClient, sla SLAFunc, retention time.Duration, log *slog.Logger) *Writer {
	return &Writer{rdb: rdb, sla: sla, retention: retention, now: time.Now, log: log}
}

// Steps, for tests that stop the write path in between.
const (
	StepStored  = "stored"  // ticket states and pending deltas written
	StepApplied = "applied" // deltas applied to buckets
)

// SetHook installs a function called after each step (tests only).
func (w *Writer) SetHook(h func(step string) error) { w.hook = h }

// SetMetrics makes the writer count the events that met a tombstone in m.
func (w *Writer) SetMetrics(m *Metrics) { w.metrics = m }

// SetTicketIndex turns the drill-down index (each ticket's row and index entries) on or off;
// it is on unless turned off.
func (w *Writer) SetTicketIndex(on bool) { w.noIndex = !on }

// SetFileResolved makes the writer file solved and closed tickets for a Compactor (ResolvedKey).
// Without a compactor the set would only grow, so it is off by default; tickets resolved while it
// is off are filed when they next change.
func (w *Writer) SetFileResolved(on bool) { w.fileResolved = on }

// SetClock replaces the clock that stamps ticket states and dates version marks (tests and
// benchmarks that run in simulated time).
func (w *Writer) SetClock(now func() time.Time) { w.now = now }

// Ticket is one ticket's new events in a batch.
type Ticket struct {
	Tenant, ID string
	// Keyspace, when set, is the key generation (package generation) the events are written to,
	// and only that one; empty writes to the tenant's current generation and, while a rebuild
	// runs, to its target too (see Writer.SetGenerations).
	Keyspace string
	Events   []contrib.Event
	// IDs are the events' ids, parallel to Events, for the log line of an event that came too late;
	// nil logs only their keys.
	IDs []string
}

// Result says what a batch changed.
type Result struct {
	// Duplicates counts the events already seen, those a tombstone remembers included.
	NewEvents, Duplicates int
	// TooLate counts the events, never seen before, of compacted tickets: they are recorded in the
	// tombstone, logged and not applied (a rebuild from TICKETS applies them).
	TooLate int
	// Changed lists, per tenant, the agent and team scopes whose buckets changed.
	Changed map[string]map[bucket.Scope]struct{}
}

type work struct {
	t        *Ticket
	space    string // the keyspace written (package generation)
	primary  bool   // counted in Result: the ticket's first keyspace
	key      string
	version  int64
	state    ticketState
	pending  map[int64]pendingEntry
	next     []byte // new state blob, nil when nothing new
	entry    []byte // new pending entry blob, nil when no delta
	newEntry pendingEntry
	fresh    int
	// late are the new events of a tombstone, tombDups the events it already remembers.
	late     []int
	tombDups int
	// changedAt is the "t" read (Unix seconds, 0 if none); resolved and wasResolved say whether
	// the ticket is solved or closed after this batch and was before it.
	changedAt             int64
	resolved, wasResolved bool
	// hadPending: the read found pending deltas, left by a write that did not finish.
	hadPending bool
	// pieces is how many pieces the state read was stored in (see stateChunks), pendingPieces
	// the same for each version of pending deltas.
	pieces        int
	pendingPieces map[int64]int
	// row is the ticket's drill-down row read (see row.go), rowPieces how many pieces it took;
	// nextRow the new one, nil when unchanged.
	row       string
	rowPieces int
	nextRow   []byte
}

// Write stores the events of the tickets and updates the KPI buckets. On error nothing is lost: the
// caller must not acknowledge the events, and the redelivery completes whatever was left pending.
func (w *Writer) Write(ctx context.Context, tickets []Ticket) (Result, error) {
	res := Result{Changed: map[string]map[bucket.Scope]struct{}{}}
	spaces := w.knownSpaces(tickets)
	todo := expand(tickets, spaces)
	var done []*work
	first := true
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == 20 {
			return res, fmt.Errorf("store tickets: version conflicts persisted over %d attempts", attempt)
		}
		var tenants []string
		if first && w.gens != nil {
			tenants = slices.Sorted(maps.Keys(spaces))
		}
		fresh, err := w.read(ctx, todo, tenants)
		if err != nil {
			return res, err
		}
		if first && w.gens != nil && w.learn(spaces, fresh) {
			// A rebuild started or switched since this replica last looked: the batch goes to
			// the keyspaces just read, read again under their keys.
			spaces = fresh
			todo = expand(tickets, spaces)
			if _, err := w.read(ctx, todo, nil); err != nil {
				return res, err
			}
		}
		first = false
		for _, wk := range todo {
			if err := w.compute(wk); err != nil {
				return res, err
			}
		}
		conflicts, err := w.store(ctx, todo)
		if err != nil {
			return res, err
		}
		for _, wk := range todo {
			if !slices.Contains(conflicts, wk) {
				done = append(done, wk)
			}
		}
		todo = conflicts
	}
	if err := w.step(StepStored); err != nil {
		return res, err
	}
	for _, wk := range done {
		if !wk.primary {
			continue // the same events, counted under the current generation
		}
		res.NewEvents += wk.fresh
		res.Duplicates += len(wk.t.Events) - wk.fresh - len(wk.late)
		res.TooLate += len(wk.late)
		w.tombstoneHits(wk)
	}
	if err := w.apply(ctx, done, &res); err != nil {
		return res, err
	}
	if err := w.step(StepApplied); err != nil {
		return res, err
	}
	return res, w.clear(ctx, done)
}

func (w *Writer) step(name string) error {
	if w.hook == nil {
		return nil
	}
	return w.hook(name)
}

// read reads the state of every ticket of todo and, in the same round trip, the keyspaces live
// events of tenants are written to (nil when tenants is empty).
func (w *Writer) read(ctx context.Context, todo []*work, tenants []string) (map[string][]string, error) {
	pipe := w.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(todo))
	for i, wk := range todo {
		cmds[i] = pipe.HGetAll(ctx, wk.key)
	}
	gens := make([]func() ([]string, error), len(tenants))
	for i, tenant := range tenants {
		gens[i] = w.gens.Spaces(ctx, pipe, tenant)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read ticket states: %w", err)
	}
	var spaces map[string][]string
	if len(tenants) > 0 {
		spaces = make(map[string][]string, len(tenants))
		for i, tenant := range tenants {
			sp, err := gens[i]()
			if err != nil {
				return nil, fmt.Errorf("read key generation of tenant %s: %w", tenant, err)
			}
			spaces[tenant] = sp
		}
	}
	return spaces, w.decodeStates(todo, cmds)
}

func (w *Writer) decodeStates(todo []*work, cmds []*redis.MapStringStringCmd) error {
	for i, wk := range todo {
		h := cmds[i].Val()
		wk.version, wk.state, wk.pending, wk.pendingPieces, wk.changedAt = 0, ticketState{}, map[int64]pendingEntry{}, map[int64]int{}, 0
		if v, ok := h["v"]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("ticket %s version %q: %w", wk.key, v, err)
			}
			wk.version = n
		}
		if v, ok := h["t"]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("ticket %s time %q: %w", wk.key, v, err)
			}
			wk.changedAt = n
		}
		wk.row, wk.rowPieces, _ = joinPieces(h, "r", rowField)
		blob, pieces, ok := joinPieces(h, "s", stateField)
		wk.pieces = pieces
		if ok {
			st, err := decodeState([]byte(blob))
			if err != nil {
				return fmt.Errorf("ticket %s state: %w", wk.key, err)
			}
			wk.state = st
		}
		for f := range h {
			// Pending deltas start at "p<version>"; "p<version>_<k>" are their further pieces.
			if len(f) < 2 || f[0] != 'p' || strings.IndexByte(f, '_') >= 0 {
				continue
			}
			ver, err := strconv.ParseInt(f[1:], 10, 64)
			if err != nil {
				return fmt.Errorf("ticket %s pending field %q: %w", wk.key, f, err)
			}
			blob, pieces, _ := joinPieces(h, f, func(k int) string { return pendingField(ver, k) })
			p, err := decodePending([]byte(blob))
			if err != nil {
				return fmt.Errorf("ticket %s pending %d: %w", wk.key, ver, err)
			}
			wk.pending[ver] = p
			wk.pendingPieces[ver] = pieces
		}
		wk.hadPending = len(wk.pending) > 0
	}
	return nil
}

// compute merges the batch's events into the state and derives the new contribution and its delta.
func (w *Writer) compute(wk *work) error {
	wk.next, wk.entry, wk.nextRow, wk.fresh, wk.late, wk.tombDups = nil, nil, nil, 0, nil, 0
	if wk.state.Compacted {
		w.computeTombstone(wk)
		return nil
	}
	wk.wasResolved = resolvedAfter(wk.state.Events)
	wk.resolved = wk.wasResolved
	events := wk.state.Events
	idx := make(map[uint64]int, len(events))
	for i, e := range events {
		idx[e.Key] = i
	}
	changed := false
	for _, e := range wk.t.Events {
		if i, dup := idx[e.Key]; dup {
			// A resent id normally carries the same content; if not, keep the copy that sorts first so
			// the result does not depend on which arrived first.
			if contrib.Less(&e, &events[i]) {
				events[i] = e
				changed = true
			}
			continue
		}
		idx[e.Key] = len(events)
		events = append(events, e)
		wk.fresh++
		changed = true
	}
	if !changed {
		return nil
	}
	slices.SortFunc(events, func(a, b contrib.Event) int {
		if contrib.Less(&a, &b) {
			return -1
		}
		if contrib.Less(&b, &a) {
			return 1
		}
		return 0
	})
	wk.resolved = resolvedAfter(events)
	c := contrib.Compute(events, w.sla(wk.t.Tenant))
	values := c.Values
	if !w.noIndex {
		values = applied(c)
		if row := encodeRow(&c.Ticket); string(row) != wk.row {
			wk.nextRow = row
		}
	}
	delta := contrib.Diff(wk.state.Applied, values)
	wk.next = encodeState(ticketState{Events: events, Applied: values})
	if len(delta) > 0 {
		wk.newEntry = pendingEntry{Deltas: delta, Memberships: c.Memberships}
		wk.entry = encodePending(wk.newEntry)
	}
	return nil
}

// applied is what the write path applies for a contribution: its figures and, in the same
// cells, the ticket's drill-down index entries, so one diff moves both.
func applied(c contrib.Contribution) map[contrib.Key]int64 {
	for k, v := range c.Ticket.IndexCells() {
		c.Values[k] = v
	}
	return c.Values
}

// store compare-and-sets every changed ticket; it returns the tickets that lost a race.
func (w *Writer) store(ctx context.Context, todo []*work) ([]*work, error) {
	cmds := make(map[*work]*redis.Cmd)
	for _, wk := range todo {
		if wk.next != nil {
			cmds[wk] = nil
		}
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	now := w.now().Unix()
	pending := make(map[*work]int, len(cmds)) // pieces of each ticket's new pending deltas
	_, err := w.exec(ctx, func(pipe redis.Pipeliner) {
		for wk := range cmds {
			var entry []any
			if wk.entry != nil {
				entry = stateChunks(wk.entry)
			}
			pending[wk] = len(entry)
			// A tombstone keeps no time: it is never compacted again.
			at := ""
			if !wk.state.Compacted {
				at = strconv.FormatInt(now, 10)
			}
			state := stateChunks(wk.next)
			var row []any
			if wk.nextRow != nil {
				row = stateChunks(wk.nextRow)
			}
			args := make([]any, 0, 6+2*len(entry)+2*len(state)+2*len(row)+max(wk.pieces-len(state), 0)+max(wk.rowPieces-len(row), 0))
			args = append(args, strconv.FormatInt(wk.version, 10), 0, "v", strconv.FormatInt(wk.version+1, 10))
			if at != "" {
				args = append(args, "t", at)
			}
			for k, piece := range entry {
				args = append(args, pendingField(wk.version+1, k), piece)
			}
			for k, piece := range state {
				args = append(args, stateField(k), piece)
			}
			for k, piece := range row {
				args = append(args, rowField(k), piece)
			}
			args[1] = len(args) - 2
			// The pieces a longer state left behind: the read found wk.pieces, and the version
			// check makes sure they are still those.
			for k := len(state); k < wk.pieces; k++ {
				args = append(args, stateField(k))
			}
			if row != nil {
				for k := len(row); k < wk.rowPieces; k++ {
					args = append(args, rowField(k))
				}
			}
			cmds[wk] = casScript.EvalSha(ctx, pipe, []string{wk.key}, args...)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("store ticket states: %w", err)
	}
	var conflicts []*work
	for _, wk := range todo {
		cmd, ok := cmds[wk]
		if !ok {
			continue
		}
		n, err := cmd.Int()
		if err != nil {
			return nil, fmt.Errorf("store ticket %s: %w", wk.key, err)
		}
		if n == 0 {
			conflicts = append(conflicts, wk)
			continue
		}
		wk.version++
		if !wk.state.Compacted {
			wk.changedAt = now
		}
		if wk.entry != nil {
			wk.pending[wk.version] = wk.newEntry
			wk.pendingPieces[wk.version] = pending[wk]
		}
	}
	return conflicts, nil
}
