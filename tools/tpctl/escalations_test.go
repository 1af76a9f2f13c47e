package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// escalationRules gives acme a 1-hour first-response target, so a ticket created two hours ago
// and never answered escalates at once.
const escalationRules = `
tenants:
  acme:
    escalation_policies:
      leads: {levels: [{targets: [team-lead]}]}
    sla_policies:
      - name: support
        at_risk: off
        escalation: leads
        targets: {default: {first_response: 1h, next_response: 1h, resolution: 24h}}
`

// A ticket posted with events replay raises an escalation: escalations watch (started before
// escalation listens, so it first reconnects with backoff) streams its changes as JSON lines,
// escalations list finds it by its odd ticket id and shows it escaped in the table, ack and
// resolve change it with their notes and the caller as actor, and deliveries list/get show the
// notification notify sent to a real webhook receiver.
func TestEscalationsAndDeliveries(t *testing.T) {
	s := newStack(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(escalationRules), 0o600); err != nil {
		t.Fatal(err)
	}
	var hooks atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hooks.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	routing := filepath.Join(dir, "routing.yaml")
	if err := os.WriteFile(routing, []byte(fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: TPCTL_TEST_HOOK_SECRET}]}
route: {receiver: hook, group_by: ["..."], group_wait: 0s, group_interval: 1s}
`, receiver.URL+"/hook")), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := "TPCTL_TEST_HOOK_SECRET=whsec_" + base64.StdEncoding.EncodeToString([]byte("tpctl-test-hook-secret-32-bytes!"))

	escAddr := freeAddr(t)
	watch := startTpctl(t, "escalations", "watch", "-tenant", "acme", "-escalation-addr", escAddr, "-key-file", s.keyFile, "-json", "-backoff-min", "100ms", "-backoff-max", "1s")
	waitFor(t, "watch to retry a refused connection", 10*time.Second, func() bool {
		return strings.Contains(watch.stderr.String(), "reconnecting in 200ms")
	})
	ingest := s.ingest(t)
	s.grpcServiceAt(t, escAddr, "escalation", 1, "TICKETPULSE_RULES_FILE="+rules)
	notify := s.grpcService(t, "notify", 2, "TICKETPULSE_ROUTING_FILE="+routing, secret)
	waitFor(t, "watch to connect", 20*time.Second, func() bool {
		return strings.Contains(watch.stderr.String(), "watch: watching the escalations of tenant acme")
	})

	ticket := `E\1 <b>"x"/ü`
	created := time.Now().UTC().Add(-2 * time.Hour).Format(time.RFC3339)
	id, _ := json.Marshal(ticket)
	file := writeLines(t, []string{fmt.Sprintf(`{"id": "esc-1", "ticket_id": %s, "type": "ticket_created", "occurred_at": %q, "actor": {"id": "cu", "kind": "customer"}, "assignee_id": "ana", "team_id": "support", "priority": "normal"}`, id, created)})
	if code, _, errOut := tpctl(t, "", nil, "events", "replay", "-tenant", "acme", "-ingest-url", ingest, "-key-file", s.eventsKey, file); code != 0 {
		t.Fatalf("replay: exit %d %s", code, errOut)
	}

	base := []string{"-tenant", "acme", "-escalation-addr", escAddr, "-key-file", s.keyFile}
	var list tpv1.ListEscalationsResponse
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last escalations list: %s", last)
		}
	}()
	// Generous: on a loaded machine escalation's first judgement of the ticket can take a while.
	waitFor(t, "the escalation of the ticket", 90*time.Second, func() bool {
		code, out, errOut := tpctl(t, "", nil, append([]string{"escalations", "list", "-ticket", ticket, "-state", "open", "-json"}, base...)...)
		last = fmt.Sprintf("exit %d %s %s", code, out, errOut)
		return code == 0 && protojson.Unmarshal([]byte(out), &list) == nil && len(list.GetEscalations()) > 0
	})
	esc := list.GetEscalations()[0]
	if esc.GetSubjectId() != ticket || esc.GetRule() == "" {
		t.Fatalf("escalation %v", esc)
	}
	// The table escapes the backslash of the ticket id (control characters too, see TestClean).
	code, out, _ := tpctl(t, "", nil, append([]string{"escalations", "list"}, base...)...)
	if code != 0 || !strings.Contains(out, `ticket E\\1 <b>"x"/ü`) || strings.Count(out, "\n") != 3 || !strings.HasSuffix(out, "1 escalations\n") {
		t.Errorf("escalations list table: exit %d\n%s", code, out)
	}

	// -severity is passed to escalation: its own severity lists it, another does not.
	own := strings.TrimPrefix(strings.ToLower(esc.GetSeverity().String()), "severity_")
	other := "info"
	if own == "info" {
		other = "critical"
	}
	for sev, want := range map[string]int{own: 1, other: 0} {
		code, out, errOut := tpctl(t, "", nil, append([]string{"escalations", "list", "-ticket", ticket, "-severity", sev, "-json"}, base...)...)
		list.Reset()
		if code != 0 || protojson.Unmarshal([]byte(out), &list) != nil || len(list.GetEscalations()) != want {
			t.Errorf("escalations list -severity %s: exit %d, %d escalations, want %d: %s %s", sev, code, len(list.GetEscalations()), want, out, errOut)
		}
	}
	if code, _, errOut := tpctl(t, "", nil, append([]string{"escalations", "list", "-severity", "urgent"}, base...)...); code != 2 || !strings.Contains(errOut, `-severity "urgent": want one of critical, info, warning`) {
		t.Errorf("escalations list -severity urgent: exit %d %s, want 2 naming the flag", code, errOut)
	}

	code, out, errOut := tpctl(t, "", nil, append([]string{"escalations", "ack", "-id", esc.GetId(), "-note", "on it <b>", "-json"}, base...)...)
	var ack tpv1.AcknowledgeEscalationResponse
	if code != 0 || protojson.Unmarshal([]byte(out), &ack) != nil || ack.GetEscalation().GetState() != tpv1.EscalationState_ESCALATION_STATE_ACKNOWLEDGED {
		t.Fatalf("ack: exit %d, %s %s", code, out, errOut)
	}
	code, out, errOut = tpctl(t, "", nil, append([]string{"escalations", "resolve", "-id", esc.GetId(), "-note", "fixed"}, base...)...)
	if code != 0 || !strings.Contains(out, "resolved") {
		t.Fatalf("resolve: exit %d, %s %s", code, out, errOut)
	}
	code, out, _ = tpctl(t, "", nil, append([]string{"escalations", "get", "-id", esc.GetId()}, base...)...)
	if code != 0 || !strings.Contains(out, "acknowledged") || !strings.Contains(out, "on it <b>") || !strings.Contains(out, "api-key:acme/all") {
		t.Errorf("get: exit %d\n%s", code, out)
	}
	// Resolving twice is refused with escalation's code.
	code, _, errOut = tpctl(t, "", nil, append([]string{"escalations", "resolve", "-id", esc.GetId()}, base...)...)
	if code != 1 || !strings.HasPrefix(errOut, "tpctl escalations resolve: resolve escalation: ") {
		t.Errorf("second resolve: exit %d, stderr %q", code, errOut)
	}

	// watch saw the whole life, one JSON object per line.
	kinds := func() []string {
		var got []string
		sc := bufio.NewScanner(strings.NewReader(watch.stdout.String()))
		for sc.Scan() {
			var c tpv1.EscalationChange
			if err := protojson.Unmarshal(sc.Bytes(), &c); err != nil {
				t.Fatalf("watch line %q: %v", sc.Text(), err)
			}
			if c.GetEscalation().GetId() == esc.GetId() {
				got = append(got, enumWord(c.GetKind().String(), "CHANGE_KIND_"))
			}
		}
		return got
	}
	waitFor(t, "watch to show the resolution", 10*time.Second, func() bool { k := kinds(); return len(k) > 0 && k[len(k)-1] == "resolved" })
	if got := strings.Join(kinds(), ","); got != "triggered,acknowledged,resolved" {
		t.Errorf("watch saw %s", got)
	}
	watch.cmd.Process.Signal(syscall.SIGINT)
	if code := watch.wait(t, 10*time.Second); code != 0 {
		t.Errorf("watch after SIGINT: exit %d\n%s", code, watch.stderr.String())
	}

	// notify delivered the escalation's changes to the receiver.
	nbase := []string{"-tenant", "acme", "-notify-addr", notify, "-key-file", s.keyFile}
	var dl tpv1.ListDeliveriesResponse
	waitFor(t, "a delivered notification", 30*time.Second, func() bool {
		code, out, _ := tpctl(t, "", nil, append([]string{"deliveries", "list", "-escalation", esc.GetId(), "-status", "delivered", "-json"}, nbase...)...)
		return code == 0 && protojson.Unmarshal([]byte(out), &dl) == nil && len(dl.GetDeliveries()) > 0
	})
	if hooks.Load() == 0 {
		t.Error("the receiver got no request")
	}
	d := dl.GetDeliveries()[0]
	code, out, errOut = tpctl(t, "", nil, append([]string{"deliveries", "get", "-id", d.GetId()}, nbase...)...)
	if code != 0 || !strings.Contains(out, "delivered") || !strings.Contains(out, "204") || !strings.Contains(out, esc.GetId()) {
		t.Errorf("deliveries get: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = tpctl(t, "", nil, append([]string{"deliveries", "list", "-receiver", "hook"}, nbase...)...)
	if code != 0 || !strings.Contains(out, "hook") || !strings.Contains(out, "delivered") {
		t.Errorf("deliveries list table: exit %d\n%s", code, out)
	}
	// A key of acme without notifications:read is refused by notify.
	code, _, errOut = tpctl(t, "", nil, "deliveries", "list", "-tenant", "acme", "-notify-addr", notify, "-key-file", s.eventsKey)
	if code != 1 || !strings.Contains(errOut, "PermissionDenied") {
		t.Errorf("events-only key: exit %d, stderr %q", code, errOut)
	}
}
