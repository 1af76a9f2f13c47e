package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ticketpulse/ticketpulse/services/platform/natsembed"
)

// errBusy marks an address tpdev wanted that something else holds.
var errBusy = errors.New("is in use")

// checkFree fails with errBusy when addr cannot be bound now.
func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s %w", addr, errBusy)
	}
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return l.Close()
}

// greeting reads what a server at addr says first, or its answer to hello, for telling the
// user what already holds a port.
func greeting(addr, hello string) string {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if hello != "" {
		if _, err := c.Write([]byte(hello)); err != nil {
			return ""
		}
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

// startNATS runs the embedded NATS server with JetStream, its store under dir.
func startNATS(addr, dir, sync string) (*server.Server, error) {
	if err := checkFree(addr); err != nil {
		if strings.HasPrefix(greeting(addr, ""), "INFO ") {
			return nil, fmt.Errorf("a NATS server already listens on %s: use it with TICKETPULSE_NATS_URL=nats://%s (it needs JetStream), or set TICKETPULSE_NATS_ADDR to another address for the embedded one", addr, addr)
		}
		return nil, fmt.Errorf("%w: set TICKETPULSE_NATS_ADDR to another address (e.g. 127.0.0.1:4223) for the embedded NATS server, or TICKETPULSE_NATS_URL to use a running one", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("nats store: %w", err)
	}
	s, err := natsembed.Start(natsembed.Options{Addr: addr, StoreDir: dir, Sync: sync, Name: "tpdev"})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	return s, nil
}

// redisArgs are the settings of DESIGN.md §6: AOF on with one fsync a second, no RDB snapshots;
// and hash-max-listpack-entries as deploy/redis.conf sets it.
func redisArgs(host, port, dir string) []string {
	return []string{
		"--bind", host, "--port", port, "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
		"--hash-max-listpack-entries", "128",
		"--protected-mode", "yes", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
	}
}

// startRedis runs redis-server on addr with its data under dir and waits until it answers PING.
func startRedis(ctx context.Context, bin, addr, dir string, out, errOut *prefixWriter) (*proc, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%s not found: run scripts/ensure-deps.sh to install it (make run does this for you), or set TICKETPULSE_REDIS_URL to use a running Redis", bin)
	}
	if err := checkFree(addr); err != nil {
		url := "redis://" + addr + "/0"
		if isRedis(greeting(addr, "PING\r\n")) {
			return nil, fmt.Errorf("a Redis server already answers on %s (perhaps the system's): use it with TICKETPULSE_REDIS_URL=%s make run, or set TICKETPULSE_REDIS_ADDR=127.0.0.1:6380 to start a private one there", addr, url)
		}
		return nil, fmt.Errorf("%w: set TICKETPULSE_REDIS_ADDR to another address (e.g. 127.0.0.1:6380) for tpdev's Redis, or TICKETPULSE_REDIS_URL to use a running one", err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("redis address %q: %w", addr, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redis data dir: %w", err)
	}
	p, err := startProc("redis", exec.Command(path, redisArgs(host, port, dir)...), out, errOut)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for !isPong(greeting(addr, "PING\r\n")) {
		if p.exited() {
			return nil, fmt.Errorf("redis-server exited at start (%v); see %s", p.err, filepath.Join(dir, "redis.log"))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = p.stop(time.Second, nil)
			return nil, fmt.Errorf("redis-server on %s did not answer PING within 10s; see %s", addr, filepath.Join(dir, "redis.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p, nil
}

func isPong(reply string) bool { return strings.HasPrefix(reply, "+PONG") }

// isRedis also accepts the refusals a password-protected or protected-mode Redis answers with.
func isRedis(reply string) bool {
	return isPong(reply) || strings.HasPrefix(reply, "-NOAUTH") || strings.HasPrefix(reply, "-DENIED")
}
