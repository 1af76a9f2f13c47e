package redisconn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// A cluster URL (seeds as addr=) gives a cluster client; its health check needs every master,
// fails while one is down and passes again once its replica took over.
func TestClusterPingSeesEveryMaster(t *testing.T) {
	rc, _ := testenv.NewRedisCluster(t)
	ctx := context.Background()
	tg, err := Parse(rc.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Mode != Cluster || len(tg.Seeds) != 6 {
		t.Fatalf("target %s, want a cluster of 6 seeds", tg)
	}
	c, err := tg.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("client %T, want a cluster client", c)
	}
	if n := Masters(ctx, c); n != 3 {
		t.Fatalf("%d masters, want 3", n)
	}
	// A script with keys of several slots is refused: the layout must keep them in one.
	err = c.Eval(ctx, "return 1", []string{"tp:{acme:a:ana}:h:1", "tp:{acme:a:bob}:h:1"}).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("cross-slot script: %v, want CROSSSLOT", err)
	}
	m, err := rc.MasterOf(ctx, "tp:{acme:a:ana}:h:1")
	if err != nil {
		t.Fatal(err)
	}
	m.Kill()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	if err := Ping(pctx, c); err == nil {
		t.Error("health check passed with a master down")
	}
	cancel()
	deadline := time.Now().Add(30 * time.Second)
	for Ping(ctx, c) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("health check still failing 30s after the kill: %v", Ping(ctx, c))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.Set(ctx, "tp:{acme:a:ana}:h:1", "1", 0).Err(); err != nil {
		t.Fatalf("write after the failover: %v", err)
	}
}

// A Sentinel URL finds the master through the sentinels (TestParseSentinelCredentials covers
// who logs in where); a master the sentinels do not know fails the start.
func TestSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real redis-server; skipped in -short mode")
	}
	master, err := testenv.StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(master.Kill)
	sent, err := testenv.StartSentinel(t.TempDir(), "tickets", master.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sent.Kill)
	ctx := context.Background()
	c, err := Dial(ctx, "redis://"+sent.Addr+"/0?master_name=tickets", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "tp:{acme:k}:x", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	direct := master.Client()
	defer direct.Close()
	if got := direct.Get(ctx, "tp:{acme:k}:x").Val(); got != "1" {
		t.Fatalf("the write reached %q on the master, want 1", got)
	}
	_, err = Dial(ctx, "redis://"+sent.Addr+"/0", Options{MasterName: "other"})
	if err == nil || !strings.Contains(err.Error(), "ping redis") {
		t.Fatalf("unknown master: %v", err)
	}
}
