package testenv

import (
	"context"
	"testing"
)

// A restart from a snapshot brings back exactly the snapshot's keys, on the same address, with a
// new run_id, and with AOF on again so a crash afterwards keeps the restored data.
func TestRedisRestartFromSnapshot(t *testing.T) {
	s, c := NewRedis(t)
	ctx := context.Background()
	runID := func() string {
		info := c.InfoMap(ctx, "server").Val()
		return info["Server"]["run_id"]
	}
	if err := c.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot(t)
	if err := c.Set(ctx, "after", "2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	oldRun := runID()
	addr := s.Addr
	s.RestartFrom(t, snap)
	if s.Addr != addr {
		t.Fatalf("address %s, want %s", s.Addr, addr)
	}
	if got := c.Get(ctx, "before").Val(); got != "1" {
		t.Errorf("before = %q, want 1", got)
	}
	if n := c.Exists(ctx, "after").Val(); n != 0 {
		t.Errorf("a key written after the snapshot survived the restore")
	}
	if r := runID(); r == "" || r == oldRun {
		t.Errorf("run_id %q after restart, was %q", r, oldRun)
	}
	// Written after the restore, kept across a crash: AOF is on.
	if err := c.Set(ctx, "restored", "3", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "CONFIG", "SET", "appendfsync", "always").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "synced", "4", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"before": "1", "restored": "3", "synced": "4"} {
		if got := c.Get(ctx, k).Val(); got != want {
			t.Errorf("after a crash %s = %q, want %q", k, got, want)
		}
	}
}
