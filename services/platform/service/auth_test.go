package service

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// startsWith runs Main with args as a service whose run is only New: it starts, so it stops.
func startsWith(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stderr strings.Builder
	var cfg mainConfig
	code := Main(testSpec, append([]string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0"}, args...), &stderr, &cfg,
		func(ctx context.Context, c mainConfig, log *slog.Logger) error {
			s, err := New(ctx, testSpec, c.Common, Hooks{}, log)
			if err != nil {
				return err
			}
			return s.Close()
		})
	return code, stderr.String()
}

// A service given wrong credentials refuses to start, says which server refused and why, and
// never shows the password it was given.
func TestWrongCredentialsRefuseToStart(t *testing.T) {
	ns, natsURL := testenv.NATSWith(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "test", Password: "nats-pw"}}
	})
	rs, err := testenv.StartRedis(t.TempDir(), "--user", "default", "off", "--user", "test", "on", ">redis-pw", "~tp:*", "+@all")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Kill)
	natsHost := strings.TrimPrefix(natsURL, "nats://")
	goodNATS := "nats://test:nats-pw@" + natsHost
	goodRedis := "redis://test:redis-pw@" + rs.Addr + "/0"
	tests := []struct {
		name       string
		nats       string
		redis      string
		wantCode   int
		wantStderr string
	}{
		{name: "right credentials", nats: goodNATS, redis: goodRedis, wantCode: 0, wantStderr: `msg=connected service=test nats=nats://test:xxxxx@` + ns.Addr().String()},
		{name: "wrong nats password", nats: "nats://test:guess-nats@" + natsHost, redis: goodRedis, wantCode: 1,
			wantStderr: `err="connect nats nats://test:xxxxx@` + ns.Addr().String() + `: nats: Authorization Violation"`},
		{name: "no nats credentials", nats: natsURL, redis: goodRedis, wantCode: 1,
			wantStderr: `err="connect nats nats://` + ns.Addr().String() + `: nats: Authorization Violation"`},
		{name: "wrong redis password", nats: goodNATS, redis: "redis://test:guess-redis@" + rs.Addr + "/0", wantCode: 1,
			wantStderr: `err="ping redis redis://test:xxxxx@` + rs.Addr + `/0: WRONGPASS invalid username-password pair or user is disabled."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := startsWith(t, "-nats-url", tt.nats, "-redis-url", tt.redis)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d with %s", code, stderr, tt.wantCode, tt.wantStderr)
			}
			for _, secret := range []string{"nats-pw", "redis-pw", "guess-"} {
				if strings.Contains(stderr, secret) {
					t.Errorf("stderr shows the password %q:\n%s", secret, stderr)
				}
			}
		})
	}
}

// The NATS and Redis client settings that cannot work stop the service before it connects,
// exit 2, each named by its flag.
func TestClientSettingsChecked(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{name: "nats cert without key", args: []string{"-nats-tls-cert", file}, wantStderr: "test: -nats-tls-cert and -nats-tls-key: give both or neither"},
		{name: "creds and nkey", args: []string{"-nats-creds", file, "-nats-nkey", file}, wantStderr: "test: -nats-creds and -nats-nkey: give one of them, not both"},
		{name: "unreadable creds", args: []string{"-nats-creds", missing}, wantStderr: "test: -nats-creds: " + missing + ": no such file or directory"},
		{name: "unreadable nkey", args: []string{"-nats-nkey", missing}, wantStderr: "test: -nats-nkey: " + missing + ": no such file or directory"},
		{name: "unreadable nats ca", args: []string{"-nats-tls-ca", missing}, wantStderr: "test: -nats-tls-ca: " + missing + ": no such file or directory"},
		{name: "redis key without cert", args: []string{"-redis-tls-key", file}, wantStderr: "test: -redis-tls-cert and -redis-tls-key: give both or neither"},
		{name: "unreadable redis ca", args: []string{"-redis-tls-ca", missing}, wantStderr: "test: -redis-tls-ca: " + missing + ": no such file or directory"},
		{name: "unknown redis mode", args: []string{"-redis-mode", "ring"}, wantStderr: "test: -redis-mode \"ring\": want single, cluster or sentinel"},
		{name: "master name in cluster mode", args: []string{"-redis-mode", "cluster", "-redis-master-name", "tickets"},
			wantStderr: "test: -redis-master-name \"tickets\": only with -redis-mode sentinel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			var cfg mainConfig
			ran := false
			code := Main(testSpec, tt.args, &stderr, &cfg, func(context.Context, mainConfig, *slog.Logger) error {
				ran = true
				return nil
			})
			if code != 2 || ran || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("Main = %d (ran %v), stderr %q; want 2 with %q", code, ran, stderr.String(), tt.wantStderr)
			}
		})
	}
}

// -h lists the client settings, and a password given through the environment stays hidden.
func TestHelpHidesPasswords(t *testing.T) {
	t.Setenv("TICKETPULSE_NATS_URL", "nats://kpi:env-nats-pw@127.0.0.1:4222")
	t.Setenv("TICKETPULSE_REDIS_URL", "redis://kpi:env-redis-pw@127.0.0.1:6379/0")
	var stderr strings.Builder
	var cfg mainConfig
	if code := Main(testSpec, []string{"-h"}, &stderr, &cfg, nil); code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	help := stderr.String()
	for _, want := range []string{"-nats-creds", "-nats-nkey", "-nats-tls-ca", "-nats-tls-cert", "-nats-tls-key",
		"-redis-tls-ca", "-redis-tls-cert", "-redis-tls-key", "-redis-mode", "-redis-master-name", "TICKETPULSE_REDIS_MODE", "TICKETPULSE_NATS_TLS_CERT", "nats://kpi:xxxxx@127.0.0.1:4222"} {
		if !strings.Contains(help, want) {
			t.Errorf("-h lacks %s", want)
		}
	}
	if strings.Contains(help, "env-nats-pw") || strings.Contains(help, "env-redis-pw") {
		t.Errorf("-h shows a password:\n%s", help)
	}
}
