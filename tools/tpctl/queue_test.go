package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// callLines is one inbound call with no ticket, in canonical JSON lines: offered in queue, then
// answered by agent after wait and ended after talk, or (agent empty) abandoned after wait.
func callLines(id, queue, agent string, start time.Time, wait, talk int) []string {
	at := func(s int) string { return start.Add(time.Duration(s) * time.Second).Format(time.RFC3339) }
	ev := func(suffix, typ string, secs int, call map[string]any) string {
		call["call_id"], call["direction"], call["queue_id"] = id, "inbound", queue
		b, _ := json.Marshal(map[string]any{"id": id + "-" + suffix, "ticket_id": id, "type": typ, "occurred_at": at(secs),
			"actor": map[string]any{"kind": "system"}, "call": call})
		return string(b)
	}
	lines := []string{ev("o", "call_offered", 0, map[string]any{})}
	if agent == "" {
		return append(lines, ev("x", "call_abandoned", wait, map[string]any{"wait_seconds": wait}))
	}
	return append(lines,
		ev("a", "call_answered", wait, map[string]any{"agent_id": agent, "wait_seconds": wait}),
		ev("e", "call_ended", wait+talk, map[string]any{"agent_id": agent, "talk_seconds": talk}))
}

// kpis get -queue and kpis list queues read the queue figures of calls replayed through ingest:
// as JSON (the API's responses) and as tables of the call figures.
func TestKpisQueue(t *testing.T) {
	s := newStack(t)
	ingest := s.ingest(t)
	kpi := s.grpcService(t, "kpi", 0, "TICKETPULSE_BATCH_LINGER=1ms", "TICKETPULSE_SNAPSHOT_INTERVAL=100ms")

	const odd = "sales: {EU} ünï"
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	var lines []string
	lines = append(lines, callLines("CA-1", "support", "ana", start, 10, 100)...)
	lines = append(lines, callLines("CA-2", "support", "", start.Add(time.Minute), 40, 0)...)
	lines = append(lines, callLines("CA-3", odd, "bo", start.Add(2*time.Minute), 5, 60)...)
	file := writeLines(t, lines)
	if code, _, errOut := tpctl(t, "", nil, "events", "replay", "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.eventsKey, file); code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, errOut)
	}

	window := []string{"-from", start.Format(time.RFC3339), "-to", start.Add(2 * time.Hour).Format(time.RFC3339)}
	get := append([]string{"kpis", "get", "-tenant", "acme", "-kpi-addr", kpi, "-key-file", s.keyFile, "-queue", "support", "-json"}, window...)
	var resp tpv1.GetQueueKpisResponse
	waitFor(t, "support's calls to count", 30*time.Second, func() bool {
		code, out, _ := tpctl(t, "", nil, get...)
		return code == 0 && protojson.Unmarshal([]byte(out), &resp) == nil && resp.GetKpis().GetCallHandleTime().GetCount() == 1 &&
			resp.GetKpis().GetCallsAbandoned() == 1
	})
	if k := resp.GetKpis(); resp.GetQueueId() != "support" || k.GetCallsOffered() != 2 || k.GetCallsAnswered() != 1 || k.GetCallAbandonRate() != 0.5 {
		t.Errorf("kpis get -queue support: %q %v", resp.GetQueueId(), k)
	}
	code, out, errOut := tpctl(t, "", nil, append([]string{"kpis", "get", "-tenant", "acme", "-kpi-addr", kpi, "-key-file", s.keyFile, "-queue", odd}, window...)...)
	if code != 0 || !strings.HasPrefix(out, "window ") || !strings.Contains(out, odd) || !strings.Contains(out, "calls offered") ||
		strings.Contains(out, "first response") {
		t.Errorf("kpis get -queue table: exit %d\n%s%s", code, out, errOut)
	}

	var odds tpv1.GetQueueKpisResponse
	waitFor(t, "the odd queue's call to count", 30*time.Second, func() bool {
		code, out, _ := tpctl(t, "", nil, append([]string{"kpis", "get", "-tenant", "acme", "-kpi-addr", kpi, "-key-file", s.keyFile, "-queue", odd, "-json"}, window...)...)
		return code == 0 && protojson.Unmarshal([]byte(out), &odds) == nil && odds.GetKpis().GetCallHandleTime().GetCount() == 1
	})
	code, out, errOut = tpctl(t, "", nil, append([]string{"kpis", "list", "queues", "-tenant", "acme", "-kpi-addr", kpi, "-key-file", s.keyFile, "-json", "-page-size", "1"}, window...)...)
	var list tpv1.ListQueueKpisResponse
	if code != 0 || protojson.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("kpis list queues: exit %d %s", code, errOut)
	}
	var ids []string
	for _, q := range list.GetQueues() {
		ids = append(ids, q.GetQueueId())
	}
	if fmt.Sprint(ids) != fmt.Sprint([]string{odd, "support"}) || list.GetTotalSize() != 2 {
		t.Errorf("kpis list queues: %q total %d, want the odd queue and support, every page read", ids, list.GetTotalSize())
	}
	code, out, _ = tpctl(t, "", nil, append([]string{"kpis", "list", "queues", "-tenant", "acme", "-kpi-addr", kpi, "-key-file", s.keyFile,
		"-order-by", "call_abandon_rate desc", "-limit", "1"}, window...)...)
	if code != 0 || !strings.Contains(out, "support") || strings.Contains(out, odd) || !strings.Contains(out, "50.0%") || !strings.Contains(out, "1 of 2 queues") {
		t.Errorf("kpis list queues table: exit %d\n%s", code, out)
	}
}
