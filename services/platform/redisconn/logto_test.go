package redisconn

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// lockedBuffer is a log destination safe for go-redis's pool goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// go-redis's own messages (its pool's failed dials) reach the service's structured log.
func TestLogToTakesTheClientsMessages(t *testing.T) {
	var out lockedBuffer
	LogTo(slog.New(slog.NewJSONHandler(&out, nil)).With("service", "test"))
	t.Cleanup(func() { LogTo(slog.New(slog.DiscardHandler)) })
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !strings.Contains(out.String(), "failed to dial") && ctx.Err() == nil {
		if err := c.Ping(ctx).Err(); err == nil {
			t.Fatal("a ping to a closed port succeeded")
		}
	}
	line := out.String()
	for _, want := range []string{`"level":"WARN"`, `"msg":"redis client"`, `"service":"test"`, `"detail":"connection pool: failed to dial`} {
		if !strings.Contains(line, want) {
			t.Errorf("log lacks %s:\n%s", want, line)
		}
	}
}
