package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
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

// stuckGroups tells a notify group whose send is planned from one with changes pending and no
// timer, on one server and across a cluster's masters.
func TestStuckGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server; skipped in -short mode")
	}
	single, err := testenv.StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(single.Kill)
	cluster, _ := testenv.NewRedisCluster(t)
	for name, url := range map[string]string{"single": "redis://" + single.Addr + "/0", "cluster": cluster.URL()} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			rdb, err := redisClient(url)
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			if got, err := stuckGroups(ctx, url); err != nil || got != "no group with changes pending" {
				t.Fatalf("empty: %q, %v", got, err)
			}
			for gid, p := range map[string]int{"planned": 3, "lost <script>/ü \"x\"": 2, "sent": 0} {
				if err := rdb.HSet(ctx, "tp:{"+tenant+":ng:"+gid+"}", "p", p).Err(); err != nil {
					t.Fatal(err)
				}
			}
			for gid, p := range map[string]int{"leased": 1, "escalation's timer only": 4} {
				if err := rdb.HSet(ctx, "tp:{"+tenant+":ng:"+gid+"}", "p", p).Err(); err != nil {
					t.Fatal(err)
				}
			}
			in := func(d time.Duration) float64 { return float64(time.Now().Add(d).UnixMilli()) }
			for key, m := range map[string]redis.Z{
				"tp:notify:{tq:7}:due":   {Score: in(time.Hour), Member: "g\x1f" + tenant + "\x1fplanned"},
				"tp:notify:{tq:3}:lease": {Score: in(-time.Hour), Member: "12:1700000000000:g\x1f" + tenant + "\x1fleased"},
				"tp:{tq:7}:due":          {Score: in(0), Member: "g\x1f" + tenant + "\x1fescalation's timer only"},
			} {
				if err := rdb.ZAdd(ctx, key, m).Err(); err != nil {
					t.Fatal(err)
				}
			}
			got, err := stuckGroups(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			want := `"escalation's timer only" 4 pending, no send planned: stuck; "leased" 1 pending, send being sent, lease ends 1h0m0s ago; ` +
				`"lost <script>/ü \"x\"" 2 pending, no send planned: stuck; "planned" 3 pending, send planned in 1h0m0s`
			if got != want {
				t.Errorf("stuckGroups = %q, want %q", got, want)
			}
		})
	}
}
