package testenv

import (
	"context"
	"fmt"
	"github.com/redis/go-redis/v9"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The shared cluster has 3 masters, each with a replica that holds its data, and comes back
// flushed to the next test.
func TestRedisClusterShapeAndFlush(t *testing.T) {
	_, c := RedisCluster(t)
	ctx := context.Background()
	// CLUSTER SLOTS (what the client knows) lists a replica only once it replicated something;
	// CLUSTER NODES lists them all.
	nodes, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if m, r := strings.Count(nodes, "master"), strings.Count(nodes, "slave"); m != 3 || r != 3 {
		t.Fatalf("%d masters and %d replicas, want 3 and 3:\n%s", m, r, nodes)
	}
	for i := range 30 {
		if err := c.Set(ctx, fmt.Sprintf("tp:{t%d}:k", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	_, c = RedisCluster(t)
	var keys atomic.Int64
	if err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		keys.Add(n)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if keys.Load() != 0 {
		t.Fatalf("%d keys left after the flush", keys.Load())
	}
}

// Killing a master promotes its replica with the data it had; the restarted node rejoins.
func TestRedisClusterKillMaster(t *testing.T) {
	rc, c := NewRedisCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := "tp:{acme:t:T-1}:state"
	if err := c.Set(ctx, key, "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	m, err := rc.MasterOf(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	// The replica must have the write before the crash for it to survive.
	if err := c.Do(ctx, "WAIT", 1, 5000).Err(); err != nil {
		t.Fatal(err)
	}
	took, err := rc.KillMaster(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover took %v (cluster-node-timeout %v)", took, ClusterNodeTimeout)
	// The client sees the new master when it next reads the slot map (each second).
	var got string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if got, err = c.Get(ctx, key).Result(); err == nil {
			break
		}
	}
	if err != nil || got != "before" {
		t.Fatalf("after failover: %q, %v", got, err)
	}
	m2, err := rc.MasterOf(ctx, key)
	if err != nil || m2 == m {
		t.Fatalf("master after failover: %v, %v", m2, err)
	}
	if err := rc.Restart(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, key, "after", 0).Err(); err != nil {
		t.Fatal(err)
	}
}
