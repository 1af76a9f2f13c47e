package testenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisSnapshot is a copy of a redis-server's whole dataset at one instant (an RDB file), to
// restart that server from later as if it had lost every write made since.
type RedisSnapshot struct {
	// File is the RDB copy; it lives in the test's temporary directory.
	File string
}

// NewRedis starts a private redis-server for one test (AOF everysec, in t.TempDir(), on a free
// loopback port), stopped when the test ends, and returns it with a client. Unlike Redis, the
// test may stop, restart and restore this server. Under -short it skips.
func NewRedis(t testing.TB) (*RedisServer, *redis.Client) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real redis-server; skipped in -short mode")
	}
	s, err := StartRedis(t.TempDir())
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(s.Kill)
	c := s.Client()
	t.Cleanup(func() { c.Close() })
	return s, c
}

// Client returns a new client of the server (no password, no TLS); it keeps working across
// restarts on the same port. The caller closes it.
func (s *RedisServer) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2, DisableIdentity: true})
}

// Snapshot copies the server's dataset as it is now: SAVE writes it synchronously (the server
// runs no command meanwhile, so the copy is one instant of its history) and the RDB is copied
// into t.TempDir(). The server keeps running. For servers without a password or TLS.
func (s *RedisServer) Snapshot(t testing.TB) *RedisSnapshot {
	t.Helper()
	snap, err := s.snapshot(t.TempDir())
	if err != nil {
		t.Fatalf("redis snapshot: %v", err)
	}
	return snap
}

func (s *RedisServer) snapshot(into string) (*RedisSnapshot, error) {
	c := s.Client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Save(ctx).Err(); err != nil {
		return nil, fmt.Errorf("SAVE: %w", err)
	}
	dst := filepath.Join(into, "snapshot.rdb")
	if err := copyFile(filepath.Join(s.Dir, s.dbfilename(ctx, c)), dst); err != nil {
		return nil, err
	}
	return &RedisSnapshot{File: dst}, nil
}

// RestartFrom stops the server without saving (SHUTDOWN NOSAVE), replaces its data with snap
// (its AOF is dropped), and starts it again on the same port and directory: Redis went back to
// the snapshot's instant, as after a crash that lost writes (AOF everysec) or a failover to a
// lagging replica, and it has a new run_id. AOF is on again when it returns (rewritten from the
// restored data), so a later Kill and Start keeps the restored state.
func (s *RedisServer) RestartFrom(t testing.TB, snap *RedisSnapshot) {
	t.Helper()
	if err := s.restartFrom(snap); err != nil {
		t.Fatalf("redis restart from snapshot: %v", err)
	}
}

func (s *RedisServer) restartFrom(snap *RedisSnapshot) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.Client()
	dbfile := s.dbfilename(ctx, c)
	// The reply never comes: the server exits. A server that does not exit is killed.
	_ = c.ShutdownNoSave(ctx).Err()
	c.Close()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.Kill()
	}
	for _, old := range []string{"appendonlydir", "appendonly.aof", dbfile} {
		if err := os.RemoveAll(filepath.Join(s.Dir, old)); err != nil {
			return err
		}
	}
	if err := copyFile(snap.File, filepath.Join(s.Dir, dbfile)); err != nil {
		return err
	}
	// With AOF on, Redis loads only the AOF; started with it off it loads the RDB, and turning
	// AOF on rewrites one from the loaded data. A later flag wins over an earlier one.
	args := s.args
	s.args = append(append([]string(nil), args...), "--appendonly", "no")
	err := s.Start()
	s.args = args
	if err != nil {
		return err
	}
	c = s.Client()
	defer c.Close()
	if err := c.ConfigSet(ctx, "appendonly", "yes").Err(); err != nil {
		return fmt.Errorf("turn AOF back on: %w", err)
	}
	for {
		info, err := c.Info(ctx, "persistence").Result()
		if err == nil && strings.Contains(info, "aof_enabled:1") && strings.Contains(info, "aof_rewrite_in_progress:0") &&
			strings.Contains(info, "aof_rewrite_scheduled:0") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("AOF rewrite after restore: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// dbfilename is the server's RDB file name (dump.rdb unless configured).
func (s *RedisServer) dbfilename(ctx context.Context, c *redis.Client) string {
	if m, err := c.ConfigGet(ctx, "dbfilename").Result(); err == nil && m["dbfilename"] != "" {
		return m["dbfilename"]
	}
	return "dump.rdb"
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", filepath.Base(src), err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", filepath.Base(dst), err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", filepath.Base(src), err)
	}
	return out.Close()
}
