package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// Docker cannot run in every development or CI environment, so the deploy configs are checked
// here with the same server code and program the containers run.

func TestDeployNATSConfigSyncsAlways(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The file reads the services' passwords from the environment and fails without them.
	for _, svc := range []string{"INGEST", "KPI", "ESCALATION", "NOTIFY", "CONSOLE"} {
		t.Setenv("TICKETPULSE_"+svc+"_NATS_PASSWORD", "test-"+svc)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(root, "deploy", "nats.conf"))
	if err != nil {
		t.Fatalf("deploy/nats.conf: %v", err)
	}
	if !opts.JetStream || !opts.SyncAlways || opts.StoreDir != "/data" || opts.Port != 4222 || opts.HTTPPort != 8222 {
		t.Fatalf("deploy/nats.conf: jetstream=%v sync_always=%v store_dir=%q port=%d http_port=%d; want true, true, /data, 4222, 8222",
			opts.JetStream, opts.SyncAlways, opts.StoreDir, opts.Port, opts.HTTPPort)
	}
}

func TestDeployRedisConfigKeepsAOFEverySecond(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real redis-server")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := testenv.RedisBinary()
	if err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// The file's own bind and port suit a container; only those are overridden here.
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, filepath.Join(root, "deploy", "redis.conf"),
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", t.TempDir(), "--protected-mode", "yes")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(10 * time.Second)
	for !isPong(greeting(addr, "PING\r\n")) {
		select {
		case <-exited:
			t.Fatalf("redis-server rejected deploy/redis.conf:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server with deploy/redis.conf did not answer PING within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for key, want := range map[string]string{"appendonly": "yes", "appendfsync": "everysec", "save": "", "hash-max-listpack-entries": "128"} {
		got, err := c.ConfigGet(ctx, key).Result()
		if err != nil || got[key] != want {
			t.Errorf("deploy/redis.conf: %s = %q (%v), want %q", key, got[key], err, want)
		}
	}
}
