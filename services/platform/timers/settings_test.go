package timers

import (
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

func TestSettings(t *testing.T) {
	env := map[string]string{"TICKETPULSE_TIMER_SHARDS": "4"}
	s := envflag.New("svc", "test", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var c Settings
	c.Register(s, Settings{Poll: 50 * time.Millisecond, Lease: 30 * time.Second, Shards: 16}, "timers")
	if err := s.Parse([]string{"-timer-lease", "5s"}); err != nil {
		t.Fatal(err)
	}
	if want := (Settings{Poll: 50 * time.Millisecond, Lease: 5 * time.Second, Shards: 4}); c != want {
		t.Fatalf("settings %+v, want %+v", c, want)
	}
	o := c.Apply(Options{Prefix: "tp:x:"})
	if o.Prefix != "tp:x:" || o.Shards != 4 || o.Lease != 5*time.Second {
		t.Errorf("Apply = %+v", o)
	}

	var v envflag.Checks
	Settings{Poll: 0, Lease: time.Millisecond, Shards: 0}.Check(&v)
	err := v.Err()
	for _, w := range []string{"-timer-poll 0s: must be positive", "-timer-lease 1ms: must be at least 1s", "-timer-shards 0: must be at least 1"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Check = %v, want %q", err, w)
		}
	}
}
