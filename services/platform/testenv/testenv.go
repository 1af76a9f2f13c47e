// Package testenv starts real servers for tests: redis-server on a free loopback port and the
// embedded NATS server with JetStream in a temporary store. Nothing here is a mock.
package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/natsembed"
)

// RedisServer is a redis-server child process owned by a test binary.
type RedisServer struct {
	Addr string
	Dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	// tls is how the readiness check reaches a server that listens for TLS only.
	tls *tls.Config
}

// RedisBinary finds redis-server: TICKETPULSE_REDIS_SERVER, then PATH.
func RedisBinary() (string, error) {
	if p := os.Getenv("TICKETPULSE_REDIS_SERVER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server not found on PATH: run `make test` (it installs it), or install it yourself (apt-get install redis-server / brew install redis), or set TICKETPULSE_REDIS_SERVER to its path")
	}
	return p, nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartRedis runs redis-server in dir with AOF (appendfsync everysec) on a free loopback port, with
// the hash encoding threshold of the redis.conf Redis ships (see deploy/redis.conf).
func StartRedis(dir string, extra ...string) (*RedisServer, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &RedisServer{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir}
	s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes",
		"--hash-max-listpack-entries", "128", "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log")}, extra...)
	return s, s.Start()
}

// Start (re)starts the process with the same port and data directory.
func (s *RedisServer) Start() error {
	bin, err := RedisBinary()
	if err != nil {
		return err
	}
	s.cmd = exec.Command(bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(s.cmd, s.done)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, TLSConfig: s.tls})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		// A server started with --requirepass, or with the default user off, answers NOAUTH: it is up.
		if err == nil || strings.HasPrefix(err.Error(), "NOAUTH") {
			return nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			return fmt.Errorf("redis-server exited at start: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on %s not ready after 10s: %w", s.Addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops the process at once (SIGKILL), as a crash would.
func (s *RedisServer) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

var (
	sharedOnce  sync.Once
	sharedRedis *RedisServer
	sharedErr   error
	sharedDir   string
)

// RedisModeEnv names the environment variable that picks what Redis hands out: "cluster" makes
// it a client of the shared Redis Cluster (RedisCluster), so a package's Redis tests run on a
// cluster unchanged; anything else, one redis-server.
const RedisModeEnv = "TICKETPULSE_TEST_REDIS"

// OnCluster reports whether Redis hands out cluster clients (TICKETPULSE_TEST_REDIS=cluster).
func OnCluster() bool { return os.Getenv(RedisModeEnv) == "cluster" }

// Redis returns a client of a redis-server shared by the test binary, with an empty keyspace,
// or of the shared Redis Cluster when TICKETPULSE_TEST_REDIS=cluster. Tests that use it must not
// run in parallel with each other. Under -short it skips.
func Redis(t testing.TB) redis.UniversalClient {
	t.Helper()
	if OnCluster() {
		_, c := RedisCluster(t)
		return c
	}
	return RedisSingle(t)
}

// RedisURL is the URL a service reaches c with, c being a client Redis, RedisSingle or
// RedisCluster handed out: a cluster's URL lists its nodes as seeds.
func RedisURL(c redis.UniversalClient) string {
	switch c := c.(type) {
	case *redis.ClusterClient:
		return clusterURL(c.Options().Addrs)
	case *redis.Client:
		return "redis://" + c.Options().Addr + "/" + strconv.Itoa(c.Options().DB)
	}
	panic(fmt.Sprintf("testenv.RedisURL: %T is not a client testenv hands out", c))
}

// RedisSingle is Redis on one redis-server whatever TICKETPULSE_TEST_REDIS says, for tests of
// what only a single server has (databases other than 0, one server's INFO or restarts).
func RedisSingle(t testing.TB) *redis.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real redis-server; skipped in -short mode")
	}
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "ticketpulse-redis-")
		if sharedErr == nil {
			sharedRedis, sharedErr = StartRedis(sharedDir)
		}
	})
	if sharedErr != nil {
		t.Fatalf("redis: %v", sharedErr)
	}
	c := redis.NewClient(&redis.Options{Addr: sharedRedis.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatalf("flush redis: %v", err)
	}
	return c
}

// Shutdown stops the shared redis-server and Redis Cluster; call it from TestMain after m.Run.
func Shutdown() {
	if sharedRedis != nil {
		sharedRedis.Kill()
		os.RemoveAll(sharedDir)
	}
	if sharedClust != nil {
		sharedClust.Kill()
		os.RemoveAll(clusterDir)
	}
}

// NATS starts an embedded JetStream server for one test and returns it with its client URL.
func NATS(t testing.TB) (*server.Server, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real NATS server; skipped in -short mode")
	}
	s, err := natsembed.Start(natsembed.Options{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Sync: "1m", Name: "test"})
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s, s.ClientURL()
}

// JetStream connects a JetStream client to url for one test (closed when it ends) and creates
// the given streams.
func JetStream(t testing.TB, url string, streams ...jetstream.StreamConfig) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	for _, sc := range streams {
		// A cluster that has just formed may let the first requests time out, or answer 503
		// while it places replicas: asked again for up to 30 s.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			_, err := js.CreateOrUpdateStream(context.Background(), sc)
			if err == nil {
				break
			}
			apiErr, isAPI := errors.AsType[*jetstream.APIError](err)
			retry := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || (isAPI && apiErr.Code == 503)
			if !retry || time.Now().After(deadline) {
				t.Fatalf("create stream %s: %v", sc.Name, err)
			}
		}
	}
	return js
}

// RestartNATS starts a new server on addr (the old server's address, saved before it was shut
// down) and its store, as an operator restarting it would.
func RestartNATS(t testing.TB, addr, storeDir string) *server.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Options{Addr: addr, StoreDir: storeDir, Sync: "1m", Name: "test"})
	if err != nil {
		t.Fatalf("restart nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}
