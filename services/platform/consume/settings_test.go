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

func TestWatermarkInterval(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want time.Duration
	}{
		{name: "default", want: time.Second},
		{name: "env", env: map[string]string{"TICKETPULSE_WATERMARK_INTERVAL": "250ms"}, want: 250 * time.Millisecond},
		{name: "flag over env", env: map[string]string{"TICKETPULSE_WATERMARK_INTERVAL": "250ms"}, args: []string{"-watermark-interval", "0"}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := envflag.New("svc", "test", func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			var got time.Duration
			RegisterWatermark(s, &got)
			if err := s.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("-watermark-interval = %s, want %s", got, tt.want)
			}
		})
	}
	s := envflag.New("svc", "test", func(string) (string, bool) { return "", false })
	var d time.Duration
	RegisterWatermark(s, &d)
	var help strings.Builder
	s.PrintUsage(&help)
	for _, w := range []string{"-watermark-interval", "TICKETPULSE_WATERMARK_INTERVAL", "0 turns it off: writes Redis loses after their messages were acknowledged"} {
		if !strings.Contains(help.String(), w) {
			t.Errorf("-h lacks %q:\n%s", w, help.String())
		}
	}
	var v envflag.Checks
	CheckWatermark(&v, -time.Second)
	if err := v.Err(); err == nil || err.Error() != "-watermark-interval -1s: must not be negative" {
		t.Errorf("Check = %v", err)
	}
}
