package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
)

// historyRules is one rules file for kpi and escalation with a rule of every kind a ticket's
// history can breach: the three SLA clocks (at risk at half a target, so a paused clock stays at
// risk for ever), a bad rating and a reopen; and agent and team KPI rules, which judge the last
// 24 hours and so must not be tripped by figures of older hours. -history-horizon is left at its
// default (24h), and the escalation policy sets none of its own.
const historyRules = `
tenants:
  acme:
    escalation_policies:
      leads: {levels: [{targets: [team-lead]}]}
    sla_policies:
      - name: support
        at_risk: 50%
        escalation: leads
        targets: {default: {first_response: 1h, next_response: 1h, resolution: 12h}}
    quality_rules:
      - {name: bad-rating, kind: bad_rating, max_score: 2, escalation: leads}
      - {name: reopened, kind: reopens, min_reopens: 1, escalation: leads}
      - {name: slow-agent, kind: kpi, metric: first_response_p90, window: 24h, above: 5m, escalation: leads}
      - {name: slow-team, kind: kpi, scope: team, metric: resolution_p50, window: 24h, above: 20m, escalation: leads}
`

// hookRequests are the notifications a webhook receiver got, decoded.
type hookRequests struct {
	mu   sync.Mutex
	got  [][]*tpv1.EscalationChange
	errs []string
}

func (h *hookRequests) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var n struct {
		Changes []json.RawMessage `json:"changes"`
	}
	var changes []*tpv1.EscalationChange
	err := json.Unmarshal(body, &n)
	for _, raw := range n.Changes {
		c := &tpv1.EscalationChange{}
		if err == nil {
			err = protojson.Unmarshal(raw, c)
		}
		changes = append(changes, c)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.errs = append(h.errs, fmt.Sprintf("%v: %s", err, body))
	}
	h.got = append(h.got, changes)
}

// requests returns every request so far and the ones that could not be decoded.
func (h *hookRequests) requests() ([][]*tpv1.EscalationChange, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]*tpv1.EscalationChange(nil), h.got...), append([]string(nil), h.errs...)
}

// Importing 30 days of history with breaches of every rule kind, through the whole stack
// (ingest, kpi, escalation, notify with a real webhook receiver): kpi counts it, escalation
// records every breach as historical by kind, nothing is published to ESCALATIONS and nobody is
// notified. A ticket created two hours ago with a 1-hour first-response target and no reply
// then escalates and is notified at once, and one whose deadline is seconds ahead escalates
// when it passes.
func TestHistoryPagesNobody(t *testing.T) { historyPagesNobody(t, newStack(t)) }

// historyPagesNobody is TestHistoryPagesNobody on the stack s.
func historyPagesNobody(t *testing.T, s stack) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(historyRules), 0o600); err != nil {
		t.Fatal(err)
	}
	hook := &hookRequests{}
	receiver := httptest.NewServer(hook)
	t.Cleanup(receiver.Close)
	routing := filepath.Join(t.TempDir(), "routing.yaml")
	// One group per escalation, notified at once: a change held back by grouping cannot hide.
	if err := os.WriteFile(routing, []byte(fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: E2E_HOOK_SECRET}]}
route: {receiver: hook, group_by: ["..."], group_wait: 0s, group_interval: 1s}
`, receiver.URL+"/hook")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_HOOK_SECRET", "whsec_"+base64.StdEncoding.EncodeToString([]byte("e2e-history-secret-32-bytes-long")))

	redisDB := s.redisDB
	common := []string{"TICKETPULSE_NATS_URL=" + s.natsURL, "TICKETPULSE_TENANTS_FILE=" + s.tenants.File, "TICKETPULSE_STREAM_REPLICAS=1"}
	ingest := startIngest(t, s)
	kpiGRPC := freeAddr(t)
	startService(t, "kpi", freeAddr(t), append(common, "TICKETPULSE_REDIS_URL="+redisDB(0), "TICKETPULSE_GRPC_ADDR="+kpiGRPC,
		"TICKETPULSE_BATCH_LINGER=1ms", "TICKETPULSE_SNAPSHOT_INTERVAL=100ms", "TICKETPULSE_RULES_FILE="+rules)...)
	escGRPC, escAdmin := freeAddr(t), freeAddr(t)
	startService(t, "escalation", freeAddr(t), append(common, "TICKETPULSE_REDIS_URL="+redisDB(1), "TICKETPULSE_GRPC_ADDR="+escGRPC,
		"TICKETPULSE_RULES_FILE="+rules, "TICKETPULSE_ADMIN_ADDR="+escAdmin)...)
	startService(t, "notify", freeAddr(t), append(common, "TICKETPULSE_REDIS_URL="+redisDB(2), "TICKETPULSE_GRPC_ADDR="+freeAddr(t),
		"TICKETPULSE_ROUTING_FILE="+routing)...)

	now := time.Now().UTC()
	event := func(ticket, id, typ string, at time.Time, actor, kind string, extra ...any) map[string]any {
		m := map[string]any{"id": ticket + "-" + id, "ticket_id": ticket, "type": typ, "occurred_at": at.Format(time.RFC3339Nano),
			"actor": map[string]any{"id": actor, "kind": kind}}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	created := func(ticket string, at time.Time) map[string]any {
		return event(ticket, "c", "ticket_created", at, "cu", "customer", "assignee_id", "ana", "team_id", "support", "priority", "normal")
	}
	reply := func(ticket, id string, at time.Time) map[string]any {
		return event(ticket, id, "agent_message", at, "ana", "agent", "public", true)
	}
	status := func(ticket, id string, at time.Time, st string) map[string]any {
		return event(ticket, id, "status_changed", at, "ana", "agent", "status", st)
	}

	// 30 days of history, days 2 to 30 ago, each day's tickets in one request.
	const days = 29
	for d := 2; d <= 30; d++ {
		at := now.Add(-time.Duration(d) * 24 * time.Hour)
		plus := func(m int) time.Time { return at.Add(time.Duration(m) * time.Minute) }
		first, next, rated := fmt.Sprintf("hist-first-%d", d), fmt.Sprintf("hist-next-%d", d), fmt.Sprintf("hist-rated-%d", d)
		reopen, paused := fmt.Sprintf("hist-reopen-%d", d), fmt.Sprintf("hist-paused-%d", d)
		post(t, ingest, "acme", s.tenants.AcmeEvents, []map[string]any{
			// Never answered: first response and resolution breached.
			created(first, at),
			// Answered, then the customer wrote again and waits: next response and resolution breached.
			created(next, at), reply(next, "r", plus(10)), event(next, "m", "customer_message", plus(20), "cu", "customer"),
			// Solved in time, then rated 1: a bad rating.
			created(rated, at), reply(rated, "r", plus(10)), status(rated, "s", plus(30), "solved"),
			event(rated, "q", "satisfaction_rated", plus(40), "cu", "customer", "satisfaction", map[string]any{"score": 1, "comment": "slow"}),
			// Solved, reopened, solved again: a reopen.
			created(reopen, at), reply(reopen, "r", plus(10)), status(reopen, "s1", plus(30), "solved"),
			status(reopen, "o", plus(50), "open"), reply(reopen, "r2", plus(55)), status(reopen, "s2", plus(60), "solved"),
			// Pending from hour 8 on: the resolution clock stopped at risk (6 of 12 hours) and stays there.
			created(paused, at), reply(paused, "r", plus(10)), status(paused, "p", plus(8*60), "pending"),
		})
	}

	// kpi counted the history: ana's 29 bad ratings are in her figures.
	kpi := tpv1.NewKpiServiceClient(dialAs(t, kpiGRPC, s.tenants.Acme))
	waitKpis(t, kpi, "acme", window(now.Add(-31*24*time.Hour), now.Add(time.Hour)), func(k *tpv1.Kpis) bool {
		return k.GetCsatCount() == days && k.GetCsatMean() == 1
	})
	// escalation judged all of it: every consumer of TICKETS is done, and every breach was
	// recorded as historical, by kind (a ticket judged more than once counts more than once).
	nc, err := nats.Connect(s.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "TICKETS consumed by every consumer", 60*time.Second, func() bool { return ticketsConsumed(t, js) })
	wantKinds := map[string]int{"sla-first-response": days, "sla-next-response": days, "sla-resolution": 3 * days,
		"bad_rating": days, "reopens": days}
	var counted map[string]int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		counted = historicalBreaches(t, escAdmin)
		done := true
		for k, n := range wantKinds {
			done = done && counted[k] >= n
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("historical breaches by kind %v, want at least %v", counted, wantKinds)
		}
	}
	t.Logf("historical breaches by kind: %v", counted)

	// Zero escalations: nothing on ESCALATIONS, nothing listed, nothing at the receiver. KPI
	// snapshots went on being judged all the while (every 100 ms); give notify as long again.
	time.Sleep(time.Second)
	if n := escalationsStored(t, js); n != 0 {
		t.Fatalf("the history published %d escalation changes, want none:\n%s", n, strings.Join(storedChanges(t, js), "\n"))
	}
	esc := tpv1.NewEscalationServiceClient(dialAs(t, escGRPC, s.tenants.Acme))
	if list, err := esc.ListEscalations(context.Background(), &tpv1.ListEscalationsRequest{Tenant: "acme", PageSize: 500}); err != nil || len(list.GetEscalations()) != 0 {
		t.Fatalf("ListEscalations after the history: %v %v, want none", list.GetEscalations(), err)
	}
	if got, bad := hook.requests(); len(got) != 0 || len(bad) != 0 {
		t.Fatalf("the receiver got %d notifications for the history (%v), want none", len(got), bad)
	}

	// Live: created two hours ago, first response due an hour ago and no reply; and one whose
	// first response falls due in 10 s.
	soonDue := time.Now().UTC().Add(10 * time.Second)
	post(t, ingest, "acme", s.tenants.AcmeEvents, []map[string]any{
		created("live-two-hours", time.Now().UTC().Add(-2*time.Hour)),
		created("live-soon", soonDue.Add(-time.Hour)),
	})
	critical := func(c *tpv1.EscalationChange, ticket string) bool {
		e := c.GetEscalation()
		return e.GetSubjectId() == ticket && e.GetRule() == "sla-first-response" && e.GetSeverity() == tpv1.Severity_SEVERITY_CRITICAL
	}
	notified := func(ticket string) *tpv1.EscalationChange {
		got, _ := hook.requests()
		for _, req := range got {
			for _, c := range req {
				if critical(c, ticket) {
					return c
				}
			}
		}
		return nil
	}
	waitUntil(t, "live-two-hours' breach notified", 15*time.Second, func() bool { return notified("live-two-hours") != nil })
	waitUntil(t, "live-soon's breach notified", 30*time.Second, func() bool { return notified("live-soon") != nil })
	// On time: the change that made live-soon critical was made when its deadline passed, not
	// before and not seconds later.
	if at := notified("live-soon").GetAt().AsTime(); at.Before(soonDue) || at.After(soonDue.Add(5*time.Second)) {
		t.Errorf("live-soon turned critical at %v, want within 5s after its deadline %v", at, soonDue)
	}

	// Still nothing of the history anywhere: only the live tickets escalated and were notified.
	time.Sleep(time.Second)
	for _, line := range storedChanges(t, js) {
		if !strings.HasPrefix(line, "live-") {
			t.Errorf("ESCALATIONS holds a change of the history: %s", line)
		}
	}
	got, bad := hook.requests()
	if len(bad) != 0 {
		t.Errorf("undecodable notifications: %v", bad)
	}
	for _, req := range got {
		for _, c := range req {
			if id := c.GetEscalation().GetSubjectId(); !strings.HasPrefix(id, "live-") {
				t.Errorf("notified %v of %s: %s", c.GetKind(), id, c.GetEscalation().GetSummary())
			}
		}
	}
}

// waitUntil polls cond every 100 ms until it holds, or fails after limit.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ticketsConsumed reports whether every durable consumer of TICKETS has acknowledged every
// message in it.
func ticketsConsumed(t testing.TB, js jetstream.JetStream) bool {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, "TICKETS")
	if err != nil {
		return false
	}
	n := 0
	for info := range st.ListConsumers(ctx).Info() {
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return false
		}
		n++
	}
	// kpi's and escalation's.
	return n >= 2
}

// escalationsStored is the number of changes on the ESCALATIONS stream.
func escalationsStored(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), "ESCALATIONS")
	if err != nil {
		t.Fatalf("ESCALATIONS: %v", err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// storedChanges describes every change on the ESCALATIONS stream: "<subject id> <rule> <kind>".
func storedChanges(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, "ESCALATIONS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		c := &tpv1.EscalationChange{}
		if err := proto.Unmarshal(m.Data, c); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %s", c.GetEscalation().GetSubjectId(), c.GetEscalation().GetRule(), c.GetKind()))
	}
	return out
}

// historicalBreaches reads escalation_historical_breaches_total by kind from escalation's admin
// server at addr.
func historicalBreaches(t *testing.T, addr string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for kind, v := range servicetest.MetricSum(t, http.DefaultClient, "http://"+addr+"/metrics", "escalation_historical_breaches_total", "kind") {
		out[kind] = int(v)
	}
	return out
}
