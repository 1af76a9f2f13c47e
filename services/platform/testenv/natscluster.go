package testenv

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ticketpulse/ticketpulse/services/platform/natsembed"
)

// ClusterName is the name every node of a NATSCluster joins.
const ClusterName = "ticketpulse-test"

// NATSClusterServers is a NATS cluster of in-process nats-server/v2 servers with JetStream, each with its
// own store, routed to each other over loopback. Client and route ports stay the same for the
// test, so a stopped node comes back where its peers and clients look for it.
type NATSClusterServers struct {
	t     testing.TB
	mu    sync.Mutex
	nodes []*clusterNode
	// proxies[i][j] carries node i's routes to node j (nil when i == j).
	proxies [][]*routeProxy
}

type clusterNode struct {
	name       string
	clientAddr string
	routeAddr  string
	storeDir   string
	srv        *server.Server // nil while stopped
}

// NATSCluster starts n nodes (3 for JetStream R3) and waits until JetStream has a meta leader
// that sees all of them, so streams of n replicas can be created at once. The nodes are shut down when the test ends.
func NATSCluster(t testing.TB, n int) *NATSClusterServers {
	t.Helper()
	if testing.Short() {
		t.Skip("needs real NATS servers; skipped in -short mode")
	}
	if n < 2 {
		t.Fatalf("nats cluster of %d nodes: a cluster needs at least 2 (3 for R3); use NATS for one server", n)
	}
	c := &NATSClusterServers{t: t}
	for i := range n {
		cp, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		rp, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, &clusterNode{
			name:       "n" + strconv.Itoa(i+1),
			clientAddr: "127.0.0.1:" + strconv.Itoa(cp),
			routeAddr:  "127.0.0.1:" + strconv.Itoa(rp),
			storeDir:   t.TempDir(),
		})
	}
	c.proxies = make([][]*routeProxy, n)
	for i := range n {
		c.proxies[i] = make([]*routeProxy, n)
		for j := range n {
			if i == j {
				continue
			}
			p, err := newRouteProxy(c.nodes[j].routeAddr)
			if err != nil {
				t.Fatal(err)
			}
			c.proxies[i][j] = p
		}
	}
	t.Cleanup(c.shutdown)
	// The nodes start together: JetStream on each waits for its peers before it elects a leader.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.start(i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("nats cluster node %s: %v", c.nodes[i].name, err)
		}
	}
	if err := c.waitPeers(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitPeers waits until a meta leader sees every node online with JetStream, so a stream of
// as many replicas as nodes can be placed.
func (c *NATSClusterServers) waitPeers(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		for i := range c.nodes {
			if s := c.Server(i); s != nil && s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == len(c.nodes) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats cluster: no JetStream meta leader seeing all %d nodes after %v", len(c.nodes), timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// start runs node i on its ports and store.
func (c *NATSClusterServers) start(i int) error {
	nd := c.nodes[i]
	routes := make([]string, 0, len(c.nodes))
	for j := range c.nodes {
		if j != i {
			routes = append(routes, "nats-route://"+c.proxies[i][j].addr())
		}
	}
	host, port := splitAddr(nd.routeAddr)
	// Nothing listens on the advertised address: a peer that learns of this node through
	// another never routes to it around the proxies.
	unroutable, err := FreePort()
	if err != nil {
		return err
	}
	s, err := natsembed.Start(natsembed.Options{Addr: nd.clientAddr, StoreDir: nd.storeDir, Sync: "1m", Name: nd.name,
		Configure: func(o *server.Options) {
			o.Cluster.Name = ClusterName
			o.Cluster.Host = host
			o.Cluster.Port = port
			o.Cluster.Advertise = "127.0.0.1:" + strconv.Itoa(unroutable)
			// Routes go through this node's proxies to each peer, so Crash can cut them.
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}})
	if err != nil {
		return err
	}
	c.mu.Lock()
	nd.srv = s
	c.mu.Unlock()
	return nil
}

func splitAddr(addr string) (string, int) {
	i := strings.LastIndexByte(addr, ':')
	p, _ := strconv.Atoi(addr[i+1:])
	return addr[:i], p
}

// Size is the number of nodes, running or not.
func (c *NATSClusterServers) Size() int { return len(c.nodes) }

// URL is every node's client URL, comma-separated, as nats.go (and TICKETPULSE_NATS_URL) take
// them: a client whose node stops reconnects to another.
func (c *NATSClusterServers) URL() string { return strings.Join(c.URLs(), ",") }

// URLs are the nodes' client URLs, in node order.
func (c *NATSClusterServers) URLs() []string {
	urls := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		urls[i] = "nats://" + nd.clientAddr
	}
	return urls
}

// Name is node i's server name, as JetStream reports leaders and peers.
func (c *NATSClusterServers) Name(i int) string { return c.nodes[i].name }

// Index is the node called name, or -1.
func (c *NATSClusterServers) Index(name string) int {
	for i, nd := range c.nodes {
		if nd.name == name {
			return i
		}
	}
	return -1
}

// Server is node i's running server, or nil while it is stopped.
func (c *NATSClusterServers) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv
}

// Stop shuts node i down as a crash would as far as the server's API allows: Shutdown without
// lame duck mode, so clients are cut off at once and not told to move. Shutdown still asks the
// Raft groups the node leads to step down before it closes its routes, so a new leader is
// elected from the handover rather than after the election timeout (4 to 9 s) that a killed
// process costs. Its store stays for Restart.
func (c *NATSClusterServers) Stop(i int) {
	c.mu.Lock()
	s := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Crash takes node i away as a killed process or a lost machine does: first its route
// connections are cut, with nothing said on them, so its peers hear nothing more from it (no
// Raft step-down reaches them and a group it led elects a leader after the election timeout),
// then the server is shut down, which cuts its clients off. Its store stays for Restart.
func (c *NATSClusterServers) Crash(i int) {
	c.setCut(i, true)
	c.Stop(i)
}

// setCut cuts or heals every route connection to and from node i.
func (c *NATSClusterServers) setCut(i int, cut bool) {
	for j := range c.nodes {
		if j != i {
			c.proxies[i][j].setCut(cut)
			c.proxies[j][i].setCut(cut)
		}
	}
}

// Restart starts a stopped node i again on its ports and store, as an operator restarting it
// would; it catches up from its peers.
func (c *NATSClusterServers) Restart(i int) {
	c.t.Helper()
	if c.Server(i) != nil {
		c.t.Fatalf("restart nats node %s: it is running", c.nodes[i].name)
	}
	// The route port may linger in TIME_WAIT for a moment; the server binds with SO_REUSEADDR,
	// but a listener of the old server may still be closing.
	c.setCut(i, false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.start(i)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("restart nats node %s: %v", c.nodes[i].name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MetaLeader is the name of the node that leads JetStream's meta group, or "" while none does.
func (c *NATSClusterServers) MetaLeader() string {
	for i := range c.nodes {
		if s := c.Server(i); s != nil && s.JetStreamIsLeader() {
			return c.nodes[i].name
		}
	}
	return ""
}

// WaitMetaLeader waits until a running node leads the meta group and returns its name.
func (c *NATSClusterServers) WaitMetaLeader(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if l := c.MetaLeader(); l != "" {
			return l, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("nats cluster: no JetStream meta leader after %v", timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// StreamLeader is the index of the running node that leads the stream of the global account
// (the one clients without users use), or -1 while none does.
func (c *NATSClusterServers) StreamLeader(stream string) int {
	for i := range c.nodes {
		if s := c.Server(i); s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// WaitStreamLeader waits until a running node leads the stream and returns its index.
func (c *NATSClusterServers) WaitStreamLeader(stream string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		if i := c.StreamLeader(stream); i >= 0 {
			return i, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("nats cluster: stream %s has no leader after %v", stream, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// shutdown stops every running node, together: one at a time, each would wait for the others
// to take over its Raft groups.
func (c *NATSClusterServers) shutdown() {
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Stop(i)
		}()
	}
	wg.Wait()
	for _, row := range c.proxies {
		for _, p := range row {
			if p != nil {
				p.close()
			}
		}
	}
}
