package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Every flag of kpi rebuild is documented, with what -from means and what the exit codes are.
func TestKpiRebuildHelp(t *testing.T) {
	code, out, errOut := tpctl(t, "", nil, "kpi", "rebuild", "-h")
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{
		"-tenant", "-from", "-addr", "-key-file", "-tls", "-tls-ca", "-tls-cert", "-tls-key", "-tls-server-name", "-plaintext",
		"-detach", "-progress-every", "TICKETPULSE_KEY_FILE", "TICKETPULSE_FROM",
		"the new generation then holds only what the events since then derive",
		"exits 0 once the new generation is switched in", "1 with the reason", "2 on bad flags",
		"exist twice in Redis", "re-attaches",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("-h lacks %q", want)
		}
	}
	if code, out, _ := tpctl(t, "", nil, "-h"); code != 0 || !strings.Contains(out, "tpctl kpi rebuild [flags]") || !strings.Contains(out, "tpctl escalation rebuild [flags]") {
		t.Errorf("tpctl -h: exit %d, usage lacks kpi rebuild:\n%s", code, out)
	}
}

// Bad flags exit 2 naming every problem; the key never reaches the output.
func TestKpiRebuildFlagErrors(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("tpk_secretsecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing", []string{}, 2, "tpctl kpi rebuild: -tenant: required\n-key-file: required (an operator API key)\n"},
		{"bad tenant and from", []string{"-tenant", "Acme!", "-from", "yesterday", "-key-file", key}, 2,
			"tpctl kpi rebuild: -tenant \"Acme!\": "},
		{"from", []string{"-tenant", "acme", "-from", "2026-01-01", "-key-file", key}, 2,
			"tpctl kpi rebuild: -from \"2026-01-01\": want RFC 3339, e.g. 2026-01-01T00:00:00Z\n"},
		{"plaintext to a remote address", []string{"-tenant", "acme", "-key-file", key, "-addr", "kpi.example.com:9090"}, 2,
			"tpctl kpi rebuild: -addr kpi.example.com:9090 is not a loopback address: pass -tls (or -tls-ca) so the API key is not sent in clear, or -plaintext to send it anyway\n"},
		{"half a client certificate", []string{"-tenant", "acme", "-key-file", key, "-tls-cert", "c.pem"}, 2,
			"tpctl kpi rebuild: -tls-cert and -tls-key: give both or neither\n"},
		{"bad addr", []string{"-tenant", "acme", "-key-file", key, "-addr", "nowhere"}, 2,
			"tpctl kpi rebuild: -addr \"nowhere\": want host:port\n"},
		{"positional argument", []string{"-tenant", "acme", "-key-file", key, "acme"}, 2,
			"tpctl kpi rebuild: unexpected arguments: [\"acme\"]\n"},
		{"missing key file", []string{"-tenant", "acme", "-key-file", filepath.Join(dir, "none")}, 1,
			"tpctl kpi rebuild: -key-file: open " + filepath.Join(dir, "none") + ": no such file or directory\n"},
		{"unknown subcommand", []string{}, 2, "tpctl: unknown command \"kpi status\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"kpi", "rebuild"}, tt.args...)
			if tt.name == "unknown subcommand" {
				args = []string{"kpi", "status"}
			}
			code, out, errOut := tpctl(t, "", nil, args...)
			if code != tt.code || out != "" {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, tt.code, out, errOut)
			}
			if !strings.HasPrefix(errOut, tt.want) {
				t.Errorf("stderr %q, want it to start with %q", errOut, tt.want)
			}
			if strings.Contains(errOut, "secretsecret") {
				t.Error("the key appears in the output")
			}
		})
	}
	// A key file with several words is refused without echoing them.
	two := filepath.Join(dir, "two")
	os.WriteFile(two, []byte("tpk_a tpk_b"), 0o600)
	code, _, errOut := tpctl(t, "", nil, "kpi", "rebuild", "-tenant", "acme", "-key-file", two)
	if code != 1 || errOut != "tpctl kpi rebuild: -key-file "+two+": want one API key, found several words\n" {
		t.Errorf("two words: exit %d, stderr %q", code, errOut)
	}
	// Flags come from the environment too.
	code, _, errOut = tpctl(t, "", map[string]string{"TICKETPULSE_TENANT": "acme", "TICKETPULSE_KEY_FILE": two}, "kpi", "rebuild")
	if code != 1 || !strings.Contains(errOut, "found several words") {
		t.Errorf("from the environment: exit %d, stderr %q", code, errOut)
	}
}

// Off a terminal, progress is a line per interval with the rate and the ETA, then the outcome.
func TestProgressLines(t *testing.T) {
	var b strings.Builder
	p := newProgress(&b, time.Hour)
	p.update(&tpv1.RebuildProgress{Tenant: "acme", Phase: "building", EventsDone: 0, EventsTotal: 1000})
	p.rateAt = p.rateAt.Add(-2 * time.Second) // two seconds later, 500 more
	p.update(&tpv1.RebuildProgress{Tenant: "acme", Phase: "building", EventsDone: 500, EventsTotal: 1000})
	p.finish(&tpv1.RebuildProgress{Tenant: "acme", Phase: "switched", Current: 3, Target: 3, EventsDone: 1000})
	want := "rebuild acme: 0/1000 events (0.0%), 0 events/s, ETA ?\n" +
		"rebuild of tenant acme switched to generation 3: 1000 events replayed; the old generation is deleted after kpi's -rebuild-grace\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	if got := p.bar(&tpv1.RebuildProgress{Tenant: "acme", Phase: "building", EventsDone: 500, EventsTotal: 1000}); !strings.HasPrefix(got, "[###############...............]  50.0% 500/1000 events  250 ev/s  ETA 2s") {
		t.Errorf("bar = %q", got)
	}
	b.Reset()
	p.finish(&tpv1.RebuildProgress{Tenant: "acme", Phase: "failed", Error: "broken"})
	if !strings.HasPrefix(b.String(), "rebuild of tenant acme failed after ") || !strings.HasSuffix(b.String(), ": broken\n") {
		t.Errorf("failure line %q", b.String())
	}
}

// escalation rebuild documents its own flags and defaults to escalation's address.
func TestEscalationRebuildHelp(t *testing.T) {
	code, out, errOut := tpctl(t, "", nil, "escalation", "rebuild", "-h")
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"tpctl escalation rebuild rebuilds a tenant's ticket log", "default 127.0.0.1:9091", "host:port of escalation's gRPC server",
		"the ticket log keeps the events it already holds", "-detach", "-key-file"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("-h lacks %q", want)
		}
	}
	code, _, errOut = tpctl(t, "", nil, "escalation", "rebuild")
	if code != 2 || errOut != "tpctl escalation rebuild: -tenant: required\n-key-file: required (an operator API key)\n" {
		t.Errorf("no flags: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := tpctl(t, "", nil, "escalation"); code != 2 || !strings.HasPrefix(errOut, "tpctl: unknown command \"escalation\"") {
		t.Errorf("escalation alone: exit %d, stderr %q", code, errOut)
	}
	var b strings.Builder
	newProgress(&b, time.Hour).finish(&tpv1.RebuildProgress{Tenant: "acme", Phase: "done", EventsDone: 7})
	if b.String() != "rebuild of tenant acme done: 7 events replayed\n" {
		t.Errorf("finish of a rebuild in place = %q", b.String())
	}
}

// kpis get's table has a row for every family's figures, the calls' included.
func TestKpiRowsListTheCallFigures(t *testing.T) {
	rows := kpiRows(&tpv1.Kpis{CallsOffered: 3, CallsAnswered: 2, CallsAbandoned: 1, CallAbandonRate: 1.0 / 3,
		CallsAnsweredInServiceLevel: 2, CallServiceLevel: 2.0 / 3,
		CallSpeedOfAnswer: &tpv1.DurationStats{Count: 2, MeanSeconds: 12, P90Seconds: 18},
		CallHandleTime:    &tpv1.DurationStats{Count: 2, MeanSeconds: 300}})
	got := map[string]string{}
	for _, r := range rows {
		got[r[0]] = r[1]
	}
	for name, want := range map[string]string{"calls offered": "3", "calls answered": "2", "calls abandoned": "1",
		"call abandon rate": "33.3%", "calls answered in service level": "2", "call service level": "66.7%",
		"call speed of answer count": "2", "call speed of answer mean": "12s", "call speed of answer p90": "18s",
		"call handle time mean": "5m0s", "qa reviews": "0", "resolutions": "0"} {
		if got[name] != want {
			t.Errorf("row %q = %q, want %q", name, got[name], want)
		}
	}
}
