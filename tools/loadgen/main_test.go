package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/traffic"
	"github.com/ticketpulse/ticketpulse/tools/loadgen/internal/measure"
)

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		give       []string
		wantCode   int
		wantStderr string
	}{
		{name: "no command", give: nil, wantCode: 2, wantStderr: "Usage:"},
		{name: "unknown command", give: []string{"bogus"}, wantCode: 2, wantStderr: `unknown command "bogus"`},
		{name: "all help", give: []string{"all", "-h"}, wantCode: 0, wantStderr: "-drain-timeout"},
		{name: "remote target refused", give: []string{"all", "-ingest-url", "http://10.1.2.3:8080"}, wantCode: 2, wantStderr: "not a loopback address"},
		{name: "bad step", give: []string{"all", "-steps", "jetstream,teleport"}, wantCode: 2, wantStderr: `step "teleport"`},
		{name: "overload without its bound", give: []string{"all", "-steps", "overload"}, wantCode: 2, wantStderr: "overload-bound 0: the overload step needs ingest's -max-backlog"},
		{name: "page size over the limit", give: []string{"all", "-list-page-size", "5000"}, wantCode: 2, wantStderr: "at most 1000"},
		{name: "stack without binaries", give: []string{"stack", "-dir", "x"}, wantCode: 2, wantStderr: "missing"},
		{name: "gen unbounded", give: []string{"gen", "-events", "0"}, wantCode: 2, wantStderr: "at least one positive"},
		{name: "report without files", give: []string{"report"}, wantCode: 2, wantStderr: "usage: loadgen report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.give, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("code %d, stderr:\n%s\nwant code %d and %q", code, stderr.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}

func TestGenPrintsBatches(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"gen", "-events", "250", "-batch", "100", "-agents", "20", "-teams", "4"}, &stdout, &stderr); code != 0 {
		t.Fatalf("code %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var sizes []int
	for _, l := range lines {
		var batch []traffic.Event
		if err := json.Unmarshal([]byte(l), &batch); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		sizes = append(sizes, len(batch))
	}
	if len(sizes) != 3 || sizes[0] != 100 || sizes[1] != 100 || sizes[2] != 50 {
		t.Fatalf("batch sizes %v, want [100 100 50]", sizes)
	}
	if !strings.Contains(stderr.String(), "250 events") {
		t.Fatalf("summary %q", stderr.String())
	}
}

func TestReportMergesResults(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for _, label := range []string{"sync 2m", "sync always"} {
		b, err := json.Marshal(&measure.Result{Label: label, JetStream: &measure.Rate{PerSec: 1000}})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, strings.ReplaceAll(label, " ", "-")+".json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append([]string{"report"}, files...), &stdout, &stderr); code != 0 {
		t.Fatalf("code %d: %s", code, stderr.String())
	}
	for _, want := range []string{"| figure | sync 2m | sync always |", "| raw JetStream async publish (msgs/s) | 1,000 | 1,000 |"} {
		if !strings.Contains(stdout.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestAllAPIKeyFileRefused(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "nope")
	tests := []struct {
		name string
		file string
		want string
	}{
		{name: "missing", file: missing, want: "loadgen all: api-key-file: open " + missing + ": no such file or directory\n"},
		{name: "empty", file: write("empty", " \n"), want: "loadgen all: api-key-file " + filepath.Join(dir, "empty") + ": empty\n"},
		{name: "two words", file: write("two", "tpk_secret1 tpk_secret2\n"),
			want: "loadgen all: api-key-file " + filepath.Join(dir, "two") + ": want one API key, found several words\n"},
		{name: "too long", file: write("long", strings.Repeat("k", maxKeyFile+1)),
			want: "loadgen all: api-key-file " + filepath.Join(dir, "long") + ": more than 4096 bytes, not an API key\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"all", "-api-key-file", tt.file}, &stdout, &stderr)
			if code != 2 || stderr.String() != tt.want {
				t.Fatalf("code %d, stderr %q; want 2, %q", code, stderr.String(), tt.want)
			}
		})
	}
}

func TestReadKeyTrims(t *testing.T) {
	p := filepath.Join(t.TempDir(), "api-key")
	if err := os.WriteFile(p, []byte("tpk_abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if key, err := readKey(p); err != nil || key != "tpk_abc" {
		t.Fatalf("readKey = %q, %v; want tpk_abc", key, err)
	}
}
