// Package delivered remembers, outside Redis, which changes notify delivered to which receiver:
// a JetStream key-value bucket on file storage, one entry per (tenant, receiver, change), kept
// for a bounded time.
//
// Why not Redis: Redis (AOF everysec, or a replica promoted on failover) can lose its latest
// writes after notify already sent a message and acknowledged the change. The consumers then
// replay the stream from what Redis still knows, and a change whose "seen" marker and delivery
// were lost would be grouped and sent again. JetStream acknowledges a put only once it is stored
// under the server's sync setting, the same durability as the ESCALATIONS stream being replayed,
// so the record outlives exactly the losses the replay repairs.
//
// How it is used: before each attempt of a delivery, the changes already recorded for its
// receiver are dropped (and logged as such); after a successful send, its changes are recorded,
// all of them in one pipelined burst of publishes. A process that dies between the receiver's
// answer and the record can still send those changes once more after a Redis loss: delivery is
// at least once, and this narrows the window to that gap.
//
// Bounds: keys are a fixed length whatever the ids (hashes), values hold the delivery id and
// time (maxValue bytes, enforced by the server), entries expire after the TTL, and a lookup or a
// record keeps at most maxInFlight requests outstanding and gives up after callTimeout.
package delivered

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket of delivered changes.
const Bucket = "NOTIFY_DELIVERED"

const (
	// maxValue bounds an entry (a delivery id and an instant need under 100 bytes).
	maxValue = 256
	// maxInFlight bounds the requests one lookup or record keeps outstanding: a burst of
	// thousands of changes goes out in windows of this size.
	maxInFlight = 256
	// callTimeout bounds one lookup or record, so an unavailable server holds a delivery back
	// for a bounded time before its timer tries again.
	callTimeout = 10 * time.Second
)

// Entry says which delivery carried a change to a receiver, and when it was delivered.
type Entry struct {
	Delivery string    `json:"delivery"`
	At       time.Time `json:"at"`
}

// Store is the bucket. Replicas of notify share it.
type Store struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// Open creates the bucket, or updates it to ttl and replicas. ttl is how long a delivery is
// remembered: longer than any Redis state that could be restored (a replay reaches back to it).
func Open(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       Bucket,
		Description:  "Escalation changes notify delivered, by tenant, receiver and change, so a replay after a Redis loss does not send them again.",
		TTL:          ttl,
		History:      1,
		MaxValueSize: maxValue,
		Storage:      jetstream.FileStorage,
		Replicas:     max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", Bucket, err)
	}
	return &Store{js: js, kv: kv}, nil
}

// Key is the entry of a change delivered to a receiver: the tenant (a restricted word, safe
// as it is), then digests of the receiver's name and the change reference, so any id makes a
// valid key of a fixed length and nothing in an id can reach another tenant's or receiver's
// keys.
func Key(tenant, receiver, ref string) string {
	r := sha256.Sum256([]byte(receiver))
	c := sha256.Sum256([]byte(ref))
	return tenant + "." + hex.EncodeToString(r[:8]) + "." + hex.EncodeToString(c[:16])
}

// Lookup returns the entries of the refs delivered to the receiver; refs not delivered (or
// forgotten after the TTL) are absent. Any other failure fails the whole lookup: the caller must
// not send blind.
func (s *Store) Lookup(ctx context.Context, tenant, receiver string, refs []string) (map[string]Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var mu sync.Mutex
	out := map[string]Entry{}
	err := fanOut(ctx, refs, func(ctx context.Context, ref string) error {
		kve, err := s.kv.Get(ctx, Key(tenant, receiver, ref))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var e Entry
		// An entry that does not decode still says the change was delivered.
		_ = json.Unmarshal(kve.Value(), &e)
		mu.Lock()
		out[ref] = e
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up delivered changes of %s/%s: %w", tenant, receiver, err)
	}
	return out, nil
}

// Record stores that the refs were delivered to the receiver by e.Delivery at e.At. The puts
// are published together and their acknowledgements awaited together.
func (s *Store) Record(ctx context.Context, tenant, receiver string, refs []string, e Entry) error {
	val, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if len(val) > maxValue {
		return fmt.Errorf("record delivered changes of %s/%s: entry of %d bytes exceeds %d", tenant, receiver, len(val), maxValue)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	for start := 0; start < len(refs); start += maxInFlight {
		window := refs[start:min(start+maxInFlight, len(refs))]
		futures := make([]jetstream.PubAckFuture, 0, len(window))
		for _, ref := range window {
			f, err := s.js.PublishAsync("$KV."+Bucket+"."+Key(tenant, receiver, ref), val)
			if err != nil {
				return fmt.Errorf("record delivered changes of %s/%s: %w", tenant, receiver, err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("record delivered changes of %s/%s: %w", tenant, receiver, err)
			case <-ctx.Done():
				return fmt.Errorf("record delivered changes of %s/%s: %w", tenant, receiver, ctx.Err())
			}
		}
	}
	return nil
}

// fanOut runs f on every ref with at most maxInFlight at once, and returns the first error.
func fanOut(ctx context.Context, refs []string, f func(context.Context, string) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	for _, ref := range refs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, ref); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}
