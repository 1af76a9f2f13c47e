package testenv

import (
	"context"
	"os"
	"testing"

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
