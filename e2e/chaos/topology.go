package chaos

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
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ticketpulse/ticketpulse/services/platform/natsembed"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// Topology is the servers the services run against, and the faults the harness may inject into
// them. The harness knows nothing else about them, so a Redis Cluster or another NATS cluster
// plugs in by implementing it.
type Topology interface {
	// RedisURL and NATSURL are what the services are configured with (NATSURL may list several
	// servers, comma-separated).
	RedisURL() string
	NATSURL() string
	// Describe says in a line what the servers are: Redis single or cluster, the NATS nodes.
	Describe() string
	// StreamReplicas is the -stream-replicas the services run with.
	StreamReplicas() int
	// RedisMasters and NATSNodes count the servers KillRedisMaster and StopNATSNode pick from.
	RedisMasters() int
	NATSNodes() int
	// RedisMasterOf is the index of the master that serves key now.
	RedisMasterOf(key string) (int, error)
	// KillRedisMaster kills master i with SIGKILL (on a cluster, waits until its replica took
	// over) and names it; RestartRedisMaster starts the killed one again on its data (on a
	// cluster, it comes back as a replica).
	KillRedisMaster(i int) (string, error)
	RestartRedisMaster() error
	// StopNATSNode stops node i; RestartNATSNode starts it again on its store.
	StopNATSNode(i int) error
	RestartNATSNode(i int) error
	// StoreDir is where node i keeps its JetStream store: the disk the disk-full fault fills.
	StoreDir(i int) string
	// Close stops every server and releases what it made (mounts included).
	Close()
}

// Redis modes of a Local.
const (
	RedisSingle  = "single"  // one redis-server
	RedisCluster = "cluster" // a Redis Cluster of 3 masters and 3 replicas
)

// Local is one redis-server (AOF on, restartable on the same port and data) or a Redis Cluster
// (3 masters, 3 replicas), and one or three in-process JetStream nodes (three form a cluster,
// streams R3), each node's store on a small filesystem of its own when the machine lets the test
// make one.
type Local struct {
	redis    *testenv.RedisServer
	cluster  *testenv.RedisClusterServers
	killed   *testenv.RedisServer
	redisDir string
	nodes    []*natsNode
	unmount  []func()
	// StoreFS says what the stores are on: "tmpfs 256 MB" or why they are on the ordinary disk.
	StoreFS string
	mounted bool
	logDir  string
}

// natsNode is one NATS server of a Local, with the ports it keeps across restarts.
type natsNode struct {
	name        string
	port        int
	clusterPort int
	store       string
	mu          sync.Mutex
	srv         *server.Server
}

var _ Topology = (*Local)(nil)

// StartLocal starts the servers in dir: redis-server or a Redis Cluster (redisMode) and
// natsNodes (1 or 3) NATS nodes, each node's store on a tmpfs of storeMB megabytes when one can
// be mounted (root, or the right capability), else on a loop-mounted ext4 image, else on dir's
// own filesystem (StoreFS says which and why).
//
// The NATS nodes log (warnings and errors, from the moment each is up) into logDir/<node>.log.
func StartLocal(dir, logDir, redisMode string, natsNodes, storeMB int) (*Local, error) {
	if natsNodes != 1 && natsNodes != 3 {
		return nil, fmt.Errorf("%d NATS nodes: want 1 or 3", natsNodes)
	}
	if redisMode != RedisSingle && redisMode != RedisCluster {
		return nil, fmt.Errorf("redis mode %q: want %s or %s", redisMode, RedisSingle, RedisCluster)
	}
	l := &Local{redisDir: filepath.Join(dir, "redis"), mounted: true, logDir: logDir}
	if err := os.MkdirAll(l.redisDir, 0o700); err != nil {
		return nil, err
	}
	for i := 0; i < natsNodes; i++ {
		n := &natsNode{name: fmt.Sprintf("chaos-%d", i), store: filepath.Join(dir, fmt.Sprintf("nats-%d", i))}
		if err := os.MkdirAll(n.store, 0o700); err != nil {
			return nil, err
		}
		unmount, fs, ok := smallFS(dir, n.store, storeMB)
		l.unmount = append(l.unmount, unmount)
		l.StoreFS, l.mounted = fs, l.mounted && ok
		var err error
		if n.port, err = testenv.FreePort(); err == nil && natsNodes > 1 {
			n.clusterPort, err = testenv.FreePort()
		}
		if err != nil {
			l.Close()
			return nil, err
		}
		l.nodes = append(l.nodes, n)
	}
	if redisMode == RedisCluster {
		rc, err := testenv.StartRedisCluster(l.redisDir)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.cluster = rc
	} else {
		r, err := testenv.StartRedis(l.redisDir)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.redis = r
	}
	// The nodes of a cluster wait for each other's routes: start them together.
	errs := make([]error, len(l.nodes))
	var wg sync.WaitGroup
	for i := range l.nodes {
		wg.Add(1)
		go func(i int) { defer wg.Done(); errs[i] = l.startNode(i) }(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		l.Close()
		return nil, err
	}
	if err := l.waitJetStream(60 * time.Second); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// smallFS mounts a filesystem of sizeMB megabytes on mnt: tmpfs first, a loop-mounted ext4 image
// next. It returns how to unmount it and what it made, or a no-op and why it made none.
func smallFS(dir, mnt string, sizeMB int) (func(), string, bool) {
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", sizeMB), "tmpfs", mnt).CombinedOutput()
	if err == nil {
		return func() { umount(mnt) }, fmt.Sprintf("tmpfs %d MB", sizeMB), true
	}
	why := fmt.Sprintf("mount tmpfs: %v %s", err, strings.TrimSpace(string(out)))
	img := mnt + ".img"
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(int64(sizeMB) << 20)
		f.Close()
	}
	if err == nil {
		out, err = exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput()
	}
	if err == nil {
		out, err = exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput()
	}
	if err == nil {
		return func() { umount(mnt); os.Remove(img) }, fmt.Sprintf("ext4 loop image %d MB", sizeMB), true
	}
	os.Remove(img)
	return func() {}, fmt.Sprintf("%s; loop ext4: %v %s", why, err, strings.TrimSpace(string(out))), false
}

// umount detaches mnt, lazily if something still holds it, so a failed test never leaves it.
func umount(mnt string) {
	if err := syscall.Unmount(mnt, 0); err != nil {
		_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
	}
}

// Mounted says whether every store is on a filesystem of its own, which the disk-full fault needs.
func (l *Local) Mounted() bool { return l.mounted }

func (l *Local) startNode(i int) error {
	n := l.nodes[i]
	var routes []string
	for j, m := range l.nodes {
		if j != i {
			routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(m.clusterPort))
		}
	}
	srv, err := natsembed.Start(natsembed.Options{Addr: "127.0.0.1:" + strconv.Itoa(n.port), StoreDir: n.store, Sync: "always", Name: n.name,
		Configure: func(o *server.Options) {
			// Larger than the disk, so a full disk is what stops writes, not JetStream's own
			// accounting.
			o.JetStreamMaxStore = 8 << 30
			o.JetStreamMaxMemory = 256 << 20
			o.NoLog, o.LogFile, o.Logtime = false, filepath.Join(l.logDir, n.name+".log"), true
			if len(l.nodes) > 1 {
				o.Cluster.Name = "chaos"
				o.Cluster.Host = "127.0.0.1"
				o.Cluster.Port = n.clusterPort
				o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
			}
		}})
	if err != nil {
		return fmt.Errorf("start nats node %s: %w", n.name, err)
	}
	srv.ConfigureLogger()
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
	return nil
}

// waitJetStream waits until JetStream answers through the client URL (a cluster has elected its
// meta leader).
func (l *Local) waitJetStream(timeout time.Duration) error {
	nc, js, err := connect(l.NATSURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jetstream not available within %s: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *Local) RedisURL() string {
	if l.cluster != nil {
		return l.cluster.URL()
	}
	return "redis://" + l.redis.Addr + "/0"
}

func (l *Local) Describe() string {
	redis := "Redis single server"
	if l.cluster != nil {
		redis = fmt.Sprintf("Redis Cluster (%d masters, %d replicas)", l.RedisMasters(), len(l.cluster.Nodes)-l.RedisMasters())
	}
	nats := "1 NATS node"
	if len(l.nodes) > 1 {
		nats = fmt.Sprintf("%d NATS nodes (cluster, streams R%d)", len(l.nodes), l.StreamReplicas())
	}
	return redis + ", " + nats
}

func (l *Local) NATSURL() string {
	urls := make([]string, len(l.nodes))
	for i, n := range l.nodes {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(n.port)
	}
	return strings.Join(urls, ",")
}

func (l *Local) StreamReplicas() int   { return len(l.nodes) }
func (l *Local) NATSNodes() int        { return len(l.nodes) }
func (l *Local) StoreDir(i int) string { return l.nodes[i].store }

func (l *Local) RedisMasters() int {
	if l.cluster != nil {
		return len(l.cluster.Nodes) / 2
	}
	return 1
}

// redisTimeout bounds a failover of the cluster, or its settling after a node rejoined.
const redisTimeout = time.Minute

// masters lists the cluster's masters now, in the order of its nodes: which node is a master
// changes with every failover, so an index means "the i-th master at the time".
func (l *Local) masters(ctx context.Context) ([]*testenv.RedisServer, error) {
	var out []*testenv.RedisServer
	for _, n := range l.cluster.Nodes {
		if n == l.killed {
			continue
		}
		c := n.Client()
		role, err := c.Do(ctx, "ROLE").Slice()
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("role of redis node %s: %w", n.Addr, err)
		}
		if len(role) > 0 && role[0] == "master" {
			out = append(out, n)
		}
	}
	if len(out) != l.RedisMasters() {
		return nil, fmt.Errorf("%d redis masters, want %d", len(out), l.RedisMasters())
	}
	return out, nil
}

func (l *Local) RedisMasterOf(key string) (int, error) {
	if l.cluster == nil {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	m, err := l.cluster.MasterOf(ctx, key)
	if err != nil {
		return 0, err
	}
	ms, err := l.masters(ctx)
	if err != nil {
		return 0, err
	}
	for i, n := range ms {
		if n == m {
			return i, nil
		}
	}
	return 0, fmt.Errorf("redis node %s serves %q but is not a master", m.Addr, key)
}

func (l *Local) KillRedisMaster(i int) (string, error) {
	if l.killed != nil {
		return "", fmt.Errorf("redis node %s still down", l.killed.Addr)
	}
	if l.cluster == nil {
		l.redis.Kill()
		l.killed = l.redis
		return "redis " + l.redis.Addr, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	ms, err := l.masters(ctx)
	if err != nil {
		return "", err
	}
	m := ms[i]
	l.killed = m
	if _, err := l.cluster.KillMaster(ctx, m); err != nil {
		return "redis master " + m.Addr, err
	}
	return "redis master " + m.Addr, nil
}

func (l *Local) RestartRedisMaster() error {
	n := l.killed
	if n == nil {
		return errors.New("no redis node killed")
	}
	var err error
	if l.cluster == nil {
		err = n.Start()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
		defer cancel()
		err = l.cluster.Restart(ctx, n)
	}
	if err == nil {
		l.killed = nil
	}
	return err
}

func (l *Local) StopNATSNode(i int) error {
	n := l.nodes[i]
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv == nil {
		return fmt.Errorf("nats node %s already stopped", n.name)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}

func (l *Local) RestartNATSNode(i int) error {
	var err error
	// The ports are freed by the shutdown, but the kernel may hold them for a moment.
	for try := 0; try < 50; try++ {
		if err = l.startNode(i); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (l *Local) Close() {
	for i, n := range l.nodes {
		n.mu.Lock()
		running := n.srv != nil
		n.mu.Unlock()
		if running {
			_ = l.StopNATSNode(i)
		}
	}
	if l.redis != nil {
		l.redis.Kill()
	}
	if l.cluster != nil {
		l.cluster.Kill()
	}
	for _, u := range l.unmount {
		u()
	}
}
