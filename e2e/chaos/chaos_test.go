package chaos

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// binDir holds the service binaries TestMain built.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "ticketpulse-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := servicetest.BuildServices(dir, "../..", "ingest", "kpi", "escalation", "notify"); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// configFromEnv is the run TICKETPULSE_CHAOS_* asks for; unset, the short run of make test.
func configFromEnv(t *testing.T) Config {
	t.Helper()
	// The settle time only bounds a run that goes wrong; it must outlast notify's retry backoff
	// (1 s doubling), which reaches 16 to 32 s across the outage of a disk fault.
	// 45 s with a fault every ~3 s takes each of the five kinds once (a disk fault lasts ~15 s).
	c := Config{Duration: 45 * time.Second, Rate: 200, Interval: 3 * time.Second, Settle: time.Minute,
		Seed: uint64(time.Now().UnixNano())}
	dur := func(name string, into *time.Duration) {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				t.Fatalf("%s=%q: want a positive duration such as 5m", name, v)
			}
			*into = d
		}
	}
	dur("TICKETPULSE_CHAOS_DURATION", &c.Duration)
	dur("TICKETPULSE_CHAOS_INTERVAL", &c.Interval)
	dur("TICKETPULSE_CHAOS_SETTLE", &c.Settle)
	if v := os.Getenv("TICKETPULSE_CHAOS_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 5000 {
			t.Fatalf("TICKETPULSE_CHAOS_RATE=%q: want events per second, 1 to 5000", v)
		}
		c.Rate = n
	}
	if v := os.Getenv("TICKETPULSE_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("TICKETPULSE_CHAOS_SEED=%q: want an unsigned integer", v)
		}
		c.Seed = n
	}
	kinds, err := ParseKinds(os.Getenv("TICKETPULSE_CHAOS_FAULTS"))
	if err != nil {
		t.Fatalf("TICKETPULSE_CHAOS_FAULTS: %v", err)
	}
	c.Kinds = kinds
	return c
}

// natsNodes is TICKETPULSE_CHAOS_NATS_NODES: 1 (the default) or 3, a cluster with R3 streams.
func natsNodes(t *testing.T) int {
	t.Helper()
	switch v := os.Getenv("TICKETPULSE_CHAOS_NATS_NODES"); v {
	case "", "1":
		return 1
	case "3":
		return 3
	default:
		t.Fatalf("TICKETPULSE_CHAOS_NATS_NODES=%q: want 1 or 3", v)
		return 0
	}
}

// redisMode is TICKETPULSE_CHAOS_REDIS: cluster (the default), a Redis Cluster of 3 masters and
// 3 replicas, or single. The short run takes a few seconds more on a cluster (its Redis faults
// wait for a failover), well within its budget.
func redisMode(t *testing.T) string {
	t.Helper()
	switch v := os.Getenv("TICKETPULSE_CHAOS_REDIS"); v {
	case "", RedisCluster:
		return RedisCluster
	case RedisSingle:
		return RedisSingle
	default:
		t.Fatalf("TICKETPULSE_CHAOS_REDIS=%q: want %s or %s", v, RedisSingle, RedisCluster)
		return ""
	}
}

// The system under load and faults loses no acknowledged event, counts none twice, raises every
// due escalation once and notifies every change once (docs/chaos.md).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system against real servers; skipped in -short mode")
	}
	if _, err := testenv.RedisBinary(); err != nil {
		t.Fatal(err)
	}
	cfg := configFromEnv(t)
	cfg.BinDir = binDir
	t.Logf("chaos: seed %d (run again with TICKETPULSE_CHAOS_SEED=%d)", cfg.Seed, cfg.Seed)
	logDir := LogDir(t)
	topo, err := StartLocal(t.TempDir(), logDir, redisMode(t), natsNodes(t), 256)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(topo.Close)
	t.Logf("chaos: %s, each NATS store on %s", topo.Describe(), topo.StoreFS)
	sys := StartSystem(t, topo, binDir, logDir, cfg.Seed)
	rep := Run(t, sys, cfg)
	var b strings.Builder
	rep.Print(&b)
	t.Log(b.String())
	if len(rep.Problems) > 0 {
		t.Errorf("%d problems (seed %d); service and NATS logs in %s", len(rep.Problems), cfg.Seed, sys.LogDir)
	}
}
