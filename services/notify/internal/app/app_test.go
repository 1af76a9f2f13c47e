package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/dispatch"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// hookSecret is a Standard Webhooks secret: "whsec_" and the base64 of the key.
var hookKey = []byte("0123456789abcdef0123456789abcdef")
var hookSecret = "whsec_" + base64.StdEncoding.EncodeToString(hookKey)

// hook is a real HTTP receiver that records what it gets and answers with the statuses it is
// told, one per request (the last repeats).
type hook struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	requests []hookRequest
	statuses []int
	delay    time.Duration
}

type hookRequest struct {
	id, timestamp, signature string
	body                     []byte
	at                       time.Time
}

func newHook(t *testing.T, statuses ...int) *hook {
	h := &hook{t: t, statuses: statuses}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.requests = append(h.requests, hookRequest{r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now()})
		code := http.StatusOK
		if len(h.statuses) > 0 {
			code = h.statuses[0]
			if len(h.statuses) > 1 {
				h.statuses = h.statuses[1:]
			}
		}
		delay := h.delay
		h.mu.Unlock()
		time.Sleep(delay)
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) got() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests)
}

// verify checks a request's signature the way a receiver reads the Standard Webhooks spec:
// HMAC-SHA256 over "id.timestamp.body" with the decoded secret, base64, prefixed "v1,".
func verify(r hookRequest) bool {
	mac := hmac.New(sha256.New, hookKey)
	mac.Write([]byte(r.id + "." + r.timestamp + "."))
	mac.Write(r.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(r.signature) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

// changeRefs lists "<escalation id>#<sequence>" of the changes in a webhook body.
func changeRefs(t *testing.T, body []byte) []string {
	t.Helper()
	var msg struct {
		Changes []struct {
			Sequence   json.Number `json:"sequence"`
			Escalation struct {
				ID string `json:"id"`
			} `json:"escalation"`
		} `json:"changes"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatalf("webhook body: %v: %s", err, body)
	}
	var out []string
	for _, c := range msg.Changes {
		out = append(out, c.Escalation.ID+"#"+c.Sequence.String())
	}
	return out
}

type stack struct {
	natsURL, redisURL string
	js                jetstream.JetStream
	routing           string
	// tenants is the registry the service reads: acme and globex with their keys.
	tenants *servicetest.Tenants
}

func newStack(t *testing.T, routingYAML string) *stack {
	t.Helper()
	rdb := testenv.Redis(t)
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, stream.Escalations(1), stream.Deadletter(1))
	file := filepath.Join(t.TempDir(), "routing.yaml")
	if err := os.WriteFile(file, []byte(routingYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return &stack{natsURL: url, redisURL: testenv.RedisURL(rdb), js: js, routing: file,
		tenants: servicetest.WriteTenants(t, nil)}
}

func (s *stack) config() Config {
	common := servicetest.Settings(s.natsURL, s.redisURL)
	common.TenantsFile = s.tenants.File
	return Config{
		Common:      common,
		RoutingFile: s.routing, RoutingReload: 100 * time.Millisecond,
		Consume:      consume.Settings{Durable: "notify", BatchMax: 100, Linger: time.Millisecond, AckWait: 5 * time.Second},
		Timers:       timers.Settings{Poll: 20 * time.Millisecond, Lease: 2 * time.Second, Shards: 16},
		LogMax:       1000,
		DedupeWindow: time.Hour, DeliveredTTL: time.Hour, StreamReplicas: 1, EscalationsFrom: "all",
	}
}

// testDeps are the tests': a short retry backoff.
func testDeps(h service.Hooks) Deps {
	return Deps{Hooks: h, Backoff: dispatch.Options{BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Busy: 20 * time.Millisecond}}
}

// start runs one replica and returns a client holding acme's all-scope key.
func (s *stack) start(t *testing.T) tpv1.NotificationServiceClient {
	t.Helper()
	return tpv1.NewNotificationServiceClient(s.run(t).DialAs(s.tenants.Acme))
}

// run runs one replica of the service until the test ends.
func (s *stack) run(t *testing.T) *servicetest.Running {
	t.Helper()
	cfg := s.config()
	return servicetest.Start(t, func(ctx context.Context, h service.Hooks) error { return testDeps(h).Run(ctx, cfg, quiet) })
}

var msgSeq atomic.Int64

// change builds an escalation change of a ticket escalation.
func change(ticket, rule, team string, kind tpv1.ChangeKind, seq int64) *tpv1.EscalationChange {
	state := tpv1.EscalationState_ESCALATION_STATE_OPEN
	if kind == tpv1.ChangeKind_CHANGE_KIND_RESOLVED {
		state = tpv1.EscalationState_ESCALATION_STATE_RESOLVED
	}
	id := rule + ".t." + ticket + ".1"
	return &tpv1.EscalationChange{Kind: kind, Sequence: seq, At: timestamppb.Now(), Escalation: &tpv1.Escalation{
		Id: id, Tenant: "acme", Rule: rule, SubjectKind: "ticket", SubjectId: ticket, State: state,
		Severity: tpv1.Severity_SEVERITY_CRITICAL, Level: 1, Summary: "ticket " + ticket + ": first response SLA breached",
		Labels: map[string]string{"tenant": "acme", "rule": rule, "team": team, "ticket": ticket, "agent": "ana", "severity": "critical", "level": "1"},
		Facts:  []*tpv1.Fact{{Name: "target", Value: "1h0m0s"}},
	}}
}

// publish stores changes in ESCALATIONS as the escalation service does; a copy gets a new
// message id, so the stream keeps it (a redelivery notify must absorb).
func (s *stack) publish(t *testing.T, cs ...*tpv1.EscalationChange) {
	t.Helper()
	for _, c := range cs {
		data, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: "escalations." + c.GetEscalation().GetTenant() + "." + c.GetEscalation().GetRule(), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("m-%d", msgSeq.Add(1)))
		if _, err := s.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func webhookRouting(url string, extra string) string {
	return fmt.Sprintf(`receivers:
  - name: hook
    webhook:
      url: %q
      secrets: [{env: TP_TEST_HOOK_SECRET}]
    limits: {timeout: 2s, deadline: 3s}
route:
  receiver: hook
  group_by: [tenant, team]
  group_wait: 500ms
  group_interval: 1s
%s`, url, extra)
}

// The routing files of these tests read the webhook secret from the environment.
func init() { os.Setenv("TP_TEST_HOOK_SECRET", hookSecret) }

// A burst of 40 breaches for one team becomes one signed message listing them all, logged as
// delivered with its attempt.
func TestBurstBecomesOneSignedMessage(t *testing.T) {
	h := newHook(t)
	s := newStack(t, webhookRouting(h.srv.URL, ""))
	client := s.start(t)
	var want []string
	for i := range 40 {
		c := change(fmt.Sprintf("T-%02d", i), "sla-first-response", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1)
		want = append(want, c.GetEscalation().GetId()+"#1")
		s.publish(t, c)
	}
	s.publish(t, change("T-99", "sla-first-response", "support", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1))
	waitFor(t, "two messages", func() bool { return len(h.got()) >= 2 })
	time.Sleep(700 * time.Millisecond)
	reqs := h.got()
	if len(reqs) != 2 {
		t.Fatalf("%d messages, want 2 (one per team)", len(reqs))
	}
	var billing hookRequest
	for _, r := range reqs {
		if !verify(r) {
			t.Errorf("signature %q does not verify", r.signature)
		}
		if len(changeRefs(t, r.body)) == 40 {
			billing = r
		}
	}
	got := changeRefs(t, billing.body)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("billing message carries %v", got)
	}
	list, err := client.ListDeliveries(context.Background(), &tpv1.ListDeliveriesRequest{Tenant: "acme", EscalationId: "sla-first-response.t.T-07.1"})
	if err != nil || len(list.GetDeliveries()) != 1 {
		t.Fatalf("deliveries of T-07: %v %v", err, list)
	}
	d := list.GetDeliveries()[0]
	if d.GetStatus() != tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED || len(d.GetChanges()) != 40 || d.GetReceiver() != "hook" {
		t.Errorf("delivery %v", d)
	}
	full, err := client.GetDelivery(context.Background(), &tpv1.GetDeliveryRequest{Tenant: "acme", Id: d.GetId()})
	if err != nil || len(full.GetDelivery().GetAttempts()) != 1 || full.GetDelivery().GetAttempts()[0].GetStatusCode() != 200 {
		t.Errorf("attempts: %v %v", err, full)
	}
	if billing.id != "acme."+d.GetId() {
		t.Errorf("webhook-id %q, want acme.%s", billing.id, d.GetId())
	}
}

// A failing receiver is retried with backoff, with the same webhook-id, until it answers.
func TestRetriesUntilDelivered(t *testing.T) {
	h := newHook(t, 500, 503, 200)
	s := newStack(t, webhookRouting(h.srv.URL, ""))
	client := s.start(t)
	s.publish(t, change("T-1", "bad-rating", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1))
	waitFor(t, "three attempts", func() bool { return len(h.got()) >= 3 })
	reqs := h.got()
	if reqs[0].id != reqs[1].id || reqs[1].id != reqs[2].id {
		t.Errorf("webhook-id changed across retries: %q %q %q", reqs[0].id, reqs[1].id, reqs[2].id)
	}
	for i := 1; i < 3; i++ {
		if gap := reqs[i].at.Sub(reqs[i-1].at); gap < 20*time.Millisecond {
			t.Errorf("retry %d came %s after the previous attempt: no backoff", i, gap)
		}
	}
	waitFor(t, "delivered", func() bool {
		list, err := client.ListDeliveries(context.Background(), &tpv1.ListDeliveriesRequest{Tenant: "acme", Status: tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED})
		return err == nil && len(list.GetDeliveries()) == 1
	})
	list, _ := client.ListDeliveries(context.Background(), &tpv1.ListDeliveriesRequest{Tenant: "acme"})
	full, err := client.GetDelivery(context.Background(), &tpv1.GetDeliveryRequest{Tenant: "acme", Id: list.GetDeliveries()[0].GetId()})
	if err != nil {
		t.Fatal(err)
	}
	var codes []int32
	for _, a := range full.GetDelivery().GetAttempts() {
		codes = append(codes, a.GetStatusCode())
	}
	if !slices.Equal(codes, []int32{500, 503, 200}) {
		t.Errorf("attempt statuses %v", codes)
	}
}

// deadLetters reads the DEADLETTER stream's notify messages.
func (s *stack) deadLetters(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	st, err := s.js.Stream(context.Background(), stream.DeadletterName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if err == nil && strings.HasPrefix(m.Subject, "deadletter.notify.") {
			out = append(out, m)
		}
	}
	return out
}

// Failures that end a delivery: each is logged as failed with the reason and dead-lettered
// with every attempt; a 410 also disables the receiver, so the next change is suppressed.
func TestFailuresAreDeadLettered(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		reason   string
		attempts int
	}{
		{"endpoint gone", []int{410}, "endpoint gone (410)", 1},
		{"client error", []int{400}, "not retryable", 1},
		{"deadline", []int{500}, "deadline 3s passed after", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHook(t, tt.statuses...)
			s := newStack(t, webhookRouting(h.srv.URL, ""))
			client := s.start(t)
			s.publish(t, change("T-1", "bad-rating", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1))
			waitFor(t, "the dead letter", func() bool { return len(s.deadLetters(t)) == 1 })
			dl := s.deadLetters(t)[0]
			if !strings.Contains(dl.Header.Get("Ticketpulse-Reason"), tt.reason) {
				t.Errorf("dead letter reason %q, want %q", dl.Header.Get("Ticketpulse-Reason"), tt.reason)
			}
			var body struct {
				Changes  []string `json:"changes"`
				Attempts []struct {
					Status int    `json:"status"`
					Error  string `json:"error"`
				} `json:"attempts"`
			}
			if err := json.Unmarshal(dl.Data, &body); err != nil {
				t.Fatal(err)
			}
			if len(body.Changes) != 1 || len(body.Attempts) != len(h.got()) || body.Attempts[len(body.Attempts)-1].Status != tt.statuses[0] ||
				body.Attempts[0].Error == "" {
				t.Errorf("dead letter body %s with %d requests made", dl.Data, len(h.got()))
			}
			if tt.attempts > 0 && len(body.Attempts) != tt.attempts {
				t.Errorf("%d attempts, want %d", len(body.Attempts), tt.attempts)
			}
			if tt.attempts == 0 && len(body.Attempts) < 3 {
				t.Errorf("%d attempts before the deadline, want several", len(body.Attempts))
			}
			list, err := client.ListDeliveries(context.Background(), &tpv1.ListDeliveriesRequest{Tenant: "acme", Status: tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED})
			if err != nil || len(list.GetDeliveries()) != 1 || !strings.Contains(list.GetDeliveries()[0].GetReason(), tt.reason) {
				t.Errorf("failed deliveries: %v %v", err, list)
			}
			if tt.name != "endpoint gone" {
				return
			}
			s.publish(t, change("T-2", "bad-rating", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1))
			waitFor(t, "the suppressed delivery", func() bool {
				list, err := client.ListDeliveries(context.Background(), &tpv1.ListDeliveriesRequest{Tenant: "acme", Status: tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED})
				return err == nil && len(list.GetDeliveries()) == 1 && strings.HasPrefix(list.GetDeliveries()[0].GetReason(), "receiver disabled: endpoint gone (410)")
			})
			if n := len(h.got()); n != 1 {
				t.Errorf("%d requests to a disabled receiver", n)
			}
		})
	}
}

// A slow receiver holds up only itself: a fast one routed the same changes is served at once.
func TestSlowReceiverDelaysNobodyElse(t *testing.T) {
	slow, fast := newHook(t), newHook(t)
	slow.delay = 3 * time.Second
	s := newStack(t, fmt.Sprintf(`receivers:
  - name: slow
    webhook: {url: %q, secrets: [{env: TP_TEST_HOOK_SECRET}]}
    limits: {timeout: 5s, deadline: 1m, concurrency: 1}
  - name: fast
    webhook: {url: %q, secrets: [{env: TP_TEST_HOOK_SECRET}]}
route:
  receiver: fast
  group_by: ["..."]
  group_wait: 0s
  routes:
    - receiver: slow
      continue: true
    - receiver: fast
`, slow.srv.URL, fast.srv.URL))
	s.start(t)
	start := time.Now()
	for i := range 5 {
		s.publish(t, change(fmt.Sprintf("T-%d", i), "bad-rating", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1))
	}
	waitFor(t, "the fast receiver", func() bool { return len(fast.got()) == 5 })
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the fast receiver got its 5 messages after %s, held up by the slow one", took)
	}
	if n := len(slow.got()); n > 1 {
		t.Errorf("the slow receiver (concurrency 1) had %d requests within its first 3 s", n)
	}
}

// Silences, quiet hours and inhibition each stop a notification, with the reason in the log.
func TestSuppressionReasons(t *testing.T) {
	h := newHook(t)
	s := newStack(t, webhookRouting(h.srv.URL, `  routes:
    - matchers: ['team="night"']
      receiver: hook
      quiet_hours:
        time_zone: UTC
        hours: {mon-sun: "00:00-24:00"}
silences:
  - matchers: ['rule="reopened-twice"']
    starts: 2020-01-01T00:00:00Z
    ends: 2099-01-01T00:00:00Z
    comment: "known noisy rule"
inhibit_rules:
  - source_matchers: ['rule="low-csat"']
    target_matchers: ['subject_kind="ticket"']
    equal: [tenant, agent]
`))
	client := s.start(t)
	agentLevel := change("ana", "low-csat", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1)
	agentLevel.Escalation.SubjectKind, agentLevel.Escalation.Id = "agent", "low-csat.a.ana.1"
	s.publish(t, agentLevel)
	waitFor(t, "the agent-level escalation sent", func() bool { return len(h.got()) == 1 })
	s.publish(t,
		change("T-1", "reopened-twice", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1),
		change("T-2", "sla-first-response", "night", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1),
		change("T-3", "bad-rating", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1))
	reasons := map[string]string{}
	waitFor(t, "three suppressed deliveries", func() bool {
		list, err := client.ListDeliveries(context.Background(), &tpv1.ListDeliveriesRequest{Tenant: "acme", Status: tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED})
		if err != nil {
			return false
		}
		for _, d := range list.GetDeliveries() {
			reasons[d.GetEscalationIds()[0]] = d.GetReason()
		}
		return len(reasons) == 3
	})
	want := map[string]string{
		"reopened-twice.t.T-1.1":     "silenced until 2099-01-01T00:00:00Z: known noisy rule",
		"sla-first-response.t.T-2.1": "quiet hours",
		"bad-rating.t.T-3.1":         "inhibited by open escalation low-csat.a.ana.1 (low-csat)",
	}
	for id, w := range want {
		if !strings.HasPrefix(reasons[id], w) {
			t.Errorf("%s suppressed for %q, want %q", id, reasons[id], w)
		}
	}
	// Once the agent-level escalation is resolved, ticket escalations go out again.
	s.publish(t, func() *tpv1.EscalationChange {
		c := change("ana", "low-csat", "billing", tpv1.ChangeKind_CHANGE_KIND_RESOLVED, 2)
		c.Escalation.SubjectKind, c.Escalation.Id = "agent", "low-csat.a.ana.1"
		return c
	}())
	s.publish(t, change("T-4", "bad-rating", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1))
	waitFor(t, "T-4 sent", func() bool {
		for _, r := range h.got() {
			if slices.Contains(changeRefs(t, r.body), "bad-rating.t.T-4.1#1") {
				return true
			}
		}
		return false
	})
}

// Two replicas share the consumer and the timers; every change, even delivered to the stream
// twice, reaches the receiver once.
func TestTwoReplicasSendEachChangeOnce(t *testing.T) {
	h := newHook(t)
	s := newStack(t, webhookRouting(h.srv.URL, ""))
	s.start(t)
	s.start(t)
	var want []string
	for i := range 60 {
		team := []string{"billing", "support", "sales"}[i%3]
		c := change(fmt.Sprintf("T-%02d", i), "sla-first-response", team, tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1)
		want = append(want, c.GetEscalation().GetId()+"#1")
		s.publish(t, c, c) // the second copy is a redelivery notify must absorb
	}
	waitFor(t, "every change", func() bool {
		n := 0
		for _, r := range h.got() {
			n += len(changeRefs(t, r.body))
		}
		return n >= 60
	})
	time.Sleep(1500 * time.Millisecond) // a duplicate would arrive by the next group interval
	// A retry of one delivery carries the same webhook-id and body, and a receiver drops it
	// (Standard Webhooks); on a loaded machine an attempt may time out after the receiver got
	// it. What must never happen is a change in two deliveries: that is a double send.
	var got []string
	bodies := map[string][]byte{}
	for _, r := range h.got() {
		if prev, seen := bodies[r.id]; seen {
			if !bytes.Equal(prev, r.body) {
				t.Errorf("webhook-id %s sent with two different bodies", r.id)
			}
			continue
		}
		bodies[r.id] = r.body
		got = append(got, changeRefs(t, r.body)...)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("received %d changes in %d deliveries, want each of the 60 in exactly one: %v", len(got), len(bodies), got)
	}
}

func TestTestReceiver(t *testing.T) {
	h := newHook(t)
	s := newStack(t, webhookRouting(h.srv.URL, ""))
	run := s.run(t)
	client := tpv1.NewNotificationServiceClient(run.DialAs(s.tenants.Acme))
	resp, err := client.TestReceiver(context.Background(), &tpv1.TestReceiverRequest{Receiver: "hook", Tenant: "acme"})
	if err != nil || !resp.GetDelivered() || resp.GetAttempt().GetStatusCode() != 200 || len(h.got()) != 1 || !verify(h.got()[0]) {
		t.Fatalf("TestReceiver: %v %v, %d requests", err, resp, len(h.got()))
	}
	if _, err := client.TestReceiver(context.Background(), &tpv1.TestReceiverRequest{Receiver: "nobody", Tenant: "acme"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown receiver: %v", err)
	}
	// The gate decides on the tenant before the request is read: a tenant id that is not
	// acme's is another tenant to acme's key, and unknown to an operator.
	if _, err := client.ListDeliveries(context.Background(), &tpv1.ListDeliveriesRequest{Tenant: "ACME"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("bad tenant: %v", err)
	}
	operator := tpv1.NewNotificationServiceClient(run.DialAs(s.tenants.Operator))
	if _, err := operator.ListDeliveries(context.Background(), &tpv1.ListDeliveriesRequest{Tenant: "ACME"}); status.Code(err) != codes.NotFound {
		t.Errorf("bad tenant as operator: %v", err)
	}
	if _, err := client.ListDeliveries(context.Background(), &tpv1.ListDeliveriesRequest{Tenant: "acme", Status: 99}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "unknown status 99") {
		t.Errorf("bad status: %v", err)
	}
	if _, err := client.GetDelivery(context.Background(), &tpv1.GetDeliveryRequest{Tenant: "acme", Id: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown delivery: %v", err)
	}
}

// limitedRouting is a webhook receiver with the given rate, burst and concurrency.
func limitedRouting(url string, rate float64, burst, concurrency int) string {
	return fmt.Sprintf(`receivers:
  - name: hook
    webhook:
      url: %q
      secrets: [{env: TP_TEST_HOOK_SECRET}]
    limits: {timeout: 5s, deadline: 10s, rate_per_second: %g, burst: %d, concurrency: %d}
route:
  receiver: hook
`, url, rate, burst, concurrency)
}

// Test sends take a rate token like every attempt: beyond the burst the service answers
// ResourceExhausted, and the receiver gets nothing more.
func TestTestReceiverObeysTheRateLimit(t *testing.T) {
	h := newHook(t)
	client := newStack(t, limitedRouting(h.srv.URL, 0.1, 2, 5)).start(t)
	ctx := context.Background()
	for i := range 2 {
		if resp, err := client.TestReceiver(ctx, &tpv1.TestReceiverRequest{Receiver: "hook", Tenant: "acme"}); err != nil || !resp.GetDelivered() {
			t.Fatalf("send %d within the burst: %v %v", i, resp, err)
		}
	}
	for range 3 {
		_, err := client.TestReceiver(ctx, &tpv1.TestReceiverRequest{Receiver: "hook", Tenant: "acme"})
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), `receiver "hook" is at its rate limit (0.1 per second, burst 2); try again in`) {
			t.Fatalf("send beyond the burst: %v, want ResourceExhausted naming the rate limit", err)
		}
	}
	if n := len(h.got()); n != 2 {
		t.Errorf("the receiver got %d requests, want 2", n)
	}
}

// Test sends take a concurrency slot like every attempt: while the receiver has its maximum in
// flight another test send is refused with ResourceExhausted, and once it is free one goes out.
func TestTestReceiverObeysTheConcurrency(t *testing.T) {
	h := newHook(t)
	h.delay = time.Second
	client := newStack(t, limitedRouting(h.srv.URL, 100, 10, 1)).start(t)
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		_, err := client.TestReceiver(ctx, &tpv1.TestReceiverRequest{Receiver: "hook", Tenant: "acme"})
		first <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(h.got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first test send never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err := client.TestReceiver(ctx, &tpv1.TestReceiverRequest{Receiver: "hook", Tenant: "acme"})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), `receiver "hook" has its maximum of 1 attempts in flight`) {
		t.Fatalf("send while one is in flight: %v, want ResourceExhausted naming the concurrency", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first send: %v", err)
	}
	if resp, err := client.TestReceiver(ctx, &tpv1.TestReceiverRequest{Receiver: "hook", Tenant: "acme"}); err != nil || !resp.GetDelivered() {
		t.Fatalf("send once the slot is free: %v %v", resp, err)
	}
	if n := len(h.got()); n != 2 {
		t.Errorf("the receiver got %d requests, want 2", n)
	}
}

func TestBadRoutingFileStopsTheService(t *testing.T) {
	s := newStack(t, "receivers:\n  - name: hook\n    webhook: {url: \"ftp://x\"}\nroute:\n  receiver: nobody\n")
	err := Run(context.Background(), s.config(), quiet)
	if err == nil || !strings.Contains(err.Error(), s.routing+":3:") || !strings.Contains(err.Error(), s.routing+":5:") {
		t.Errorf("Run = %v, want problems at lines 3 and 5", err)
	}
}

func TestDefaultsAndHelp(t *testing.T) {
	var cfg Config
	set := envflag.New(Name, "test", func(string) (string, bool) { return "", false })
	var help strings.Builder
	set.SetOutput(&help)
	cfg.Register(set)
	if err := set.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	if cfg.EscalationsFrom != "new" {
		t.Errorf("a new notify starts at %q, want new: a first start must not replay 30 days of escalations", cfg.EscalationsFrom)
	}
	if cfg.DeliveredTTL != 7*24*time.Hour {
		t.Errorf("-delivered-ttl defaults to %s, want 7 days: a replay may reach back to any Redis state restored", cfg.DeliveredTTL)
	}
	short := cfg
	short.DeliveredTTL = 30 * time.Second
	if err := short.Validate(); err == nil || err.Error() != "-delivered-ttl 30s: must be at least 1m0s" {
		t.Errorf("Validate() = %v", err)
	}
	if cfg.WatermarkInterval != time.Second {
		t.Errorf("-watermark-interval defaults to %s, want 1s", cfg.WatermarkInterval)
	}
	off := cfg
	off.WatermarkInterval = -time.Second
	if err := off.Validate(); err == nil || err.Error() != "-watermark-interval -1s: must not be negative" {
		t.Errorf("Validate() = %v", err)
	}
	cfg.EscalationsFrom = "last week"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `-escalations-from "last week": want all or new`) {
		t.Errorf("Validate() = %v", err)
	}
	set.PrintUsage(&help)
	for _, want := range []string{"TICKETPULSE_ROUTING_FILE", "TICKETPULSE_DELIVERY_LOG_MAX", "TICKETPULSE_DEDUPE_WINDOW", "TICKETPULSE_ESCALATIONS_FROM", "TICKETPULSE_DELIVERED_TTL", "NOTIFY_DELIVERED", "TICKETPULSE_WATERMARK_INTERVAL", "NotificationService"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h lacks %q", want)
		}
	}
}

// A receiver's rate limit spaces its messages; /metrics counts attempts and suppressions.
func TestRateLimitAndMetrics(t *testing.T) {
	h := newHook(t)
	s := newStack(t, fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: TP_TEST_HOOK_SECRET}]}
    limits: {rate_per_second: 4, burst: 1}
route:
  receiver: hook
  group_by: ["..."]
  group_wait: 0s
`, h.srv.URL))
	metricsURL := s.run(t).AdminURL("/metrics")
	for i := range 5 {
		s.publish(t, change(fmt.Sprintf("T-%d", i), "bad-rating", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1))
	}
	waitFor(t, "five messages", func() bool { return len(h.got()) == 5 })
	reqs := h.got()
	slices.SortFunc(reqs, func(a, b hookRequest) int { return a.at.Compare(b.at) })
	// Burst 1 at 4/s: the fifth message cannot come sooner than 4 × 250 ms after the first.
	if spread := reqs[4].at.Sub(reqs[0].at); spread < 900*time.Millisecond {
		t.Errorf("5 messages within %s despite 4/s with a burst of 1", spread)
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`notify_attempts_total{`, `result="ok"`, `notify_deliveries_total{`, `status="delivered"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
