package consume

import (
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

func TestSettings(t *testing.T) {
	env := map[string]string{"TICKETPULSE_BATCH_MAX": "7"}
	s := envflag.New("svc", "test", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var c Settings
	c.Register(s, Settings{Durable: "svc", BatchMax: 100, Linger: 2 * time.Millisecond, AckWait: 30 * time.Second}, "TICKETS", "ticket events")
	if err := s.Parse([]string{"-ack-wait", "5s"}); err != nil {
		t.Fatal(err)
	}
	want := Settings{Durable: "svc", BatchMax: 7, Linger: 2 * time.Millisecond, AckWait: 5 * time.Second}
	if c != want {
		t.Fatalf("settings %+v, want %+v", c, want)
	}
	var help strings.Builder
	s.PrintUsage(&help)
	for _, w := range []string{"-durable  (env TICKETPULSE_DURABLE, default svc)", "TICKETS stream", "Most ticket events handled in one batch."} {
		if !strings.Contains(help.String(), w) {
			t.Errorf("-h lacks %q:\n%s", w, help.String())
		}
	}
	cfg := c.Apply(Config{Stream: "TICKETS", Durable: "other", Workers: 2})
	if cfg.Durable != "svc" || cfg.BatchMax != 7 || cfg.Linger != 2*time.Millisecond || cfg.AckWait != 5*time.Second || cfg.Stream != "TICKETS" || cfg.Workers != 2 {
		t.Errorf("Apply = %+v", cfg)
	}

	var v envflag.Checks
	Settings{BatchMax: 0, Linger: -1, AckWait: time.Millisecond}.Check(&v)
	err := v.Err()
	for _, w := range []string{"-batch-max 0: must be at least 1", "-batch-linger -1ns: must not be negative", "-ack-wait 1ms: must be at least 1s"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Check = %v, want %q", err, w)
		}
	}
}
