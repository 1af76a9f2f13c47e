package yamlconf

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	parse := func(data []byte) (string, error) { return strings.ToUpper(string(data)), nil }
	_, err := LoadFile(path, "rules file", parse)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "read rules file: ") {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadFile(path, "rules file", parse); err != nil || got != "ABC" {
		t.Fatalf("LoadFile = %q, %v", got, err)
	}
}

func TestChecked(t *testing.T) {
	cfg := &struct{ N int }{N: 1}
	l := &Loader{File: "f.yaml"}
	if got, err := Checked(cfg, l); err != nil || got != cfg {
		t.Fatalf("no problems: %v, %v", got, err)
	}
	l.AddLine(3, "later")
	l.AddLine(1, "first")
	got, err := Checked(cfg, l)
	if got != nil || err == nil || err.Error() != "f.yaml:1: first\nf.yaml:3: later" {
		t.Fatalf("problems: %v, %v", got, err)
	}
}
