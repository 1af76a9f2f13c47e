package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of the test clusters: how long a master may be
// unreachable before its replica takes over. Short, so a failover test is quick; long enough
// that a busy machine does not see false failures.
const ClusterNodeTimeout = 2 * time.Second

// RedisClusterServers are the redis-server processes of a Redis Cluster owned by a test binary:
// 3 masters, each with one replica, on free loopback ports.
type RedisClusterServers struct {
	// Nodes are every node, masters and replicas; which is which changes with failovers.
	Nodes []*RedisServer
	dir   string
}

// StartRedisCluster runs 6 redis-server nodes in cluster mode under dir, with StartRedis's
// settings, joins them into 3 masters with a replica each (redis-cli --cluster create) and waits
// until every node sees the cluster's state ok.
func StartRedisCluster(dir string) (*RedisClusterServers, error) {
	cli, err := redisCLI()
	if err != nil {
		return nil, err
	}
	rc := &RedisClusterServers{dir: dir}
	addrs := make([]string, 6)
	for i := range addrs {
		ndir := filepath.Join(dir, "node"+strconv.Itoa(i))
		if err := os.MkdirAll(ndir, 0o700); err != nil {
			rc.Kill()
			return nil, err
		}
		s, err := startClusterNode(ndir)
		if err != nil {
			rc.Kill()
			return nil, err
		}
		rc.Nodes = append(rc.Nodes, s)
		addrs[i] = s.Addr
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		rc.Kill()
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rc.waitSettled(ctx, 3); err != nil {
		rc.Kill()
		return nil, err
	}
	return rc, nil
}

// startClusterNode starts one cluster node in dir on free ports (its bus port is its own free
// port, not port+10000, which may be taken), trying again when a port was taken meanwhile.
func startClusterNode(dir string) (*RedisServer, error) {
	var err error
	for range 3 {
		var bus int
		if bus, err = FreePort(); err != nil {
			return nil, err
		}
		var s *RedisServer
		// Every replica may be promoted however long it was cut off (validity factor 0): a test
		// kills a master and expects its replica to take over. A replica (re)joining syncs at
		// once rather than after the default 5 s wait for others.
		s, err = StartRedis(dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", strconv.Itoa(bus),
			"--cluster-node-timeout", strconv.Itoa(int(ClusterNodeTimeout.Milliseconds())), "--cluster-replica-validity-factor", "0",
			"--repl-diskless-sync-delay", "0")
		if err == nil {
			return s, nil
		}
		if !strings.Contains(err.Error(), "Address already in use") {
			return nil, err
		}
		_ = os.Remove(filepath.Join(dir, "nodes.conf"))
	}
	return nil, err
}

// redisCLI finds redis-cli beside redis-server, then on PATH (Debian's redis-server package
// brings it in redis-tools; Homebrew's redis has both).
func redisCLI() (string, error) {
	server, err := RedisBinary()
	if err != nil {
		return "", err
	}
	if p := filepath.Join(filepath.Dir(server), "redis-cli"); fileExists(p) {
		return p, nil
	}
	p, err := exec.LookPath("redis-cli")
	if err != nil {
		return "", errors.New("redis-cli not found beside redis-server or on PATH: install redis-tools (Debian) or redis (Homebrew)")
	}
	return p, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// URL is the cluster's redis:// URL with every node as a seed (redisconn reads it as a cluster).
func (rc *RedisClusterServers) URL() string {
	addrs := make([]string, len(rc.Nodes))
	for i, n := range rc.Nodes {
		addrs[i] = n.Addr
	}
	return clusterURL(addrs)
}

func clusterURL(addrs []string) string {
	u := "redis://" + addrs[0]
	for i, a := range addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + a
	}
	return u
}

// Client returns a new cluster client set as redisconn's (RESP2, the slot map read again every
// second so a failover is seen quickly); the caller closes it.
func (rc *RedisClusterServers) Client() *redis.ClusterClient {
	addrs := make([]string, len(rc.Nodes))
	for i, n := range rc.Nodes {
		addrs[i] = n.Addr
	}
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2, DisableIdentity: true, ClusterStateReloadInterval: time.Second})
}

// Kill stops every node at once.
func (rc *RedisClusterServers) Kill() {
	for _, n := range rc.Nodes {
		n.Kill()
	}
}

// Flush empties every master (the replicas follow) and waits until the replicas have it too.
func (rc *RedisClusterServers) Flush(ctx context.Context) error {
	for _, n := range rc.Nodes {
		if !n.running() {
			continue
		}
		c := n.Client()
		role, err := c.Do(ctx, "ROLE").Slice()
		if err == nil && len(role) > 0 && role[0] == "master" {
			err = c.FlushAll(ctx).Err()
			if err == nil {
				// Until the replicas have it, a failover could bring back what was flushed.
				err = c.Do(ctx, "WAIT", 1, 5000).Err()
			}
		}
		c.Close()
		if err != nil {
			return fmt.Errorf("flush %s: %w", n.Addr, err)
		}
	}
	return nil
}

// MasterOf returns the node that serves key now.
func (rc *RedisClusterServers) MasterOf(ctx context.Context, key string) (*RedisServer, error) {
	c := rc.Client()
	defer c.Close()
	var addr string
	slot, err := c.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("keyslot %q: %w", key, err)
	}
	shards, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster slots: %w", err)
	}
	for _, s := range shards {
		if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
			addr = s.Nodes[0].Addr
		}
	}
	for _, n := range rc.Nodes {
		if n.Addr == addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("slot %d of %q: no node of the cluster serves it (%q)", slot, key, addr)
}

// KillMaster kills node (SIGKILL, as a crash), which must be a master, and waits until its
// replica has taken over and every live node sees the cluster ok. It returns how long that took
// from the kill.
func (rc *RedisClusterServers) KillMaster(ctx context.Context, node *RedisServer) (time.Duration, error) {
	start := time.Now()
	node.Kill()
	if err := rc.waitSettled(ctx, 3); err != nil {
		return 0, fmt.Errorf("failover after killing %s: %w", node.Addr, err)
	}
	return time.Since(start), nil
}

// Restart starts a killed node again on its port and directory; it rejoins the cluster (as a
// replica of the master that took its place) and Restart waits until every node sees it.
func (rc *RedisClusterServers) Restart(ctx context.Context, node *RedisServer) error {
	if err := node.Start(); err != nil {
		return err
	}
	return rc.waitSettled(ctx, 3)
}

// waitSettled waits until every running node reports the cluster's state ok, sees masters
// running masters serving slots, each running replica connected to its master, and no running
// node flagged failing.
func (rc *RedisClusterServers) waitSettled(ctx context.Context, masters int) error {
	var last error
	for {
		if last = rc.settled(ctx, masters); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not settled: %w", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (rc *RedisClusterServers) settled(ctx context.Context, masters int) error {
	down := map[string]bool{}
	for _, n := range rc.Nodes {
		down[n.Addr] = !n.running()
	}
	for _, n := range rc.Nodes {
		if down[n.Addr] {
			continue
		}
		c := n.Client()
		info, err := c.ClusterInfo(ctx).Result()
		var nodes string
		if err == nil {
			nodes, err = c.ClusterNodes(ctx).Result()
		}
		c.Close()
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("node %s: cluster state not ok", n.Addr)
		}
		serving, replicas := 0, 0
		for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			flags := f[2]
			if strings.Contains(flags, "fail") && !down[addr] {
				return fmt.Errorf("node %s sees %s as %s", n.Addr, addr, flags)
			}
			switch {
			case down[addr]:
			case strings.Contains(flags, "master") && len(f) > 8:
				serving++
			case strings.Contains(flags, "slave"):
				if f[7] != "connected" {
					return fmt.Errorf("node %s sees replica %s %s", n.Addr, addr, f[7])
				}
				replicas++
			}
		}
		if serving != masters {
			return fmt.Errorf("node %s sees %d running masters serving slots, want %d", n.Addr, serving, masters)
		}
		want := rc.runningNodes() - masters
		if replicas != want {
			return fmt.Errorf("node %s sees %d running replicas, want %d", n.Addr, replicas, want)
		}
		if n.running() && !strings.Contains(nodes, "myself,master") {
			if err := replicaSynced(ctx, n); err != nil {
				return err
			}
		}
	}
	return nil
}

func (rc *RedisClusterServers) runningNodes() int {
	n := 0
	for _, s := range rc.Nodes {
		if s.running() {
			n++
		}
	}
	return n
}

// replicaSynced checks that replica n finished its sync with its master.
func replicaSynced(ctx context.Context, n *RedisServer) error {
	c := n.Client()
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Addr, err)
	}
	if !strings.Contains(info, "master_link_status:up") || strings.Contains(info, "master_sync_in_progress:1") {
		return fmt.Errorf("replica %s: not in sync with its master", n.Addr)
	}
	return nil
}

// running reports whether the process is alive.
func (s *RedisServer) running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

var (
	clusterOnce sync.Once
	sharedClust *RedisClusterServers
	clusterErr  error
	clusterDir  string
)

// RedisCluster returns the Redis Cluster shared by the test binary (started on first use), with
// every master flushed, and a client of it closed when the test ends. Tests that use it must
// not run in parallel with each other. Under -short it skips.
func RedisCluster(t testing.TB) (*RedisClusterServers, *redis.ClusterClient) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real redis-server cluster; skipped in -short mode")
	}
	clusterOnce.Do(func() {
		clusterDir, clusterErr = os.MkdirTemp("", "ticketpulse-redis-cluster-")
		if clusterErr == nil {
			sharedClust, clusterErr = StartRedisCluster(clusterDir)
		}
	})
	if clusterErr != nil {
		t.Fatalf("redis cluster: %v", clusterErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A test that killed a master may have left it down: bring it back first.
	for _, n := range sharedClust.Nodes {
		if !n.running() {
			if err := sharedClust.Restart(ctx, n); err != nil {
				t.Fatalf("restart redis cluster node: %v", err)
			}
		}
	}
	if err := sharedClust.Flush(ctx); err != nil {
		t.Fatalf("redis cluster: %v", err)
	}
	c := sharedClust.Client()
	t.Cleanup(func() { c.Close() })
	return sharedClust, c
}

// NewRedisCluster starts a private cluster for one test, stopped when it ends: for tests that
// kill nodes. Under -short it skips.
func NewRedisCluster(t testing.TB) (*RedisClusterServers, *redis.ClusterClient) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real redis-server cluster; skipped in -short mode")
	}
	rc, err := StartRedisCluster(t.TempDir())
	if err != nil {
		t.Fatalf("redis cluster: %v", err)
	}
	t.Cleanup(rc.Kill)
	c := rc.Client()
	t.Cleanup(func() { c.Close() })
	return rc, c
}

// Keys lists the keys matching pattern on every server of c: KEYS on a cluster client asks one
// node only.
func Keys(t testing.TB, c redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		keys, err := c.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatalf("keys %s: %v", pattern, err)
		}
		return keys
	}
	var mu sync.Mutex
	var keys []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		ks, err := m.Keys(ctx, pattern).Result()
		mu.Lock()
		keys = append(keys, ks...)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatalf("keys %s: %v", pattern, err)
	}
	return keys
}

// Flush empties every server of c (FLUSHALL on a cluster client reaches one node only).
func Flush(t testing.TB, c redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.FlushAll(ctx).Err() })
	} else {
		err = c.FlushAll(ctx).Err()
	}
	if err != nil {
		t.Fatalf("flush redis: %v", err)
	}
}

// StartSentinel runs a Redis Sentinel in dir on a free loopback port that monitors the master at
// masterAddr under name (quorum 1, down after a second), for tests of clients that find their
// master through Sentinel.
func StartSentinel(dir, name, masterAddr string) (*RedisServer, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	host, mport, _ := strings.Cut(masterAddr, ":")
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\nsentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 1000\n",
		port, dir, filepath.Join(dir, "redis.log"), name, host, mport, name)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	s := &RedisServer{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, args: []string{conf, "--sentinel"}}
	return s, s.Start()
}
