// Package deliveries keeps notify's state in Redis: the groups that collect escalation changes
// per receiver until they are sent, the delivery log (capped per tenant) with every attempt, the
// open escalations that may inhibit others, and the receivers disabled by a 410.
//
// Exactly one notification per (escalation change, receiver): adding a change to its group sets
// a marker in the group's slot in the same script, so a redelivered change is a no-op; taking a
// group's changes for a delivery moves them into the group's outbox in one script, and the
// delivery created from it has an id derived from the group and its flush number, so a replica
// that crashes in between leaves work that the next attempt finishes, never a second delivery.
// All of that holds while Redis keeps its writes; should it lose the latest ones, the record in
// package delivered keeps a replayed change from being sent again.
package deliveries

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/redisscript"
)

// Store is notify's Redis state.
type Store struct {
	rdb redis.UniversalClient
	// seenTTL is how long a change is remembered as routed to a receiver (the redelivery window).
	seenTTL time.Duration
	// maxPerTenant caps each tenant's delivery log.
	maxPerTenant int64
}

// New returns a store.
func New(rdb redis.UniversalClient, seenTTL time.Duration, maxPerTenant int64) *Store {
	return &Store{rdb: rdb, seenTTL: seenTTL, maxPerTenant: maxPerTenant}
}

// GroupID names a group of one receiver: a digest of the receiver and the route's group key, so
// any key length and content makes a short key part.
func GroupID(receiver, groupKey string) string {
	sum := sha256.Sum256([]byte(receiver + "\x00" + groupKey))
	return hex.EncodeToString(sum[:12])
}

func groupKey(tenant, gid string) string { return "tp:{" + tenant + ":ng:" + gid + "}" }

func seenKey(tenant, gid, change string) string { return groupKey(tenant, gid) + ":s:" + change }

func logTag(tenant string) string { return "tp:{" + tenant + ":nd}" }

func recordKey(tenant, id string) string { return logTag(tenant) + ":d:" + id }

func indexKey(tenant string) string { return logTag(tenant) + ":ix" }

func openKey(tenant string) string { return "tp:{" + tenant + ":nopen}" }

const disabledKey = "tp:{nf}:disabled"

// ChangeRef names one change of one escalation: "<escalation id>#<sequence>".
func ChangeRef(c *tpv1.EscalationChange) string {
	return c.GetEscalation().GetId() + "#" + strconv.FormatInt(c.GetSequence(), 10)
}

// addScript adds a change to a group unless this receiver already had it, and keeps the latest
// change of each escalation still open in the group, for reminders. KEYS: group, seen marker.
// ARGV: change ref, change bytes, group key, receiver, group labels JSON, marker TTL ms,
// escalation id, sequence, "1" if the change resolves the escalation, repeat interval ms, group
// interval ms (kept for Taken, which plans the send of changes that arrived during a send).
// Returns {duplicate, plan, last}: duplicate 1 when the receiver already had the change; plan 1
// when the caller must plan the group's send, with last the time of the group's last send (0:
// never). A new change plans it when it is the group's first pending one; a duplicate plans it
// again whenever changes are pending, since the delivery that added them may have died before
// its plan was written (the timer is in another slot, so not in this script), and then nothing
// else would plan it: planning is "no later than", so planning again is harmless.
var addScript = redis.NewScript(`
local function last() return tonumber(redis.call('HGET', KEYS[1], 'last') or '0') end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[6]) then
  if tonumber(redis.call('HGET', KEYS[1], 'p') or '0') > 0 then return {1, 1, last()} end
  return {1, 0, 0}
end
redis.call('HSET', KEYS[1], 'c:' .. ARGV[1], ARGV[2], 'key', ARGV[3], 'receiver', ARGV[4], 'labels', ARGV[5], 'repeat', ARGV[10], 'gi', ARGV[11])
local seq = tonumber(redis.call('HGET', KEYS[1], 'es:' .. ARGV[7]) or '0')
if tonumber(ARGV[8]) > seq then
  if ARGV[9] == '1' then
    redis.call('HDEL', KEYS[1], 'e:' .. ARGV[7])
  else
    redis.call('HSET', KEYS[1], 'e:' .. ARGV[7], ARGV[2])
  end
  redis.call('HSET', KEYS[1], 'es:' .. ARGV[7], ARGV[8])
end
-- A group idle for the whole dedupe window goes, with its markers of resolved escalations.
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if redis.call('HINCRBY', KEYS[1], 'p', 1) == 1 then return {0, 1, last()} end
return {0, 0, 0}
`)

// Added says what adding a change did.
type Added struct {
	Duplicate bool
	// PlanFlush is set when the caller must plan the group's send: the change is the group's
	// first pending one, or a duplicate while changes are pending (whose plan may have been lost
	// with the delivery that added them). LastSent is the group's previous send (zero: never).
	PlanFlush bool
	LastSent  time.Time
}

// Add puts a change in a receiver's group.
func (s *Store) Add(ctx context.Context, tenant, receiver, gid, key string, groupLabels map[string]string, c *tpv1.EscalationChange, data []byte, repeat, groupInterval time.Duration) (Added, error) {
	labels, err := json.Marshal(groupLabels)
	if err != nil {
		return Added{}, err
	}
	ref := ChangeRef(c)
	resolves := "0"
	if c.GetEscalation().GetState() == tpv1.EscalationState_ESCALATION_STATE_RESOLVED {
		resolves = "1"
	}
	res, err := redisscript.Run(ctx, s.rdb, addScript, []string{groupKey(tenant, gid), seenKey(tenant, gid, ref)},
		ref, data, key, receiver, labels, s.seenTTL.Milliseconds(), c.GetEscalation().GetId(), c.GetSequence(), resolves, repeat.Milliseconds(), groupInterval.Milliseconds()).Int64Slice()
	if err != nil {
		return Added{}, fmt.Errorf("add %s to group %s: %w", ref, gid, err)
	}
	if len(res) != 3 {
		return Added{}, fmt.Errorf("add %s to group %s: script answered %v", ref, gid, res)
	}
	a := Added{Duplicate: res[0] == 1, PlanFlush: res[1] == 1}
	if res[2] > 0 {
		a.LastSent = time.UnixMilli(res[2])
	}
	return a, nil
}

// takeScript moves a group's pending changes into its outbox as flush number n, unless an
// earlier flush is still in the outbox (a crash between taking and logging), which it returns
// instead. With mode "remind" it copies the latest change of each open escalation instead, once
// the repeat interval has passed. A new flush keeps the nonce it is given with its outbox (see
// Batch.Nonce). KEYS: group. ARGV: now ms, mode, group TTL ms, nonce. Returns
// {n, receiver, key, labels, nonce, ref1, data1, ...}, {"wait", due ms} or {}.
var takeScript = redis.NewScript(`
local h = redis.call('HGETALL', KEYS[1])
local fields = {}
for i = 1, #h, 2 do fields[h[i]] = h[i+1] end
for f, v in pairs(fields) do
  if string.sub(f, 1, 2) == 'o:' then
    local out = {string.sub(f, 3), fields['receiver'] or '', fields['key'] or '', fields['labels'] or '{}', fields['ot:' .. string.sub(f, 3)] or ''}
    local batch = cjson.decode(v)
    for _, x in ipairs(batch) do table.insert(out, x[1]); table.insert(out, fields['oc:' .. string.sub(f, 3) .. ':' .. x[1]] or '') end
    return out
  end
end
local remind = ARGV[2] == 'remind'
if remind then
  -- A send is planned (it reminds too), nothing is open, or it is not time yet.
  if (tonumber(fields['p']) or 0) > 0 then return {} end
  local open = false
  for f in pairs(fields) do if string.sub(f, 1, 2) == 'e:' then open = true; break end end
  if not open then return {} end
  local due = (tonumber(fields['last']) or 0) + (tonumber(fields['repeat']) or 0)
  if (tonumber(fields['repeat']) or 0) == 0 then return {} end
  if tonumber(ARGV[1]) < due then return {'wait', tostring(due)} end
elseif (tonumber(fields['p']) or 0) == 0 then
  return {}
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local out = {tostring(n), fields['receiver'] or '', fields['key'] or '', fields['labels'] or '{}', ARGV[4]}
local refs = {}
local prefix = 'c:'
if remind then prefix = 'e:' end
for f, v in pairs(fields) do
  if string.sub(f, 1, 2) == prefix then
    local ref = string.sub(f, 3)
    if remind then ref = ref .. '#' .. (fields['es:' .. ref] or '0') .. '#r' .. n end
    table.insert(refs, {ref})
    redis.call('HSET', KEYS[1], 'oc:' .. n .. ':' .. ref, v)
    if not remind then redis.call('HDEL', KEYS[1], f) end
    table.insert(out, ref); table.insert(out, v)
  end
end
redis.call('HSET', KEYS[1], 'o:' .. n, cjson.encode(refs), 'ot:' .. n, ARGV[4], 'p', 0, 'last', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return out
`)

// Batch is a group's changes taken for one delivery.
type Batch struct {
	Tenant, GroupID string
	// N is the group's flush number and Nonce a random word drawn when the batch was taken; the
	// delivery id is GroupID.N.Nonce. Redis that lost its latest writes also lost the flushes
	// they counted, and hands their numbers out again: the nonce keeps a later batch from taking
	// the id (the webhook-id receivers deduplicate by) of a message already sent. A batch
	// taken before nonces existed has none, and keeps its id GroupID.N.
	N           int64
	Nonce       string
	Receiver    string
	Key         string
	GroupLabels map[string]string
	Changes     []*tpv1.EscalationChange
	Data        [][]byte
	// Refs are the outbox fields' names of the changes, in the order taken.
	Refs []string
	// Reminder: the batch repeats escalations still open rather than new changes.
	Reminder bool
}

// DeliveryID is the id of the delivery made from this batch.
func (b *Batch) DeliveryID() string {
	id := b.GroupID + "." + strconv.FormatInt(b.N, 10)
	if b.Nonce != "" {
		id += "." + b.Nonce
	}
	return id
}

// FlushOf is the group and flush number of a delivery id DeliveryID made ("<group>.<n>"),
// without its nonce: what stays the same when Redis hands a lost flush number out again.
func FlushOf(id string) string {
	gid, rest, _ := strings.Cut(id, ".")
	n, _, _ := strings.Cut(rest, ".")
	return gid + "." + n
}

// nonce is a batch's random word.
func nonce() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Take takes the group's pending changes (or the batch a crashed flush left); nil when none.
func (s *Store) Take(ctx context.Context, tenant, gid string, now time.Time) (*Batch, error) {
	b, _, err := s.take(ctx, tenant, gid, now, "send")
	return b, err
}

// Remind takes the latest change of each escalation still open in the group for a reminder,
// once the group's repeat interval has passed since its last send. Without a batch, wait is
// when to look again (zero: no reminder is due, as nothing is open or a send is planned).
func (s *Store) Remind(ctx context.Context, tenant, gid string, now time.Time) (b *Batch, wait time.Time, err error) {
	return s.take(ctx, tenant, gid, now, "remind")
}

func (s *Store) take(ctx context.Context, tenant, gid string, now time.Time, mode string) (*Batch, time.Time, error) {
	vals, err := redisscript.Run(ctx, s.rdb, takeScript, []string{groupKey(tenant, gid)}, now.UnixMilli(), mode, s.seenTTL.Milliseconds(), nonce()).StringSlice()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("take group %s: %w", gid, err)
	}
	if len(vals) == 2 && vals[0] == "wait" {
		ms, _ := strconv.ParseInt(vals[1], 10, 64)
		return nil, time.UnixMilli(ms), nil
	}
	if len(vals) < 5 {
		return nil, time.Time{}, nil
	}
	n, _ := strconv.ParseInt(vals[0], 10, 64)
	b := &Batch{Tenant: tenant, GroupID: gid, N: n, Receiver: vals[1], Key: vals[2], Nonce: vals[4]}
	if err := json.Unmarshal([]byte(vals[3]), &b.GroupLabels); err != nil {
		return nil, time.Time{}, fmt.Errorf("group %s labels: %w", gid, err)
	}
	for i := 5; i+1 < len(vals); i += 2 {
		c, err := decodeChange([]byte(vals[i+1]))
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("group %s change %s: %w", gid, vals[i], err)
		}
		b.Refs = append(b.Refs, vals[i])
		b.Reminder = b.Reminder || strings.Contains(vals[i], "#r")
		b.Changes = append(b.Changes, c)
		b.Data = append(b.Data, []byte(vals[i+1]))
	}
	sortChanges(b)
	return b, time.Time{}, nil
}

// takenScript clears a batch's outbox fields (ARGV) from its group and answers {p, due ms}: the
// changes pending in the group and when their send is due, the group's last send plus its group
// interval (p 0: nothing waits).
var takenScript = redis.NewScript(`
-- In chunks: unpack has a limit well below a large batch's field count.
for i = 1, #ARGV, 1000 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local p = tonumber(redis.call('HGET', KEYS[1], 'p') or '0')
if p == 0 then return {0, 0} end
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local gi = tonumber(redis.call('HGET', KEYS[1], 'gi') or '0')
return {p, last + gi}
`)

// Waiting is what a group holds once a batch's outbox is cleared: Pending changes not sent yet,
// whose send is Due.
type Waiting struct {
	Pending int64
	Due     time.Time
}

// Taken clears the outbox of a batch once its delivery is logged, and says which changes wait in
// the group. The caller plans their send: it is planned already when they came after a batch
// taken from the pending ones (the first of them planned it), but not when the batch was an
// earlier flush's outbox left by a crash, which Take hands out while the changes that came
// meanwhile stay pending; planning again is harmless.
func (s *Store) Taken(ctx context.Context, b *Batch) (Waiting, error) {
	fields := []any{"o:" + strconv.FormatInt(b.N, 10), "ot:" + strconv.FormatInt(b.N, 10)}
	for _, ref := range b.Refs {
		fields = append(fields, "oc:"+strconv.FormatInt(b.N, 10)+":"+ref)
	}
	res, err := redisscript.Run(ctx, s.rdb, takenScript, []string{groupKey(b.Tenant, b.GroupID)}, fields...).Int64Slice()
	if err != nil {
		return Waiting{}, fmt.Errorf("clear group %s outbox: %w", b.GroupID, err)
	}
	if len(res) != 2 {
		return Waiting{}, fmt.Errorf("clear group %s outbox: script answered %v", b.GroupID, res)
	}
	return Waiting{Pending: res[0], Due: time.UnixMilli(res[1])}, nil
}

// Open records the labels of an escalation that is open (or acknowledged), for inhibition, or
// forgets it once resolved.
func (s *Store) Open(ctx context.Context, tenant, escalationID string, labels map[string]string, open bool) error {
	if !open {
		return s.rdb.HDel(ctx, openKey(tenant), escalationID).Err()
	}
	data, err := json.Marshal(labels)
	if err != nil {
		return err
	}
	return s.rdb.HSet(ctx, openKey(tenant), escalationID, data).Err()
}

// OpenLabels returns the labels of the tenant's open escalations.
func (s *Store) OpenLabels(ctx context.Context, tenant string) ([]map[string]string, error) {
	h, err := s.rdb.HGetAll(ctx, openKey(tenant)).Result()
	if err != nil {
		return nil, fmt.Errorf("open escalations of %s: %w", tenant, err)
	}
	out := make([]map[string]string, 0, len(h))
	for _, v := range h {
		var l map[string]string
		if err := json.Unmarshal([]byte(v), &l); err == nil {
			out = append(out, l)
		}
	}
	return out, nil
}

// Disabled is a receiver switched off by a 410, until its configuration changes.
type Disabled struct {
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
	Fingerprint string    `json:"fingerprint"`
}

// Disable switches a receiver off.
func (s *Store) Disable(ctx context.Context, receiver string, d Disabled) error {
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return s.rdb.HSet(ctx, disabledKey, receiver, data).Err()
}

// IsDisabled reports whether the receiver is off for the configuration with this fingerprint:
// a changed URL or address switches it back on.
func (s *Store) IsDisabled(ctx context.Context, receiver, fingerprint string) (*Disabled, error) {
	data, err := s.rdb.HGet(ctx, disabledKey, receiver).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d Disabled
	if err := json.Unmarshal(data, &d); err != nil || d.Fingerprint != fingerprint {
		return nil, nil
	}
	return &d, nil
}
