package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// escalations list -queue reaches escalation as ListEscalations' queue_id against the running
// service: a ticket's escalation (which has no queue label) is listed without the flag and
// not with it, and a queue id longer than escalation takes is refused by escalation itself,
// naming queue_id. (Which escalations a queue_id finds is the service's test,
// TestListEscalationsByQueue, over the real engine.)
func TestEscalationsListQueue(t *testing.T) {
	s := newStack(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(escalationRules), 0o600); err != nil {
		t.Fatal(err)
	}
	ingest := s.ingest(t)
	esc := s.grpcService(t, "escalation", 1, "TICKETPULSE_RULES_FILE="+rules)

	created := time.Now().UTC().Add(-2 * time.Hour).Format(time.RFC3339)
	line, err := json.Marshal(map[string]any{"id": "q-1", "ticket_id": "T-Q1", "type": "ticket_created", "occurred_at": created,
		"actor": map[string]any{"id": "cu", "kind": "customer"}, "assignee_id": "ana", "team_id": "support", "priority": "normal"})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := tpctl(t, "", nil, "events", "replay", "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.eventsKey, writeLines(t, []string{string(line)})); code != 0 {
		t.Fatalf("replay: exit %d %s", code, errOut)
	}
	base := []string{"escalations", "list", "-tenant", "acme", "-escalation-addr", esc, "-key-file", s.keyFile, "-json"}
	list := func(extra ...string) (int, string) {
		t.Helper()
		code, out, errOut := tpctl(t, "", nil, append(base, extra...)...)
		var resp tpv1.ListEscalationsResponse
		if code != 0 || protojson.Unmarshal([]byte(out), &resp) != nil {
			return -1, fmt.Sprintf("exit %d %s %s", code, out, errOut)
		}
		return len(resp.GetEscalations()), out
	}
	var last string
	waitFor(t, "the ticket's escalation", 90*time.Second, func() bool {
		n, out := list("-ticket", "T-Q1")
		last = out
		return n == 1
	})
	if n, out := list("-ticket", "T-Q1", "-queue", "support"); n != 0 {
		t.Errorf("escalations list -ticket T-Q1 -queue support: %d escalations, want none (a ticket's has no queue label): %s (before: %s)", n, out, last)
	}
	code, _, errOut := tpctl(t, "", nil, append(base, "-queue", strings.Repeat("q", 257))...)
	if code != 1 || !strings.Contains(errOut, "InvalidArgument") || !strings.Contains(errOut, "queue_id: 257 bytes, at most 256 allowed") {
		t.Errorf("escalations list with a 257-byte -queue: exit %d, stderr %q; want 1 with escalation's InvalidArgument naming queue_id", code, errOut)
	}
}
