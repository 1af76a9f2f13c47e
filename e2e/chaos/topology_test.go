package chaos

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The redis fault on a cluster kills the master of the tenant's slot, its replica takes over
// with the data, and the killed node comes back as a replica.
func TestLocalRedisClusterFault(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster; skipped in -short mode")
	}
	l, err := StartLocal(t.TempDir(), t.TempDir(), RedisCluster, 1, 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if d := l.Describe(); !strings.Contains(d, "Redis Cluster (3 masters, 3 replicas)") || !strings.Contains(d, "1 NATS node") {
		t.Errorf("Describe() = %q", d)
	}
	if u := l.RedisURL(); !strings.Contains(u, "?addr=") || strings.Count(u, "addr=") != 5 {
		t.Errorf("RedisURL() = %q, want six nodes as seeds", u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := l.cluster.Client()
	defer c.Close()
	const value = "ü <script> \"x\"/y"
	if err := c.Set(ctx, tenantRedisKey, value, 0).Err(); err != nil {
		t.Fatal(err)
	}
	before, err := l.cluster.MasterOf(ctx, tenantRedisKey)
	if err != nil {
		t.Fatal(err)
	}
	// The replica must have the key before its master dies, or the failover loses it.
	bc := before.Client()
	defer bc.Close()
	if n, err := bc.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica: %d, %v", n, err)
	}
	i, err := l.RedisMasterOf(tenantRedisKey)
	if err != nil {
		t.Fatal(err)
	}
	name, err := l.KillRedisMaster(i)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(name, before.Addr) {
		t.Errorf("KillRedisMaster(%d) killed %q, want the master of the tenant's slot %s", i, name, before.Addr)
	}
	after, err := l.cluster.MasterOf(ctx, tenantRedisKey)
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Errorf("%s still serves the tenant's slot after it was killed", before.Addr)
	}
	if got, err := c.Get(ctx, tenantRedisKey).Result(); err != nil || got != value {
		t.Errorf("after the failover %s = %q, %v; want %q", tenantRedisKey, got, err, value)
	}
	if _, err := l.KillRedisMaster(0); err == nil {
		t.Error("a second kill while a node is down succeeded")
	}
	if err := l.RestartRedisMaster(); err != nil {
		t.Fatal(err)
	}
	role, err := bc.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) == 0 || role[0] != "slave" {
		t.Errorf("restarted node's role %v (%v), want a replica", role, err)
	}
	if err := l.RestartRedisMaster(); err == nil {
		t.Error("a restart with no node down succeeded")
	}
}
