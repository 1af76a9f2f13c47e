package service

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// deps are servers owned by one test, so the test may break them.
type deps struct {
	nats    *server.Server
	natsURL string
	redis   *testenv.RedisServer
}

func newDeps(t *testing.T) *deps {
	t.Helper()
	ns, url := testenv.NATS(t)
	rs, err := testenv.StartRedis(t.TempDir())
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(rs.Kill)
	return &deps{nats: ns, natsURL: url, redis: rs}
}
