package timers

import (
	"context"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// claimScript is given a shard's due set, lease set and claim counter: one hash slot, for every
// prefix the services use, so it runs on a Redis Cluster; the shards spread over slots.
func TestShardKeysShareASlot(t *testing.T) {
	_, c := testenv.RedisCluster(t)
	ctx := context.Background()
	for _, prefix := range []string{"", "tp:notify:"} {
		q := New(c, Options{Prefix: prefix, Shards: 16})
		slots := map[int64]bool{}
		for i, k := range q.shards {
			want, err := c.ClusterKeySlot(ctx, k.due).Result()
			if err != nil {
				t.Fatal(err)
			}
			slots[want] = true
			for _, key := range []string{k.lease, k.seq, k.trace + "timer-1"} {
				if got, err := c.ClusterKeySlot(ctx, key).Result(); err != nil || got != want {
					t.Errorf("prefix %q shard %d: %q in slot %d (%v), %q in slot %d", prefix, i, key, got, err, k.due, want)
				}
			}
		}
		if len(slots) < 8 {
			t.Errorf("prefix %q: 16 shards in %d slots", prefix, len(slots))
		}
	}
}
