package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

type mainConfig struct {
	Common
	Workers int
}

func (c *mainConfig) Register(s *envflag.Set) {
	c.Common.Register(s, testSpec)
	s.Int(&c.Workers, "workers", 2, "Workers.")
}

func (c mainConfig) Validate() error {
	var v envflag.Checks
	v.AtLeastN("workers", c.Workers, 1)
	return v.Err()
}

func TestMainExitCodes(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name       string
		args       []string
		runErr     error
		wantCode   int
		wantRun    bool
		wantStderr string
	}{
		{name: "runs and stops", wantCode: 0, wantRun: true},
		{name: "help", args: []string{"-h"}, wantCode: 0, wantStderr: "TICKETPULSE_GRPC_ADDR"},
		{name: "unknown flag", args: []string{"-nope"}, wantCode: 2, wantStderr: "-nope"},
		{name: "invalid setting", args: []string{"-workers", "0"}, wantCode: 2, wantStderr: "test: -workers 0: must be at least 1"},
		{name: "no requests allowed", args: []string{"-http-max-concurrent", "0"}, wantCode: 2, wantStderr: "-http-max-concurrent 0: must be at least 1"},
		{name: "no streams allowed", args: []string{"-grpc-max-streams", "0"}, wantCode: 2, wantStderr: "-grpc-max-streams 0: must be between 1 and"},
		{name: "common and own settings", args: []string{"-workers", "0", "-http-max-concurrent", "-1"}, wantCode: 2,
			wantStderr: "test: -workers 0: must be at least 1\n-http-max-concurrent -1: must be at least 1"},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantCode: 2, wantStderr: `log level "loud"`},
		{name: "help names the admin server and tls", args: []string{"-h"}, wantCode: 0,
			wantStderr: "keep it on loopback or a private network"},
		{name: "tls cert without key", args: []string{"-tls-cert", "server.crt"}, wantCode: 2,
			wantStderr: "test: -tls-cert \"server.crt\": needs -tls-key as well\n"},
		{name: "tls key without cert", args: []string{"-tls-key", "server.key"}, wantCode: 2,
			wantStderr: "test: -tls-key \"server.key\": needs -tls-cert as well\n"},
		{name: "client CA without cert", args: []string{"-tls-client-ca", "ca.crt"}, wantCode: 2,
			wantStderr: "test: -tls-client-ca \"ca.crt\": needs -tls-cert and -tls-key (client certificates are asked for on TLS connections only)\n"},
		{name: "client CA and key without cert", args: []string{"-tls-client-ca", "ca.crt", "-tls-key", "server.key"}, wantCode: 2,
			wantStderr: "test: -tls-key \"server.key\": needs -tls-cert as well\n-tls-client-ca \"ca.crt\": needs -tls-cert"},
		{name: "run fails", runErr: boom, wantCode: 1, wantRun: true, wantStderr: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			var cfg mainConfig
			ran := false
			code := Main(testSpec, tt.args, &stderr, &cfg, func(ctx context.Context, got mainConfig, log *slog.Logger) error {
				ran = true
				if got.HTTPAddr != testSpec.HTTPAddr || got.Workers != 2 {
					t.Errorf("run got %+v, want the defaults", got)
				}
				return tt.runErr
			})
			if code != tt.wantCode || ran != tt.wantRun || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("Main = %d (ran %v), stderr %q; want %d (ran %v) with %q", code, ran, stderr.String(), tt.wantCode, tt.wantRun, tt.wantStderr)
			}
		})
	}
}

// The TLS settings come from the environment too, and are checked the same way.
func TestTLSSettingsFromTheEnvironment(t *testing.T) {
	t.Setenv("TICKETPULSE_TLS_KEY", "server.key")
	var stderr strings.Builder
	var cfg mainConfig
	code := Main(testSpec, nil, &stderr, &cfg, func(context.Context, mainConfig, *slog.Logger) error { return nil })
	if want := "test: -tls-key \"server.key\": needs -tls-cert as well\n"; code != 2 || stderr.String() != want {
		t.Errorf("Main = %d, stderr %q; want 2 with %q", code, stderr.String(), want)
	}
	t.Setenv("TICKETPULSE_TLS_CERT", "server.crt")
	t.Setenv("TICKETPULSE_TLS_CLIENT_CA", "ca.crt")
	t.Setenv("TICKETPULSE_ADMIN_ADDR", "127.0.0.1:7777")
	stderr.Reset()
	code = Main(testSpec, nil, &stderr, &cfg, func(_ context.Context, got mainConfig, _ *slog.Logger) error {
		if got.TLSCert != "server.crt" || got.TLSKey != "server.key" || got.TLSClientCA != "ca.crt" || got.AdminAddr != "127.0.0.1:7777" {
			t.Errorf("run got %+v, want the environment's TLS files and admin address", got.Common)
		}
		return nil
	})
	if code != 0 {
		t.Errorf("Main = %d, stderr %q; want 0", code, stderr.String())
	}
}

// The OTEL_* variables are checked with the settings: a bad one stops the service at start
// naming the variable, and -h lists them.
func TestOTELSettingsFromTheEnvironment(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	var stderr strings.Builder
	var cfg mainConfig
	code := Main(testSpec, []string{"-otlp-endpoint", "collector:4317"}, &stderr, &cfg, func(context.Context, mainConfig, *slog.Logger) error { return nil })
	if want := "test: OTEL_EXPORTER_OTLP_PROTOCOL \"http/json\": want grpc or http/protobuf\n"; code != 2 || stderr.String() != want {
		t.Errorf("Main = %d, stderr %q; want 2 with %q", code, stderr.String(), want)
	}
	stderr.Reset()
	if code := Main(testSpec, []string{"-h"}, &stderr, &cfg, nil); code != 0 {
		t.Fatalf("-h = %d", code)
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "_HEADERS", "_CERTIFICATE", "_CLIENT_CERTIFICATE", "_CLIENT_KEY",
		"_INSECURE", "_TIMEOUT", "_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_*", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED"} {
		if !strings.Contains(stderr.String(), v) {
			t.Errorf("-h does not name %s", v)
		}
	}
}

// A service without Redis or gRPC registers neither setting and listens only for HTTP.
func TestRegisterFollowsSpec(t *testing.T) {
	spec := Spec{Name: "plain", HTTPAddr: "127.0.0.1:8080", HTTPServes: "events API"}
	var c Common
	s := envflag.New("plain", "test", func(string) (string, bool) { return "", false })
	var help strings.Builder
	s.SetOutput(&help)
	c.Register(s, spec)
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c != Defaults(spec) {
		t.Errorf("registered defaults %+v, want %+v", c, Defaults(spec))
	}
	s.PrintUsage(&help)
	for _, absent := range []string{"-redis-url", "-redis-tls-ca", "-redis-tls-cert", "-redis-tls-key", "-grpc-addr", "-grpc-max-streams"} {
		if strings.Contains(help.String(), absent) {
			t.Errorf("-h of a service without it lists %s", absent)
		}
	}
	for _, present := range []string{"-admin-addr", "TICKETPULSE_ADMIN_ADDR", "-tls-cert", "TICKETPULSE_TLS_CERT", "-tls-key", "TICKETPULSE_TLS_KEY", "-tls-client-ca", "TICKETPULSE_TLS_CLIENT_CA"} {
		if !strings.Contains(help.String(), present) {
			t.Errorf("-h of every service lists %s; it is missing", present)
		}
	}
	if !strings.Contains(help.String(), "(events API) listens on; use 0.0.0.0:8080 inside a container") {
		t.Errorf("-h does not say what the HTTP server serves:\n%s", help.String())
	}
}

// A service's GCPercent applies unless GOGC is set, and -h says so.
func TestMainSetsGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	t.Setenv("GOGC", "") // restores whatever the environment had after the test
	os.Unsetenv("GOGC")
	spec := testSpec
	spec.GCPercent = 400
	gcDuringRun := func() int {
		var got int
		var cfg mainConfig
		code := Main(spec, nil, io.Discard, &cfg, func(context.Context, mainConfig, *slog.Logger) error {
			got = debug.SetGCPercent(-1)
			debug.SetGCPercent(got)
			return nil
		})
		if code != 0 {
			t.Fatalf("Main = %d", code)
		}
		return got
	}
	if got := gcDuringRun(); got != 400 {
		t.Errorf("GOGC unset: the collector's target is %d, want the service's 400", got)
	}
	debug.SetGCPercent(100)
	t.Setenv("GOGC", "100")
	if got := gcDuringRun(); got != 100 {
		t.Errorf("GOGC set: the collector's target is %d, want the environment's to stand (100)", got)
	}
	var stderr strings.Builder
	var cfg mainConfig
	Main(spec, []string{"-h"}, &stderr, &cfg, nil)
	if !strings.Contains(stderr.String(), "GOGC, Go's garbage collector target, is 400 unless the environment sets it") {
		t.Errorf("-h does not explain GOGC:\n%s", stderr.String())
	}
}
