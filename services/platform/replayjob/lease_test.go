package replayjob_test

import (
	"context"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMSRoundTrip(t *testing.T) {
	if replayjob.MS(time.Time{}) != 0 || !replayjob.FromMS("0").IsZero() || !replayjob.FromMS("").IsZero() || !replayjob.FromMS("x").IsZero() {
		t.Error("the zero time is not 0, or 0, missing or unreadable is not the zero time")
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	if got, want := replayjob.FromMS("1772362800123"), time.UnixMilli(at.UnixMilli()).UTC(); replayjob.MS(at) != 1772362800123 || !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("MS = %d, FromMS = %v, want 1772362800123 and %v", replayjob.MS(at), got, want)
	}
}

func TestHash(t *testing.T) {
	h := replayjob.NewHash(map[string]string{"end": "9", "ckpt": "4", "done": "3", "total": "7", "owner": "a", "from": "1000", "cur": "2"})
	if p := h.Progress(); p != (replayjob.Progress{End: 9, Checkpoint: 4, Done: 3, Total: 7}) {
		t.Errorf("Progress = %+v", p)
	}
	if h.Str("owner") != "a" || h.Str("phase") != "" || h.Int64("cur") != 2 || h.Int64("old") != 0 || !h.Time("from").Equal(time.UnixMilli(1000)) || h.Err() != nil {
		t.Errorf("fields read wrong, err %v", h.Err())
	}
	j := replayjob.NewHash(map[string]string{"phase": "build", "from": "1000", "end": "9", "ckpt": "4", "done": "3", "total": "7",
		"started": "2000", "owner": "a", "lease": "3000", "result": "failed", "err": "why"}).Job()
	want := replayjob.Job{From: time.UnixMilli(1000).UTC(), End: 9, Checkpoint: 4, Done: 3, Total: 7, Started: time.UnixMilli(2000).UTC(),
		Owner: "a", Lease: time.UnixMilli(3000).UTC(), Result: "failed", Err: "why"}
	if j != want || j.Progress() != (replayjob.Progress{End: 9, Checkpoint: 4, Done: 3, Total: 7}) {
		t.Errorf("Job = %+v, want %+v", j, want)
	}
	bad := replayjob.NewHash(map[string]string{"end": "x", "done": "1.5"})
	bad.Progress()
	if err := bad.Err(); err == nil || err.Error() != "field end \"x\": strconv.ParseInt: parsing \"x\": invalid syntax\nfield done \"1.5\": strconv.ParseInt: parsing \"1.5\": invalid syntax" {
		t.Errorf("Err = %v", err)
	}
	p := replayjob.Progress{End: 1, Checkpoint: 2, Done: 3, Total: 4}
	if got := p.Fields(); len(got) != 8 || got[0] != "end" || got[1] != uint64(1) || got[2] != "ckpt" || got[3] != uint64(2) || got[4] != "done" || got[5] != int64(3) || got[6] != "total" || got[7] != int64(4) {
		t.Errorf("Fields = %v", got)
	}
}

// Only the owner of a job in the phase it expects updates it; another replica takes a job over
// only once its lease expired; a key without a job is never claimed.
func TestLease(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	const key = "tp:{acme:test}"
	now := time.Now()
	if ok, err := replayjob.Claim(ctx, rdb, key, "a", now, time.Minute); ok || err != nil {
		t.Fatalf("claim of no job = %v, %v; want false", ok, err)
	}
	rdb.HSet(ctx, key, "phase", "build", "owner", "a", "lease", replayjob.MS(now.Add(time.Minute)))
	if ok, err := replayjob.Claim(ctx, rdb, key, "b", now, time.Minute); ok || err != nil {
		t.Fatalf("claim of a's leased job = %v, %v; want false", ok, err)
	}
	if ok, err := replayjob.Claim(ctx, rdb, key, "a", now, 2*time.Minute); !ok || err != nil {
		t.Fatalf("claim of its own job = %v, %v; want true", ok, err)
	}
	before := rdb.HGetAll(ctx, key).Val()
	if ok, err := replayjob.Update(ctx, rdb, key, "b", "build", now.Add(time.Hour), "done", 5); ok || err != nil {
		t.Fatalf("update by b = %v, %v; want false", ok, err)
	}
	if ok, err := replayjob.Update(ctx, rdb, key, "a", "drop", now.Add(time.Hour), "done", 5); ok || err != nil {
		t.Fatalf("update in another phase = %v, %v; want false", ok, err)
	}
	if h := rdb.HGetAll(ctx, key).Val(); !maps.Equal(h, before) {
		t.Fatalf("refused updates changed the hash: %v, was %v", h, before)
	}
	p := replayjob.Progress{End: 9, Checkpoint: 3, Done: 2, Total: 5}
	if ok, err := replayjob.Update(ctx, rdb, key, "a", "build", now.Add(time.Hour), p.Fields()...); !ok || err != nil {
		t.Fatalf("update by a = %v, %v; want true", ok, err)
	}
	h := rdb.HGetAll(ctx, key).Val()
	if got := replayjob.NewHash(h).Progress(); got != p || h["lease"] != strconv.FormatInt(replayjob.MS(now.Add(time.Hour)), 10) {
		t.Fatalf("hash after update = %v", h)
	}
	// The lease lapsed: another replica takes the job over, and the old owner's updates fail.
	later := now.Add(2 * time.Hour)
	if ok, err := replayjob.Claim(ctx, rdb, key, "b", later, time.Minute); !ok || err != nil {
		t.Fatalf("claim of the lapsed job = %v, %v; want true", ok, err)
	}
	if ok, err := replayjob.Update(ctx, rdb, key, "a", "build", later); ok || err != nil {
		t.Fatalf("update by the old owner = %v, %v; want false", ok, err)
	}
	if h := rdb.HGetAll(ctx, key).Val(); h["owner"] != "b" {
		t.Fatalf("owner = %q, want b", h["owner"])
	}
	// Redis unreachable: the error, not a refusal.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	if _, err := replayjob.Claim(ctx, dead, key, "a", now, time.Minute); err == nil {
		t.Error("claim on an unreachable Redis succeeded")
	}
}
