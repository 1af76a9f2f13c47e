package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every command documents every flag with its environment variable, and the usage lists every
// command.
func TestCommandsHelp(t *testing.T) {
	common := []string{"-tenant", "-key-file", "-tls", "-tls-ca", "-tls-cert", "-tls-key", "-tls-server-name", "-plaintext", "TICKETPULSE_KEY_FILE", "TICKETPULSE_TENANT"}
	query := append([]string{"-json", "-timeout"}, common...)
	window := []string{"-from", "-to", "-rolling", "-time-zone", "TICKETPULSE_ROLLING"}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"kpis", "get"}, append(append([]string{"-agent", "-team", "-queue", "-unassigned", "-kpi-addr", "TICKETPULSE_KPI_ADDR", "default 127.0.0.1:9090", "kpis:read"}, query...), window...)},
		{[]string{"kpis", "list", "agents"}, append(append([]string{"-order-by", "-team", "-limit", "-page-size", "-kpi-addr", "csat_mean"}, query...), window...)},
		{[]string{"kpis", "list"}, []string{"tpctl kpis list agents|teams|queues", "-order-by"}},
		{[]string{"escalations", "list"}, append([]string{"-state", "-rule", "-team", "-agent", "-ticket", "-queue", "-triggered-from", "-triggered-to", "-limit", "-page-size", "-escalation-addr", "TICKETPULSE_ESCALATION_ADDR", "default 127.0.0.1:9091", "escalations:read"}, query...)},
		{[]string{"escalations", "get"}, append([]string{"-id", "timeline"}, query...)},
		{[]string{"escalations", "ack"}, append([]string{"-id", "-note", "escalations:write", "at most 2048 bytes"}, query...)},
		{[]string{"escalations", "resolve"}, append([]string{"-id", "-note", "escalations:write"}, query...)},
		{[]string{"escalations", "watch"}, append([]string{"-rule", "-backoff-min", "-backoff-max", "one JSON object per line", "reconnects with exponential"}, query...)},
		{[]string{"deliveries", "list"}, append([]string{"-escalation", "-receiver", "-status", "-created-from", "-created-to", "-notify-addr", "TICKETPULSE_NOTIFY_ADDR", "default 127.0.0.1:9092", "notifications:read"}, query...)},
		{[]string{"deliveries", "get"}, append([]string{"-id", "attempt"}, query...)},
		{[]string{"events", "replay"}, append([]string{"-ingest-url", "TICKETPULSE_INGEST_URL", "default http://127.0.0.1:8080", "-batch", "-rate", "-state", "-restart", "-skip-invalid", "-json",
			"-progress-every", "-retry-for", "-timeout", "-max-body-bytes", "fsync'd", "Retry-After", "events:write", "line number"}, common...)},
		{[]string{"rules", "get"}, append([]string{"-escalation-addr", "TICKETPULSE_ESCALATION_ADDR", "escalations:read", "rules simulate -file"}, query...)},
		{[]string{"rules", "simulate"}, append([]string{"-file", "-from", "-to", "-last", "-only", "TICKETPULSE_LAST", "1048576 bytes", "nothing is stored", "escalations:read"}, query...)},
		{[]string{"apikey", "hash"}, []string{"standard input"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := tpctl(t, "", nil, append(tt.args, "-h")...)
			if code != 0 || out != "" {
				t.Fatalf("exit %d, stdout %q", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("-h lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
	code, out, _ := tpctl(t, "", nil, "help")
	for _, c := range commands {
		if code != 0 || !strings.Contains(out, "tpctl "+c.name) {
			t.Errorf("usage lacks %q", c.name)
		}
	}
}

// Bad flags exit 2 naming every problem, before anything is dialled or read.
func TestCommandsFlagErrors(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("tpk_secretsecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty, big := filepath.Join(t.TempDir(), "empty.yaml"), filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, []byte(strings.Repeat("#", 1<<20+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"kpis get nothing", []string{"kpis", "get"},
			"tpctl kpis get: -tenant: required\n-key-file: required (an API key, operator key or ID token)\n-agent, -team, -queue, -unassigned: give exactly one\n"},
		{"kpis get two scopes", []string{"kpis", "get", "-tenant", "acme", "-key-file", key, "-team", "t", "-queue", "q"},
			"tpctl kpis get: -agent, -team, -queue, -unassigned: give exactly one\n"},
		{"kpis get window", []string{"kpis", "get", "-tenant", "acme", "-key-file", key, "-unassigned", "-from", "2026-03-02T00:00:00Z", "-rolling", "7d"},
			"tpctl kpis get: -rolling and -from/-to: give one of them\n"},
		{"kpis get half a range", []string{"kpis", "get", "-tenant", "acme", "-key-file", key, "-team", "t", "-from", "2026-03-02T00:00:00Z"},
			"tpctl kpis get: -from and -to: give both\n"},
		{"kpis get backwards", []string{"kpis", "get", "-tenant", "acme", "-key-file", key, "-team", "t", "-from", "2026-03-02T00:00:00Z", "-to", "2026-03-01T00:00:00Z"},
			"tpctl kpis get: -to 2026-03-01T00:00:00Z: must be after -from 2026-03-02T00:00:00Z\n"},
		{"kpis get remote plaintext", []string{"kpis", "get", "-tenant", "acme", "-key-file", key, "-agent", "a", "-kpi-addr", "kpi.example.com:9090"},
			"tpctl kpis get: -kpi-addr kpi.example.com:9090 is not a loopback address: pass -tls (or -tls-ca) so the API key is not sent in clear, or -plaintext to send it anyway\n"},
		{"kpis list what", []string{"kpis", "list", "-tenant", "acme"},
			"tpctl kpis list: want \"agents\", \"teams\" or \"queues\" first, e.g. tpctl kpis list agents -tenant acme\n"},
		{"kpis list queues of a team", []string{"kpis", "list", "queues", "-tenant", "acme", "-key-file", key, "-team", "x"},
			"tpctl kpis list: -team: only for agents\n"},
		{"kpis list pages", []string{"kpis", "list", "teams", "-tenant", "acme", "-key-file", key, "-limit", "-1", "-page-size", "0", "-team", "x"},
			"tpctl kpis list: -limit -1: must not be negative\n-page-size 0: must be between 1 and 1000\n-team: only for agents\n"},
		{"escalations list filters", []string{"escalations", "list", "-tenant", "acme", "-key-file", key, "-state", "closed", "-triggered-from", "monday"},
			"tpctl escalations list: -state \"closed\": want one of acknowledged, open, resolved\n-triggered-from \"monday\": want RFC 3339, e.g. 2026-01-01T00:00:00Z\n"},
		{"escalations ack", []string{"escalations", "ack", "-tenant", "acme", "-key-file", key, "-note", strings.Repeat("n", 2049)},
			"tpctl escalations ack: -id: required\n-note: 2049 bytes, at most 2048\n"},
		{"escalations watch", []string{"escalations", "watch", "-tenant", "acme", "-key-file", key, "-backoff-min", "2s", "-backoff-max", "1s"},
			"tpctl escalations watch: -backoff-max 1s: must be at least -backoff-min\n"},
		{"deliveries list", []string{"deliveries", "list", "-tenant", "acme", "-key-file", key, "-status", "sent", "-page-size", "501"},
			"tpctl deliveries list: -status \"sent\": want one of delivered, failed, pending, suppressed\n-page-size 501: must be between 1 and 500\n"},
		{"deliveries get", []string{"deliveries", "get", "-tenant", "acme", "-key-file", key},
			"tpctl deliveries get: -id: required\n"},
		{"simulate no range", []string{"rules", "simulate", "-tenant", "acme", "-key-file", key},
			"tpctl rules simulate: -from and -to (or -last): required\n"},
		{"simulate both ranges", []string{"rules", "simulate", "-tenant", "acme", "-key-file", key, "-last", "24h", "-from", "2026-03-01T00:00:00Z", "-only", "added,gone"},
			"tpctl rules simulate: -last: not with -from or -to\n-only \"gone\": want one of added, removed, same\n"},
		{"simulate backwards", []string{"rules", "simulate", "-tenant", "acme", "-key-file", key, "-from", "2026-03-02T00:00:00Z", "-to", "2026-03-01T00:00:00Z"},
			"tpctl rules simulate: -to 2026-03-01T00:00:00Z: must be after -from 2026-03-02T00:00:00Z\n"},
		{"simulate empty file", []string{"rules", "simulate", "-tenant", "acme", "-key-file", key, "-last", "24h", "-file", empty},
			"tpctl rules simulate: -file " + empty + ": empty (leave -file out to simulate the loaded rules)\n"},
		{"simulate big file", []string{"rules", "simulate", "-tenant", "acme", "-key-file", key, "-last", "24h", "-file", big},
			"tpctl rules simulate: -file " + big + ": larger than 1048576 bytes\n"},
		{"replay nothing", []string{"events", "replay"},
			"tpctl events replay: FILE.jsonl: required, e.g. tpctl events replay -tenant acme events.jsonl\n-tenant: required\n-key-file: required (an API key, operator key or ID token)\n"},
		{"replay limits", []string{"events", "replay", "-tenant", "acme", "-key-file", key, "-batch", "1001", "-rate", "-1", "-retry-for", "0s", "f.jsonl"},
			"tpctl events replay: -batch 1001: must be between 1 and 1000\n-rate -1: must not be negative\n-retry-for 0s: must be positive\n"},
		{"replay url", []string{"events", "replay", "-tenant", "acme", "-key-file", key, "-ingest-url", "ingest:8080", "f.jsonl"},
			"tpctl events replay: -ingest-url \"ingest:8080\": want http://host:port or https://host:port\n"},
		{"replay remote http", []string{"events", "replay", "f.jsonl", "-tenant", "acme", "-key-file", key, "-ingest-url", "http://ingest.example.com"},
			"tpctl events replay: -ingest-url http://ingest.example.com is not a loopback address: pass -tls (or -tls-ca) so the API key is not sent in clear, or -plaintext to send it anyway\n"},
		{"replay two files", []string{"events", "replay", "a.jsonl", "-tenant", "acme", "b.jsonl"},
			"tpctl events replay: unexpected arguments: [\"b.jsonl\"]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := tpctl(t, "", nil, tt.args...)
			if code != 2 || out != "" || errOut != tt.want {
				t.Errorf("exit %d, stdout %q, stderr\n%s\nwant exit 2 and\n%s", code, out, errOut, tt.want)
			}
			if strings.Contains(errOut, "secretsecret") {
				t.Error("the key appears in the output")
			}
		})
	}
	// The environment sets flags of the new commands too.
	code, _, errOut := tpctl(t, "", map[string]string{"TICKETPULSE_TENANT": "acme", "TICKETPULSE_KEY_FILE": key, "TICKETPULSE_ROLLING": "2d"}, "kpis", "get", "-agent", "a")
	if code != 2 || errOut != "tpctl kpis get: -rolling \"2d\": want 1h, 24h, 7d or 30d\n" {
		t.Errorf("from the environment: exit %d, stderr %q", code, errOut)
	}
	// A missing input file is a failure (1), not a usage error.
	code, _, errOut = tpctl(t, "", nil, "events", "replay", "-tenant", "acme", "-key-file", key, filepath.Join(t.TempDir(), "none.jsonl"))
	if code != 1 || !strings.Contains(errOut, "open input: ") {
		t.Errorf("missing input: exit %d, stderr %q", code, errOut)
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ give, want string }{
		{"ana", "ana"},
		{"", "-"},
		{"Ana María 李", "Ana María 李"},
		{"a\tb\nc", `a\tb\nc`},
		{"\x1b[31mred", `\x1b[31mred`},
		{`back\slash`, `back\\slash`},
		{"bidi\u202etxt", `bidi\u202etxt`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"<script>\"q\"</script>", "<script>\"q\"</script>"},
	}
	for _, tt := range tests {
		if got := clean(tt.give); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
	var b strings.Builder
	tb := newTable(&b, "id", "n")
	tb.row("a\nb", "1")
	tb.row("longer-id", "22")
	tb.flush()
	if want := "id         n\na\\nb       1\nlonger-id  22\n"; b.String() != want {
		t.Errorf("table\n%q\nwant\n%q", b.String(), want)
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"ana", "a\tb", "\x1b[0m", "\\", "\xff", "\u202e", "李"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := clean(s)
		for _, r := range c {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("clean(%q) = %q keeps a control character", s, c)
			}
		}
	})
}
