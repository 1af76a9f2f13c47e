package app

import (
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

func TestCompactionFlags(t *testing.T) {
	tests := []struct {
		name              string
		env               map[string]string
		args              []string
		after, interval   time.Duration
		wantErr, wantHelp string
	}{
		{name: "defaults", after: 7 * 24 * time.Hour, interval: time.Minute},
		{name: "environment", env: map[string]string{"TICKETPULSE_COMPACT_AFTER": "72h", "TICKETPULSE_COMPACT_INTERVAL": "10s"},
			after: 72 * time.Hour, interval: 10 * time.Second},
		{name: "off, interval ignored", args: []string{"-compact-after", "0", "-compact-interval", "0"}},
		{name: "negative", args: []string{"-compact-after", "-1h"}, interval: time.Minute,
			wantErr: "-compact-after -1h0m0s: must not be negative"},
		{name: "no interval", args: []string{"-compact-interval", "0"}, after: 7 * 24 * time.Hour,
			wantErr: "-compact-interval 0s: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			s := envflag.New("kpi", "test", func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			var help strings.Builder
			s.SetOutput(&help)
			cfg.Register(s)
			if err := s.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if cfg.CompactAfter != tt.after && tt.wantErr == "" || cfg.CompactInterval != tt.interval && tt.name != "off, interval ignored" {
				t.Fatalf("compact-after %s, compact-interval %s; want %s and %s", cfg.CompactAfter, cfg.CompactInterval, tt.after, tt.interval)
			}
			// Only the compaction settings are under test: the rest is made valid.
			cfg.Consume = consume.Settings{BatchMax: 500, Linger: time.Millisecond, AckWait: 30 * time.Second}
			cfg.Workers, cfg.SuspectAfter, cfg.SnapshotInterval, cfg.RollupInterval = 2, 5, time.Second, time.Second
			err := cfg.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCompactionHelp(t *testing.T) {
	var cfg Config
	s := envflag.New("kpi", "test", func(string) (string, bool) { return "", false })
	var help strings.Builder
	s.SetOutput(&help)
	cfg.Register(s)
	s.PrintUsage(&help)
	for _, want := range []string{
		"-compact-after", "kpi_events_too_late_total", "0 keeps every ticket's events forever", "TICKETPULSE_COMPACT_AFTER",
		"-compact-interval", "at most 1000 per tenant", "TICKETPULSE_COMPACT_INTERVAL",
	} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, help.String())
		}
	}
}
