package main

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// A port held by a real server must be named, with the variable that avoids it.
func TestBusyPortsAreExplained(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real NATS and Redis servers")
	}
	ns, _ := testenv.NATS(t)
	rs, err := testenv.StartRedis(t.TempDir())
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(rs.Kill)
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var out bytes.Buffer
	w := newConsole(&out, false, []string{"redis"}).writer("redis", "")

	tests := []struct {
		name  string
		start func(addr string) error
		addr  string
		want  []string
	}{
		{name: "nats on the nats port", addr: ns.Addr().String(),
			start: func(addr string) error { _, err := startNATS(addr, t.TempDir(), "always"); return err },
			want:  []string{"a NATS server already listens on " + ns.Addr().String(), "TICKETPULSE_NATS_URL=nats://" + ns.Addr().String()}},
		{name: "something else on the nats port", addr: other.Addr().String(),
			start: func(addr string) error { _, err := startNATS(addr, t.TempDir(), "always"); return err },
			want:  []string{other.Addr().String(), "TICKETPULSE_NATS_ADDR"}},
		{name: "redis on the redis port", addr: rs.Addr,
			start: func(addr string) error {
				_, err := startRedis(context.Background(), "redis-server", addr, t.TempDir(), w, w)
				return err
			},
			want: []string{"a Redis server already answers on " + rs.Addr, "TICKETPULSE_REDIS_URL=redis://" + rs.Addr + "/0", "TICKETPULSE_REDIS_ADDR"}},
		{name: "something else on the redis port", addr: other.Addr().String(),
			start: func(addr string) error {
				_, err := startRedis(context.Background(), "redis-server", addr, t.TempDir(), w, w)
				return err
			},
			want: []string{other.Addr().String(), "TICKETPULSE_REDIS_ADDR"}},
		{name: "redis-server missing", addr: "127.0.0.1:0",
			start: func(addr string) error {
				_, err := startRedis(context.Background(), "redis-server-not-installed", addr, t.TempDir(), w, w)
				return err
			},
			want: []string{"redis-server-not-installed not found", "scripts/ensure-deps.sh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.start(tt.addr)
			if err == nil {
				t.Fatal("started on a busy port")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestStartRedisServesAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real redis-server")
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var out bytes.Buffer
	w := newConsole(&out, false, []string{"redis"}).writer("redis", "")
	p, err := startRedis(context.Background(), "redis-server", addr, t.TempDir(), w, w)
	if err != nil {
		t.Fatalf("startRedis: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	for key, want := range map[string]string{"appendonly": "yes", "appendfsync": "everysec", "bind": "127.0.0.1", "hash-max-listpack-entries": "128"} {
		got, err := c.ConfigGet(context.Background(), key).Result()
		if err != nil || got[key] != want {
			t.Errorf("CONFIG GET %s = %v, %v; want %s", key, got, err, want)
		}
	}
	if err := p.stop(10*time.Second, nil); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := checkFree(addr); err != nil {
		t.Fatalf("port still held after stop: %v", err)
	}
}
