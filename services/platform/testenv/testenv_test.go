package testenv

import (
	"context"
	"os"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

func TestRedisIsRealAndEmpty(t *testing.T) {
	c := Redis(t)
	ctx := context.Background()
	if n := c.DBSize(ctx).Val(); n != 0 {
		t.Fatalf("fresh keyspace has %d keys", n)
	}
	// EVAL proves a real server: a mock would not run Lua.
	got, err := c.Eval(ctx, "return redis.call('INCRBY', KEYS[1], ARGV[1])", []string{"k"}, 41).Int()
	if err != nil || got != 41 {
		t.Fatalf("eval: %d, %v", got, err)
	}
}

// Tests and benchmarks run Redis as deploy/redis.conf does: AOF each second, and the hash
// threshold kpi's write path is measured with.
func TestRedisSettingsMatchDeploy(t *testing.T) {
	c := Redis(t)
	ctx := context.Background()
	for key, want := range map[string]string{"appendonly": "yes", "appendfsync": "everysec", "save": "", "hash-max-listpack-entries": "128"} {
		got, err := c.ConfigGet(ctx, key).Result()
		if err != nil || got[key] != want {
			t.Errorf("CONFIG GET %s = %q (%v), want %q", key, got[key], err, want)
		}
	}
}

func TestNATSHasJetStream(t *testing.T) {
	_, url := NATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := nc.JetStream()
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("jetstream not enabled: %v", err)
	}
}

// A server started with users refuses a client that does not log in; one from parsed options
// keeps their users but not their port.
func TestNATSWithUsers(t *testing.T) {
	users := []*server.User{{Username: "u", Password: "p"}}
	_, url := NATSWith(t, func(o *server.Options) { o.Users = users })
	_, fromOpts := NATSFromOptions(t, &server.Options{Port: 4222, JetStream: true, Users: users})
	for _, u := range []string{url, fromOpts} {
		if nc, err := nats.Connect(u); err == nil {
			nc.Close()
			t.Errorf("%s: connected without logging in", u)
		}
		nc, err := nats.Connect(u, nats.UserInfo("u", "p"))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		nc.Close()
	}
	if fromOpts == "nats://127.0.0.1:4222" {
		t.Error("NATSFromOptions kept the options' port")
	}
}
