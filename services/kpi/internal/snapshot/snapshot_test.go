package snapshot

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query/querytest"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

const tenant = "acme"

var (
	now  = time.Date(2026, 11, 24, 14, 20, 0, 0, time.UTC)
	ana  = "ana.{x}@例え.jp"
	bo   = "bo"
	team = "billing: EU"
)

// jetStream starts a real NATS server and returns a JetStream client, with the KPI stream
// unless bare.
func jetStream(t *testing.T, bare bool) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url)
	if bare {
		return js, nil
	}
	s, err := stream.Ensure(context.Background(), js, stream.KPI(1))
	if err != nil {
		t.Fatal(err)
	}
	return js, s
}

// assign credits n assigned tickets to s, hoursAgo hours before now.
func assign(t *testing.T, rdb redis.UniversalClient, s bucket.Scope, hoursAgo, n int64) {
	t.Helper()
	if err := querytest.Incr(context.Background(), rdb, tenant, s, window.HourOf(now)-hoursAgo, bucket.Assigned.Field(), n); err != nil {
		t.Fatal(err)
	}
}

func last(t *testing.T, s jetstream.Stream, subject string) *ticketpulsev1.KpiSnapshot {
	t.Helper()
	msg, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatalf("last message on %s: %v", subject, err)
	}
	snap := &ticketpulsev1.KpiSnapshot{}
	if err := proto.Unmarshal(msg.Data, snap); err != nil {
		t.Fatalf("decode %s: %v", subject, err)
	}
	return snap
}

func assigned(snap *ticketpulsev1.KpiSnapshot) map[string]int64 {
	out := make(map[string]int64)
	for w, k := range snap.GetWindows() {
		out[w] = k.GetAssigned()
	}
	return out
}

func TestPublish(t *testing.T) {
	rdb := testenv.Redis(t)
	anaS, boS, teamS := bucket.Scope{Kind: bucket.Agent, ID: ana}, bucket.Scope{Kind: bucket.Agent, ID: bo}, bucket.Scope{Kind: bucket.Team, ID: team}
	// ana: 1 in the current hour, 2 five hours ago, 4 three days ago, 8 twenty days ago, 16 forty days ago.
	for i, ago := range []int64{0, 5, 72, 480, 960} {
		assign(t, rdb, anaS, ago, 1<<i)
	}
	assign(t, rdb, boS, 30, 3)
	assign(t, rdb, teamS, 1, 5)
	for _, s := range []bucket.Scope{anaS, boS, teamS} {
		today := window.HourOf(now) / 24
		if err := querytest.RolledUp(context.Background(), rdb, tenant, s, today-50, today); err != nil {
			t.Fatal(err)
		}
	}
	trips := &querytest.RoundTrips{}
	rdb.AddHook(trips)
	js, stream := jetStream(t, false)
	p := NewPublisher(query.NewReader(rdb), js, func() time.Time { return now })

	if err := p.Publish(context.Background(), tenant, []string{ana, bo, ana}, []string{team}, nil); err != nil {
		t.Fatal(err)
	}
	// One: every ended day and week is rolled up.
	if n := trips.Count(); n != 1 {
		t.Errorf("%d redis round trips, want 1", n)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages, want 3 (ana once, bo, the team)", info.State.Msgs)
	}
	tests := []struct {
		name    string
		subject string
		scope   string
		id      string
		want    map[string]int64
	}{
		{name: "agent with odd id", subject: "kpi.acme.agent.ana~2E~7Bx~7D@~E4~BE~8B~E3~81~88~2Ejp", scope: "agent", id: ana,
			want: map[string]int64{"1h": 1, "24h": 3, "7d": 7, "30d": 15, "baseline_28d": 8}},
		{name: "other agent", subject: "kpi.acme.agent.bo", scope: "agent", id: bo,
			want: map[string]int64{"1h": 0, "24h": 0, "7d": 3, "30d": 3, "baseline_28d": 0}},
		{name: "team", subject: "kpi.acme.team.billing~3A~20EU", scope: "team", id: team,
			want: map[string]int64{"1h": 5, "24h": 5, "7d": 5, "30d": 5, "baseline_28d": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind := bucket.Agent
			if tt.scope == "team" {
				kind = bucket.Team
			}
			if got := Subject(tenant, bucket.Scope{Kind: kind, ID: tt.id}); got != tt.subject {
				t.Fatalf("Subject = %q, want %q", got, tt.subject)
			}
			snap := last(t, stream, tt.subject)
			if snap.GetTenant() != tenant || snap.GetScope() != tt.scope || snap.GetId() != tt.id || !snap.GetComputedAt().AsTime().Equal(now) {
				t.Errorf("snapshot header: tenant %q scope %q id %q computed %v", snap.GetTenant(), snap.GetScope(), snap.GetId(), snap.GetComputedAt().AsTime())
			}
			if got := assigned(snap); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("assigned per window = %v, want %v", got, tt.want)
			}
		})
	}

	// A second round replaces each subject's snapshot with the new figures.
	assign(t, rdb, boS, 0, 10)
	if err := p.Publish(context.Background(), tenant, []string{bo}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := assigned(last(t, stream, "kpi.acme.agent.bo")); got["1h"] != 10 || got["30d"] != 13 {
		t.Errorf("after a change bo has %v, want 1h 10 and 30d 13", got)
	}
	if info, err := stream.Info(context.Background()); err != nil || info.State.Msgs != 3 {
		t.Errorf("stream holds %v messages (%v), want still 3: one per subject", info.State.Msgs, err)
	}
}

func TestPublishManyWaitsForAcks(t *testing.T) {
	rdb := testenv.Redis(t)
	js, stream := jetStream(t, false)
	p := NewPublisher(query.NewReader(rdb), js, func() time.Time { return now })
	agents := make([]string, maxInFlight+150)
	for i := range agents {
		agents[i] = fmt.Sprintf("agent-%d", i)
	}
	if err := p.Publish(context.Background(), tenant, agents, nil, nil); err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(agents)) {
		t.Errorf("stream holds %d messages, want %d", info.State.Msgs, len(agents))
	}
	if snap := last(t, stream, "kpi.acme.agent.agent-1000"); snap.GetId() != "agent-1000" || len(snap.GetWindows()) != 5 {
		t.Errorf("snapshot %v", snap)
	}
}

func TestPublishFailures(t *testing.T) {
	tests := []struct {
		name    string
		tenant  string
		bare    bool
		redisUp bool
		wantErr string
	}{
		{name: "bad tenant", tenant: "a.b", redisUp: true, wantErr: "tenant"},
		{name: "no KPI stream", tenant: tenant, bare: true, redisUp: true, wantErr: "publish kpi.acme.agent.ana"},
		{name: "redis down", tenant: tenant, redisUp: false, wantErr: "publish kpi snapshots of tenant acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := testenv.Redis(t)
			if !tt.redisUp {
				port, err := testenv.FreePort()
				if err != nil {
					t.Fatal(err)
				}
				rdb = redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialerRetries: 1, Protocol: 2})
				t.Cleanup(func() { rdb.Close() })
			}
			js, _ := jetStream(t, tt.bare)
			p := NewPublisher(query.NewReader(rdb), js, func() time.Time { return now })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := p.Publish(ctx, tt.tenant, []string{"ana", "bo"}, []string{"t"}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPublishNothing(t *testing.T) {
	js, stream := jetStream(t, false)
	trips := &querytest.RoundTrips{}
	rdb := testenv.Redis(t)
	rdb.AddHook(trips)
	if err := NewPublisher(query.NewReader(rdb), js, time.Now).Publish(context.Background(), tenant, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 || trips.Count() != 0 {
		t.Errorf("%d messages, %d redis round trips for nothing to publish", info.State.Msgs, trips.Count())
	}
}

func TestWindowsAreTheRollingOnes(t *testing.T) {
	if !slices.Equal(Windows, []string{"1h", "24h", "7d", "30d"}) {
		t.Errorf("Windows = %q", Windows)
	}
}

func TestJoinFew(t *testing.T) {
	errs := func(n int) []error {
		var out []error
		for i := range n {
			out = append(out, fmt.Errorf("publish kpi.acme.agent.a%d: gone", i))
		}
		return out
	}
	tests := []struct {
		name      string
		give      []error
		wantLines []string
	}{
		{name: "none", give: nil, wantLines: nil},
		{name: "all shown", give: errs(3), wantLines: []string{"publish kpi.acme.agent.a0: gone", "publish kpi.acme.agent.a1: gone", "publish kpi.acme.agent.a2: gone"}},
		{name: "rest counted", give: errs(7), wantLines: []string{"publish kpi.acme.agent.a0: gone", "publish kpi.acme.agent.a1: gone", "publish kpi.acme.agent.a2: gone", "and 4 more failed publishes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := joinFew(tt.give)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !slices.Equal(got, tt.wantLines) {
				t.Errorf("joinFew = %q, want %q", got, tt.wantLines)
			}
		})
	}
}

// A round is one producer span, child of the caller's, and every snapshot carries its context.
func TestPublishSpan(t *testing.T) {
	js, st := jetStream(t, false)
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	ctx, round := tracer.Start(context.Background(), "round")
	if err := NewPublisher(query.NewReader(testenv.Redis(t)), js, func() time.Time { return now }).WithTracer(tracer).
		Publish(ctx, tenant, []string{ana}, []string{team}, nil); err != nil {
		t.Fatal(err)
	}
	round.End()
	spans := rec.Ended()
	if len(spans) != 2 || spans[0].Name() != "send KPI" || spans[0].SpanKind() != trace.SpanKindProducer || spans[0].Parent().SpanID() != round.SpanContext().SpanID() {
		t.Fatalf("spans %v, want send KPI (producer, child of the round) and the round", spans)
	}
	want := "00-" + spans[0].SpanContext().TraceID().String() + "-" + spans[0].SpanContext().SpanID().String() + "-01"
	for _, subj := range []string{Subject(tenant, bucket.Scope{Kind: bucket.Agent, ID: ana}), Subject(tenant, bucket.Scope{Kind: bucket.Team, ID: team})} {
		m, err := st.GetLastMsgForSubject(context.Background(), subj)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get("traceparent"); got != want {
			t.Errorf("%s traceparent %q, want the send span's %q", subj, got, want)
		}
	}
}
