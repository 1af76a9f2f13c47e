package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// traceRules: a first response is due an hour after a ticket is created; escalated to the leads.
const traceRules = `
tenants:
  acme:
    escalation_policies:
      leads: {levels: [{targets: [team-lead]}]}
    sla_policies:
      - name: support
        at_risk: off
        escalation: leads
        targets: {default: {first_response: 1h}}
`

// One signed webhook whose ticket breaches its SLA a few seconds later is one trace, from the
// caller's traceparent to the receiver's HTTP request: ingest's request and send, kpi's batch and
// write, escalation's batch and judgement, its timer firing (a child of, and linked to, the
// judgement that planned it) and its send, notify's routing, group send, attempt and HTTP
// request, whose traceparent the receiver got.
func TestOneTraceFromWebhookToReceiver(t *testing.T) {
	collector := newOTLPCollector(t, false)
	genericKey := []byte("e2e-trace-generic-key-32-bytes!!")
	s := newStackWith(t, map[string]string{"acme": `    sources:
      generic:
        secrets: [{env: E2E_GENERIC_SECRET}]
`})
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(traceRules), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []http.Header
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	routing := filepath.Join(dir, "routing.yaml")
	if err := os.WriteFile(routing, []byte(fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: E2E_HOOK_SECRET}]}
route: {receiver: hook, group_by: ["..."], group_wait: 0s, group_interval: 1s}
`, receiver.URL+"/hook")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_HOOK_SECRET", "whsec_"+base64.StdEncoding.EncodeToString([]byte("e2e-trace-hook-secret-32-bytes!!")))
	t.Setenv("E2E_GENERIC_SECRET", "whsec_"+base64.StdEncoding.EncodeToString(genericKey))

	redisDB := s.redisDB
	common := append([]string{"TICKETPULSE_NATS_URL=" + s.natsURL, "TICKETPULSE_TENANTS_FILE=" + s.tenants.File, "TICKETPULSE_STREAM_REPLICAS=1"},
		collector.env()...)
	ingest := startIngest(t, s, collector.env()...)
	startService(t, "kpi", freeAddr(t), append(common, "TICKETPULSE_REDIS_URL="+redisDB(0), "TICKETPULSE_GRPC_ADDR="+freeAddr(t),
		"TICKETPULSE_BATCH_LINGER=1ms", "TICKETPULSE_RULES_FILE="+rules)...)
	startService(t, "escalation", freeAddr(t), append(common, "TICKETPULSE_REDIS_URL="+redisDB(1), "TICKETPULSE_GRPC_ADDR="+freeAddr(t),
		"TICKETPULSE_RULES_FILE="+rules)...)
	startService(t, "notify", freeAddr(t), append(common, "TICKETPULSE_REDIS_URL="+redisDB(2), "TICKETPULSE_GRPC_ADDR="+freeAddr(t),
		"TICKETPULSE_ROUTING_FILE="+routing)...)

	// Created an hour ago less 3 s: its first response falls due 3 s from now, when escalation's
	// timer fires.
	created := time.Now().UTC().Add(-time.Hour + 3*time.Second)
	body, _ := json.Marshal([]map[string]any{{"id": "trace-c", "ticket_id": "T-trace", "type": "ticket_created",
		"occurred_at": created.Format(time.RFC3339Nano), "actor": map[string]any{"id": "cu", "kind": "customer"},
		"assignee_id": "ana", "team_id": "support", "priority": "normal"}})
	const traceID, callerSpan = "5ee5a1ed0f7e1e2a9c3d4b5a69788796", "a1b2c3d4e5f60718"
	req, err := http.NewRequest(http.MethodPost, "http://"+ingest+"/v1/tenants/acme/webhooks/generic", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, genericKey)
	mac.Write([]byte("wh-trace." + ts + "." + string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", "wh-trace")
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	req.Header.Set("traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d %s", resp.StatusCode, answer)
	}

	var delivered http.Header
	waitUntil(t, "the breach notified", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(got) > 0 {
			delivered = got[0]
		}
		return delivered != nil
	})
	tp := strings.Split(delivered.Get("traceparent"), "-")
	if len(tp) != 4 || tp[1] != traceID {
		t.Fatalf("the receiver got traceparent %q, want one of trace %s", delivered.Get("traceparent"), traceID)
	}

	// The spans, by service and name, once the receiver's request span has been exported.
	find := func(spans []span, service, name string) *span {
		for i := range spans {
			if spans[i].Service == service && spans[i].Name == name {
				return &spans[i]
			}
		}
		return nil
	}
	var spans []span
	defer func() {
		if t.Failed() {
			for _, sp := range spans {
				t.Logf("exported: %s/%s %s parent %s links %v", sp.Service, sp.Name, sp.ID, sp.Parent, sp.Links)
			}
		}
	}()
	// Each service exports its spans in its own batches, so the receiver's request being in
	// says nothing about escalation's last batch: wait for every span the checks below name.
	expected := [][2]string{{"ingest", "POST /v1/tenants/{tenant}/webhooks/{source}"}, {"ingest", "send TICKETS"},
		{"kpi", "process TICKETS"}, {"kpi", "kpi write"}, {"escalation", "process TICKETS"}, {"escalation", "judge ticket"},
		{"escalation", "fire ticket timer"}, {"escalation", "send ESCALATIONS"}, {"notify", "process ESCALATIONS"},
		{"notify", "route change"}, {"notify", "send group"}, {"notify", "deliver hook"}}
	waitUntil(t, "every span of the trace exported", 30*time.Second, func() bool {
		spans = collector.trace(traceID)
		request := false
		for _, sp := range spans {
			request = request || (sp.Service == "notify" && sp.ID == tp[2])
		}
		for _, e := range expected {
			if find(spans, e[0], e[1]) == nil {
				return false
			}
		}
		return request
	})
	byID := map[string]*span{}
	for i := range spans {
		byID[spans[i].ID] = &spans[i]
	}
	var lines []string
	for _, sp := range spans {
		lines = append(lines, fmt.Sprintf("%s/%s %s parent %s links %v", sp.Service, sp.Name, sp.ID, sp.Parent, sp.Links))
	}
	t.Logf("trace %s:\n%s", traceID, strings.Join(lines, "\n"))
	must := func(service, name string) *span {
		t.Helper()
		sp := find(spans, service, name)
		if sp == nil {
			t.Fatalf("no span %s/%s in the trace", service, name)
		}
		return sp
	}
	parentIs := func(child, parent *span) {
		t.Helper()
		if child.Parent != parent.ID {
			t.Errorf("%s/%s: parent %s, want %s/%s (%s)", child.Service, child.Name, child.Parent, parent.Service, parent.Name, parent.ID)
		}
	}
	linksTo := func(sp, to *span) {
		t.Helper()
		for _, l := range sp.Links {
			if l.Trace == traceID && l.ID == to.ID {
				return
			}
		}
		t.Errorf("%s/%s links %v, want a link to %s/%s", sp.Service, sp.Name, sp.Links, to.Service, to.Name)
	}

	hook := must("ingest", "POST "+"/v1/tenants/{tenant}/webhooks/{source}")
	if hook.Parent != callerSpan {
		t.Errorf("ingest's request span: parent %s, want the caller's %s", hook.Parent, callerSpan)
	}
	if hook.Attrs["tenant"] != "acme" || hook.Attrs["source"] != "generic" || hook.Attrs["http.response.status_code"] == "" || hook.Kind != "SPAN_KIND_SERVER" {
		t.Errorf("ingest's request span: kind %s, attributes %v; want a server span with tenant, source and status code", hook.Kind, hook.Attrs)
	}
	send := must("ingest", "send TICKETS")
	parentIs(send, hook)
	if send.Attrs["ticket_id"] != "T-trace" || send.Attrs["event_type"] != "ticket_created" || send.Kind != "SPAN_KIND_PRODUCER" {
		t.Errorf("send TICKETS: kind %s attributes %v", send.Kind, send.Attrs)
	}

	kpiBatch := must("kpi", "process TICKETS")
	parentIs(kpiBatch, send)
	linksTo(kpiBatch, send)
	parentIs(must("kpi", "kpi write"), kpiBatch)

	escBatch := must("escalation", "process TICKETS")
	parentIs(escBatch, send)
	judged := must("escalation", "judge ticket")
	parentIs(judged, send)
	fired := must("escalation", "fire ticket timer")
	parentIs(fired, judged)
	linksTo(fired, judged)
	escSend := must("escalation", "send ESCALATIONS")
	parentIs(escSend, fired)
	if escSend.Attrs["rule"] == "" || escSend.Attrs["tenant"] != "acme" {
		t.Errorf("send ESCALATIONS attributes %v, want the tenant and rule", escSend.Attrs)
	}

	parentIs(must("notify", "process ESCALATIONS"), escSend)
	routed := must("notify", "route change")
	parentIs(routed, escSend)
	group := must("notify", "send group")
	parentIs(group, routed)
	linksTo(group, routed)
	attempt := must("notify", "deliver hook")
	if attempt.Attrs["receiver"] != "hook" {
		t.Errorf("attempt attributes %v, want receiver hook", attempt.Attrs)
	}
	request := byID[tp[2]]
	parentIs(request, attempt)
	if request.Kind != "SPAN_KIND_CLIENT" {
		t.Errorf("the receiver's traceparent names %s/%s (%s), want notify's HTTP client span", request.Service, request.Name, request.Kind)
	}
	for _, sp := range spans {
		for k, v := range sp.Attrs {
			if strings.Contains(v, "/hook") || strings.Contains(v, "whsec_") {
				t.Errorf("%s/%s attribute %s shows a secret or the receiver's path: %q", sp.Service, sp.Name, k, v)
			}
		}
	}
	// Every span of the chain hangs below the caller's, through parents only.
	for _, sp := range spans {
		p := &sp
		for depth := 0; p != nil && p.Parent != callerSpan && depth < 50; depth++ {
			p = byID[p.Parent]
		}
		if p == nil {
			t.Errorf("%s/%s is not below the caller's span", sp.Service, sp.Name)
		}
	}
}
