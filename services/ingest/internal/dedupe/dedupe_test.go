package dedupe

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

func store(t *testing.T, ttl time.Duration) *Store {
	t.Helper()
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url)
	s, err := Open(context.Background(), js, ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSeenAfterMark(t *testing.T) {
	ctx := context.Background()
	s := store(t, time.Hour)
	odd := "delivery/with spaces.and*wildcards>" + strings.Repeat("x", 300)
	for _, id := range []string{"a1b2", odd} {
		if seen, err := s.Seen(ctx, "acme", "chatwoot", id); err != nil || seen {
			t.Fatalf("%q before Mark: seen=%v err=%v", id, seen, err)
		}
		if err := s.Mark(ctx, "acme", "chatwoot", id); err != nil {
			t.Fatal(err)
		}
		if seen, err := s.Seen(ctx, "acme", "chatwoot", id); err != nil || !seen {
			t.Fatalf("%q after Mark: seen=%v err=%v", id, seen, err)
		}
	}
	// The same id from another tenant or source is another delivery.
	for _, other := range [][2]string{{"globex", "chatwoot"}, {"acme", "zammad"}} {
		if seen, _ := s.Seen(ctx, other[0], other[1], "a1b2"); seen {
			t.Errorf("delivery of acme/chatwoot seen as %s/%s", other[0], other[1])
		}
	}
}

func TestDeliveriesExpire(t *testing.T) {
	ctx := context.Background()
	s := store(t, time.Second)
	if err := s.Mark(ctx, "acme", "zammad", "d-1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen, err := s.Seen(ctx, "acme", "zammad", "d-1")
		if err != nil {
			t.Fatal(err)
		}
		if !seen {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("delivery still remembered 10 s after a 1 s TTL")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestUnavailable(t *testing.T) {
	s := store(t, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Seen(ctx, "acme", "zammad", "d-1"); err == nil {
		t.Error("Seen with a cancelled context succeeded")
	}
	if err := s.Mark(ctx, "acme", "zammad", "d-1"); err == nil {
		t.Error("Mark with a cancelled context succeeded")
	}
}
