package yamlconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"token": "s3cret\r\n", "bare": "s3cret", "empty": "\n", "big": "0123456789"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	refs := SecretRefs{Dir: dir, MaxFile: 8, Getenv: func(name string) string {
		return map[string]string{"TOKEN": "from-env"}[name]
	}}
	tests := []struct {
		name  string
		give  string
		want  string // value and where it came from; "" when refused
		probs string
	}{
		{"env", "{env: TOKEN}", "from-env from environment variable TOKEN", ""},
		{"relative file, CRLF trimmed", "{file: token}", "s3cret from file $D/token", ""},
		{"absolute file", "{file: $D/bare}", "s3cret from file $D/bare", ""},
		{"unset variable", "{env: NOPE}", "", "f.yaml:1: x.env: environment variable NOPE is unset or empty"},
		{"bad variable name", "{env: 'A-B'}", "", `f.yaml:1: x.env: "A-B" is not an environment variable name`},
		{"empty variable name", "{env: ''}", "", "f.yaml:1: x.env: want a non-empty string, not an empty string"},
		{"missing file", "{file: gone}", "", "f.yaml:1: x.file: reading secret file $D/gone: no such file or directory"},
		{"empty file", "{file: empty}", "", "f.yaml:1: x.file: secret file $D/empty is empty"},
		{"directory", "{file: sub}", "", "f.yaml:1: x.file: $D/sub is not a regular file of at most 8 bytes"},
		{"too big", "{file: big}", "", "f.yaml:1: x.file: $D/big is not a regular file of at most 8 bytes"},
		{"pasted secret", "hunter2", "", "f.yaml:1: x: secrets are never written in this file; use {env: NAME} or {file: PATH}"},
		{"value key", "{value: hunter2}", "", "f.yaml:1: x: secrets are never written in this file; use {env: NAME} or {file: PATH}"},
		{"unknown key is not quoted", "{hunter2: 1}", "", "f.yaml:1: x: unknown key (allowed: env, file)"},
		{"duplicate key is not quoted", "{hunter2: 1, hunter2: 2}", "",
			"f.yaml:1: x: duplicate key (first on line 1)\nf.yaml:1: x: unknown key (allowed: env, file)"},
		{"both", "{env: TOKEN, file: token}", "", "f.yaml:1: x: set env: or file:, not both"},
		{"empty mapping", "{}", "", "f.yaml:1: x: want {env: NAME} or {file: PATH}"},
		{"null", "", "", "f.yaml:1: x: want {env: NAME} or {file: PATH}, not nothing"},
		{"list", "[a]", "", "f.yaml:1: x: want {env: NAME} or {file: PATH}, not a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			s, ok := l.Secret(value(t, strings.ReplaceAll(tt.give, "$D", dir)), "x", refs)
			got := ""
			if ok {
				got = fmt.Sprintf("%s from %s", s.Value, s.From)
			}
			if want := strings.ReplaceAll(tt.want, "$D", dir); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			if want := strings.ReplaceAll(tt.probs, "$D", dir); problems(l) != want {
				t.Errorf("problems:\n%s\nwant:\n%s", problems(l), want)
			}
		})
	}
}

func TestSecretDefaults(t *testing.T) {
	t.Setenv("YAMLCONF_TEST_SECRET", "x")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), make([]byte, MaxSecretFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &Loader{File: "f.yaml"}
	if s, ok := l.Secret(value(t, "{env: YAMLCONF_TEST_SECRET}"), "x", SecretRefs{}); !ok || string(s.Value) != "x" {
		t.Errorf("nil Getenv did not read the environment: %q, %v", s.Value, ok)
	}
	l.Secret(value(t, "{file: big}"), "x", SecretRefs{Dir: dir})
	want := fmt.Sprintf("f.yaml:1: x.file: %s is not a regular file of at most %d bytes", filepath.Join(dir, "big"), MaxSecretFile)
	if got := problems(l); got != want {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}
}

func TestSecretList(t *testing.T) {
	refs := SecretRefs{Getenv: func(name string) string { return strings.ToLower(name) }}
	tests := []struct {
		name  string
		give  string
		want  string
		probs string
	}{
		{"two", "[{env: A}, {env: B}]", "x[0]=a x[1]=b", ""},
		{"a bad one is left out", "\n  - {env: A}\n  - hunter2\n  - {env: C}", "x[0]=a x[2]=c",
			"f.yaml:3: x[1]: secrets are never written in this file; use {env: NAME} or {file: PATH}"},
		{"empty list, at its key", "\n  []", "", "f.yaml:1: x: needs at least one secret"},
		{"null", "", "", "f.yaml:1: x: needs at least one secret"},
		{"single reference", "{env: A}", "", "f.yaml:1: x: want a list of {env: NAME} or {file: PATH}, not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			root := l.Decode([]byte("v: "+tt.give+"\n"), "a mapping", "the file")
			var got []string
			l.SecretList(Pair{Key: root.Content[0], Val: root.Content[1]}, "x", refs, func(item *yaml.Node, path string, s Secret) {
				got = append(got, path+"="+string(s.Value))
			})
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("got %q, want %q", g, tt.want)
			}
			if got := problems(l); got != tt.probs {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.probs)
			}
		})
	}
}
