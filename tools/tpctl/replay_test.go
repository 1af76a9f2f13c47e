package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// ticketLines is one ticket's life as canonical JSON lines: created by a customer, assigned to
// ana of billing, answered after 10 minutes, solved after 2 hours, rated 5. The reply and the
// assignment share a minute-precision time with other events, as exports do.
func ticketLines(ticket string, start time.Time) []string {
	at := func(m int) string { return start.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }
	id, _ := json.Marshal(ticket)
	ev := func(suffix, rest string) string {
		evID, _ := json.Marshal(ticket + "-" + suffix)
		return fmt.Sprintf(`{"id": %s, "ticket_id": %s, %s}`, evID, id, rest)
	}
	return []string{
		ev("c", `"type": "ticket_created", "occurred_at": "`+at(0)+`", "actor": {"id": "cust", "kind": "customer"}, "team_id": "billing", "priority": "high"`),
		ev("a", `"type": "ticket_assigned", "occurred_at": "`+at(0)+`", "actor": {"id": "lead", "kind": "agent"}, "assignee_id": "ana", "team_id": "billing"`),
		ev("r", `"type": "agent_message", "occurred_at": "`+at(10)+`", "actor": {"id": "ana", "kind": "agent"}, "public": true`),
		ev("s", `"type": "status_changed", "occurred_at": "`+at(120)+`", "actor": {"id": "ana", "kind": "agent"}, "status": "solved"`),
		ev("q", `"type": "satisfaction_rated", "occurred_at": "`+at(130)+`", "actor": {"id": "cust", "kind": "customer"}, "satisfaction": {"score": 5}`),
	}
}

func writeLines(t *testing.T, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readState(t *testing.T, path string) replayState {
	t.Helper()
	var s replayState
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("state file: %v", err)
	}
	return s
}

// A replay killed halfway (SIGKILL, after some batches were acknowledged) and run again
// resumes after the last acknowledged batch; every event counts once, so ana's KPIs equal what
// the file holds. Then kpis get and kpis list read those figures, as tables and as JSON.
func TestReplayKilledAndResumedCountsOnce(t *testing.T) {
	s := newStack(t)
	ingest := s.ingest(t)
	kpi := s.grpcService(t, "kpi", 0, "TICKETPULSE_BATCH_LINGER=1ms", "TICKETPULSE_SNAPSHOT_INTERVAL=100ms")

	const tickets = 80
	start := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Minute)
	var lines []string
	for i := range tickets {
		// Ticket ids as helpdesks have them: slashes, quotes, spaces, markup, any Unicode.
		lines = append(lines, ticketLines(fmt.Sprintf("T/%d \"q\" <script>ü", i), start.Add(time.Duration(i)*time.Minute))...)
	}
	file := writeLines(t, lines)
	state := file + ".replay-state"
	args := []string{"events", "replay", "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.eventsKey, "-batch", "10", "-rate", "100", file}

	p := startTpctl(t, args...)
	waitFor(t, "5 batches acknowledged", 30*time.Second, func() bool { return readState(t, state).Line >= 50 })
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(t, 10*time.Second)
	killedAt := readState(t, state)
	if killedAt.Line >= len(lines) || killedAt.Line%10 != 0 || killedAt.Sent != int64(killedAt.Line) {
		t.Fatalf("state after the kill %+v: want a whole number of batches, short of %d lines", killedAt, len(lines))
	}
	if !strings.Contains(p.stderr.String(), "replay: ") {
		t.Errorf("no progress line on a stderr that is not a terminal:\n%s", p.stderr.String())
	}

	code, out, errOut := tpctl(t, "", nil, "events", "replay", "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.eventsKey, "-batch", "10", "-json", file)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, errOut)
	}
	var sum replayResult
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("resume summary %q: %v", out, err)
	}
	if sum.FromLine != killedAt.Line || sum.Lines != len(lines) || !sum.Complete || sum.Sent != int64(len(lines)-killedAt.Line) {
		t.Errorf("resume summary %+v, want it to start after line %d and send the rest of %d", sum, killedAt.Line, len(lines))
	}
	if !strings.Contains(errOut, fmt.Sprintf("resuming after line %d", killedAt.Line)) {
		t.Errorf("resume stderr lacks where it resumed:\n%s", errOut)
	}

	// Every event counted once: ana's figures are the file's.
	window := []string{"-from", start.Add(-time.Hour).Format(time.RFC3339), "-to", time.Now().UTC().Add(time.Hour).Truncate(time.Hour).Format(time.RFC3339)}
	get := append([]string{"kpis", "get", "-tenant", "acme", "-kpi-addr", kpi, "-key-file", s.keyFile, "-agent", "ana", "-json"}, window...)
	var resp tpv1.GetAgentKpisResponse
	waitFor(t, "ana's KPIs to count every ticket", 30*time.Second, func() bool {
		code, out, _ := tpctl(t, "", nil, get...)
		return code == 0 && protojson.Unmarshal([]byte(out), &resp) == nil && resp.GetAgent().GetKpis().GetCsatCount() >= tickets
	})
	time.Sleep(300 * time.Millisecond) // a double count would show up after the first full count
	if code, out, errOut := tpctl(t, "", nil, get...); code != 0 || protojson.Unmarshal([]byte(out), &resp) != nil {
		t.Fatalf("kpis get: exit %d %s", code, errOut)
	}
	k := resp.GetAgent().GetKpis()
	for name, got := range map[string]int64{"first_response.count": k.GetFirstResponse().GetCount(), "resolution.count": k.GetResolution().GetCount(),
		"assigned": k.GetAssigned(), "csat_count": k.GetCsatCount(), "resolutions": k.GetResolutions()} {
		if got != tickets {
			t.Errorf("%s = %d, want %d (each event once)", name, got, tickets)
		}
	}
	if m := k.GetFirstResponse().GetMeanSeconds(); m != 600 {
		t.Errorf("first response mean %v, want 600", m)
	}

	// A third run finds nothing left and sends nothing.
	code, out, errOut = tpctl(t, "", nil, args[0], args[1], "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.eventsKey, file)
	if code != 0 || !strings.Contains(out, "0 events sent") {
		t.Errorf("third run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// -restart posts the whole file again: ingest reports every event a duplicate.
	code, out, errOut = tpctl(t, "", nil, "events", "replay", "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.eventsKey, "-batch", "1000", "-restart", "-json", file)
	sum = replayResult{}
	if code != 0 || json.Unmarshal([]byte(out), &sum) != nil || sum.Duplicates != int64(len(lines)) || sum.Accepted != 0 {
		t.Errorf("restart: exit %d, summary %+v, stderr %q", code, sum, errOut)
	}

	// The table: the window, then one row per KPI, ana's id.
	code, out, errOut = tpctl(t, "", nil, append([]string{"kpis", "get", "-tenant", "acme", "-kpi-addr", kpi, "-key-file", s.keyFile, "-agent", "ana"}, window...)...)
	if code != 0 || !strings.Contains(out, "first response count") || !strings.Contains(out, fmt.Sprint(tickets)) || !strings.HasPrefix(out, "window ") {
		t.Errorf("kpis get table: exit %d\n%s%s", code, out, errOut)
	}
	// Team and list.
	code, out, errOut = tpctl(t, "", nil, append([]string{"kpis", "get", "-tenant", "acme", "-kpi-addr", kpi, "-key-file", s.keyFile, "-team", "billing", "-json"}, window...)...)
	var team tpv1.GetTeamKpisResponse
	if code != 0 || protojson.Unmarshal([]byte(out), &team) != nil || team.GetKpis().GetResolution().GetCount() != tickets {
		t.Errorf("kpis get -team: exit %d, %v, stderr %s", code, team.GetKpis(), errOut)
	}
	code, out, errOut = tpctl(t, "", nil, append([]string{"kpis", "list", "agents", "-tenant", "acme", "-kpi-addr", kpi, "-key-file", s.keyFile, "-json", "-page-size", "1"}, window...)...)
	var list tpv1.ListAgentKpisResponse
	if code != 0 || protojson.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("kpis list agents: exit %d %s", code, errOut)
	}
	// ana, and lead (the assigner is no agent of record), at one row a page: every page was read.
	var ids []string
	for _, a := range list.GetAgents() {
		ids = append(ids, a.GetAgentId())
	}
	if len(ids) == 0 || ids[0] != "ana" || list.GetAgents()[0].GetKpis().GetAssigned() != tickets || int(list.GetTotalSize()) != len(ids) {
		t.Errorf("kpis list agents: %v total %d", ids, list.GetTotalSize())
	}
	code, out, _ = tpctl(t, "", nil, append([]string{"kpis", "list", "teams", "-tenant", "acme", "-kpi-addr", kpi, "-key-file", s.keyFile, "-order-by", "assigned desc", "-limit", "1"}, window...)...)
	if code != 0 || !strings.Contains(out, "billing") || !strings.Contains(out, "1 of 1 teams") {
		t.Errorf("kpis list teams table: exit %d\n%s", code, out)
	}
	// The wrong tenant's key is refused with kpi's code.
	code, _, errOut = tpctl(t, "", nil, "kpis", "get", "-tenant", "acme", "-kpi-addr", kpi, "-key-file", s.globexKey, "-agent", "ana")
	if code != 1 || !strings.Contains(errOut, "PermissionDenied") {
		t.Errorf("wrong tenant: exit %d, stderr %q", code, errOut)
	}
}

// Bad lines stop the replay with their line number after the good lines before them are
// stored; -skip-invalid reports them (tpctl's own checks and ingest's) and stores the rest.
func TestReplayBadLines(t *testing.T) {
	s := newStack(t)
	ingest := s.ingest(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	good := ticketLines("B-1", start)
	lines := []string{good[0], good[1], `{"ticket_id": "B-1", "type": "agent_message"}`, "", good[2],
		`{"id": "B-1-bad", "ticket_id": "B-1", "type": "agent_mesage", "occurred_at": "` + start.Format(time.RFC3339) + `", "actor": {"id": "ana", "kind": "agent"}}`,
		good[3], "not json", good[4]}
	file := writeLines(t, lines)
	base := []string{"events", "replay", "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.eventsKey, "-batch", "3"}

	code, _, errOut := tpctl(t, "", nil, append(base, file)...)
	if code != 1 || !strings.Contains(errOut, `line 3: no "id"`) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if st := readState(t, file+".replay-state"); st.Line != 2 || st.Accepted != 2 {
		t.Errorf("state after the stop %+v: want lines 1-2 stored", st)
	}
	code, out, errOut := tpctl(t, "", nil, append(base, "-skip-invalid", "-json", file)...)
	var sum replayResult
	if code != 0 || json.Unmarshal([]byte(out), &sum) != nil {
		t.Fatalf("-skip-invalid: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	var skipped []int
	for _, b := range sum.Skipped {
		skipped = append(skipped, b.Line)
	}
	if fmt.Sprint(skipped) != "[3 6 8]" || sum.Accepted != 3 || !sum.Complete {
		t.Errorf("summary %+v: want lines 3, 6 and 8 skipped and 3 events stored", sum)
	}
	if !strings.Contains(errOut, "line 6 skipped: type: ") || !strings.Contains(errOut, "line 8 skipped: not a JSON object") {
		t.Errorf("stderr lacks the reasons:\n%s", errOut)
	}

	// A changed file is not resumed at the wrong place.
	if err := os.WriteFile(file, []byte(strings.Join(lines[1:], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = tpctl(t, "", nil, append(base, file)...)
	if code != 1 || !strings.Contains(errOut, "changed since") || !strings.Contains(errOut, "-restart") {
		t.Errorf("changed file: exit %d, stderr %q", code, errOut)
	}
	// A key without events:write is refused with ingest's reason, and nothing is recorded.
	code, _, errOut = tpctl(t, "", nil, "events", "replay", "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.keyFile+"-none", "-restart", file)
	if code != 1 || !strings.Contains(errOut, "-key-file") {
		t.Errorf("missing key file: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = tpctl(t, "", nil, "events", "replay", "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.globexKey, "-restart", file)
	if code != 1 || !strings.Contains(errOut, "403 Forbidden: wrong_tenant") {
		t.Errorf("wrong tenant: exit %d, stderr %q", code, errOut)
	}

	// Ctrl-C stops between batches: exit 1, saying where it stopped, which the state records.
	var many []string
	for i := range 40 {
		many = append(many, ticketLines(fmt.Sprintf("I-%d", i), start)...)
	}
	big := writeLines(t, many)
	p := startTpctl(t, "events", "replay", "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.eventsKey, "-batch", "10", "-rate", "50", big)
	waitFor(t, "2 batches acknowledged", 30*time.Second, func() bool { return readState(t, big+".replay-state").Line >= 20 })
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, 10*time.Second); code != 1 {
		t.Fatalf("after SIGINT: exit %d, stderr %q", code, p.stderr.String())
	}
	st := readState(t, big+".replay-state")
	if want := fmt.Sprintf("interrupted: lines up to %d are stored", st.Line); !strings.Contains(p.stderr.String(), want) || st.Line >= len(many) {
		t.Errorf("stderr %q, want %q", p.stderr.String(), want)
	}
}

// Over the tenant's rate limit ingest answers 429 with Retry-After; the replay waits as told
// and stores every event.
func TestReplayWaitsOutRateLimit(t *testing.T) {
	s := newStackWith(t, map[string]string{"globex": "    rate_limit: {events_per_second: 40, burst: 20}\n"})
	ingest := s.ingest(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	var lines []string
	for i := range 16 {
		lines = append(lines, ticketLines(fmt.Sprintf("R-%d", i), start)...)
	}
	file := writeLines(t, lines)
	code, out, errOut := tpctl(t, "", nil, "events", "replay", "-tenant", "globex", "-ingest-url", ingest, "-key-file", s.globexKey, "-batch", "20", "-json", file)
	var sum replayResult
	if code != 0 || json.Unmarshal([]byte(out), &sum) != nil {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if sum.Accepted != int64(len(lines)) || sum.Duplicates != 0 || !sum.Complete {
		t.Errorf("summary %+v, want all %d stored once", sum, len(lines))
	}
	if !strings.Contains(errOut, ": 429 ") || !strings.Contains(errOut, "retrying in") {
		t.Errorf("no 429 was retried (the limit is 40 events/s, burst 20); stderr:\n%s", errOut)
	}
}

// Off a terminal, replay progress is a line per interval with events, share of the file, rate
// and ETA.
func TestReplayProgressLines(t *testing.T) {
	var b strings.Builder
	p := newReplayProgress(&b, time.Hour, 0, 1000)
	p.update(0, 0)
	p.at = p.at.Add(-2 * time.Second)
	p.lastLine = p.lastLine.Add(-2 * time.Hour)
	p.update(100, 500)
	want := "replay: 0 events sent, 0.0% of the file, 0 events/s, ETA ?\n" +
		"replay: 100 events sent, 50.0% of the file, 50 events/s, ETA 2s\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
