package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseServices(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    []string
		wantErr string
	}{
		{name: "default list", give: "ingest,kpi,escalation,notify", want: []string{"ingest", "kpi", "escalation", "notify"}},
		{name: "all", give: "all", want: []string{"ingest", "kpi", "escalation", "notify", "console"}},
		{name: "start order, not list order", give: "notify,escalation", want: []string{"escalation", "notify"}},
		{name: "spaces and duplicates", give: " kpi , ingest,kpi,", want: []string{"ingest", "kpi"}},
		{name: "unknown name", give: "kpi,billing", wantErr: `unknown service "billing"`},
		{name: "case matters", give: "KPI", wantErr: `unknown service "KPI"`},
		{name: "empty", give: " , ", wantErr: "no service named"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServices(tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseServices(%q) error = %v, want %q", tt.give, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseServices(%q): %v", tt.give, err)
			}
			if names := specNames(got); !reflect.DeepEqual(names, tt.want) {
				t.Fatalf("parseServices(%q) = %v, want %v", tt.give, names, tt.want)
			}
		})
	}
}

func TestServiceAddressesAreDistinctLoopback(t *testing.T) {
	seen := map[string]string{}
	for _, s := range allServices {
		for _, addr := range []string{s.httpAddr, s.grpcAddr, s.adminAddr} {
			if addr == "" {
				continue
			}
			if !strings.HasPrefix(addr, "127.0.0.1:") {
				t.Errorf("%s listens on %s, want loopback", s.name, addr)
			}
			if other, ok := seen[addr]; ok {
				t.Errorf("%s and %s both use %s", s.name, other, addr)
			}
			seen[addr] = s.name
		}
	}
}

func TestPrefixWriter(t *testing.T) {
	tests := []struct {
		name   string
		colour bool
		writes []string
		flush  bool
		want   string
	}{
		{name: "one line", writes: []string{"hello\n"}, want: "[kpi]        hello\n"},
		{name: "line split across writes", writes: []string{"hel", "lo\nwor", "ld\n"}, want: "[kpi]        hello\n[kpi]        world\n"},
		{name: "partial line waits for newline", writes: []string{"no newline yet"}, want: ""},
		{name: "flush writes the partial line", writes: []string{"last words"}, flush: true, want: "[kpi]        last words\n"},
		{name: "crlf trimmed", writes: []string{"dos\r\n"}, want: "[kpi]        dos\n"},
		{name: "empty line kept", writes: []string{"\n"}, want: "[kpi]        \n"},
		{name: "colour wraps only the tag", colour: true, writes: []string{"hi\n"}, want: "\x1b[32m[kpi]\x1b[0m        hi\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c := newConsole(&out, tt.colour, []string{"kpi", "escalation"})
			w := c.writer("kpi", "32")
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if tt.flush {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if got := out.String(); got != tt.want {
				t.Fatalf("output = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPrefixWriterBoundsUnterminatedLines(t *testing.T) {
	var out bytes.Buffer
	w := newConsole(&out, false, []string{"x"}).writer("x", "")
	if _, err := w.Write(bytes.Repeat([]byte("a"), maxLine+10)); err != nil {
		t.Fatal(err)
	}
	if got, want := out.Len(), len("[x] ")+maxLine+10+1; got != want {
		t.Fatalf("wrote %d bytes, want the whole oversized line (%d) at once", got, want)
	}
	if len(w.buf) != 0 {
		t.Fatalf("%d bytes still buffered", len(w.buf))
	}
}

func TestConsoleNeverInterleavesLines(t *testing.T) {
	var out bytes.Buffer
	c := newConsole(&out, false, []string{"a", "b"})
	var wg sync.WaitGroup
	const lines = 200
	for _, name := range []string{"a", "b"} {
		w := c.writer(name, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				// Split each line over two writes so a racing writer would land between them.
				fmt.Fprintf(w, "%s-line-%d-", name, i)
				fmt.Fprintf(w, "end\n")
			}
		}()
	}
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != 2*lines {
		t.Fatalf("%d lines, want %d", len(got), 2*lines)
	}
	for _, line := range got {
		name := line[1:2]
		if !strings.HasPrefix(line, "["+name+"] "+name+"-line-") || !strings.HasSuffix(line, "-end") || strings.Count(line, "end") != 1 {
			t.Fatalf("interleaved line %q", line)
		}
	}
}

func TestUseColour(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	tests := []struct {
		name    string
		noColor string
		want    bool
	}{
		{name: "regular file", want: false},
		{name: "regular file and NO_COLOR", noColor: "1", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := useColour(file, tt.noColor); got != tt.want {
				t.Fatalf("useColour = %v, want %v", got, tt.want)
			}
		})
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !useColour(tty, "") || useColour(tty, "1") {
			t.Fatalf("terminal: want colour without NO_COLOR and none with it")
		}
	}
}

func TestCurlDemoPostsTwoCanonicalEventsOfOneTicket(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 40, 0, 0, time.UTC)
	cmd := curlDemo(now, "$(cat .run/secrets/acme-api-key)")
	start := strings.Index(cmd, "--data '") + len("--data '")
	end := strings.LastIndex(cmd, "' http://")
	if start < len("--data '") || end < start {
		t.Fatalf("no --data '...' in %q", cmd)
	}
	var events []struct {
		ID         string    `json:"id"`
		TicketID   string    `json:"ticket_id"`
		Type       string    `json:"type"`
		OccurredAt time.Time `json:"occurred_at"`
		Actor      struct{ ID, Kind string }
		Public     bool `json:"public"`
	}
	if err := json.Unmarshal([]byte(cmd[start:end]), &events); err != nil {
		t.Fatalf("payload is not JSON: %v", err)
	}
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	created, reply := events[0], events[1]
	if created.Type != "ticket_created" || reply.Type != "agent_message" || reply.Actor.Kind != "agent" || !reply.Public {
		t.Fatalf("want a ticket_created then a public agent_message, got %+v", events)
	}
	if created.TicketID != reply.TicketID || created.ID == reply.ID {
		t.Fatalf("want one ticket and two event ids, got %+v", events)
	}
	if gap := reply.OccurredAt.Sub(created.OccurredAt); gap != 13*time.Minute {
		t.Fatalf("first response after %v, want 13m", gap)
	}
	if !reply.OccurredAt.Before(now) || now.Sub(created.OccurredAt) > 24*time.Hour {
		t.Fatalf("events %v..%v must lie in the 24h window ending %v", created.OccurredAt, reply.OccurredAt, now)
	}
	if !strings.HasSuffix(cmd, "http://127.0.0.1:8080/v1/tenants/acme/events") {
		t.Fatalf("curl does not post to ingest's canonical endpoint: %q", cmd)
	}
}

func TestRedisArgsKeepAOFEverySecond(t *testing.T) {
	args := redisArgs("127.0.0.1", "6379", "/data")
	for _, pair := range [][2]string{{"--appendonly", "yes"}, {"--appendfsync", "everysec"}, {"--bind", "127.0.0.1"}, {"--port", "6379"}, {"--dir", "/data"}, {"--daemonize", "no"}, {"--hash-max-listpack-entries", "128"}} {
		i := slices.Index(args, pair[0])
		if i < 0 || i+1 >= len(args) || args[i+1] != pair[1] {
			t.Errorf("args %v lack %s %s", args, pair[0], pair[1])
		}
	}
}

func TestIsRedis(t *testing.T) {
	tests := []struct {
		name string
		give string
		want bool
	}{
		{name: "pong", give: "+PONG\r\n", want: true},
		{name: "needs password", give: "-NOAUTH Authentication required.\r\n", want: true},
		{name: "protected mode", give: "-DENIED Redis is running in protected mode\r\n", want: true},
		{name: "nats greeting", give: "INFO {\"server_id\":\"x\"}\r\n", want: false},
		{name: "silence", give: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isRedis(tt.give); got != tt.want {
				t.Fatalf("isRedis(%q) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

// URLs given through the environment may carry a password; the summary shows them redacted.
func TestSummaryRedactsPasswords(t *testing.T) {
	var out strings.Builder
	specs, err := parseServices("all")
	if err != nil {
		t.Fatal(err)
	}
	st := &stack{specs: specs, con: newConsole(&out, false, []string{"tpdev"}), root: t.TempDir(), runDir: t.TempDir()}
	st.printSummary("nats://app:n4ts-secret@127.0.0.1:4222", "redis://default:r3dis-secret@127.0.0.1:6379/0")
	for _, secret := range []string{"n4ts-secret", "r3dis-secret"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("the summary shows the password %q:\n%s", secret, out.String())
		}
	}
	if !strings.Contains(out.String(), "127.0.0.1:6379/0") || !strings.Contains(out.String(), "127.0.0.1:4222") {
		t.Errorf("the summary lost the addresses:\n%s", out.String())
	}
}
