package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/tenants"
)

// readKey returns the key in tenant's key file after checking the file is private.
func readKey(t *testing.T, runDir, tenant string) string {
	t.Helper()
	path := filepath.Join(runDir, "secrets", tenant+"-api-key")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// loadDemo reads the written tenants file with the services' own parser.
func loadDemo(t *testing.T, path string) *tenants.Config[tenants.NoSources] {
	t.Helper()
	cfg, err := tenants.Load(path, func(string) string { return "" }, tenants.SourcesParser[tenants.NoSources](nil))
	if err != nil {
		t.Fatalf("the services would refuse %s: %v", path, err)
	}
	return cfg
}

func TestDevTenantsWritesAKeyPerDemoTenant(t *testing.T) {
	runDir := t.TempDir()
	path, token, keys, err := devTenants(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(runDir, "tenants.yaml") || token == "" {
		t.Fatalf("devTenants = %q, token %q", path, token)
	}
	cfg := loadDemo(t, path)
	if got := slices.Sorted(func(yield func(string) bool) {
		for id := range cfg.Tenants {
			if !yield(id) {
				return
			}
		}
	}); !slices.Equal(got, []string{"acme", "globex"}) {
		t.Fatalf("tenants %v, want acme and globex", got)
	}
	for _, tenant := range demoTenants {
		if keys[tenant] != filepath.Join(runDir, "secrets", tenant+"-api-key") {
			t.Errorf("key file of %s = %q", tenant, keys[tenant])
		}
		key := readKey(t, runDir, tenant)
		if len(key) != auth.KeyLen || !strings.HasPrefix(key, auth.KeyPrefix) {
			t.Fatalf("%s's key file holds %d bytes, not an API key", tenant, len(key))
		}
		ten, _ := cfg.Tenant(tenant)
		if len(ten.APIKeys) != 1 {
			t.Fatalf("%s has %d keys, want 1", tenant, len(ten.APIKeys))
		}
		k := ten.APIKeys[0]
		if !k.Hash.Equal(auth.HashKey(key)) {
			t.Errorf("%s: the tenants file's hash is not the hash of the key in its key file", tenant)
		}
		if k.Name != "dev" || k.Revoked || !slices.Equal(k.Scopes, auth.TenantScopes) {
			t.Errorf("%s's key: name %q revoked %v scopes %v; want dev, active, every tenant scope", tenant, k.Name, k.Revoked, k.Scopes)
		}
	}
	if readKey(t, runDir, "acme") == readKey(t, runDir, "globex") {
		t.Fatal("acme and globex share a key")
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "url_token: {file: secrets/acme-freshdesk-token}") {
		t.Fatalf("acme's Freshdesk webhook is gone from the tenants file (%v):\n%s", err, b)
	}
}

func TestDevTenantsKeepsKeysAcrossRestarts(t *testing.T) {
	runDir := t.TempDir()
	_, token, _, err := devTenants(runDir)
	if err != nil {
		t.Fatal(err)
	}
	acme, globex := readKey(t, runDir, "acme"), readKey(t, runDir, "globex")
	// A key file copied in with looser permissions is narrowed again.
	if err := os.Chmod(filepath.Join(runDir, "secrets", "acme-api-key"), 0o644); err != nil {
		t.Fatal(err)
	}
	path, token2, _, err := devTenants(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if readKey(t, runDir, "acme") != acme || readKey(t, runDir, "globex") != globex {
		t.Fatal("a restart replaced a key whose hash was still in place")
	}
	if token2 != token {
		t.Fatal("a restart replaced the webhook token")
	}
	ten, _ := loadDemo(t, path).Tenant("acme")
	if !ten.APIKeys[0].Hash.Equal(auth.HashKey(acme)) {
		t.Fatal("after a restart the tenants file does not accept the kept key")
	}
}

func TestDevTenantsReplacesAKeyWhoseHashIsGone(t *testing.T) {
	_, other, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		spoil func(secrets string) error
	}{
		{name: "hash file removed", spoil: func(s string) error { return os.Remove(filepath.Join(s, "acme-api-key.hash")) }},
		{name: "hash file holds another key's hash", spoil: func(s string) error {
			return os.WriteFile(filepath.Join(s, "acme-api-key.hash"), []byte(other.String()+"\n"), 0o644)
		}},
		{name: "key file removed", spoil: func(s string) error { return os.Remove(filepath.Join(s, "acme-api-key")) }},
		{name: "key file not a key", spoil: func(s string) error {
			return os.WriteFile(filepath.Join(s, "acme-api-key"), []byte("hunter2\n"), 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runDir := t.TempDir()
			if _, _, _, err := devTenants(runDir); err != nil {
				t.Fatal(err)
			}
			acme, globex := readKey(t, runDir, "acme"), readKey(t, runDir, "globex")
			if err := tt.spoil(filepath.Join(runDir, "secrets")); err != nil {
				t.Fatal(err)
			}
			path, _, _, err := devTenants(runDir)
			if err != nil {
				t.Fatal(err)
			}
			fresh := readKey(t, runDir, "acme")
			if fresh == acme {
				t.Fatal("the key was kept although its hash was gone")
			}
			if readKey(t, runDir, "globex") != globex {
				t.Fatal("globex's intact key was replaced too")
			}
			ten, _ := loadDemo(t, path).Tenant("acme")
			if !ten.APIKeys[0].Hash.Equal(auth.HashKey(fresh)) {
				t.Fatal("the tenants file does not accept the new key")
			}
		})
	}
}

// Every command the summary prints against the APIs carries acme's key, read from its file; the
// webhook proves itself with its URL token instead.
func TestSummaryExamplesCarryTheKey(t *testing.T) {
	var out strings.Builder
	specs, err := parseServices("all")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	runDir := filepath.Join(root, ".run")
	st := &stack{specs: specs, con: newConsole(&out, false, []string{"tpdev"}), root: root, runDir: runDir,
		webhookToken: "tok", rulesFile: filepath.Join(runDir, "rules.yaml"), inbox: &inbox{},
		keyFiles: map[string]string{"acme": filepath.Join(runDir, "secrets", "acme-api-key"), "globex": filepath.Join(runDir, "secrets", "globex-api-key")}}
	st.printSummary("nats://127.0.0.1:4222", "redis://127.0.0.1:6379/0")
	text := out.String()
	for _, want := range []string{".run/secrets/acme-api-key", ".run/secrets/globex-api-key", "go run ./tools/tpctl apikey new -h"} {
		if !strings.Contains(text, want) {
			t.Errorf("the summary does not mention %q:\n%s", want, text)
		}
	}
	var commands int
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		var header string
		switch {
		case strings.HasPrefix(line, "curl "):
			header = `-H "Authorization: Bearer $(cat .run/secrets/acme-api-key)"`
		case strings.HasPrefix(line, "grpcurl -"):
			header = `-H "authorization: Bearer $(cat .run/secrets/acme-api-key)"`
		default:
			continue
		}
		commands++
		if strings.Contains(line, "/webhooks/") {
			if strings.Contains(line, "Bearer") || !strings.Contains(line, "?token=tok") {
				t.Errorf("the webhook example should carry its URL token and no key: %s", line)
			}
			continue
		}
		if !strings.Contains(line, header) {
			t.Errorf("example without %s:\n%s", header, line)
		}
	}
	// Two event posts, the webhook, the KPIs, the escalations and the deliveries.
	if commands != 6 {
		t.Fatalf("%d example commands, want 6:\n%s", commands, text)
	}
}

// With the user's tenants file there are no demo key files: the examples read the key from a
// variable the summary asks the user to set.
func TestSummaryWithTheUsersTenantsFile(t *testing.T) {
	var out strings.Builder
	specs, err := parseServices("ingest,kpi")
	if err != nil {
		t.Fatal(err)
	}
	st := &stack{specs: specs, con: newConsole(&out, false, []string{"tpdev"}), root: t.TempDir(), runDir: t.TempDir()}
	st.printSummary("nats://127.0.0.1:4222", "redis://127.0.0.1:6379/0")
	text := out.String()
	if !strings.Contains(text, "set ACME_API_KEY to a key of tenant acme") || strings.Contains(text, "acme-api-key") {
		t.Fatalf("summary:\n%s", text)
	}
	for _, want := range []string{`curl -sS -X POST -H "Authorization: Bearer $ACME_API_KEY"`, `grpcurl -plaintext -H "authorization: Bearer $ACME_API_KEY"`} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %s:\n%s", want, text)
		}
	}
}
