package app

import (
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

// The addresses are the contract other services and the docs use.
func TestDefaultsAndHelp(t *testing.T) {
	var cfg Config
	s := envflag.New(Name, "test", func(string) (string, bool) { return "", false })
	var help strings.Builder
	s.SetOutput(&help)
	cfg.Register(s)
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg.GRPCAddr != "127.0.0.1:9091" || cfg.HTTPAddr != "127.0.0.1:9191" {
		t.Fatalf("defaults %s %s", cfg.GRPCAddr, cfg.HTTPAddr)
	}
	s.PrintUsage(&help)
	for _, want := range []string{"TICKETPULSE_GRPC_ADDR", "TICKETPULSE_REDIS_URL", "EscalationService"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h lacks %q", want)
		}
	}
}
