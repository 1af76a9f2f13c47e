package e2e

import (
	"bytes"
	"context"
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// newNATSClusterStack is newStackWith on a three-node NATS cluster: the stack's NATS URL lists
// every node, so a service whose node stops reconnects to another.
func newNATSClusterStack(t *testing.T, extra map[string]string) (stack, *testenv.NATSClusterServers) {
	t.Helper()
	s := newStackWith(t, extra)
	c := testenv.NATSCluster(t, 3)
	s.natsURL = c.URL()
	// A cluster that has just elected its meta leader may take a while, on a loaded machine, to
	// place its first R3 stream, and a service gives up on its streams 30 s after it starts:
	// the stack starts once the cluster has placed one.
	js := clusterJS(t, c)
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "E2E_PROBE", Subjects: []string{"e2e.probe"}, Replicas: 3, Storage: jetstream.MemoryStorage})
		if err == nil {
			err = js.DeleteStream(ctx, "E2E_PROBE")
		}
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the NATS cluster placed no R3 stream within 90 s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return s, c
}

// clusterJS is a JetStream client of the cluster, closed when the test ends.
func clusterJS(t *testing.T, c *testenv.NATSClusterServers) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// signedHook is a receiver of notify's signed webhooks that checks each signature (Standard
// Webhooks: HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>") before it keeps the
// request's changes.
type signedHook struct {
	key  []byte
	hook hookRequests
	bad  atomic.Int64
}

func (h *signedHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "."))
	m.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if r.Header.Get("webhook-id") == "" || !strings.Contains(" "+r.Header.Get("webhook-signature")+" ", " "+want+" ") {
		h.bad.Add(1)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.hook.ServeHTTP(w, r)
}

// The main end-to-end scenario on a three-node NATS cluster with every stream, key-value bucket
// and durable consumer at three replicas: a signed helpdesk webhook and canonical events go in
// at ingest, kpi counts them, escalation escalates the ticket whose first response is overdue,
// and notify delivers the escalation, signed, to a webhook receiver.
func TestStackOnNATSCluster(t *testing.T) {
	genericKey := []byte("e2e-cluster-generic-key-32-byte!")
	s, c := newNATSClusterStack(t, map[string]string{"acme": `    sources:
      generic:
        secrets: [{env: E2E_GENERIC_SECRET}]
`})
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(traceRules), 0o600); err != nil {
		t.Fatal(err)
	}
	hookKey := []byte("e2e-cluster-hook-secret-32-bytes")
	hook := &signedHook{key: hookKey}
	receiver := httptest.NewServer(hook)
	t.Cleanup(receiver.Close)
	routing := filepath.Join(dir, "routing.yaml")
	if err := os.WriteFile(routing, []byte(fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: E2E_HOOK_SECRET}]}
route: {receiver: hook, group_by: ["..."], group_wait: 0s, group_interval: 1s}
`, receiver.URL+"/hook")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_HOOK_SECRET", "whsec_"+base64.StdEncoding.EncodeToString(hookKey))
	t.Setenv("E2E_GENERIC_SECRET", "whsec_"+base64.StdEncoding.EncodeToString(genericKey))

	redisDB := func(n int) string { return strings.TrimSuffix(s.redisURL, "/0") + "/" + strconv.Itoa(n) }
	common := []string{"TICKETPULSE_NATS_URL=" + s.natsURL, "TICKETPULSE_TENANTS_FILE=" + s.tenants.File, "TICKETPULSE_STREAM_REPLICAS=3"}
	ingest := startIngest(t, s, "TICKETPULSE_STREAM_REPLICAS=3", "TICKETPULSE_TICKETS_MAX_BYTES=1073741824")
	kpiGRPC := freeAddr(t)
	startService(t, "kpi", freeAddr(t), append(common, "TICKETPULSE_REDIS_URL="+redisDB(0), "TICKETPULSE_GRPC_ADDR="+kpiGRPC,
		"TICKETPULSE_BATCH_LINGER=1ms", "TICKETPULSE_SNAPSHOT_INTERVAL=100ms", "TICKETPULSE_RULES_FILE="+rules)...)
	startService(t, "escalation", freeAddr(t), append(common, "TICKETPULSE_REDIS_URL="+redisDB(1), "TICKETPULSE_GRPC_ADDR="+freeAddr(t),
		"TICKETPULSE_RULES_FILE="+rules)...)
	startService(t, "notify", freeAddr(t), append(common, "TICKETPULSE_REDIS_URL="+redisDB(2), "TICKETPULSE_GRPC_ADDR="+freeAddr(t),
		"TICKETPULSE_ROUTING_FILE="+routing)...)

	// ingest is ready once it has created TICKETS; a stream just created at R3 stores nothing
	// (503, "send again") until its replicas have elected a leader.
	for _, name := range []string{"TICKETS", "ESCALATIONS"} {
		waitUntil(t, name+" has a leader", 60*time.Second, func() bool { return c.StreamLeader(name) >= 0 })
	}
	// Three answered tickets through the events API: kpi's figures.
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	for i := range 3 {
		post(t, ingest, "acme", s.tenants.AcmeEvents, jsonEvents(fmt.Sprintf("cl-%d", i), start))
	}
	// One ticket through the signed generic webhook, created two hours ago with a one-hour
	// first-response target and no reply: escalated at once. Its id has a space, a slash and a quote.
	const overdue = `T-cluster "1"/ü`
	body, _ := json.Marshal([]map[string]any{{"id": "cluster-c", "ticket_id": overdue, "type": "ticket_created",
		"occurred_at": time.Now().UTC().Add(-2 * time.Hour).Format(time.RFC3339Nano), "actor": map[string]any{"id": "cu", "kind": "customer"},
		"assignee_id": "bo", "team_id": "support", "priority": "normal"}})
	req, err := http.NewRequest(http.MethodPost, "http://"+ingest+"/v1/tenants/acme/webhooks/generic", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, genericKey)
	m.Write([]byte("wh-cluster." + ts + "." + string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", "wh-cluster")
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d %s", resp.StatusCode, answer)
	}

	kpi := tpv1.NewKpiServiceClient(dialAs(t, kpiGRPC, s.tenants.Acme))
	// Longer than waitKpis' 15 s: on a cluster just formed, a consumer whose leader changes may
	// pause until its client notices the pull it had open is gone.
	var k *tpv1.Kpis
	posted := time.Now()
	waitUntil(t, "kpi counted the three tickets", 60*time.Second, func() bool {
		resp, err := kpi.GetAgentKpis(context.Background(), &tpv1.GetAgentKpisRequest{Tenant: "acme", AgentId: "ana",
			Window: window(start.Add(-time.Hour), time.Now().Add(time.Hour))})
		k = resp.GetAgent().GetKpis()
		return err == nil && k.GetCsatCount() == 3
	})
	t.Logf("kpi counted the three tickets %v after they were acknowledged", time.Since(posted).Round(time.Millisecond))
	checkFigures(t, k, 3)

	notified := func() *tpv1.EscalationChange {
		got, _ := hook.hook.requests()
		for _, req := range got {
			for _, ch := range req {
				if e := ch.GetEscalation(); e.GetSubjectId() == overdue && e.GetRule() == "sla-first-response" {
					return ch
				}
			}
		}
		return nil
	}
	// As long as kpi's wait, for the same reason: escalation's or notify's pull may pause after a
	// leader change until its heartbeat is missed (notify logged exactly that in a failed run).
	waitUntil(t, "the overdue ticket's escalation delivered", 60*time.Second, func() bool { return notified() != nil })
	if e := notified().GetEscalation(); e.GetTenant() != "acme" || e.GetSeverity() != tpv1.Severity_SEVERITY_CRITICAL {
		t.Errorf("delivered escalation: tenant %q severity %v, want acme, critical", e.GetTenant(), e.GetSeverity())
	}
	if _, bad := hook.hook.requests(); len(bad) != 0 || hook.bad.Load() != 0 {
		t.Errorf("receiver: %d badly signed requests, undecodable: %v", hook.bad.Load(), bad)
	}
	// ingest's webhook deliveries and notify's delivered changes are the key-value buckets.
	checkReplicated(t, clusterJS(t, c), 3, []string{"TICKETS", "KPI", "ESCALATIONS", "DEADLETTER"}, 2)
}

// checkReplicated checks that every stream (wantStreams among them), key-value bucket
// (wantBuckets of them) and durable consumer the services made has the given replicas, each
// placed on a distinct node of the cluster.
func checkReplicated(t *testing.T, js jetstream.JetStream, replicas int, wantStreams []string, wantBuckets int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := map[string]bool{}
	for _, name := range wantStreams {
		want[name] = false
	}
	buckets := 0
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info := st.CachedInfo()
		if _, ok := want[name]; ok {
			want[name] = true
		}
		if strings.HasPrefix(name, "KV_") {
			buckets++
		}
		placed := 0
		if info.Cluster != nil {
			placed = len(info.Cluster.Replicas) + 1
		}
		if info.Config.Replicas != replicas || placed != replicas {
			t.Errorf("stream %s: %d replicas configured, on %d nodes; want %d", name, info.Config.Replicas, placed, replicas)
		}
		durables := 0
		for ci := range st.ListConsumers(ctx).Info() {
			if ci.Config.Durable == "" {
				continue
			}
			durables++
			// A consumer's 0 replicas means the stream's.
			if n := ci.Config.Replicas; (n != 0 && n != replicas) || ci.Cluster == nil || len(ci.Cluster.Replicas)+1 != replicas {
				t.Errorf("consumer %s on %s: %d replicas configured, cluster %+v; want %d", ci.Name, name, n, ci.Cluster, replicas)
			}
		}
		t.Logf("stream %s: R%d, %d messages, %d durable consumers", name, info.Config.Replicas, info.State.Msgs, durables)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("stream %s missing", name)
		}
	}
	if buckets != wantBuckets {
		t.Errorf("%d key-value buckets, want %d", buckets, wantBuckets)
	}
}

// loadLedger is what a webhook load was told: the event ids of every acknowledged (2xx)
// request, and the other answers by status.
type loadLedger struct {
	mu       sync.Mutex
	acked    map[string]bool
	tickets  int
	refused  map[int]int // status (0: no answer) → count
	firstOK  time.Time   // the first 2xx of a request sent after after
	after    time.Time
	lastFail time.Time
}

func (l *loadLedger) record(sent time.Time, status int, ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if status/100 != 2 {
		l.refused[status]++
		l.lastFail = time.Now()
		return
	}
	for _, id := range ids {
		l.acked[id] = true
	}
	l.tickets++
	if !l.after.IsZero() && !sent.Before(l.after) && l.firstOK.IsZero() {
		l.firstOK = time.Now()
	}
}

// postOnce sends events and returns the status, 0 when no answer came.
func postOnce(client *http.Client, addr, tenant, key string, events []map[string]any) int {
	body, _ := json.Marshal(events)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/tenants/"+tenant+"/events", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Losing the node that leads TICKETS under a steady load of webhooks loses no acknowledged
// event and counts none twice: every request is retried until it is acknowledged (as a
// helpdesk retries), each 2xx is written to a ledger, and afterwards the stream holds exactly
// the ledger's events, each once, and kpi's figures are those of exactly the acknowledged
// tickets. It reports the time to the stream's new leader and to the first 2xx after the loss.
// The node is lost in two ways: stopped (the server hands the Raft groups it leads over as it
// shuts down) and crashed (its routes are cut first, so the others elect a leader only after the
// election timeout, as when a process is killed or a machine lost).
func TestNATSNodeLossLosesNoAcknowledgedEvent(t *testing.T) {
	// The load lasts past the election: a crash's takes 4 to 11 s.
	t.Run("stop", func(t *testing.T) { testNodeLoss(t, (*testenv.NATSClusterServers).Stop, 9*time.Second) })
	t.Run("crash", func(t *testing.T) { testNodeLoss(t, (*testenv.NATSClusterServers).Crash, 18*time.Second) })
}

func testNodeLoss(t *testing.T, lose func(*testenv.NATSClusterServers, int), loadFor time.Duration) {
	// The tenant's rate limit is raised above the load: 429s would only slow it down.
	s, c := newNATSClusterStack(t, map[string]string{"acme": "    rate_limit: {events_per_second: 5000, burst: 5000}\n"})
	ingest := startIngest(t, s, "TICKETPULSE_STREAM_REPLICAS=3", "TICKETPULSE_TICKETS_MAX_BYTES=1073741824")
	kpi, _ := startKPILogs(t, s, "TICKETPULSE_STREAM_REPLICAS=3")
	js := clusterJS(t, c)
	// The stream exists once ingest is ready; its first leader is the one to lose.
	leader, err := c.WaitStreamLeader("TICKETS", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	const (
		workers  = 4
		killAt   = 3 * time.Second
		downFor  = 3 * time.Second       // after the loss returned
		pace     = 25 * time.Millisecond // per worker, between tickets
		retryFor = 30 * time.Second      // one ticket's retries
	)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	ledger := &loadLedger{acked: map[string]bool{}, refused: map[int]int{}}
	client := &http.Client{Timeout: 15 * time.Second}
	var next atomic.Int64
	var unacked atomic.Int64
	loadStart := time.Now()
	stopAt := loadStart.Add(loadFor)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stopAt) {
				events := jsonEvents(fmt.Sprintf("nl-%05d", next.Add(1)), start)
				ids := make([]string, len(events))
				for i, e := range events {
					ids[i] = "acme/generic/" + e["id"].(string) // the stream's Nats-Msg-Id
				}
				give := time.Now().Add(retryFor)
				for {
					sent := time.Now()
					status := postOnce(client, ingest, "acme", s.tenants.AcmeEvents, events)
					ledger.record(sent, status, ids)
					if status/100 == 2 {
						break
					}
					if time.Now().After(give) {
						unacked.Add(1)
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(pace)
			}
		}()
	}

	time.Sleep(time.Until(loadStart.Add(killAt)))
	old := c.Name(leader)
	ingestOn := clientNode(t, c, "ingest")
	// Watch for the new leader from the moment the loss starts: a stopping server hands
	// leadership over before it returns.
	killed := time.Now()
	ledger.mu.Lock()
	ledger.after = killed
	ledger.mu.Unlock()
	elected := make(chan time.Time, 1)
	go func() {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if i := c.StreamLeader("TICKETS"); i >= 0 && c.Name(i) != old {
				elected <- time.Now()
				return
			}
		}
		close(elected)
	}()
	lose(c, leader)
	stopped := time.Now()
	at, ok := <-elected
	if !ok {
		t.Fatalf("no new TICKETS leader within 30s of stopping %s", old)
	}
	newLeader := c.StreamLeader("TICKETS")
	time.Sleep(time.Until(stopped.Add(downFor)))
	c.Restart(leader)
	restarted := time.Now()
	wg.Wait()
	loadTime := time.Since(loadStart)

	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	if n := unacked.Load(); n > 0 {
		t.Fatalf("%d tickets never acknowledged within %v of retries", n, retryFor)
	}
	if ledger.firstOK.IsZero() {
		t.Fatal("no request sent after the kill was acknowledged")
	}
	t.Logf("node loss: %d tickets (%d events) acknowledged in %v (%.0f events/s), answers refused by status %v",
		ledger.tickets, len(ledger.acked), loadTime.Round(time.Millisecond), float64(len(ledger.acked))/loadTime.Seconds(), ledger.refused)
	t.Logf("node loss: ingest was connected to %s", ingestOn)
	t.Logf("node loss: lost %s (TICKETS leader), which took %v; new leader %s after %v; first 2xx of a request sent after the kill after %v; last refusal %v after the kill; restarted after %v",
		old, stopped.Sub(killed).Round(time.Millisecond), c.Name(newLeader), at.Sub(killed).Round(time.Millisecond),
		ledger.firstOK.Sub(killed).Round(time.Millisecond), lastFailAfter(ledger.lastFail, killed), restarted.Sub(killed).Round(time.Millisecond))

	// Every acknowledged event is in TICKETS, once; nothing else is (every request ended acknowledged).
	waitUntil(t, "the restarted node current on TICKETS", 30*time.Second, func() bool {
		s := c.Server(leader)
		return s != nil && s.JetStreamIsStreamCurrent("$G", "TICKETS")
	})
	waitUntil(t, "kpi consumed TICKETS", 60*time.Second, func() bool { return consumed(t, js, "TICKETS", "kpi") })
	stored := readMsgIDs(t, js, "TICKETS")
	counts := map[string]int{}
	for _, id := range stored {
		counts[id]++
	}
	var missing, extra, twice []string
	for id := range ledger.acked {
		if counts[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range counts {
		if !ledger.acked[id] {
			extra = append(extra, id)
		}
		if n > 1 {
			twice = append(twice, id)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(twice)
	if len(missing) > 0 || len(extra) > 0 || len(twice) > 0 {
		t.Fatalf("TICKETS holds %d messages for %d acknowledged events: %d acknowledged missing %v, %d never acknowledged %v, %d stored twice %v",
			len(stored), len(ledger.acked), len(missing), head(missing), len(extra), head(extra), len(twice), head(twice))
	}
	// kpi counted exactly the acknowledged tickets.
	n := int64(ledger.tickets)
	k := waitKpis(t, kpi.as(s.tenants.Acme), "acme", window(start.Add(-time.Hour), time.Now().Add(time.Hour)), func(k *tpv1.Kpis) bool {
		return k.GetCsatCount() >= n && k.GetAssigned() >= n && k.GetFirstResponse().GetCount() >= n && k.GetResolution().GetCount() >= n
	})
	checkFigures(t, k, n)
	checkReplicated(t, js, 3, []string{"TICKETS", "KPI", "DEADLETTER"}, 1)
}

// clientNode is the name of the node a client of that connection name is connected to.
func clientNode(t *testing.T, c *testenv.NATSClusterServers, name string) string {
	t.Helper()
	for i := range c.Size() {
		s := c.Server(i)
		if s == nil {
			continue
		}
		conns, err := s.Connz(&server.ConnzOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ci := range conns.Conns {
			if ci.Name == name {
				return c.Name(i)
			}
		}
	}
	return "none"
}

func lastFailAfter(last, killed time.Time) string {
	if last.Before(killed) {
		return "none"
	}
	return last.Sub(killed).Round(time.Millisecond).String()
}

// head is the first few of ids, for a failure message.
func head(ids []string) []string { return ids[:min(len(ids), 5)] }

// consumed reports whether the durable has acknowledged every message of the stream.
func consumed(t *testing.T, js jetstream.JetStream, stream, durable string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		return false
	}
	info, err := cons.Info(ctx)
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

// readMsgIDs reads the whole stream and returns every message's Nats-Msg-Id, in order. A read
// that fails (its consumer's server changed leader) starts again, for up to a minute.
func readMsgIDs(t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ids, err := readMsgIDsOnce(js, stream)
		if err == nil {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %s: %v", stream, err)
		}
		t.Logf("read %s again: %v", stream, err)
		time.Sleep(200 * time.Millisecond)
	}
}

func readMsgIDsOnce(js jetstream.JetStream, stream string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, info.State.Msgs)
	for uint64(len(ids)) < info.State.Msgs {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			ids = append(ids, m.Headers().Get(jetstream.MsgIDHeader))
			got++
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if got == 0 {
			return nil, fmt.Errorf("%d of %d messages, then nothing", len(ids), info.State.Msgs)
		}
	}
	return ids, nil
}

// ingest answers 2xx only once a quorum of TICKETS' replicas stored the events: with both
// followers of the stream's leader crashed, a request is answered 503 (its retry is safe), and
// once one follower is back the same request is acknowledged and its events are stored once.
func TestIngestAcknowledgesOnlyWithQuorum(t *testing.T) {
	s, c := newNATSClusterStack(t, nil)
	ingest := startIngest(t, s, "TICKETPULSE_STREAM_REPLICAS=3", "TICKETPULSE_TICKETS_MAX_BYTES=1073741824", "TICKETPULSE_PUBLISH_TIMEOUT=2s")
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	client := &http.Client{Timeout: 15 * time.Second}
	if status := postOnce(client, ingest, "acme", s.tenants.AcmeEvents, jsonEvents("q-1", start)); status != http.StatusAccepted {
		t.Fatalf("with every node up: %d", status)
	}
	leader, err := c.WaitStreamLeader("TICKETS", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var followers []int
	for i := range c.Size() {
		if i != leader {
			followers = append(followers, i)
			c.Crash(i)
		}
	}
	events := jsonEvents("q-2", start)
	if status := postOnce(client, ingest, "acme", s.tenants.AcmeEvents, events); status != http.StatusServiceUnavailable {
		t.Fatalf("with only the leader %s up: %d, want 503", c.Name(leader), status)
	}
	c.Restart(followers[0])
	deadline := time.Now().Add(60 * time.Second)
	for {
		status := postOnce(client, ingest, "acme", s.tenants.AcmeEvents, events)
		if status == http.StatusAccepted {
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("with a quorum back: %d", status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Reading creates a consumer, which needs the meta group's leader: the stream's group (two of
	// three) had one back before the meta group did.
	if _, err := c.WaitMetaLeader(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	ids := readMsgIDs(t, clusterJS(t, c), "TICKETS")
	want := map[string]int{}
	for _, tk := range []string{"q-1", "q-2"} {
		for _, e := range jsonEvents(tk, start) {
			want["acme/generic/"+e["id"].(string)] = 1
		}
	}
	got := map[string]int{}
	for _, id := range ids {
		got[id]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("TICKETS holds %v, want each of %v once", got, want)
	}
}
