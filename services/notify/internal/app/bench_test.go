package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// benchGroupWait is the routing's group_wait in the benchmark: latency is reported beyond it.
const benchGroupWait = 100 * time.Millisecond

// arrivals is a webhook receiver that records when each change first arrived, by escalation
// id, and counts requests whose signature does not verify.
type arrivals struct {
	mu    sync.Mutex
	at    map[string]time.Time
	total atomic.Int64
	bad   atomic.Int64
	all   chan struct{} // closed once want distinct changes arrived
	want  int
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	now := time.Now()
	if err != nil || !verify(hookRequest{id: r.Header.Get("webhook-id"), timestamp: r.Header.Get("webhook-timestamp"),
		signature: r.Header.Get("webhook-signature"), body: body}) {
		a.bad.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var msg struct {
		Changes []struct {
			Escalation struct {
				ID string `json:"id"`
			} `json:"escalation"`
		} `json:"changes"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		a.bad.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	for _, c := range msg.Changes {
		a.total.Add(1)
		if _, ok := a.at[c.Escalation.ID]; !ok {
			a.at[c.Escalation.ID] = now
		}
	}
	if len(a.at) == a.want {
		close(a.all)
		a.want = -1
	}
	a.mu.Unlock()
}

// benchConfig is notify's default configuration (as -h documents it) on the given servers.
func benchConfig(b *testing.B, natsURL, redisURL, tenantsFile, routingFile string) Config {
	b.Helper()
	var cfg Config
	set := envflag.New(Name, "bench", func(string) (string, bool) { return "", false })
	set.SetOutput(io.Discard)
	cfg.Register(set)
	if err := set.Parse(nil); err != nil {
		b.Fatal(err)
	}
	cfg.Common = servicetest.Settings(natsURL, redisURL)
	cfg.TenantsFile = tenantsFile
	cfg.RoutingFile = routingFile
	return cfg
}

// escalationMsgs are n triggered changes of distinct ticket escalations, as escalation
// publishes them, each its own group under group_by ["..."].
func escalationMsgs(b *testing.B, round, n int) ([]*nats.Msg, []string) {
	b.Helper()
	msgs := make([]*nats.Msg, n)
	ids := make([]string, n)
	for i := range n {
		c := change(fmt.Sprintf("B-%d-%d", round, i), "sla-first-response", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1)
		data, err := proto.Marshal(c)
		if err != nil {
			b.Fatal(err)
		}
		m := &nats.Msg{Subject: stream.EscalationSubject("acme", "sla-first-response"), Data: data, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("bench-%d-%d", round, i))
		msgs[i], ids[i] = m, c.GetEscalation().GetId()
	}
	return msgs, ids
}

// publishAll publishes msgs asynchronously, one every pace (0: at once), and waits for every
// acknowledgement.
func publishAll(b *testing.B, js jetstream.JetStream, msgs []*nats.Msg, sent []time.Time, pace time.Duration) {
	b.Helper()
	futures := make([]jetstream.PubAckFuture, len(msgs))
	start := time.Now()
	for i, m := range msgs {
		if pace > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * pace)))
		}
		if sent != nil {
			sent[i] = time.Now()
		}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			b.Fatal(err)
		}
		futures[i] = f
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliver publishes b.N escalation changes into ESCALATIONS, at once (burst) or 100 a
// second (paced, well below what notify handles, so latency is not queueing), and waits until
// notify (one or two replicas, in this process, on one shared durable) delivered each as a
// signed webhook to a local receiver. Every change is its own group (group_by ["..."]), so each
// is one webhook request after group_wait. It reports delivered changes per second, the latency
// from publish to arrival beyond group_wait (p50, p99), the raw JetStream publish rate of the
// same messages into a stream of the same settings measured in the same run, and notify's rate
// as a share of it. The receiver's limits are raised so they do not bound the rate. Run it with
// a fixed count, e.g. -benchtime=2000x, for figures comparable across replicas.
func BenchmarkDeliver(b *testing.B) {
	for _, load := range []struct {
		name string
		pace time.Duration
	}{{"burst", 0}, {"paced", 10 * time.Millisecond}} {
		for _, replicas := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/replicas=%d", load.name, replicas), func(b *testing.B) { benchDeliver(b, replicas, load.pace) })
		}
	}
}

func benchDeliver(b *testing.B, replicas int, pace time.Duration) {
	rdb := testenv.Redis(b)
	_, url := testenv.NATS(b)
	raw := stream.Escalations(1)
	raw.Name, raw.Subjects = "RAW", []string{"raw.>"}
	js := testenv.JetStream(b, url, stream.Escalations(1), stream.Deadletter(1), raw)
	recv := &arrivals{at: map[string]time.Time{}, all: make(chan struct{}), want: b.N}
	srv := httptest.NewServer(recv)
	b.Cleanup(srv.Close)
	routing := filepath.Join(b.TempDir(), "routing.yaml")
	if err := os.WriteFile(routing, []byte(fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: TP_TEST_HOOK_SECRET}]}
    limits: {rate_per_second: 100000, burst: 100000, concurrency: 16}
route: {receiver: hook, group_by: ["..."], group_wait: %s, group_interval: 1m}
`, srv.URL, benchGroupWait)), 0o600); err != nil {
		b.Fatal(err)
	}
	tenants := servicetest.WriteTenants(b, nil)
	cfg := benchConfig(b, url, testenv.RedisURL(rdb), tenants.File, routing)
	for range replicas {
		servicetest.Start(b, func(ctx context.Context, h service.Hooks) error { return Deps{Hooks: h}.Run(ctx, cfg, quiet) })
	}
	// Wait for the shared durable, so the burst is not published before it exists.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := js.Consumer(context.Background(), stream.EscalationsName, "notify"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("notify's consumer never appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The raw publish rate of the same messages, into RAW, before notify's run; after a
	// warm-up round, as the first writes to a new stream are slower.
	rawMsgs := func(round int) []*nats.Msg {
		msgs, _ := escalationMsgs(b, round, b.N)
		for _, m := range msgs {
			m.Subject = "raw.acme.sla-first-response"
		}
		return msgs
	}
	publishAll(b, js, rawMsgs(-1), nil, 0)
	warm := rawMsgs(0)
	rawStart := time.Now()
	publishAll(b, js, warm, nil, 0)
	rawRate := float64(b.N) / time.Since(rawStart).Seconds()

	msgs, ids := escalationMsgs(b, 1, b.N)
	sent := make([]time.Time, b.N)
	b.ResetTimer()
	start := time.Now()
	publishAll(b, js, msgs, sent, pace)
	select {
	case <-recv.all:
	case <-time.After(5*time.Minute + time.Duration(b.N)*10*time.Millisecond):
		recv.mu.Lock()
		n := len(recv.at)
		recv.mu.Unlock()
		b.Fatalf("%d of %d changes delivered", n, b.N)
	}
	b.StopTimer()
	recv.mu.Lock()
	lat := make([]time.Duration, b.N)
	var last time.Time
	for i, id := range ids {
		at := recv.at[id]
		lat[i] = at.Sub(sent[i]) - benchGroupWait
		if at.After(last) {
			last = at
		}
	}
	recv.mu.Unlock()
	if n := recv.bad.Load(); n > 0 {
		b.Fatalf("%d requests failed the signature check or did not decode", n)
	}
	slices.Sort(lat)
	rate := float64(b.N) / last.Sub(start).Seconds()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(rawRate, "raw-pub/s")
	if pace == 0 {
		// Paced, the rate is the pace's: only a burst's is notify's own.
		b.ReportMetric(rate/rawRate, "ratio")
	}
	b.ReportMetric(float64(recv.total.Load())/float64(b.N), "sent/change")
}
