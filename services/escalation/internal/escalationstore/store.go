package escalationstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/judge"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/redisscript"
)

// Errors a caller can act on.
var (
	ErrNotFound     = errors.New("escalation not found")
	ErrResolved     = errors.New("escalation already resolved")
	ErrAcknowledged = errors.New("escalation already acknowledged")
)

// Store reads and changes escalations.
type Store struct {
	rdb redis.UniversalClient
	// retention is how long a resolved escalation is kept.
	retention time.Duration
	// stale counts verdicts dropped because the ticket had newer events, for tests and metrics.
	stale atomic.Int64
}

// Stale is the number of verdicts dropped as judged on an outdated ticket.
func (s *Store) Stale() int64 { return s.stale.Load() }

// New returns a store; resolved escalations are kept for retention.
func New(rdb redis.UniversalClient, retention time.Duration) *Store {
	return &Store{rdb: rdb, retention: retention}
}

// Key layout. The subject's hash tag is DESIGN.md's: {<tenant>:t:<ticket>}, {<tenant>:a:<agent>},
// {<tenant>:g:<team>}, {<tenant>:q:<queue>}; the ids are escaped so none can close the tag.
func tag(tenant string, s Subject) string {
	return "{" + tenant + ":" + kindLetter[s.Kind] + ":" + idtoken.Escape(s.ID) + "}"
}

// pointerKey holds, per rule and subject, the number of the latest escalation and the version of
// the judgement last applied.
func pointerKey(tenant, rule string, s Subject) string {
	return "tp:" + tag(tenant, s) + ":e:" + rule
}

func recordKey(tenant, rule string, s Subject, n int64) string {
	return pointerKey(tenant, rule, s) + ":" + strconv.FormatInt(n, 10)
}

// IndexKey is the tenant's index of escalations by trigger time, for listing.
func IndexKey(tenant string) string { return "tp:{" + tenant + ":ix}:esc" }

// Verdict is what a rule says about a subject now.
type Verdict struct {
	Tenant   string
	Rule     string
	Subject  Subject
	Active   bool
	Severity tpv1.Severity
	Summary  string
	Facts    []judge.Fact
	Labels   map[string]string
	// Policy is the escalation policy of the rule; nil targets nobody and is never raised.
	Policy *rulesfile.EscalationPolicy
	// Version orders judgements of one subject: a judgement older than the one applied is
	// ignored, so a replica with a stale view never undoes a newer one. For tickets it is the
	// number of events judged (events are only ever added), for KPI snapshots their time.
	Version int64
	// At is the instant judged.
	At time.Time
	// EventsKey, for ticket subjects, is the key holding the ticket's events (a hash, in the
	// ticket's slot). A verdict judged on fewer events than it now holds is stale: whoever added
	// the newer event judges again, so this one is dropped.
	EventsKey string
}

// newer reports whether (v, at) is not older than the stored (sv, sat).
func newer(v, at, sv, sat int64) bool { return v > sv || v == sv && at >= sat }

// Reconcile makes the stored escalation agree with the verdict: it opens one when the condition
// holds and none is open, updates the open one (publishing a change only when its severity
// moved), and resolves it when the condition no longer holds. It returns the escalation as now
// stored (nil if there is none) with any changes still to publish.
func (s *Store) Reconcile(ctx context.Context, v Verdict) (*Record, error) {
	if !idtoken.ValidTenant(v.Tenant) || !validRule(v.Rule) {
		return nil, fmt.Errorf("reconcile: bad tenant %q or rule %q", v.Tenant, v.Rule)
	}
	at := v.At.UnixMilli()
	return s.update(ctx, v.Tenant, v.Rule, v.Subject, 0, v.EventsKey, v.Version, func(ptr pointer, cur *Record) (*Record, pointer, bool) {
		if !newer(v.Version, at, ptr.version, ptr.at) {
			return cur, ptr, false
		}
		ptr.version, ptr.at = v.Version, at
		switch {
		case v.Active && (cur == nil || !cur.Open()):
			ptr.n++
			r := &Record{
				ID: ID(v.Rule, v.Subject, ptr.n), Tenant: v.Tenant, Rule: v.Rule, Subject: v.Subject,
				State: tpv1.EscalationState_ESCALATION_STATE_OPEN, Severity: v.Severity,
				Labels: labels(v), Summary: v.Summary, Facts: v.Facts, TriggeredAt: v.At,
			}
			if v.Policy != nil {
				r.Policy = v.Policy.Name
			}
			if cur != nil {
				// The previous escalation's unpublished changes go out first.
				r.Outbox = cur.Outbox
			}
			r.setLevel(1, v.Policy, v.At, false)
			r.change(tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, v.At, SystemActor, "")
			return r, ptr, true
		case v.Active:
			moved := cur.Severity != v.Severity
			cur.Summary, cur.Facts = v.Summary, v.Facts
			for k, val := range labels(v) {
				if k != "targets" {
					cur.Labels[k] = val
				}
			}
			cur.Severity = v.Severity
			if moved {
				cur.change(tpv1.ChangeKind_CHANGE_KIND_UPDATED, v.At, SystemActor, "severity "+SeverityWord(v.Severity))
			} else {
				cur.UpdatedAt = v.At
			}
			return cur, ptr, true
		case cur != nil && cur.Open():
			cur.State, cur.ResolvedAt, cur.RaiseAt = tpv1.EscalationState_ESCALATION_STATE_RESOLVED, v.At, time.Time{}
			cur.change(tpv1.ChangeKind_CHANGE_KIND_RESOLVED, v.At, SystemActor, "condition cleared")
			return cur, ptr, true
		}
		// Nothing to change. A subject that never had an escalation stores nothing, so the
		// tickets that never escalate cost no memory here.
		return cur, ptr, cur != nil
	})
}

func labels(v Verdict) map[string]string {
	out := make(map[string]string, len(v.Labels)+6)
	for k, val := range v.Labels {
		out[k] = val
	}
	out["tenant"], out["rule"] = v.Tenant, v.Rule
	out[v.Subject.Kind] = v.Subject.ID
	return out
}

// Raise raises an open, unacknowledged escalation whose RaiseAt has come to its next level, or
// repeats its last level; policyOf gives its escalation policy, by name, as the rules file now
// has it (nil when gone). An unknown escalation is nil, not an error: its timer outlived it.
func (s *Store) Raise(ctx context.Context, tenant, id string, policyOf func(name string) *rulesfile.EscalationPolicy, now time.Time) (*Record, error) {
	rule, subj, n, err := ParseID(id)
	if err != nil {
		return nil, err
	}
	return s.update(ctx, tenant, rule, subj, n, "", 0, func(ptr pointer, cur *Record) (*Record, pointer, bool) {
		if cur == nil || cur.State != tpv1.EscalationState_ESCALATION_STATE_OPEN || cur.RaiseAt.IsZero() || now.Before(cur.RaiseAt) {
			return cur, ptr, false
		}
		pol := policyOf(cur.Policy)
		level, note := cur.Level, "not acknowledged: repeating the last level"
		if pol != nil && int(level) < len(pol.Levels) {
			level, note = level+1, "not acknowledged in time"
		}
		cur.setLevel(level, pol, now, level == cur.Level)
		cur.change(tpv1.ChangeKind_CHANGE_KIND_RAISED, now, SystemActor, note)
		return cur, ptr, true
	})
}

// Acknowledge marks an open escalation acknowledged by someone, which stops its raising.
func (s *Store) Acknowledge(ctx context.Context, tenant, id, by, note string, now time.Time) (*Record, error) {
	return s.byHand(ctx, tenant, id, func(cur *Record) error {
		switch cur.State {
		case tpv1.EscalationState_ESCALATION_STATE_RESOLVED:
			return ErrResolved
		case tpv1.EscalationState_ESCALATION_STATE_ACKNOWLEDGED:
			return ErrAcknowledged
		}
		cur.State, cur.RaiseAt = tpv1.EscalationState_ESCALATION_STATE_ACKNOWLEDGED, time.Time{}
		cur.change(tpv1.ChangeKind_CHANGE_KIND_ACKNOWLEDGED, now, by, note)
		return nil
	})
}

// Resolve resolves an escalation by hand.
func (s *Store) Resolve(ctx context.Context, tenant, id, by, note string, now time.Time) (*Record, error) {
	return s.byHand(ctx, tenant, id, func(cur *Record) error {
		if !cur.Open() {
			return ErrResolved
		}
		cur.State, cur.ResolvedAt, cur.RaiseAt = tpv1.EscalationState_ESCALATION_STATE_RESOLVED, now, time.Time{}
		cur.change(tpv1.ChangeKind_CHANGE_KIND_RESOLVED, now, by, note)
		return nil
	})
}

func (s *Store) byHand(ctx context.Context, tenant, id string, f func(*Record) error) (*Record, error) {
	rule, subj, n, err := ParseID(id)
	if err != nil {
		return nil, err
	}
	var ferr error
	r, err := s.update(ctx, tenant, rule, subj, n, "", 0, func(ptr pointer, cur *Record) (*Record, pointer, bool) {
		if cur == nil {
			ferr = ErrNotFound
			return nil, ptr, false
		}
		if ferr = f(cur); ferr != nil {
			return cur, ptr, false
		}
		return cur, ptr, true
	})
	if err != nil {
		return nil, err
	}
	return r, ferr
}

// Published forgets changes JetStream stored: they leave the outbox.
func (s *Store) Published(ctx context.Context, tenant string, ps []Pending) error {
	if len(ps) == 0 {
		return nil
	}
	rule, subj, _, err := ParseID(ps[0].ID)
	if err != nil {
		return err
	}
	fields := make([]string, len(ps))
	for i, p := range ps {
		fields[i] = p.field()
	}
	if err := s.rdb.HDel(ctx, pointerKey(tenant, rule, subj), fields...).Err(); err != nil {
		return fmt.Errorf("clear published changes of %s: %w", ps[0].ID, err)
	}
	return nil
}

// PublishedMany forgets changes of many escalations in one round trip; by tenant.
func (s *Store) PublishedMany(ctx context.Context, byTenant map[string][]Pending) error {
	pipe := s.rdb.Pipeline()
	n := 0
	for tenant, ps := range byTenant {
		for _, p := range ps {
			rule, subj, _, err := ParseID(p.ID)
			if err != nil {
				return err
			}
			pipe.HDel(ctx, pointerKey(tenant, rule, subj), p.field())
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("clear published escalation changes: %w", err)
	}
	return nil
}

// KnownCmd queues on pipe whether the rule ever had an escalation for the subject (within
// retention): an inactive condition without one needs no compare-and-set.
func (s *Store) KnownCmd(ctx context.Context, pipe redis.Pipeliner, tenant, rule string, subj Subject) *redis.IntCmd {
	return pipe.Exists(ctx, pointerKey(tenant, rule, subj))
}

// Get returns one escalation.
func (s *Store) Get(ctx context.Context, tenant, id string) (*Record, error) {
	recs, err := s.getMany(ctx, tenant, []string{id}, true)
	if err != nil {
		return nil, err
	}
	if recs[0] == nil {
		return nil, ErrNotFound
	}
	return recs[0], nil
}

// Current returns the latest escalation of a rule and subject, open or not; nil if none.
func (s *Store) Current(ctx context.Context, tenant, rule string, subj Subject) (*Record, error) {
	ptr, err := s.rdb.HGetAll(ctx, pointerKey(tenant, rule, subj)).Result()
	if err != nil {
		return nil, fmt.Errorf("read escalation pointer: %w", err)
	}
	st, err := parsePointer(ptr)
	return st.cur, err
}

func decode(data []byte) (*Record, error) {
	r := &Record{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode escalation: %w", err)
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	return r, nil
}

// pointer is the per rule and subject state: the number of the latest escalation, the version
// and instant of the last judgement applied, and a write counter for compare-and-set.
type pointer struct {
	n, version, at int64
}

// pointerState is a pointer hash read back: the pointer, its write counter, the latest
// escalation (which lives in the pointer hash, so one read fetches both) and the outbox.
type pointerState struct {
	ptr pointer
	w   string
	cur *Record
}

// Pointer hash fields: n, v, at, w, rec (the latest escalation's JSON) and o:<n>:<seq> (changes
// not yet published). Older escalations move to recordKey when a new one replaces them.
func parsePointer(h map[string]string) (pointerState, error) {
	var st pointerState
	st.ptr = pointer{n: parseInt(h["n"]), version: parseInt(h["v"]), at: parseInt(h["at"])}
	st.w = h["w"]
	if data, ok := h["rec"]; ok {
		r, err := decode([]byte(data))
		if err != nil {
			return st, err
		}
		st.cur = r
	}
	var outbox []Pending
	for f, data := range h {
		rest, ok := strings.CutPrefix(f, outboxPrefix)
		if !ok {
			continue
		}
		ns, seqs, _ := strings.Cut(rest, ":")
		n, seq := parseInt(ns), parseInt(seqs)
		c := &tpv1.EscalationChange{}
		if err := proto.Unmarshal([]byte(data), c); err != nil {
			return st, fmt.Errorf("decode unpublished change %s: %w", f, err)
		}
		_ = n
		outbox = append(outbox, Pending{ID: c.GetEscalation().GetId(), Seq: seq, Rule: c.GetEscalation().GetRule(), Data: []byte(data)})
	}
	slices.SortFunc(outbox, func(a, b Pending) int {
		_, _, na, _ := ParseID(a.ID)
		_, _, nb, _ := ParseID(b.ID)
		if na != nb {
			return cmp.Compare(na, nb)
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	if st.cur != nil {
		st.cur.Outbox = outbox
	}
	return st, nil
}

// casScript writes a pointer hash if nobody wrote it since it was read (its write counter is
// unchanged) and, for tickets, if the ticket holds no more events than were judged. It can also
// archive the escalation the write replaces. One script, one slot: KEYS are the pointer, the
// ticket's events (or the pointer again) and the archive key (or the pointer again).
//
// ARGV: expected w ("" when absent), most events (-1: no check), archive JSON ("" for none),
// archive TTL ms, pointer TTL ms (0: persist), then field/value pairs.
var casScript = redis.NewScript(`
if (redis.call('HGET', KEYS[1], 'w') or '') ~= ARGV[1] then return 0 end
if ARGV[2] ~= '-1' and redis.call('HLEN', KEYS[2]) > tonumber(ARGV[2]) then return -1 end
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
if ARGV[5] == '0' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return 1
`)

// maxAttempts bounds compare-and-set retries; contention on one subject is a few replicas at most.
const maxAttempts = 50

// update runs a compare-and-set on one rule and subject: it reads the pointer hash (with the
// latest escalation in it) and, when n names an older escalation, that one; lets f change them;
// and writes back unless another writer got there first, in which case it starts over. f
// returns the record to store and whether to write at all. Two round trips when nobody races.
func (s *Store) update(ctx context.Context, tenant, rule string, subj Subject, n int64, eventsKey string, version int64,
	f func(pointer, *Record) (*Record, pointer, bool)) (*Record, error) {
	pk := pointerKey(tenant, rule, subj)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		pipe := s.rdb.Pipeline()
		hcmd := pipe.HGetAll(ctx, pk)
		var held *redis.IntCmd
		if eventsKey != "" {
			held = pipe.HLen(ctx, eventsKey)
		}
		var archived *redis.StringCmd
		if n > 0 {
			archived = pipe.Get(ctx, recordKey(tenant, rule, subj, n))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read escalation %s of %s/%s: %w", rule, subj.Kind, subj.ID, err)
		}
		if held != nil && held.Val() > version {
			s.stale.Add(1)
			return nil, nil
		}
		st, err := parsePointer(hcmd.Val())
		if err != nil {
			return nil, err
		}
		cur := st.cur
		if n > 0 && (cur == nil || mustN(cur.ID) != n) {
			// An older escalation: it lives in its archive key, without an outbox of its own.
			cur = nil
			if data, err := archived.Bytes(); err == nil {
				if cur, err = decode(data); err != nil {
					return nil, err
				}
			}
			// Archived escalations are resolved: callers only read them.
			rec, _, write := f(st.ptr, cur)
			if write {
				return nil, fmt.Errorf("escalation %s is archived and cannot change", ID(rule, subj, n))
			}
			return rec, nil
		}
		prevID := ""
		if cur != nil {
			prevID = cur.ID
		}
		rec, nptr, write := f(st.ptr, cur)
		if !write {
			return rec, nil
		}
		args, err := s.casArgs(st, rec, nptr, prevID, cur, eventsKey, version)
		if err != nil {
			return nil, err
		}
		keys := []string{pk, pk, pk}
		if eventsKey != "" {
			keys[1] = eventsKey
		}
		if prevID != "" && rec != nil && rec.ID != prevID {
			keys[2] = recordKey(tenant, rule, subj, mustN(prevID))
		}
		var res *redis.Cmd
		if _, err := redisscript.Exec(ctx, s.rdb, func(pipe redis.Pipeliner) {
			res = casScript.EvalSha(ctx, pipe, keys, args...)
			if rec != nil {
				// The index is another slot, so it is written beside the escalation, not with it:
				// an entry whose escalation was never written is dropped by the next listing.
				pipe.ZAdd(ctx, IndexKey(tenant), redis.Z{Score: float64(rec.TriggeredAt.UnixMilli()), Member: rec.ID})
			}
		}, casScript); err != nil {
			return nil, fmt.Errorf("update escalation %s of %s/%s: %w", rule, subj.Kind, subj.ID, err)
		}
		switch res.Val() {
		case int64(1):
			return rec, nil
		case int64(-1):
			s.stale.Add(1)
			return nil, nil
		}
	}
	return nil, fmt.Errorf("update escalation %s of %s/%s: %d conflicting writers in a row", rule, subj.Kind, subj.ID, maxAttempts)
}

// casArgs are casScript's arguments for writing rec (replacing prev when its id differs).
func (s *Store) casArgs(st pointerState, rec *Record, p pointer, prevID string, prev *Record, eventsKey string, version int64) ([]any, error) {
	w := parseInt(st.w) + 1
	most := int64(-1)
	if eventsKey != "" {
		most = version
	}
	archive := ""
	if prev != nil && rec != nil && rec.ID != prevID {
		data, err := json.Marshal(prev)
		if err != nil {
			return nil, fmt.Errorf("encode escalation %s: %w", prevID, err)
		}
		archive = string(data)
	}
	ttl := int64(0)
	if rec != nil && !rec.Open() {
		ttl = s.retention.Milliseconds()
	}
	args := []any{st.w, most, archive, s.retention.Milliseconds(), ttl,
		"n", p.n, "v", p.version, "at", p.at, "w", w}
	if rec != nil {
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("encode escalation %s: %w", rec.ID, err)
		}
		args = append(args, "rec", data)
		for _, o := range rec.Outbox {
			args = append(args, o.field(), o.Data)
		}
	}
	return args, nil
}

func mustN(id string) int64 {
	_, _, n, err := ParseID(id)
	if err != nil {
		panic(err)
	}
	return n
}

func parseInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
