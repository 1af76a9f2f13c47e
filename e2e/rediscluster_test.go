package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// newClusterStack is newStack on the Redis Cluster shared by the test binary (3 masters with a
// replica each): the services are given its URL, the seed nodes as addr= parameters, and so run
// in cluster mode.
func newClusterStack(t *testing.T) stack {
	t.Helper()
	rc, c := testenv.RedisCluster(t)
	_, url := testenv.NATS(t)
	return stack{natsURL: url, rdb: c, redisURL: rc.URL(), tenants: servicetest.WriteTenants(t, nil)}
}

// redisDB is the Redis URL of the n-th service of a test, each service in its own database of the
// single server; on a cluster, which has database 0 only, every service shares it (their keys do
// not collide: DESIGN, Redis layout).
func (s stack) redisDB(n int) string {
	if strings.Contains(s.redisURL, "addr=") {
		return s.redisURL
	}
	return strings.TrimSuffix(s.redisURL, "/0") + "/" + strconv.Itoa(n)
}

// TestEventsToKpis on a Redis Cluster: the same URL setting, nothing else, and kpi's write
// path, rollup and reads give the same figures.
func TestEventsToKpisOnRedisCluster(t *testing.T) { eventsToKpis(t, newClusterStack(t)) }

// TestHistoryPagesNobody on a Redis Cluster: ingest, kpi, escalation (ticket logs, timers,
// escalation records) and notify (groups, deliveries) sharing one cluster.
func TestHistoryPagesNobodyOnRedisCluster(t *testing.T) { historyPagesNobody(t, newClusterStack(t)) }

// The services name the mode and the seeds they connected with.
func TestConnectedLogNamesRedisCluster(t *testing.T) {
	s := newClusterStack(t)
	_, logs := startKPILogs(t, s, "TICKETPULSE_LOG_LEVEL=info")
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "msg=connected") {
			line = l
		}
	}
	if !strings.Contains(line, "redis_mode=cluster") || !strings.Contains(line, "redis_masters=3") ||
		!strings.Contains(line, strings.TrimPrefix(strings.SplitN(s.redisURL, "?", 2)[0], "redis://")) {
		t.Fatalf("connected log: %q, want redis_mode=cluster, the seeds and redis_masters=3", line)
	}
}

// Under a steady load of ticket events, the master holding the tenant's agent figures is killed
// (SIGKILL, as a crash): its replica takes over, kpi's batches that failed meanwhile are
// redelivered, and once the load ends the KPIs equal the events posted, nothing lost or doubled.
func TestRedisClusterFailoverUnderLoad(t *testing.T) {
	rc, rdb := testenv.NewRedisCluster(t)
	_, url := testenv.NATS(t)
	s := stack{natsURL: url, rdb: rdb, redisURL: rc.URL(), tenants: servicetest.WriteTenants(t, nil)}
	ingest := startIngest(t, s)
	kpi, logs := startKPILogs(t, s)
	client := kpi.as(s.tenants.Acme)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	start := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	var posted atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// ingest does not touch Redis: every POST is stored in JetStream, failover or not.
			if status, body := postAs(t, ingest, "acme", s.tenants.AcmeEvents, jsonEvents(fmt.Sprintf("T-%d", i), start.Add(time.Duration(i)*time.Second))); status != 202 {
				t.Errorf("POST ticket %d: %d %s", i, status, body)
				return
			}
			posted.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	}()

	for posted.Load() < 40 {
		time.Sleep(10 * time.Millisecond)
	}
	key := fmt.Sprintf("tp:{acme:a:ana}:h:%d", start.Unix()/86400)
	master, err := rc.MasterOf(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	atKill := posted.Load()
	took, err := rc.KillMaster(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed master %s holding %s after %d tickets; replica promoted and every node sees the cluster ok %v later",
		master.Addr, key, atKill, took.Round(time.Millisecond))
	// The load goes on past the promotion, then ends.
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	tickets := posted.Load()
	t.Logf("%d tickets posted, %d of them after the kill", tickets, tickets-atKill)

	w := window(start, start.Add(24*time.Hour))
	recovered := time.Now()
	deadline := time.Now().Add(60 * time.Second)
	var k *tpv1.Kpis
	for {
		resp, err := client.GetAgentKpis(ctx, &tpv1.GetAgentKpisRequest{Tenant: "acme", AgentId: "ana", Window: w})
		if err == nil {
			k = resp.GetAgent().GetKpis()
			if k.GetCsatCount() == tickets && k.GetFirstResponse().GetCount() == tickets {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("KPIs after the failover: %v (err %v), want %d tickets\n%s", k, err, tickets, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("KPIs complete %v after the load ended", time.Since(recovered).Round(time.Millisecond))
	// The promoted replica is another run: the watermark kept on that master noticed it and
	// replayed from its own watermark what the replica may have missed.
	if l := logs.String(); !strings.Contains(l, "watermark gap") || !strings.Contains(l, "watermark_shard=") {
		t.Errorf("kpi logged no watermark gap of the failed-over shard:\n%s", l)
	}
	// Redeliveries and the watermark's replay settle: then the figures must be exact, not more.
	time.Sleep(2 * time.Second)
	resp, err := client.GetAgentKpis(ctx, &tpv1.GetAgentKpisRequest{Tenant: "acme", AgentId: "ana", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	checkFigures(t, resp.GetAgent().GetKpis(), int64(tickets))
	team, err := client.GetTeamKpis(ctx, &tpv1.GetTeamKpisRequest{Tenant: "acme", TeamId: "billing", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	if got := team.GetKpis().GetAssigned(); got != tickets {
		t.Errorf("team billing assigned %d, want %d", got, tickets)
	}
}
