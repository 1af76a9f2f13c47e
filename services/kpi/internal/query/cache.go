package query

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
)

// A listing over a year reads thousands of packed totals of ended periods, which only change when
// the rollup writes them or a late event deletes them. The Reader keeps what it decoded of them,
// under the scope's totals generation (bucket.GenKey): both of those changes drop the generation
// in the same atomic step, and a reader that finds none creates a new, never reused one in the
// same script that reads the totals. So a decoded value is used again only while the scope's
// totals cannot have changed; only whether the key still exists is asked (it may have expired).
//
// Every cache entry is keyed by the Redis key it was read from, and a key generation's keys carry
// its keyspace (package generation), so figures of two generations never mix.

// DefaultCacheBytes bounds, roughly, the memory a Reader spends on decoded totals.
const DefaultCacheBytes = 64 << 20

// readScript reads the totals keys and hour extracts of one scope, atomically in its slot:
// KEYS[1] is the scope's totals generation, KEYS[2] its first-figures mark (bucket.FirstKey),
// the next ARGV[4] keys totals keys, then per hour extract the day's hourly detail and the day's
// totals key. ARGV[1] is the generation to create when there is none, ARGV[2] the generation the
// caller holds decoded totals under, ARGV[3] a character per totals key and then per extract:
// "2" when the caller holds its totals and the key had no expiry, "1" when it holds them and the
// key had one (so it may have expired since, or come back without one, written by a rollup
// without a retention, which keeps the generation: then it is read again), "0" otherwise; after
// ARGV[4], per extract, a mask of 24 characters, one per hour of the day ("1": the hour is read),
// then "1" or "0" twice: whether the mask's hours, and whether the other hours, are wanted while
// the day has no totals (while it has, only the mask's hours are read). Returns the generation,
// then, unless the caller holds every key without an expiry under it, the mark (nil without one),
// per totals key its content (in a one-element array when the key has an expiry), 1 when the
// caller's is current, or nil when the key does not exist, and per extract 1 when the caller's is
// current, or {the mask's hours, the other hours, 1 when they may be kept (the day's totals exist
// without an expiry: any write to the day's hours then deletes them and the generation), 1 when
// the day's totals exist, and, if a field read is not an hourly figure, that field and its
// value}. Hours are their fields packed as totals, "v1 f=v ..." with a field repeated per hour,
// nil when the day has no hourly detail, 0 when they were not wanted. A key without an expiry
// never gets one later and leaves only with the generation.
//
// Extracting here rather than in Go sends a few hours of a day instead of its whole detail: the
// hourly detail is "hh|field" fields, found by one HSCAN whose MATCH takes the hours' digits
// (Redis filters, not Lua; a field a scan returns twice is taken once), or once the day is packed, one field
// PackedHoursField holding "v2 07|fc=2 F412=1 08|as=1 ..." (or "v1", naming the hour in every
// item; parsed once per call and day, however many extracts of the day the call has). Fields
// whose hour is not one of the day's 24 are never read.
var readScript = redis.NewScript(`
local hashes = {}
local function detail(key)
  local e = hashes[key]
  if e ~= nil then return e end
  e = false
  if redis.call('EXISTS', key) == 1 then
    e = {seg = {}}
    local function add(h, item)
      local l = e.seg[h + 1]
      if not l then
        l = {}
        e.seg[h + 1] = l
      end
      l[#l + 1] = item
    end
    local p = redis.call('HGET', key, 'd')
    if not p or p == 'v1' or p == 'v2' then
      -- not packed, or packed and empty
    elseif string.sub(p, 1, 3) == 'v2 ' then
      local s, e2, hh = string.find(p, ' (%d%d)|', 3)
      if s ~= 3 then e.bad = {'d', p} end
      while s do
        local s2, e3, hh2 = string.find(p, ' (%d%d)|', e2 + 1)
        local h = tonumber(hh)
        if h > 23 then e.bad = {'d', p} else add(h, string.sub(p, e2 + 1, (s2 or #p + 1) - 1)) end
        s, e2, hh = s2, e3, hh2
      end
    elseif string.sub(p, 1, 3) == 'v1 ' then
      for item in string.gmatch(p, ' ([^ ]*)') do
        local hh, rest = string.match(item, '^(%d%d)|(.+)$')
        if not hh or tonumber(hh) > 23 then e.bad = {'d', p} else add(tonumber(hh), rest) end
      end
    else
      e.bad = {'d', p}
    end
  end
  hashes[key] = e
  return e
end
local function scan(key, mask)
  local e = detail(key)
  if not e then return false end
  local out, bad = {'v1'}, e.bad
  local tens, ones = {}, {}
  for h = 0, 23 do
    if string.byte(mask, h + 1) == 49 then
      for _, item in ipairs(e.seg[h + 1] or {}) do out[#out + 1] = item end
      tens[math.floor(h / 10) + 1], ones[h % 10 + 1] = true, true
    end
  end
  -- One scan whose pattern takes the tens and the ones of the hours asked for (a superset of
  -- them, filtered here): a scan per hour would walk the whole hash once per hour.
  local class = function(set)
    local c = {}
    for d = 0, 9 do if set[d + 1] then c[#c + 1] = tostring(d) end end
    return '[' .. table.concat(c) .. ']'
  end
  if next(tens) then
    local cursor, seen, pattern = '0', {}, class(tens) .. class(ones) .. '|*'
    repeat
      local r = redis.call('HSCAN', key, cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = r[1]
      local kv = r[2]
      for j = 1, #kv, 2 do
        local f, v = kv[j], kv[j + 1]
        local h = tonumber(string.sub(f, 1, 2))
        if not seen[f] and h < 24 and string.byte(mask, h + 1) == 49 then
          seen[f] = true
          local rest = string.sub(f, 4)
          if rest == '' or string.find(rest, '[ =]') or string.find(v, '[ =]') then bad = {f, v} else out[#out + 1] = rest .. '=' .. v end
        end
      end
    until cursor == '0'
  end
  return table.concat(out, ' '), bad
end
local memo = {}
local function extract(key, mask)
  local m = memo[key .. mask]
  if not m then
    m = {scan(key, mask)}
    memo[key .. mask] = m
  end
  return m[1], m[2]
end
local g = redis.call('GET', KEYS[1])
if not g then
  g = ARGV[1]
  redis.call('SET', KEYS[1], g)
end
local same = g == ARGV[2]
if same and not string.find(ARGV[3], '[01]') then return {g} end
local out = {g, redis.call('GET', KEYS[2])}
local n = tonumber(ARGV[4])
for i = 3, n + 2 do
  local held = same and string.sub(ARGV[3], i - 2, i - 2) or '0'
  local ttl = -1
  if held == '1' then ttl = redis.call('PTTL', KEYS[i]) end
  if held == '2' or ttl >= 0 then
    out[i] = 1
  elseif ttl == -2 then
    out[i] = false
  else
    local v = redis.call('GET', KEYS[i])
    if v and redis.call('PTTL', KEYS[i]) >= 0 then v = {v} end
    out[i] = v
  end
end
for x = 1, (#KEYS - n - 2) / 2 do
  local hk, dk = KEYS[n + 1 + 2 * x], KEYS[n + 2 + 2 * x]
  if same and string.sub(ARGV[3], n + x, n + x) == '2' then
    out[n + 2 + x] = 1
  else
    local arg = ARGV[4 + x]
    local mask = string.sub(arg, 1, 24)
    local dttl = redis.call('PTTL', dk)
    local keep = (dttl == -1 and redis.call('PTTL', hk) < 0) and 1 or 0
    local v, bad, o, obad = 0, nil, 0, nil
    if dttl ~= -2 or string.sub(arg, 25, 25) == '1' then v, bad = extract(hk, mask) end
    if dttl == -2 and string.sub(arg, 26, 26) == '1' then
      o, obad = extract(hk, string.gsub(mask, '[01]', {['0'] = '1', ['1'] = '0'}))
      bad = bad or obad
    end
    local r = {v, o, keep, dttl == -2 and 0 or 1}
    if bad then r[5], r[6] = bad[1], bad[2] end
    out[n + 2 + x] = r
  end
end
return out
`)

// decoded is packed totals ready to be added: counters, then bins as dense indexes per duration.
type decoded struct {
	c      [bucket.NumCounters]int64
	bins   []uint16 // duration<<11 | dense index
	counts []int64
	lo, hi [bucket.NumDurations]int // touched dense indexes, empty when lo > hi
	other  []fieldValue             // fields off the fast path, added through Totals.AddField
	// expires is true when the key had an expiry when it was read.
	expires bool
	// noHours is true for an hour extract of a day without hourly detail.
	noHours bool
}

type fieldValue struct {
	field string
	v     int64
}

func (d *decoded) size() int { return 300 + 10*len(d.bins) + 40*len(d.other) }

// decode parses packed totals, with the errors that adding them field by field would give.
func decode(s string) (*decoded, error) {
	n := strings.Count(s, " ") // fields, so the bins are allocated once
	d := &decoded{bins: make([]uint16, 0, n), counts: make([]int64, 0, n)}
	for i := range d.lo {
		d.lo[i], d.hi[i] = denseN, -1
	}
	var check *bucket.Totals
	err := bucket.EachPacked(s, func(field, value string) error {
		v, err := parseValue(field, value)
		if err != nil {
			return err
		}
		if len(field) == 2 && field[0] < 128 && field[1] < 128 {
			if c := counterAt[field[0]][field[1]]; c >= 0 {
				d.c[c] += v
				return nil
			}
		}
		if len(field) >= 2 && field[0] < 128 {
			if du := durationAt[field[0]]; du >= 0 {
				if b, ok := atoi64(field[1:]); ok && b >= denseLo && b < denseLo+denseN {
					i := int(b - denseLo)
					d.bins = append(d.bins, uint16(du)<<11|uint16(i))
					d.counts = append(d.counts, v)
					d.lo[du], d.hi[du] = min(d.lo[du], i), max(d.hi[du], i)
					return nil
				}
			}
		}
		if check == nil {
			check = bucket.NewTotals()
		}
		if err := check.AddField(field, v); err != nil {
			return err
		}
		d.other = append(d.other, fieldValue{field: field, v: v})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// addDecoded adds decoded totals.
func (m *merger) addDecoded(d *decoded) error {
	for i, v := range d.c {
		m.t.C[i] += v
	}
	for j, b := range d.bins {
		m.dense[b>>11][b&(1<<11-1)] += d.counts[j]
	}
	for du := range d.lo {
		if d.lo[du] <= d.hi[du] {
			m.lo[du], m.hi[du] = min(m.lo[du], d.lo[du]), max(m.hi[du], d.hi[du])
		}
	}
	for _, o := range d.other {
		if err := m.t.AddField(o.field, o.v); err != nil {
			return err
		}
	}
	return nil
}

// subDecoded subtracts decoded totals: the hours of a day that its totals hold and a part of the
// day does not.
func (m *merger) subDecoded(d *decoded) error {
	for i, v := range d.c {
		m.t.C[i] -= v
	}
	for j, b := range d.bins {
		m.dense[b>>11][b&(1<<11-1)] -= d.counts[j]
	}
	for du := range d.lo {
		if d.lo[du] <= d.hi[du] {
			m.lo[du], m.hi[du] = min(m.lo[du], d.lo[du]), max(m.hi[du], d.hi[du])
		}
	}
	for _, o := range d.other {
		if err := m.t.AddField(o.field, -o.v); err != nil {
			return err
		}
	}
	return nil
}

// cacheEntry is a totals key's decoded content under a scope generation.
type cacheEntry struct {
	gen string
	d   *decoded
}

// totalsCache holds decoded totals by key, up to about budget bytes; past that, arbitrary entries
// make room.
type totalsCache struct {
	mu      sync.Mutex
	budget  int
	used    int
	entries map[string]cacheEntry

	prefix string // random per cache, so generations never repeat across processes
	seq    atomic.Uint64
}

func newTotalsCache(budget int) *totalsCache {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return &totalsCache{budget: budget, entries: make(map[string]cacheEntry), prefix: hex.EncodeToString(b[:])}
}

// newGen returns a generation no cache has handed out before.
func (c *totalsCache) newGen() string {
	return c.prefix + ":" + strconv.FormatUint(c.seq.Add(1), 36)
}

func (c *totalsCache) get(key string) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	return e, ok
}

func (c *totalsCache) put(key, gen string, d *decoded) {
	n := d.size() + len(key) + len(gen)
	if n > c.budget/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[key]; ok {
		c.used -= old.d.size() + len(key) + len(old.gen)
	}
	c.entries[key] = cacheEntry{gen: gen, d: d}
	c.used += n
	if c.used <= c.budget {
		return
	}
	for k, e := range c.entries {
		delete(c.entries, k)
		c.used -= e.d.size() + len(k) + len(e.gen)
		if c.used <= c.budget*3/4 {
			return
		}
	}
}

// unionScript answers the union of a tenant's per-day listing sets, atomically in its index slot:
// KEYS[1] is the tenant's listing generation (bucket.IndexGenKey), KEYS[2..] the sets. ARGV[1] is
// the generation to create when there is none, ARGV[2] and ARGV[3] the generation and the count of
// existing sets a union the caller holds was taken under. Returns the generation and the count of
// existing sets, then the union unless the caller's is current: while the generation stands no
// set gains a member, so the union changes only when a set expires, which changes the count.
var unionScript = redis.NewScript(`
local g = redis.call('GET', KEYS[1])
if not g then
  g = ARGV[1]
  redis.call('SET', KEYS[1], g)
end
local n = 0
for i = 2, #KEYS do n = n + redis.call('EXISTS', KEYS[i]) end
if g == ARGV[2] and n == tonumber(ARGV[3]) then return {g, n} end
local members = {}
if #KEYS > 1 then members = redis.call('SUNION', unpack(KEYS, 2)) end
return {g, n, members}
`)

// heldUnion is a union of listing sets taken under a generation, with the count of sets that
// existed.
type heldUnion struct {
	gen  string
	keys int64
	ids  []string
}

// unionCache holds unions of listing sets by window, up to about budget bytes.
type unionCache struct {
	mu      sync.Mutex
	budget  int
	used    int
	entries map[string]heldUnion
}

func newUnionCache(budget int) *unionCache {
	return &unionCache{budget: budget, entries: make(map[string]heldUnion)}
}

func unionSize(key string, u heldUnion) int {
	n := len(key) + len(u.gen) + 64
	for _, id := range u.ids {
		n += len(id) + 16
	}
	return n
}

func (c *unionCache) get(key string) (heldUnion, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.entries[key]
	return u, ok
}

func (c *unionCache) put(key string, u heldUnion) {
	n := unionSize(key, u)
	if n > c.budget/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[key]; ok {
		c.used -= unionSize(key, old)
	}
	c.entries[key] = u
	c.used += n
	for k, e := range c.entries {
		if c.used <= c.budget {
			return
		}
		if k != key {
			delete(c.entries, k)
			c.used -= unionSize(k, e)
		}
	}
}
