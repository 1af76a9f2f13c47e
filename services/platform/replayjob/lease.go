package replayjob

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/redisscript"
)

// A job's state is one Redis hash: its phase ("" when none runs), owner and lease (unix ms until
// which owner holds it), progress (Progress.Fields) and whatever the service adds.

// Job is what every job's state holds (a service's state embeds it): the hash fields from, end,
// ckpt, done, total, started, owner, lease, result and err.
type Job struct {
	From            time.Time // zero: the whole stream
	End, Checkpoint uint64
	Done, Total     int64
	Started         time.Time
	Owner           string
	Lease           time.Time
	// Result and Err are the latest job's outcome and, when it failed, why.
	Result, Err string
}

// Progress is the job's progress as its last checkpoint recorded it.
func (j Job) Progress() Progress {
	return Progress{End: j.End, Checkpoint: j.Checkpoint, Done: j.Done, Total: j.Total}
}

// MS is t as the unix milliseconds a state hash holds, 0 for the zero time.
func MS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMS reads MS's form back (UTC); missing or unreadable is the zero time.
func FromMS(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// Hash reads a state hash's fields, collecting what does not parse (Err).
type Hash struct {
	h    map[string]string
	errs []error
}

// NewHash reads h (HGETALL's result).
func NewHash(h map[string]string) *Hash { return &Hash{h: h} }

// Str is field f, "" when missing.
func (h *Hash) Str(f string) string { return h.h[f] }

// Int64 is field f, 0 when missing.
func (h *Hash) Int64(f string) int64 {
	v := h.h[f]
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		h.errs = append(h.errs, fmt.Errorf("field %s %q: %w", f, v, err))
	}
	return n
}

// Time is field f as FromMS reads it.
func (h *Hash) Time(f string) time.Time { return FromMS(h.h[f]) }

// Progress is the progress fields.
func (h *Hash) Progress() Progress {
	return Progress{End: uint64(h.Int64("end")), Checkpoint: uint64(h.Int64("ckpt")), Done: h.Int64("done"), Total: h.Int64("total")}
}

// Job is the fields every job's state has.
func (h *Hash) Job() Job {
	p := h.Progress()
	return Job{
		From: h.Time("from"), End: p.End, Checkpoint: p.Checkpoint, Done: p.Done, Total: p.Total,
		Started: h.Time("started"), Owner: h.Str("owner"), Lease: h.Time("lease"), Result: h.Str("result"), Err: h.Str("err"),
	}
}

// Err joins the fields that did not parse.
func (h *Hash) Err() error { return errors.Join(h.errs...) }

// Script runs sc on the hash key with args and returns its text result.
func Script(ctx context.Context, rdb redis.UniversalClient, sc *redis.Script, key string, args ...any) (string, error) {
	var cmd *redis.Cmd
	if _, err := redisscript.Exec(ctx, rdb, func(pipe redis.Pipeliner) {
		cmd = sc.EvalSha(ctx, pipe, []string{key}, args...)
	}, sc); err != nil {
		return "", err
	}
	return cmd.Text()
}

// claimScript gives the job to ARGV owner until ARGV lease when it is not already held by another
// replica until after ARGV now. Returns 1 when the caller holds it.
var claimScript = redis.NewScript(`
local phase = redis.call('HGET', KEYS[1], 'phase') or ''
if phase == '' then return '0' end
local owner = redis.call('HGET', KEYS[1], 'owner') or ''
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease') or '0')
if owner ~= ARGV[1] and lease > tonumber(ARGV[2]) then return '0' end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'lease', ARGV[3])
return '1'
`)

// Claim takes the job in hash key over for owner until now+lease when it has one whose lease
// expired (or owner holds it already); false when none runs or another replica holds it.
func Claim(ctx context.Context, rdb redis.UniversalClient, key, owner string, now time.Time, lease time.Duration) (bool, error) {
	res, err := Script(ctx, rdb, claimScript, key, owner, MS(now), MS(now.Add(lease)))
	return res == "1", err
}

// updateScript renews the lease and sets fields if ARGV[1] still owns the job in phase ARGV[2]:
// ARGV[3] lease, then field/value pairs. Returns 1 on success.
var updateScript = redis.NewScript(`
if (redis.call('HGET', KEYS[1], 'owner') or '') ~= ARGV[1] then return '0' end
if (redis.call('HGET', KEYS[1], 'phase') or '') ~= ARGV[2] then return '0' end
redis.call('HSET', KEYS[1], 'lease', ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
return '1'
`)

// Update sets the lease to leaseUntil and the field/value pairs if owner holds the job in hash
// key in phase; false when it does not (the lease was lost), and nothing changed.
func Update(ctx context.Context, rdb redis.UniversalClient, key, owner, phase string, leaseUntil time.Time, fields ...any) (bool, error) {
	res, err := Script(ctx, rdb, updateScript, key, append([]any{owner, phase, MS(leaseUntil)}, fields...)...)
	return res == "1", err
}
