// Package dedupe remembers the webhook deliveries ingest has published, so a delivery the source
// sends again (a retry after a timeout on its side, a replay from its admin UI) is answered 200
// without being published again. Events carry their own ids and kpi never counts one twice; this
// spares the stream the copies and tells the source its retry was received.
package dedupe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the JetStream key-value bucket that holds the deliveries.
const Bucket = "WEBHOOK_DELIVERIES"

// Store is backed by a JetStream key-value bucket whose entries expire after the TTL, so
// replicas of ingest share it and it survives their restarts.
type Store struct {
	kv jetstream.KeyValue
}

// Open creates or updates the bucket. ttl is how long a delivery is remembered: longer than the
// sources retry (Zendesk, Chatwoot and Help Scout retry for up to a day or two).
func Open(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Webhook deliveries ingest has published, by tenant, source and delivery id.",
		TTL:         ttl,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", Bucket, err)
	}
	return &Store{kv: kv}, nil
}

// key is safe for any delivery id: key-value keys allow few characters, ids come from outside.
func key(tenant, source, delivery string) string {
	sum := sha256.Sum256([]byte(delivery))
	return tenant + "." + source + "." + hex.EncodeToString(sum[:16])
}

// Seen reports whether the delivery was published before.
func (s *Store) Seen(ctx context.Context, tenant, source, delivery string) (bool, error) {
	_, err := s.kv.Get(ctx, key(tenant, source, delivery))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("look up delivery of %s/%s: %w", tenant, source, err)
	}
}

// Mark records that the delivery was published. Call it only after JetStream acknowledged its
// events: a delivery marked but not stored would be lost on the source's retry.
func (s *Store) Mark(ctx context.Context, tenant, source, delivery string) error {
	if _, err := s.kv.Put(ctx, key(tenant, source, delivery), []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("record delivery of %s/%s: %w", tenant, source, err)
	}
	return nil
}
