package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// rules get prints acme's rules as a file to edit; rules simulate replays the last twelve hours
// with the loaded rules (the real escalation again: same), a tightened first-response target
// (a ticket answered in 45 minutes is added) and a loosened one (the real escalation of a ticket
// two hours unanswered removed), in a table and as JSON.
func TestRulesGetAndSimulate(t *testing.T) {
	s := newStack(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(escalationRules), 0o600); err != nil {
		t.Fatal(err)
	}
	ingest := s.ingest(t)
	esc := s.grpcService(t, "escalation", 1, "TICKETPULSE_RULES_FILE="+rules)
	base := []string{"-tenant", "acme", "-escalation-addr", esc, "-key-file", s.keyFile}

	// Both came in two hours ago: slow is still unanswered (it breached the 1h target an hour
	// ago, so escalation raises it for real), quick was answered in 45 minutes.
	created := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute)
	slow, quick := `slow "1"/ü`, "quick <2>"
	event := func(id, ticket, typ string, at time.Time, actor string) string {
		tid, _ := json.Marshal(ticket)
		public := ""
		if typ == "agent_message" {
			public = `, "public": true`
		}
		return fmt.Sprintf(`{"id": %q, "ticket_id": %s, "type": %q, "occurred_at": %q, "actor": %s, "assignee_id": "ana", "team_id": "support", "priority": "normal"%s}`,
			id, tid, typ, at.Format(time.RFC3339), actor, public)
	}
	customer, agent := `{"id": "cu", "kind": "customer"}`, `{"id": "ana", "kind": "agent"}`
	file := writeLines(t, []string{
		event("s1", slow, "ticket_created", created, customer),
		event("q1", quick, "ticket_created", created, customer),
		event("q2", quick, "agent_message", created.Add(45*time.Minute), agent),
	})
	if code, _, errOut := tpctl(t, "", nil, "events", "replay", "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.eventsKey, file); code != 0 {
		t.Fatalf("replay: exit %d %s", code, errOut)
	}
	var real tpv1.ListEscalationsResponse
	waitFor(t, "the real escalation of the slow ticket", 90*time.Second, func() bool {
		code, out, _ := tpctl(t, "", nil, append([]string{"escalations", "list", "-ticket", slow, "-json"}, base...)...)
		return code == 0 && protojson.Unmarshal([]byte(out), &real) == nil && len(real.GetEscalations()) > 0
	})
	// Escalation has judged both tickets once the second one's answer is in its log; the quick
	// one never escalates, so give the judge a moment after the slow one's.
	time.Sleep(time.Second)

	code, loaded, errOut := tpctl(t, "", nil, append([]string{"rules", "get"}, base...)...)
	if code != 0 || !strings.Contains(loaded, "first_response: 1h") || !strings.HasPrefix(errOut, "rules version ") {
		t.Fatalf("rules get: exit %d\n%s\n%s", code, loaded, errOut)
	}
	edited := func(target string) string {
		p := filepath.Join(t.TempDir(), "edited.yaml")
		if err := os.WriteFile(p, []byte(strings.Replace(loaded, "first_response: 1h", "first_response: "+target, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	simulate := func(extra ...string) *tpv1.SimulateRulesResponse {
		t.Helper()
		code, out, errOut := tpctl(t, "", nil, append(append([]string{"rules", "simulate", "-last", "12h", "-json"}, base...), extra...)...)
		var r tpv1.SimulateRulesResponse
		if code != 0 || protojson.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("rules simulate %v: exit %d\n%s\n%s", extra, code, out, errOut)
		}
		return &r
	}
	// firstResponse is what the simulation says of each ticket's first-response escalation.
	firstResponse := func(r *tpv1.SimulateRulesResponse) map[string]string {
		got := map[string]string{}
		for _, e := range r.GetEscalations() {
			if e.GetSubjectKind() == "ticket" && e.GetRule() == "sla-first-response" {
				got[e.GetSubjectId()] = enumWord(e.GetDifference().String(), "DIFFERENCE_")
			}
		}
		return got
	}
	realRule := real.GetEscalations()[0].GetRule()
	if realRule != "sla-first-response" {
		t.Fatalf("the real escalation's rule is %q, want sla-first-response", realRule)
	}

	if got := firstResponse(simulate()); !maps.Equal(got, map[string]string{slow: "same"}) {
		t.Errorf("loaded rules: %v, want the slow ticket same", got)
	}
	if got := firstResponse(simulate("-file", edited("30m"))); !maps.Equal(got, map[string]string{slow: "same", quick: "added"}) {
		t.Errorf("30m target: %v, want slow same and quick added", got)
	}
	r := simulate("-file", edited("3h"))
	if got := firstResponse(r); !maps.Equal(got, map[string]string{slow: "removed"}) {
		t.Errorf("3h target: %v, want slow removed", got)
	}
	if r.GetRemoved() < 1 || r.GetEventsReplayed() != 3 {
		t.Errorf("3h target: removed %d, events replayed %d, want >= 1 and 3", r.GetRemoved(), r.GetEventsReplayed())
	}

	// The table, filtered to the additions, shows the quick ticket's id as it is and the counts.
	code, out, errOut := tpctl(t, "", nil, append(append([]string{"rules", "simulate", "-last", "12h", "-only", "added"}, base...), "-file", edited("30m"))...)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) < 3 || !strings.HasPrefix(lines[0], "difference") || !strings.Contains(out, "ticket quick <2>") ||
		strings.Contains(out, "ticket "+slow) || !strings.Contains(lines[len(lines)-1], "events replayed with rules version") {
		t.Errorf("table: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, l := range lines[1 : len(lines)-1] {
		if !strings.HasPrefix(l, "added") {
			t.Errorf("-only added printed %q", l)
		}
	}

	// escalation's own refusal of a broken file comes back with its line.
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte("tenants:\n  acme:\n    sla_policies: [{name: x, targets: {default: {first_response: soon}}}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = tpctl(t, "", nil, append(append([]string{"rules", "simulate", "-last", "12h"}, base...), "-file", broken)...)
	if code != 1 || !strings.Contains(errOut, "InvalidArgument") || !strings.Contains(errOut, "rules_yaml:3:") {
		t.Errorf("broken file: exit %d, stderr %q", code, errOut)
	}
	// Another tenant's key may not simulate acme's rules.
	code, _, errOut = tpctl(t, "", nil, "rules", "simulate", "-last", "12h", "-tenant", "acme", "-escalation-addr", esc, "-key-file", s.globexKey)
	if code != 1 || !strings.Contains(errOut, "PermissionDenied") {
		t.Errorf("globex key: exit %d, stderr %q", code, errOut)
	}
}
