package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
	"github.com/ticketpulse/ticketpulse/services/platform/watermark"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var wmAgents = []string{"ana", "bob", "cyd"}

// wmTicket is one ticket's events with figures that differ from ticket to ticket; rated says
// whether its rating is among them.
func wmTicket(i int, start time.Time, rated bool) []map[string]any {
	id := fmt.Sprintf("W-%d", i)
	t0 := start.Add(time.Duration(i*7) * time.Minute)
	at := func(m int) string { return t0.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }
	agent := wmAgents[i%len(wmAgents)]
	team := []string{"billing", "support"}[i%2]
	evs := []map[string]any{
		{"id": id + "-c", "ticket_id": id, "type": "ticket_created", "occurred_at": at(0),
			"actor": map[string]any{"id": "cust", "kind": "customer"}, "team_id": team, "priority": []string{"high", "normal", "low"}[i%3]},
		{"id": id + "-a", "ticket_id": id, "type": "ticket_assigned", "occurred_at": at(1),
			"actor": map[string]any{"id": "lead", "kind": "agent"}, "assignee_id": agent, "team_id": team},
		{"id": id + "-r", "ticket_id": id, "type": "agent_message", "occurred_at": at(5 + i%40),
			"actor": map[string]any{"id": agent, "kind": "agent"}, "public": true},
		{"id": id + "-s", "ticket_id": id, "type": "status_changed", "occurred_at": at(60 + (i*37)%500),
			"actor": map[string]any{"id": agent, "kind": "agent"}, "status": "solved"},
	}
	if rated {
		evs = append(evs, wmRating(i, start))
	}
	return evs
}

func wmRating(i int, start time.Time) map[string]any {
	id := fmt.Sprintf("W-%d", i)
	at := start.Add(time.Duration(i*7+600) * time.Minute).Format(time.RFC3339)
	return map[string]any{"id": id + "-q", "ticket_id": id, "type": "satisfaction_rated", "occurred_at": at,
		"actor": map[string]any{"id": "cust", "kind": "customer"}, "satisfaction": map[string]any{"score": 1 + i%5}}
}

// kpiAnswers are every agent's, team's and the unassigned KPIs over w, as comparable text.
func kpiAnswers(t *testing.T, c tpv1.KpiServiceClient, w *tpv1.Window) string {
	t.Helper()
	ctx := context.Background()
	var out bytes.Buffer
	add := func(name string, m proto.Message, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := protojson.MarshalOptions{Multiline: true}.Marshal(m)
		fmt.Fprintf(&out, "%s: %s\n", name, b)
	}
	list, err := c.ListAgentKpis(ctx, &tpv1.ListAgentKpisRequest{Tenant: "acme", Window: w, PageSize: 1000})
	add("ListAgentKpis", list, err)
	for _, a := range wmAgents {
		resp, err := c.GetAgentKpis(ctx, &tpv1.GetAgentKpisRequest{Tenant: "acme", AgentId: a, Window: w})
		add("GetAgentKpis "+a, resp, err)
	}
	teams, err := c.ListTeamKpis(ctx, &tpv1.ListTeamKpisRequest{Tenant: "acme", Window: w})
	add("ListTeamKpis", teams, err)
	un, err := c.GetUnassignedKpis(ctx, &tpv1.GetUnassignedKpisRequest{Tenant: "acme", Window: w})
	add("GetUnassignedKpis", un, err)
	return out.String()
}

// waitDurable waits until durable handled every message in TICKETS.
func waitDurable(t *testing.T, js jetstream.JetStream, durable string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := js.Stream(ctx, stream.TicketsName)
		if err != nil {
			t.Fatal(err)
		}
		last := st.CachedInfo().State.LastSeq
		if c, err := js.Consumer(ctx, stream.TicketsName, durable); err == nil {
			if info, err := c.Info(ctx); err == nil && info.AckFloor.Stream >= last && info.NumAckPending == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never acknowledged all of TICKETS", durable)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitWatermark waits until the durable's watermark has no gap and reached at least seq.
func waitWatermark(t *testing.T, s stack, durable string, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h := s.rdb.HGetAll(context.Background(), watermark.Key("kpi", durable)).Val()
		w, _ := strconv.ParseUint(h["w"], 10, 64)
		if h["gap"] == "0" && w >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watermark of %s never reached %d: %v", durable, seq, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastSeq(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), stream.TicketsName)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.LastSeq
}

// Redis is copied mid-load, loading goes on (new tickets and ratings of old ones), and Redis
// restarts from the old copy: once kpi noticed, every KPI it serves equals what an undisturbed
// kpi computed from the same stream.
func TestRedisLossIsReplayed(t *testing.T) {
	redisSrv, rdb := testenv.NewRedis(t)
	_, natsURL := testenv.NATS(t)
	s := stack{natsURL: natsURL, rdb: rdb, redisURL: "redis://" + redisSrv.Addr + "/0"}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := stream.Ensure(ctx, js, stream.Tickets(0, 1)); err != nil {
		t.Fatal(err)
	}
	ts := servicetest.WriteTenants(t, nil)
	var logs lockedLog
	run := func(s stack, durable string, log *slog.Logger) *servicetest.Running {
		cfg := Config{
			Common:  servicetest.Settings(s.natsURL, s.redisURL),
			Consume: consume.Settings{Durable: durable, BatchMax: 50, Linger: time.Millisecond, AckWait: 2 * time.Second},
			Workers: 2, SuspectAfter: 5,
			SLA: contrib.DefaultSLA(), SnapshotInterval: 100 * time.Millisecond, StreamReplicas: 1, RollupInterval: time.Second,
			WatermarkInterval: 100 * time.Millisecond,
		}
		cfg.TenantsFile = ts.File
		return servicetest.Start(t, func(ctx context.Context, h service.Hooks) error { return Deps{Hooks: h}.Run(ctx, cfg, log) })
	}
	kpi := run(s, "kpi", slog.New(slog.NewTextHandler(&logs, nil)))
	client := tpv1.NewKpiServiceClient(kpi.DialAs(ts.Acme))
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	w := window(start, start.Add(10*24*time.Hour))

	for i := range 40 {
		publishEvents(t, js, wmTicket(i, start, false))
	}
	waitDurable(t, js, "kpi")
	copied := lastSeq(t, js)
	waitWatermark(t, s, "kpi", copied)
	snap := redisSrv.Snapshot(t)
	for i := range 40 {
		publishEvents(t, js, append(wmTicket(40+i, start, true), wmRating(i, start)))
	}
	waitDurable(t, js, "kpi")
	final := lastSeq(t, js)
	before := kpiAnswers(t, client, w)

	redisSrv.RestartFrom(t, snap)
	waitWatermark(t, s, "kpi", final)
	after := kpiAnswers(t, client, w)
	if after != before {
		t.Errorf("KPIs after the replay differ from before the loss:\n%s\nbefore:\n%s", after, before)
	}
	m := regexp.MustCompile(`level=WARN msg="watermark gap: redis may have lost acknowledged writes; replaying" durable=kpi from=(\d+) to=(\d+)`).
		FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no gap warning in the log:\n%s", logs.String())
	}
	if from, _ := strconv.ParseUint(m[1], 10, 64); from > copied+1 {
		t.Errorf("replay from %d, want at most %d (the copy held %d)", from, copied+1, copied)
	}
	if to, _ := strconv.ParseUint(m[2], 10, 64); to < final {
		t.Errorf("replay to %d, want at least %d", to, final)
	}

	// The undisturbed run: another durable on a Redis of its own, from the same stream.
	refSrv, refRdb := testenv.NewRedis(t)
	ref := run(stack{natsURL: natsURL, rdb: refRdb, redisURL: "redis://" + refSrv.Addr + "/0"}, "kpi-ref", quiet)
	waitDurable(t, js, "kpi-ref")
	refAnswers := kpiAnswers(t, tpv1.NewKpiServiceClient(ref.DialAs(ts.Acme)), w)
	if after != refAnswers {
		t.Errorf("KPIs after the replay:\n%s\nundisturbed run:\n%s", after, refAnswers)
	}
	list, err := client.ListAgentKpis(ctx, &tpv1.ListAgentKpisRequest{Tenant: "acme", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	var rated, solved int64
	for _, a := range list.GetAgents() {
		rated += a.GetKpis().GetCsatCount()
		solved += a.GetKpis().GetResolution().GetCount()
	}
	if rated != 80 || solved != 80 {
		t.Errorf("%d ratings and %d resolutions counted, want 80 and 80", rated, solved)
	}
}
