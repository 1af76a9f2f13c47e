package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

const (
	// replicaTickets is the backlog one drain works off: 5 events a ticket, 20,000 events.
	replicaTickets = 4000
	replicaEvents  = 5 * replicaTickets
	// replicaAgents spreads the tickets over agents and teams, so on a Redis Cluster kpi's writes
	// go to every master (an agent's keys share one slot).
	replicaAgents = 50
	replicaTeams  = 5
)

// BenchmarkReplicas measures how throughput scales from one replica of kpi or escalation to two,
// the replicas being the built binaries sharing one durable consumer on TICKETS. Two setups: the
// production one, a three-node NATS cluster with every stream at three replicas and a Redis
// Cluster of three masters with a replica each; and one NATS server with one Redis for
// comparison. Each round starts everything afresh, measures the raw asynchronous JetStream
// publish rate of the round's events into a stream of TICKETS' settings, starts the replicas,
// publishes the events to TICKETS at once and times until the service's durable has acknowledged
// every one: kpi acknowledges a batch once its figures are written to Redis (KPI-visible),
// escalation once it has judged it. Rounds alternate 1, 2, 1, 2 replicas, so both counts see
// the machine in the same state; each round's line has its own figures, and the last line
// (2÷1) the medians and the ratio 2 replicas ÷ 1 (also logged in words under -v). Run it
// alone, e.g.
//
//	go test -run '^$' -bench 'Replicas/cluster/kpi' -benchtime 1x ./e2e/
func BenchmarkReplicas(b *testing.B) {
	if testing.Short() {
		b.Skip("starts NATS and Redis clusters and the services' processes; skipped in -short mode")
	}
	for _, setup := range []string{"cluster", "single"} {
		for _, svc := range []string{"kpi", "escalation"} {
			b.Run(setup+"/"+svc, func(b *testing.B) { benchReplicas(b, setup == "cluster", svc) })
		}
	}
}

// drainResult is one round's figures.
type drainResult struct {
	rate float64 // events acknowledged per second, from the first publish to the last ack
	raw  float64 // raw JetStream async publish, msgs/s
	cpu  float64 // CPU of the service's processes per event, µs
	busy float64 // share of the machine's CPU busy (all processes) during the drain, 0 to 1
}

func benchReplicas(b *testing.B, cluster bool, svc string) {
	results := map[int][]drainResult{}
	for round, replicas := range []int{1, 2, 1, 2} {
		b.Run(fmt.Sprintf("round=%d/replicas=%d", round+1, replicas), func(b *testing.B) {
			var sum drainResult
			for range b.N {
				r := drainRound(b, cluster, svc, replicas, round)
				results[replicas] = append(results[replicas], r)
				sum.rate, sum.raw, sum.cpu, sum.busy = sum.rate+r.rate, sum.raw+r.raw, sum.cpu+r.cpu, sum.busy+r.busy
			}
			n := float64(b.N)
			b.ReportMetric(sum.rate/n, "events/s")
			b.ReportMetric(sum.raw/n, "raw-pub/s")
			b.ReportMetric(sum.rate/sum.raw, "of-raw")
			b.ReportMetric(sum.cpu/n, "cpu-µs/event")
			b.ReportMetric(sum.busy/n, "box-busy")
		})
	}
	median := func(rs []drainResult, f func(drainResult) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		slices.Sort(xs)
		if len(xs)%2 == 0 {
			return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
		}
		return xs[len(xs)/2]
	}
	if len(results[1]) == 0 || len(results[2]) == 0 {
		return // a round failed or was filtered out by -bench
	}
	rate := func(r drainResult) float64 { return r.rate }
	one, two := median(results[1], rate), median(results[2], rate)
	raw := median(append(slices.Clone(results[1]), results[2]...), func(r drainResult) float64 { return r.raw })
	cpu1, cpu2 := median(results[1], func(r drainResult) float64 { return r.cpu }), median(results[2], func(r drainResult) float64 { return r.cpu })
	busy1, busy2 := median(results[1], func(r drainResult) float64 { return r.busy }), median(results[2], func(r drainResult) float64 { return r.busy })
	// A line of its own, as a parent benchmark's log only shows under -v.
	b.Run("2÷1", func(b *testing.B) {
		b.ReportMetric(two/one, "ratio")
		b.ReportMetric(one, "events/s-1")
		b.ReportMetric(two, "events/s-2")
		b.ReportMetric(raw, "raw-pub/s")
		b.ReportMetric(one/raw, "1-of-raw")
		b.ReportMetric(two/raw, "2-of-raw")
	})
	b.Logf("%s, %s: 1 replica %.0f events/s (%.3f of raw), 2 replicas %.0f events/s (%.3f of raw): 2 ÷ 1 = %.3f; raw JetStream publish %.0f msgs/s; "+
		"service CPU %.1f / %.1f µs per event; machine busy %.0f %% / %.0f %% (medians of %d and %d rounds)",
		map[bool]string{true: "NATS R3 cluster + Redis Cluster", false: "single NATS + single Redis"}[cluster], svc,
		one, one/raw, two, two/raw, two/one, raw, cpu1, cpu2, 100*busy1, 100*busy2, len(results[1]), len(results[2]))
}

// drainRound is one round: fresh servers, the raw publish rate, then replicas of svc draining
// replicaEvents events. Only the drain is timed.
func drainRound(b *testing.B, cluster bool, svc string, replicas, round int) drainResult {
	b.StopTimer()
	streamReplicas := 1
	var natsURL, redisURL string
	if cluster {
		streamReplicas = 3
		natsURL = testenv.NATSCluster(b, 3).URL()
		rc, _ := testenv.RedisCluster(b)
		redisURL = rc.URL()
	} else {
		_, natsURL = testenv.NATS(b)
		redisURL = testenv.RedisURL(testenv.RedisSingle(b))
	}
	tenants := servicetest.WriteTenants(b, nil)
	rules := filepath.Join(b.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(traceRules), 0o600); err != nil {
		b.Fatal(err)
	}
	// The streams the services read or own, at the setup's replicas, and RAW of TICKETS'
	// settings for the raw publish rate.
	raw := stream.Tickets(0, streamReplicas)
	raw.Name, raw.Subjects = "RAW", []string{"raw.>"}
	js := replicaJS(b, natsURL, stream.Tickets(0, streamReplicas), stream.KPI(streamReplicas), stream.Escalations(streamReplicas),
		stream.Deadletter(streamReplicas), raw)

	ticketsFrom := time.Now().UTC().Add(-30 * time.Minute)
	rawRate := func(tag string) float64 {
		msgs := replicaMsgs(b, fmt.Sprintf("%s%d", tag, round), ticketsFrom)
		for _, m := range msgs {
			m.Subject = "raw." + strings.TrimPrefix(m.Subject, "tickets.")
		}
		start := time.Now()
		publishAsync(b, js, msgs)
		return float64(len(msgs)) / time.Since(start).Seconds()
	}
	// The first writes to a new stream are slower: a warm-up round first.
	rawRate("warm")
	rawPub := rawRate("raw")

	var grpcAddr string
	for range replicas {
		grpcAddr = freeAddr(b)
		startService(b, svc, freeAddr(b), "TICKETPULSE_NATS_URL="+natsURL, "TICKETPULSE_REDIS_URL="+redisURL,
			"TICKETPULSE_TENANTS_FILE="+tenants.File, "TICKETPULSE_GRPC_ADDR="+grpcAddr, "TICKETPULSE_RULES_FILE="+rules,
			"TICKETPULSE_STREAM_REPLICAS="+strconv.Itoa(streamReplicas))
	}
	durable := stream.KPIDurable
	if svc == "escalation" {
		durable = "escalation"
	}
	cons := waitConsumer(b, js, durable)

	msgs := replicaMsgs(b, fmt.Sprintf("r%d", round), ticketsFrom)
	cpuBefore := processCPU(b)
	busyBefore, totalBefore := machineCPU(b)
	b.StartTimer()
	start := time.Now()
	publishAsync(b, js, msgs)
	last := lastSeq(b, js, stream.TicketsName)
	deadline := start.Add(3 * time.Minute)
	for {
		info, err := cons.Info(context.Background())
		if err == nil && info.AckFloor.Stream >= last && info.NumAckPending == 0 && info.NumPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not acknowledge %d events within 3 minutes: %+v (%v)", svc, len(msgs), info, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	cpu := processCPU(b) - cpuBefore
	busyAfter, totalAfter := machineCPU(b)

	// The work was done, not skipped: nothing dead-lettered, kpi's figures readable over gRPC,
	// and no escalation from tickets answered within their first-response target.
	if n := streamMsgs(b, js, stream.DeadletterName); n != 0 {
		b.Fatalf("%s dead-lettered %d events", svc, n)
	}
	switch svc {
	case "kpi":
		checkAgentRated(b, grpcAddr, tenants.Acme, ticketsFrom)
	case "escalation":
		if n := streamMsgs(b, js, stream.EscalationsName); n != 0 {
			b.Fatalf("escalation raised %d changes for tickets answered in time", n)
		}
	}
	return drainResult{
		rate: float64(len(msgs)) / took.Seconds(),
		raw:  rawPub,
		cpu:  float64(cpu.Microseconds()) / float64(len(msgs)),
		busy: float64(busyAfter-busyBefore) / float64(totalAfter-totalBefore),
	}
}

// replicaJS is a JetStream client of url (one node or a cluster's nodes), closed when the
// benchmark ends, with the given streams created.
func replicaJS(b *testing.B, url string, streams ...jetstream.StreamConfig) jetstream.JetStream {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, sc := range streams {
		if _, err := stream.Ensure(ctx, js, sc); err != nil {
			b.Fatal(err)
		}
	}
	return js
}

// replicaMsgs are replicaTickets tickets' lives as ingest publishes them (tag makes the ids of
// a round its own): created, assigned to one of replicaAgents agents, answered after 10
// minutes, solved after 12, rated 5 after 13. The tickets begin at start, a ticket every
// 100 ms. With start 30 minutes ago every answer is within traceRules' one-hour
// first-response target even when escalation judges a ticket's creation before its answer
// (another batch, another replica): each creation starts an SLA clock (a timer in Redis), its
// answer stops it, and nothing is escalated.
func replicaMsgs(b *testing.B, tag string, start time.Time) []*nats.Msg {
	b.Helper()
	ctx := context.Background()
	out := make([]*nats.Msg, 0, replicaEvents)
	for i := range replicaTickets {
		id := fmt.Sprintf("%s-T%d", tag, i)
		agent, team := fmt.Sprintf("agent-%d", i%replicaAgents), fmt.Sprintf("team-%d", i%replicaTeams)
		at := start.Add(time.Duration(i) * 100 * time.Millisecond)
		ev := func(suffix string, typ tpv1.EventType, minutes int, kind tpv1.ActorKind, actor string) *tpv1.TicketEvent {
			return &tpv1.TicketEvent{Id: id + "-" + suffix, Tenant: "acme", Source: "generic", TicketId: id, Type: typ,
				OccurredAt: timestamppb.New(at.Add(time.Duration(minutes) * time.Minute)), Actor: &tpv1.Actor{Id: actor, Kind: kind}}
		}
		c := ev("c", tpv1.EventType_EVENT_TYPE_TICKET_CREATED, 0, tpv1.ActorKind_ACTOR_KIND_CUSTOMER, "cust")
		c.TeamId, c.Priority = team, tpv1.Priority_PRIORITY_HIGH
		a := ev("a", tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, 1, tpv1.ActorKind_ACTOR_KIND_AGENT, "lead")
		a.AssigneeId, a.TeamId = agent, team
		r := ev("r", tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, 10, tpv1.ActorKind_ACTOR_KIND_AGENT, agent)
		r.Public = proto.Bool(true)
		s := ev("s", tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 12, tpv1.ActorKind_ACTOR_KIND_AGENT, agent)
		s.Status = tpv1.TicketStatus_TICKET_STATUS_SOLVED
		q := ev("q", tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, 13, tpv1.ActorKind_ACTOR_KIND_CUSTOMER, "cust")
		q.Satisfaction = &tpv1.Satisfaction{Score: 5, Scale: 5}
		for _, e := range []*tpv1.TicketEvent{c, a, r, s, q} {
			m, err := eventcodec.Encode(ctx, e)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

// publishAsync publishes msgs asynchronously, at most 4,000 (the client's default) unacknowledged
// at a time, and waits for every acknowledgement. A publish may wait up to 10 s for room: under
// load an R3 stream's acknowledgements can lag longer than the default 200 ms.
func publishAsync(b *testing.B, js jetstream.JetStream, msgs []*nats.Msg) {
	b.Helper()
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := js.PublishMsgAsync(m, jetstream.WithStallWait(10*time.Second))
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

// waitConsumer waits until the services' shared durable exists, so the events are published
// to replicas that are consuming.
func waitConsumer(b *testing.B, js jetstream.JetStream, durable string) jetstream.Consumer {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := js.Consumer(context.Background(), stream.TicketsName, durable)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			b.Fatalf("consumer %s never appeared: %v", durable, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func streamInfo(b *testing.B, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	b.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		b.Fatalf("stream %s: %v", name, err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		b.Fatalf("stream %s: %v", name, err)
	}
	return info
}

func lastSeq(b *testing.B, js jetstream.JetStream, name string) uint64 {
	return streamInfo(b, js, name).State.LastSeq
}

func streamMsgs(b *testing.B, js jetstream.JetStream, name string) uint64 {
	return streamInfo(b, js, name).State.Msgs
}

// checkAgentRated checks over kpi's gRPC API that agent-0's figures count every ticket the
// round gave them.
func checkAgentRated(b *testing.B, addr, key string, from time.Time) {
	b.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(key)))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := tpv1.NewKpiServiceClient(conn).GetAgentKpis(ctx, &tpv1.GetAgentKpisRequest{Tenant: "acme", AgentId: "agent-0",
		Window: window(from.Add(-time.Hour), time.Now().Add(time.Hour))})
	if err != nil {
		b.Fatalf("GetAgentKpis: %v", err)
	}
	k := resp.GetAgent().GetKpis()
	if want := int64(replicaTickets / replicaAgents); k.GetCsatCount() != want || k.GetFirstResponse().GetCount() != want {
		b.Fatalf("agent-0: %d ratings, %d first responses; want %d each", k.GetCsatCount(), k.GetFirstResponse().GetCount(), want)
	}
}

// machineCPU is the machine's busy and total CPU time so far, in clock ticks, from /proc/stat.
func machineCPU(b *testing.B) (busy, total int64) {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	for i, f := range fields[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}
