package deliveries

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/redisscript"
	"github.com/ticketpulse/ticketpulse/services/platform/zpage"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Record is a delivery as logged: what was (or was not) sent to which receiver, and why.
type Record struct {
	ID            string              `json:"id"`
	Tenant        string              `json:"tenant"`
	Receiver      string              `json:"receiver"`
	GroupKey      string              `json:"group_key"`
	GroupLabels   map[string]string   `json:"group_labels,omitempty"`
	EscalationIDs []string            `json:"escalation_ids"`
	Changes       []string            `json:"changes"`
	Created       time.Time           `json:"created"`
	Status        tpv1.DeliveryStatus `json:"-"`
	Reason        string              `json:"-"`
	Updated       time.Time           `json:"-"`
	Attempts      []Attempt           `json:"-"`
	// Data are the encoded changes, kept so a retry sends the same message.
	Data [][]byte `json:"data,omitempty"`
	// Reminder: the delivery repeats escalations still open (the route's repeat_interval).
	Reminder bool `json:"reminder,omitempty"`
}

// Attempt is one try.
type Attempt struct {
	At      time.Time     `json:"at"`
	Status  int           `json:"status,omitempty"`
	Error   string        `json:"error,omitempty"`
	Latency time.Duration `json:"latency"`
}

// Proto converts the record; withAttempts adds the attempts.
func (r *Record) Proto(withAttempts bool) *tpv1.Delivery {
	d := &tpv1.Delivery{
		Id: r.ID, Tenant: r.Tenant, Receiver: r.Receiver, Status: r.Status, Reason: r.Reason, GroupKey: r.GroupKey,
		EscalationIds: r.EscalationIDs, Changes: r.Changes, CreatedAt: timestamppb.New(r.Created), UpdatedAt: timestamppb.New(r.Updated),
	}
	if withAttempts {
		for _, a := range r.Attempts {
			d.Attempts = append(d.Attempts, &tpv1.Attempt{At: timestamppb.New(a.At), StatusCode: int32(a.Status), Error: a.Error, LatencySeconds: a.Latency.Seconds()})
		}
	}
	return d
}

// DecodedChanges decodes the record's changes.
func (r *Record) DecodedChanges() ([]*tpv1.EscalationChange, error) {
	out := make([]*tpv1.EscalationChange, 0, len(r.Data))
	for _, d := range r.Data {
		c, err := decodeChange(d)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func decodeChange(data []byte) (*tpv1.EscalationChange, error) {
	c := &tpv1.EscalationChange{}
	if err := proto.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("decode escalation change: %w", err)
	}
	return c, nil
}

// sortChanges orders a batch so a message reads in order: escalations by their first change in
// the batch, and each escalation's changes by sequence (their instants may come from different
// replicas' clocks).
func sortChanges(b *Batch) {
	first := map[string]time.Time{}
	for _, c := range b.Changes {
		id, at := c.GetEscalation().GetId(), c.GetAt().AsTime()
		if f, ok := first[id]; !ok || at.Before(f) {
			first[id] = at
		}
	}
	idx := make([]int, len(b.Changes))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int {
		cx, cy := b.Changes[x], b.Changes[y]
		ix, iy := cx.GetEscalation().GetId(), cy.GetEscalation().GetId()
		if c := first[ix].Compare(first[iy]); c != 0 {
			return c
		}
		if c := cmp.Compare(ix, iy); c != 0 {
			return c
		}
		return cmp.Compare(cx.GetSequence(), cy.GetSequence())
	})
	changes, data := make([]*tpv1.EscalationChange, len(idx)), make([][]byte, len(idx))
	for i, j := range idx {
		changes[i], data[i] = b.Changes[j], b.Data[j]
	}
	b.Changes, b.Data = changes, data
}

// NewRecord describes a delivery of changes to a receiver.
func NewRecord(tenant, id, receiver, groupKey string, groupLabels map[string]string, changes []*tpv1.EscalationChange, data [][]byte, now time.Time) *Record {
	r := &Record{ID: id, Tenant: tenant, Receiver: receiver, GroupKey: groupKey, GroupLabels: groupLabels, Created: now, Updated: now,
		Status: tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING, Data: data}
	seen := map[string]bool{}
	for _, c := range changes {
		r.Changes = append(r.Changes, ChangeRef(c))
		if id := c.GetEscalation().GetId(); !seen[id] {
			seen[id] = true
			r.EscalationIDs = append(r.EscalationIDs, id)
		}
	}
	return r
}

// createScript logs a delivery unless it exists, and trims the tenant's log to its cap, oldest
// first. KEYS: record, attempts, index. ARGV: id, meta JSON, status, reason, now ms, cap,
// record key prefix. Returns 1 when created, 0 when it existed.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'meta', ARGV[2], 'status', ARGV[3], 'reason', ARGV[4], 'updated', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
local excess = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[6])
if excess > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, excess - 1)) do
    redis.call('DEL', ARGV[7] .. id, ARGV[7] .. id .. ':a')
  end
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, excess - 1)
end
return 1
`)

// Create logs a delivery; an existing one (a retried flush) is left as it is.
func (s *Store) Create(ctx context.Context, r *Record) (bool, error) {
	meta, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	res, err := redisscript.Run(ctx, s.rdb, createScript, []string{recordKey(r.Tenant, r.ID), recordKey(r.Tenant, r.ID) + ":a", indexKey(r.Tenant)},
		r.ID, meta, int32(r.Status), r.Reason, r.Created.UnixMilli(), s.maxPerTenant, logTag(r.Tenant)+":d:").Int64()
	if err != nil {
		return false, fmt.Errorf("log delivery %s: %w", r.ID, err)
	}
	return res == 1, nil
}

// maxAttemptsKept bounds the attempts kept per delivery (the first ones and the latest).
const maxAttemptsKept = 100

// Attempted appends an attempt and sets the delivery's status and reason.
func (s *Store) Attempted(ctx context.Context, tenant, id string, a Attempt, status tpv1.DeliveryStatus, reason string, now time.Time) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	pipe := s.rdb.TxPipeline()
	pipe.RPush(ctx, recordKey(tenant, id)+":a", data)
	pipe.LTrim(ctx, recordKey(tenant, id)+":a", -maxAttemptsKept, -1)
	pipe.HSet(ctx, recordKey(tenant, id), "status", int32(status), "reason", reason, "updated", now.UnixMilli())
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("log attempt of %s: %w", id, err)
	}
	return nil
}

// updateScript sets fields of a delivery that is still in the log; a trimmed one stays gone.
// KEYS: record. ARGV: field, value, ... Returns 1 when updated, 0 when the delivery is gone.
var updateScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)

// Suppressed settles a delivery that is not sent after all (its changes were delivered before),
// without an attempt.
func (s *Store) Suppressed(ctx context.Context, tenant, id, reason string, now time.Time) error {
	err := redisscript.Run(ctx, s.rdb, updateScript, []string{recordKey(tenant, id)},
		"status", int32(tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED), "reason", reason, "updated", now.UnixMilli()).Err()
	if err != nil {
		return fmt.Errorf("log delivery %s as suppressed: %w", id, err)
	}
	return nil
}

// Narrowed stores r's changes (and what derives from them) after some were taken out of it.
func (s *Store) Narrowed(ctx context.Context, r *Record) error {
	meta, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := redisscript.Run(ctx, s.rdb, updateScript, []string{recordKey(r.Tenant, r.ID)}, "meta", meta).Err(); err != nil {
		return fmt.Errorf("narrow delivery %s: %w", r.ID, err)
	}
	return nil
}

// ErrNotFound reports an unknown (or trimmed) delivery.
var ErrNotFound = errors.New("delivery not found")

// Get reads one delivery with its attempts.
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

func (s *Store) getMany(ctx context.Context, tenant string, ids []string, attempts bool) ([]*Record, error) {
	pipe := s.rdb.Pipeline()
	hs := make([]*redis.MapStringStringCmd, len(ids))
	as := make([]*redis.StringSliceCmd, len(ids))
	for i, id := range ids {
		hs[i] = pipe.HGetAll(ctx, recordKey(tenant, id))
		if attempts {
			as[i] = pipe.LRange(ctx, recordKey(tenant, id)+":a", 0, -1)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	out := make([]*Record, len(ids))
	for i := range ids {
		h := hs[i].Val()
		if h["meta"] == "" {
			continue
		}
		r := &Record{}
		if err := json.Unmarshal([]byte(h["meta"]), r); err != nil {
			return nil, fmt.Errorf("decode delivery %s: %w", ids[i], err)
		}
		st, _ := strconv.ParseInt(h["status"], 10, 32)
		r.Status = tpv1.DeliveryStatus(st)
		r.Reason = h["reason"]
		up, _ := strconv.ParseInt(h["updated"], 10, 64)
		r.Updated = time.UnixMilli(up)
		if attempts {
			for _, a := range as[i].Val() {
				var at Attempt
				if err := json.Unmarshal([]byte(a), &at); err == nil {
					r.Attempts = append(r.Attempts, at)
				}
			}
		}
		out[i] = r
	}
	return out, nil
}

// Filter selects deliveries; zero fields match everything.
type Filter struct {
	EscalationID string
	Receiver     string
	Status       tpv1.DeliveryStatus
	From, To     time.Time
}

func (f Filter) match(r *Record) bool {
	switch {
	case f.Receiver != "" && r.Receiver != f.Receiver,
		f.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED && r.Status != f.Status,
		f.EscalationID != "" && !slices.Contains(r.EscalationIDs, f.EscalationID):
		return false
	}
	return true
}

// ErrBadPageToken reports a page token List did not hand out.
var ErrBadPageToken = zpage.ErrBadToken

// List returns up to size deliveries matching f, newest first, after the page token, and the
// next page's token ("" after the last).
func (s *Store) List(ctx context.Context, tenant string, f Filter, size int, pageToken string) ([]*Record, string, error) {
	recs, next, err := zpage.List(ctx, s.rdb, zpage.Query{Key: indexKey(tenant), From: f.From, To: f.To, Size: size, Token: pageToken},
		func(ctx context.Context, ids []string) ([]*Record, error) { return s.getMany(ctx, tenant, ids, false) },
		func(r *Record) bool { return r != nil && f.match(r) })
	if err != nil && !errors.Is(err, ErrBadPageToken) {
		return nil, "", fmt.Errorf("list deliveries of %s: %w", tenant, err)
	}
	return recs, next, err
}
