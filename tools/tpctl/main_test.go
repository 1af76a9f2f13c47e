package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

func tpctl(t *testing.T, stdin string, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = run(args, strings.NewReader(stdin), &out, &errb, lookup)
	return code, out.String(), errb.String()
}

var (
	keyLine  = regexp.MustCompile(`(?m)^tpk_[A-Za-z0-9_-]{43}$`)
	hashLine = regexp.MustCompile(`(?m)^sha256:[0-9a-f]{64}$`)
)

func TestNewPrintsKeyHashAndEntry(t *testing.T) {
	code, out, errOut := tpctl(t, "", nil, "apikey", "new", "-tenant", "acme", "-name", "ci-2026-12", "-scopes", "events:write, kpis:read,events:write")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	key := keyLine.FindString(out)
	hash := hashLine.FindString(out)
	if key == "" || hash == "" {
		t.Fatalf("no key or hash line in\n%s", out)
	}
	if auth.HashKey(key).String() != hash {
		t.Errorf("the printed hash is not the key's")
	}
	if strings.Count(out, key) != 1 {
		t.Errorf("the key is printed %d times, want once", strings.Count(out, key))
	}
	want := "Set KEY_HASH_ACME_CI_2026_12 to the hash where the services run.\n\n" +
		"Tenants file entry:\n" +
		"tenants:\n  acme:\n    api_keys:\n      - {name: ci-2026-12, scopes: [events:write, kpis:read], hash: {env: KEY_HASH_ACME_CI_2026_12}}\n"
	if !strings.HasSuffix(out, want) {
		t.Errorf("output\n%s\nwant it to end with\n%s", out, want)
	}
	// The key passes the parser the services use.
	if _, kind, err := auth.ParseBearer("Bearer " + key); err != nil || kind != auth.CredentialAPIKey {
		t.Errorf("printed key does not parse: %v", err)
	}
}

func TestNewWritesFiles(t *testing.T) {
	dir := t.TempDir()
	keyFile, hashFile := filepath.Join(dir, "acme-api-key"), filepath.Join(dir, "acme ci.hash")
	code, out, errOut := tpctl(t, "", map[string]string{"TICKETPULSE_SCOPES": "escalations:read"},
		"apikey", "new", "-tenant", "acme", "-name", "console", "-out-key", keyFile, "-out-hash", hashFile)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	keyBytes, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(keyBytes))
	if !keyLine.MatchString(key) || strings.Contains(out, key) {
		t.Fatalf("key file %q; output must not show it:\n%s", keyBytes, out)
	}
	hashBytes, err := os.ReadFile(hashFile)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := auth.ParseKeyHash(string(hashBytes)); err != nil || h != auth.HashKey(key) {
		t.Fatalf("hash file %q: %v", hashBytes, err)
	}
	for path, want := range map[string]os.FileMode{keyFile: 0o600, hashFile: 0o644 &^ umask(t)} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	wantEntry := "      - {name: console, scopes: [escalations:read], hash: {file: " + `"` + hashFile + `"` + "}}\n"
	if !strings.HasSuffix(out, wantEntry) || !strings.Contains(out, "written to "+keyFile+" (mode 0600)") {
		t.Errorf("output\n%s\nwant the entry %q", out, wantEntry)
	}

	// Never overwritten: a second run refuses and leaves both files as they were.
	code, _, errOut = tpctl(t, "", nil, "apikey", "new", "-tenant", "acme", "-name", "console", "-scopes", "kpis:read", "-out-key", keyFile)
	if code != 1 || !strings.Contains(errOut, "create "+keyFile+": open "+keyFile+": file exists") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if again, _ := os.ReadFile(keyFile); !bytes.Equal(again, keyBytes) {
		t.Errorf("the key file changed")
	}
}

func umask(t *testing.T) os.FileMode {
	f := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(f, nil, 0o777); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(f)
	return 0o777 &^ fi.Mode().Perm()
}

func TestNewOperator(t *testing.T) {
	code, out, errOut := tpctl(t, "", nil, "apikey", "new", "-operator", "-name", "ops", "-hash-env", "OPS_HASH")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := "operators:\n  api_keys:\n    - {name: ops, hash: {env: OPS_HASH}}\n"
	if !strings.HasSuffix(out, want) || !keyLine.MatchString(out) || !strings.Contains(out, `API key "ops" of the operators.`) {
		t.Errorf("output\n%s", out)
	}
}

func TestNewBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing tenant", []string{"-name", "ci", "-scopes", "kpis:read"},
			"tpctl apikey new: -tenant: required (or -operator for an operator key)\n"},
		{"bad tenant", []string{"-tenant", "Acme!", "-name", "ci", "-scopes", "kpis:read"},
			"tpctl apikey new: -tenant \"Acme!\": must match [a-z0-9][a-z0-9_-]{0,62}\n"},
		{"unknown scope", []string{"-tenant", "acme", "-name", "ci", "-scopes", "kpis:read,events:read"},
			"tpctl apikey new: -scopes: unknown scope \"events:read\" (want one of events:write, kpis:read, escalations:read, escalations:write, notifications:read, notifications:test, operator)\n"},
		{"operator as a scope", []string{"-tenant", "acme", "-name", "ci", "-scopes", "operator"},
			"tpctl apikey new: -scopes: operator is not a tenant scope; use -operator\n"},
		{"no scopes, no name", []string{"-tenant", "acme"},
			"tpctl apikey new: -name \"\": must match [a-z0-9][a-z0-9._-]{0,62}\n-scopes: required, e.g. events:write,kpis:read\n"},
		{"operator with tenant", []string{"-operator", "-tenant", "acme", "-name", "ops"},
			"tpctl apikey new: -operator: an operator key has no tenant and every scope; drop -tenant and -scopes\n"},
		{"hash env and file", []string{"-tenant", "acme", "-name", "ci", "-scopes", "kpis:read", "-hash-env", "X", "-out-hash", "h"},
			"tpctl apikey new: -hash-env: the entry references the -out-hash file; give one of them\n"},
		{"bad hash env", []string{"-tenant", "acme", "-name", "ci", "-scopes", "kpis:read", "-hash-env", "1-X"},
			"tpctl apikey new: -hash-env \"1-X\": not an environment variable name\n"},
		{"same file twice", []string{"-tenant", "acme", "-name", "ci", "-scopes", "kpis:read", "-out-key", "f", "-out-hash", "f"},
			"tpctl apikey new: -out-key and -out-hash name the same file\n"},
		{"stray argument", []string{"-tenant", "acme", "-name", "ci", "-scopes", "kpis:read", "extra"},
			"tpctl apikey new: unexpected arguments: [\"extra\"]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := tpctl(t, "", nil, append([]string{"apikey", "new"}, tt.args...)...)
			if code != 2 || errOut != tt.want || out != "" {
				t.Errorf("exit %d, stdout %q, stderr\n%s\nwant exit 2 and\n%s", code, out, errOut, tt.want)
			}
		})
	}
	t.Run("unknown flag", func(t *testing.T) {
		code, out, errOut := tpctl(t, "", nil, "apikey", "new", "-tenants", "acme")
		if code != 2 || out != "" || !strings.Contains(errOut, "flag provided but not defined: -tenants") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

func TestHelp(t *testing.T) {
	code, out, errOut := tpctl(t, "", nil, "apikey", "new", "-h")
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, flag := range []string{"-tenant", "-operator", "-name", "-scopes", "-out-key", "-out-hash", "-hash-env"} {
		if !strings.Contains(errOut, "  "+flag+"  (env TICKETPULSE_") {
			t.Errorf("-h lacks %s:\n%s", flag, errOut)
		}
	}
	code, out, _ = tpctl(t, "", nil, "-h")
	if code != 0 || !strings.Contains(out, "tpctl apikey hash") {
		t.Errorf("exit %d, usage %q", code, out)
	}
	for _, args := range [][]string{nil, {"apikey"}, {"apikey", "show"}, {"key", "new"}} {
		if code, _, errOut := tpctl(t, "", nil, args...); code != 2 || !strings.Contains(errOut, "Usage:") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
}

func TestHash(t *testing.T) {
	key, hash, _ := auth.NewKey()
	code, out, errOut := tpctl(t, key+"\n", nil, "apikey", "hash")
	if code != 0 || errOut != "" || out != hash.String()+"\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	tests := []struct {
		name, stdin string
		args        []string
		code        int
		want        string
	}{
		{"empty", "\n", nil, 1, "tpctl apikey hash: standard input is empty: want one API key\n"},
		{"not a key", "hunter2-but-longer", nil, 1, "tpctl apikey hash: standard input is not a Ticketpulse API key (tpk_ and 47 characters in all)\n"},
		{"two keys", key + "\n" + key, nil, 1, "tpctl apikey hash: standard input is not a Ticketpulse API key (tpk_ and 47 characters in all)\n"},
		{"too long", strings.Repeat("a", maxKeyInput+1), nil, 1, "tpctl apikey hash: standard input is longer than 4096 bytes: want one API key\n"},
		{"key as argument", "", []string{key}, 2, "tpctl apikey hash: unexpected arguments: the key is read from standard input, never from the command line\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := tpctl(t, tt.stdin, nil, append([]string{"apikey", "hash"}, tt.args...)...)
			if code != tt.code || errOut != tt.want || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
}
