package app

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/generation"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/snapshot"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

var rebuildStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var (
	rebuildAgents = []string{"ana", "bob", "cid@example.com"}
	rebuildTeams  = []string{"billing", "support"}
)

// rebuildWindow covers every event the rebuild tests publish.
func rebuildWindow() *tpv1.Window { return window(rebuildStart, rebuildStart.Add(10*24*time.Hour)) }

// lifeOf is ticket n's life: created, assigned to one of the agents in one of the teams, answered,
// solved, and (for most) rated; a few are reopened. Spread over several days.
func lifeOf(n int) []*tpv1.TicketEvent {
	id := fmt.Sprintf("T-%d", n)
	agent, team := rebuildAgents[n%len(rebuildAgents)], rebuildTeams[n%len(rebuildTeams)]
	at := rebuildStart.Add(time.Duration(n%200) * 37 * time.Minute)
	ev := func(suffix string, typ tpv1.EventType, minutes int, actor tpv1.ActorKind, actorID string) *tpv1.TicketEvent {
		return &tpv1.TicketEvent{Id: id + "-" + suffix, Tenant: "acme", Source: "generic", TicketId: id, Type: typ,
			OccurredAt: timestamppb.New(at.Add(time.Duration(minutes) * time.Minute)), Actor: &tpv1.Actor{Id: actorID, Kind: actor}}
	}
	c := ev("c", tpv1.EventType_EVENT_TYPE_TICKET_CREATED, 0, tpv1.ActorKind_ACTOR_KIND_CUSTOMER, "cust")
	c.TeamId, c.Priority = team, tpv1.Priority_PRIORITY_HIGH
	a := ev("a", tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, 1, tpv1.ActorKind_ACTOR_KIND_AGENT, "lead")
	a.AssigneeId, a.TeamId = agent, team
	r := ev("r", tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, 10+n%50, tpv1.ActorKind_ACTOR_KIND_AGENT, agent)
	r.Public = proto.Bool(true)
	s := ev("s", tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 120+n%300, tpv1.ActorKind_ACTOR_KIND_AGENT, agent)
	s.Status = tpv1.TicketStatus_TICKET_STATUS_SOLVED
	out := []*tpv1.TicketEvent{c, a, r, s}
	if n%4 != 0 {
		q := ev("q", tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, 500, tpv1.ActorKind_ACTOR_KIND_CUSTOMER, "cust")
		q.Satisfaction = &tpv1.Satisfaction{Score: int32(1 + n%5), Scale: 5}
		out = append(out, q)
	}
	if n%7 == 0 {
		o := ev("o", tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 600, tpv1.ActorKind_ACTOR_KIND_CUSTOMER, "cust")
		o.Status = tpv1.TicketStatus_TICKET_STATUS_OPEN
		out = append(out, o)
	}
	return out
}

func publishLife(ctx context.Context, js jetstream.JetStream, n int) (int, error) {
	evs := lifeOf(n)
	for _, ev := range evs {
		msg, err := eventcodec.Encode(ctx, ev)
		if err != nil {
			return 0, err
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			return 0, fmt.Errorf("publish %s: %w", ev.GetId(), err)
		}
	}
	return len(evs), nil
}

// runKPIWith runs kpi like runKPI, with deps edited.
func runKPIWith(t *testing.T, s stack, ts *servicetest.Tenants, edit func(*Deps)) *servicetest.Running {
	t.Helper()
	cfg := Config{
		Common:  servicetest.Settings(s.natsURL, s.redisURL),
		Consume: consume.Settings{Durable: "kpi", BatchMax: 200, Linger: time.Millisecond, AckWait: 2 * time.Second},
		Workers: 2, SuspectAfter: 5, TicketIndex: true,
		SLA: contrib.DefaultSLA(), SnapshotInterval: 100 * time.Millisecond, StreamReplicas: 1, RollupInterval: time.Second,
		// Longer than a rollup pass (every second here), as -rebuild-grace must be.
		RebuildGrace: 2 * time.Second, RebuildLease: 2 * time.Second,
	}
	cfg.TenantsFile = ts.File
	return servicetest.Start(t, func(ctx context.Context, h service.Hooks) error {
		d := Deps{Hooks: h}
		if edit != nil {
			edit(&d)
		}
		return d.Run(ctx, cfg, quiet)
	})
}

func ticketsJS(t *testing.T, s stack) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	if _, err := stream.Ensure(context.Background(), js, stream.Tickets(0, 1)); err != nil {
		t.Fatal(err)
	}
	return js
}

// caughtUp waits until kpi's consumer acknowledged every TICKETS message.
func caughtUp(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := js.Stream(ctx, stream.TicketsName)
		if err != nil {
			t.Fatal(err)
		}
		si, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := js.Consumer(ctx, stream.TicketsName, "kpi"); err == nil {
			if ci, err := c.Info(ctx); err == nil && ci.AckFloor.Stream >= si.State.LastSeq && ci.NumAckPending == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("kpi never caught up with TICKETS")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scopes are every scope the rebuild tests credit.
func rebuildScopes() []bucket.Scope {
	out := []bucket.Scope{{Kind: bucket.Unassigned}}
	for _, a := range rebuildAgents {
		out = append(out, bucket.Scope{Kind: bucket.Agent, ID: a})
	}
	for _, g := range rebuildTeams {
		out = append(out, bucket.Scope{Kind: bucket.Team, ID: g})
	}
	return out
}

// freshReplay writes every acme message of TICKETS into an empty Redis (a server of its own,
// so the same on a cluster) with the same write path, and answers its figures per scope.
func freshReplay(t *testing.T, s stack, js jetstream.JetStream) map[bucket.Scope]*tpv1.Kpis {
	t.Helper()
	ctx := context.Background()
	_, fresh := testenv.NewRedis(t)
	st, err := js.Stream(ctx, stream.TicketsName)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"tickets.acme.>"}})
	if err != nil {
		t.Fatal(err)
	}
	w := store.NewWriter(fresh, func(string) contrib.SLA { return contrib.DefaultSLA() }, 0, quiet)
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		var tickets []store.Ticket
		index := map[string]int{}
		for m := range batch.Messages() {
			_, ev, err := eventcodec.Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			i, ok := index[ev.GetTicketId()]
			if !ok {
				i = len(tickets)
				index[ev.GetTicketId()] = i
				tickets = append(tickets, store.Ticket{Tenant: "acme", ID: ev.GetTicketId()})
			}
			tickets[i].Events = append(tickets[i].Events, contrib.FromProto(ev))
		}
		if len(tickets) == 0 {
			break
		}
		if _, err := w.Write(ctx, tickets); err != nil {
			t.Fatal(err)
		}
	}
	return figuresOf(t, fresh, "acme")
}

// figuresOf reads every rebuild scope's figures over the window from keyspace ks.
func figuresOf(t *testing.T, rdb redis.UniversalClient, ks string) map[bucket.Scope]*tpv1.Kpis {
	t.Helper()
	from, to := rebuildStart.Unix()/3600, rebuildStart.Add(10*24*time.Hour).Unix()/3600
	scopes := rebuildScopes()
	ts, err := query.NewReader(rdb).Totals(context.Background(), ks, scopes, from, to)
	if err != nil {
		t.Fatal(err)
	}
	out := map[bucket.Scope]*tpv1.Kpis{}
	for i, s := range scopes {
		out[s] = query.ToProto(ts[i])
	}
	return out
}

func sameFigures(t *testing.T, what string, got, want map[bucket.Scope]*tpv1.Kpis) {
	t.Helper()
	for s, w := range want {
		if !proto.Equal(got[s], w) {
			t.Errorf("%s: %c %q:\n got %v\nwant %v", what, s.Kind, s.ID, got[s], w)
		}
	}
}

// waitJob waits until acme's job has ended (the old generation deleted) and returns its state.
func waitJob(t *testing.T, rdb redis.UniversalClient, timeout time.Duration) generation.State {
	t.Helper()
	gens := generation.New(rdb)
	deadline := time.Now().Add(timeout)
	for {
		st, err := gens.Get(context.Background(), "acme")
		if err != nil {
			t.Fatal(err)
		}
		if st.Phase == generation.PhaseNone && st.Result != "" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rebuild job did not end: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A rebuild while events keep arriving ends with exactly the figures a fresh replay of every event
// gives (here also repairing figures Redis lost), a reader querying throughout never sees a
// half-built generation, and the old generation's deletion spares the other services' keys.
func TestRebuildDuringLiveLoad(t *testing.T) {
	s := newStack(t)
	js := ticketsJS(t, s)
	ctx := context.Background()
	const before = 300
	published := 0
	for n := 0; n < before; n++ {
		k, err := publishLife(ctx, js, n)
		if err != nil {
			t.Fatal(err)
		}
		published += k
	}
	ts := servicetest.WriteTenants(t, nil)
	r := runKPIWith(t, s, ts, func(d *Deps) { d.RebuildBatch = 25 })
	caughtUp(t, js)

	// Redis loses cid's hourly figures and a ticket's state (an AOF that dropped writes); the
	// escalation service keeps a key under the same tenant tag.
	lost, _ := s.rdb.Keys(ctx, "tp:"+bucket.Scope{Kind: bucket.Agent, ID: "cid@example.com"}.Tag("acme")+":h:*").Result()
	if len(lost) == 0 {
		t.Fatal("no hourly keys of cid to lose")
	}
	s.rdb.Del(ctx, append(lost, store.TicketKey("acme", "T-2"))...)
	foreign := "tp:{acme:t:T-1}:esc:ev"
	s.rdb.Set(ctx, foreign, "escalation's", 0)
	damaged := figuresOf(t, s.rdb, "acme")

	// Live load: more tickets of every agent and team, and late events of old tickets.
	stopLive := make(chan struct{})
	var live sync.WaitGroup
	var liveErr atomic.Value
	var livePublished atomic.Int64
	live.Add(1)
	go func() {
		defer live.Done()
		for n := before; ; n++ {
			select {
			case <-stopLive:
				return
			default:
			}
			k, err := publishLife(ctx, js, n)
			if err != nil {
				liveErr.Store(err)
				return
			}
			livePublished.Add(int64(k))
			time.Sleep(2 * time.Millisecond)
		}
	}()

	// A reader throughout: the tenant's assigned tickets only grow under this load.
	kpi := tpv1.NewKpiServiceClient(r.DialAs(ts.Acme))
	stopReader := make(chan struct{})
	var reader sync.WaitGroup
	var readerErr atomic.Value
	var reads atomic.Int64
	reader.Add(1)
	go func() {
		defer reader.Done()
		var last int64
		for {
			select {
			case <-stopReader:
				return
			default:
			}
			resp, err := kpi.ListTeamKpis(ctx, &tpv1.ListTeamKpisRequest{Tenant: "acme", Window: rebuildWindow()})
			if err != nil {
				readerErr.Store(err)
				return
			}
			var assigned int64
			for _, tm := range resp.GetTeams() {
				assigned += tm.GetKpis().GetAssigned()
			}
			if assigned < last {
				readerErr.Store(fmt.Errorf("assigned went from %d down to %d: a reader saw a half-built generation", last, assigned))
				return
			}
			last = assigned
			reads.Add(1)
		}
	}()

	admin := tpv1.NewKpiAdminServiceClient(r.DialAs(ts.Operator))
	start, err := admin.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if p := start.GetProgress(); start.GetAttached() || p.GetPhase() != "building" || p.GetCurrent() != 0 || p.GetTarget() != 1 {
		t.Fatalf("StartRebuild = %v", start)
	}
	// The same request again attaches; another one is refused while it runs.
	if again, err := admin.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme"}); err != nil || !again.GetAttached() {
		t.Errorf("the same StartRebuild again = %v, %v; want attached", again, err)
	}
	_, err = admin.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme", From: timestamppb.New(time.Now().Add(-time.Hour))})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition ||
		!strings.HasPrefix(st.Message(), "StartRebuild: tenant acme: a rebuild of the tenant is running: it started at ") ||
		!strings.Contains(st.Message(), "rebuilds from the first message") {
		t.Errorf("a different StartRebuild while one runs = %v %q", st.Code(), st.Message())
	}
	watch, err := admin.WatchRebuild(ctx, &tpv1.WatchRebuildRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	var last *tpv1.RebuildProgress
	for {
		resp, err := watch.Recv()
		if err != nil {
			break
		}
		last = resp.GetProgress()
		if len(phases) == 0 || phases[len(phases)-1] != last.GetPhase() {
			phases = append(phases, last.GetPhase())
		}
	}
	if last == nil || last.GetPhase() != "switched" && last.GetPhase() != "done" || last.GetCurrent() != 1 {
		t.Fatalf("watch ended with %v (phases %v)", last, phases)
	}
	if last.GetEventsDone() < int64(published) || last.GetEndSequence() < uint64(published) {
		t.Errorf("replayed %d events up to sequence %d, want at least the %d published before the rebuild", last.GetEventsDone(), last.GetEndSequence(), published)
	}
	// Keep the load and the reader on past the switch, then stop the load.
	time.Sleep(300 * time.Millisecond)
	close(stopLive)
	live.Wait()
	if err, _ := liveErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, js)
	close(stopReader)
	reader.Wait()
	if err, _ := readerErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	if reads.Load() < 5 || livePublished.Load() == 0 {
		t.Fatalf("only %d reads and %d live events during the rebuild", reads.Load(), livePublished.Load())
	}

	st := waitJob(t, s.rdb, 20*time.Second)
	if st.Current != 1 || st.Result != "done" {
		t.Errorf("job state %+v, want generation 1 current and done", st)
	}
	want := freshReplay(t, s, js)
	sameFigures(t, "rebuilt generation vs fresh replay", figuresOf(t, s.rdb, "acme@1"), want)
	cid := bucket.Scope{Kind: bucket.Agent, ID: "cid@example.com"}
	if proto.Equal(damaged[cid], want[cid]) {
		t.Error("the damage did not change cid's figures: the test proves nothing")
	}
	// Through the API too, after the switch.
	resp, err := kpi.GetAgentKpis(ctx, &tpv1.GetAgentKpisRequest{Tenant: "acme", AgentId: "cid@example.com", Window: rebuildWindow()})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(resp.GetAgent().GetKpis(), want[cid]) {
		t.Errorf("GetAgentKpis after the rebuild = %v, want %v", resp.GetAgent().GetKpis(), want[cid])
	}
	// The rebuild built the drill-down index of the new generation: cid's listed tickets are
	// those behind its rebuilt figures, the ones Redis lost included.
	var listed int64
	req := &tpv1.ListTicketKpisRequest{Tenant: "acme", AgentId: "cid@example.com", Window: rebuildWindow(), PageSize: 1000}
	for {
		tickets, err := kpi.ListTicketKpis(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tickets.GetTickets() {
			if tk.FirstResponseSeconds != nil {
				listed++
			}
		}
		if req.PageToken = tickets.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if n := want[cid].GetFirstResponse().GetCount(); listed < n || n == 0 {
		t.Errorf("ListTicketKpis after the rebuild: %d of cid's tickets answered, its KPIs count %d first responses", listed, n)
	}
	// The old generation is gone, the escalation service's key is not.
	// A rollup pass slower than the grace may write totals after the deletion; the rollup
	// deletes them again a grace later (store.Rollup.OnRetired), so the old generation is gone
	// within a few graces whatever the machine's load.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		old, err := s.rdb.Keys(ctx, "tp:{acme:[agu]*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(old) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys of generation 0 left, e.g. %v", len(old), old[0])
		}
	}
	if v, err := s.rdb.Get(ctx, foreign).Result(); err != nil || v != "escalation's" {
		t.Errorf("escalation's key after the old generation's deletion = %q, %v", v, err)
	}
}

// kpi stopped mid-rebuild: once the lease lapsed, the restarted kpi resumes the job from its
// checkpoint (not from the start) and finishes with the figures of a fresh replay.
func TestRebuildResumesAfterACrash(t *testing.T) {
	s := newStack(t)
	js := ticketsJS(t, s)
	ctx := context.Background()
	for n := 0; n < 300; n++ {
		if _, err := publishLife(ctx, js, n); err != nil {
			t.Fatal(err)
		}
	}
	ts := servicetest.WriteTenants(t, nil)
	// Small replay batches, each a little slow, so the job is caught in the middle.
	slow := func(d *Deps) {
		d.RebuildBatch = 5
		d.WriteHook = func(string) error { time.Sleep(3 * time.Millisecond); return nil }
	}
	first := runKPIWith(t, s, ts, slow)
	caughtUp(t, js)
	admin := tpv1.NewKpiAdminServiceClient(first.DialAs(ts.Operator))
	if _, err := admin.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	gens := generation.New(s.rdb)
	var mid generation.State
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := gens.Get(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if st.Phase != generation.PhaseBuild {
			t.Fatalf("the rebuild ended before kpi could be stopped: %+v", st)
		}
		if st.Checkpoint > 0 && st.Checkpoint < st.End {
			mid = st
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.Stop()
	stopped, err := gens.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if stopped.Phase != generation.PhaseBuild || stopped.Checkpoint >= stopped.End {
		t.Fatalf("after the stop: %+v, want a build in the middle", stopped)
	}

	second := runKPIWith(t, s, ts, slow)
	var lowest uint64 = stopped.Checkpoint
	resumedBy := ""
	for {
		st, err := gens.Get(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if st.Phase == generation.PhaseBuild {
			lowest = min(lowest, st.Checkpoint)
			if st.Owner != stopped.Owner {
				resumedBy = st.Owner
			}
		}
		if st.Phase != generation.PhaseBuild {
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("the job was not resumed: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := waitJob(t, s.rdb, 20*time.Second)
	if resumedBy == "" || st.Result != "done" || st.Current != 1 || !st.Started.Equal(mid.Started) {
		t.Errorf("final state %+v (resumed by %q), want the same job finished by the new replica", st, resumedBy)
	}
	if lowest < stopped.Checkpoint {
		t.Errorf("the checkpoint went back from %d to %d: the job restarted instead of resuming", stopped.Checkpoint, lowest)
	}
	if st.Done < int64(st.End) || st.Done >= 2*int64(st.End) {
		t.Errorf("replayed %d events for %d messages: want each once, plus at most the batch in hand at the stop", st.Done, st.End)
	}
	caughtUp(t, js)
	sameFigures(t, "resumed rebuild vs fresh replay", figuresOf(t, s.rdb, "acme@1"), freshReplay(t, s, js))
	_ = second
}

// adminCall is one KpiAdminService RPC on a tenant.
type adminCall func(ctx context.Context, c tpv1.KpiAdminServiceClient, tenant string) error

var adminCalls = map[string]adminCall{
	"StartRebuild": func(ctx context.Context, c tpv1.KpiAdminServiceClient, tenant string) error {
		_, err := c.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: tenant})
		return err
	},
	"WatchRebuild": func(ctx context.Context, c tpv1.KpiAdminServiceClient, tenant string) error {
		w, err := c.WatchRebuild(ctx, &tpv1.WatchRebuildRequest{Tenant: tenant})
		if err != nil {
			return err
		}
		for {
			if _, err := w.Recv(); err != nil {
				if errors.Is(err, context.Canceled) || status.Code(err) == codes.OK {
					return nil
				}
				if err.Error() == "EOF" {
					return nil
				}
				return err
			}
		}
	},
}

func TestKpiAdminServiceMethodsAllCovered(t *testing.T) {
	d := tpv1.KpiAdminService_ServiceDesc
	names := map[string]bool{}
	for _, m := range d.Methods {
		names[m.MethodName] = true
	}
	for _, m := range d.Streams {
		names[m.StreamName] = true
	}
	for m := range names {
		if adminCalls[m] == nil {
			t.Errorf("KpiAdminService/%s has no case in adminCalls", m)
		}
		if Spec.Access["/"+d.ServiceName+"/"+m] != auth.Operator {
			t.Errorf("KpiAdminService/%s does not require %s", m, auth.Operator)
		}
	}
	if len(adminCalls) != len(names) {
		t.Errorf("adminCalls has %d RPCs, the service %d", len(adminCalls), len(names))
	}
}

// Only operators may rebuild: every other credential is refused with its exact code and message,
// and an operator's bad requests name the bad field.
func TestKpiAdminServiceAuth(t *testing.T) {
	s := newStack(t)
	ticketsJS(t, s)
	ts := servicetest.WriteTenants(t, nil)
	r := runKPI(t, s, ts, nil)
	unknownKey, _, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key, tenant string
		wantCode          codes.Code
		wantMsg           string
	}{
		{name: "no credential", tenant: "acme", wantCode: codes.Unauthenticated,
			wantMsg: "no credential: send Authorization: Bearer <key or ID token>"},
		{name: "unknown key", key: unknownKey, tenant: "acme", wantCode: codes.Unauthenticated, wantMsg: "invalid credential"},
		{name: "revoked key", key: ts.AcmeRevoked, tenant: "acme", wantCode: codes.Unauthenticated, wantMsg: "revoked credential"},
		{name: "tenant's own key with every scope", key: ts.Acme, tenant: "acme", wantCode: codes.PermissionDenied,
			wantMsg: "the credential lacks the scope operator"},
		{name: "other tenant's key", key: ts.Globex, tenant: "acme", wantCode: codes.PermissionDenied,
			wantMsg: "the credential is not for this tenant"},
		{name: "operator, unknown tenant", key: ts.Operator, tenant: "initech", wantCode: codes.NotFound, wantMsg: "unknown tenant"},
		{name: "operator", key: ts.Operator, tenant: "globex", wantCode: codes.OK},
	}
	for _, tt := range tests {
		client := tpv1.NewKpiAdminServiceClient(r.DialAs(tt.key))
		for _, method := range []string{"StartRebuild", "WatchRebuild"} {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				st := status.Convert(adminCalls[method](ctx, client, tt.tenant))
				if st.Code() != tt.wantCode || (tt.wantCode != codes.OK && st.Message() != tt.wantMsg) {
					t.Fatalf("%s = %v %q, want %v %q", method, st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
				}
			})
		}
	}

	// An operator's bad requests.
	op := tpv1.NewKpiAdminServiceClient(r.DialAs(ts.Operator))
	ctx := context.Background()
	future := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	bad := []struct {
		name     string
		call     func() error
		wantCode codes.Code
		wantMsg  string
	}{
		{"from in the future", func() error {
			_, err := op.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme", From: timestamppb.New(future)})
			return err
		}, codes.InvalidArgument, "from: " + future.Format(time.RFC3339) + " is in the future"},
		{"from before 1970", func() error {
			_, err := op.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme", From: timestamppb.New(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))})
			return err
		}, codes.InvalidArgument, "from: must be after 1970-01-01T00:00:00Z"},
		{"watch a tenant never rebuilt", func() error {
			w, err := op.WatchRebuild(ctx, &tpv1.WatchRebuildRequest{Tenant: "acme"})
			if err != nil {
				return err
			}
			_, err = w.Recv()
			return err
		}, codes.NotFound, "WatchRebuild: tenant acme has never been rebuilt; start a rebuild first"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(tt.call())
			if st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
				t.Fatalf("= %v %q, want %v %q", st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
			}
		})
	}
}

// tpctl kpi rebuild against a real kpi: it starts the rebuild, reports progress on stderr and
// exits 0 once switched; a refused start exits 1 with kpi's reason.
func TestTpctlKpiRebuild(t *testing.T) {
	s := newStack(t)
	js := ticketsJS(t, s)
	ctx := context.Background()
	for n := 0; n < 100; n++ {
		if _, err := publishLife(ctx, js, n); err != nil {
			t.Fatal(err)
		}
	}
	ts := servicetest.WriteTenants(t, nil)
	// Slow enough replays that the detached rebuild below still runs when tpctl re-attaches.
	r := runKPIWith(t, s, ts, func(d *Deps) {
		d.RebuildBatch = 10
		d.WriteHook = func(string) error { time.Sleep(2 * time.Millisecond); return nil }
	})
	caughtUp(t, js)
	dir := t.TempDir()
	bin := filepath.Join(dir, "tpctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ticketpulse/ticketpulse/tools/tpctl").CombinedOutput(); err != nil {
		t.Fatalf("build tpctl: %v\n%s", err, out)
	}
	keyFile := filepath.Join(dir, "operator.key")
	if err := writeFile(keyFile, ts.Operator+"\n"); err != nil {
		t.Fatal(err)
	}
	tpctl := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, append([]string{"kpi", "rebuild", "-addr", r.GRPC, "-key-file", keyFile, "-progress-every", "100ms"}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	}
	code, stdout, stderr := tpctl("-tenant", "acme")
	if code != 0 {
		t.Fatalf("tpctl exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "started rebuild of tenant acme into generation 1 (readers use 0 until it is done)") ||
		!strings.Contains(stderr, "rebuild of tenant acme switched to generation 1: ") {
		t.Errorf("stderr lacks the start and the switch:\n%s", stderr)
	}
	if !strings.HasPrefix(stdout, "tenant acme: switched, generation 1 (") && !strings.HasPrefix(stdout, "tenant acme: done, generation 1 (") {
		t.Errorf("stdout = %q", stdout)
	}
	switched, err := generation.New(s.rdb).Get(ctx, "acme")
	if err != nil || switched.Current != 1 {
		t.Errorf("after tpctl: %+v, %v; want generation 1 current", switched, err)
	}
	// Every agent's and team's KPI snapshot is published again from the new generation, though
	// no event arrived since.
	kpiStream, err := js.Stream(ctx, stream.KPIName)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range rebuildScopes() {
		if sc.Kind == bucket.Unassigned {
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			m, err := kpiStream.GetLastMsgForSubject(ctx, snapshot.Subject("acme", sc))
			if err == nil && !m.Time.Before(switched.Switched) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("no snapshot of %c %s published after the switch (last: %v, %v)", sc.Kind, sc.ID, m, err)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Right after the switch the old generation waits for its deletion: the same request attaches
	// to the switched job, another one is refused.
	code, stdout, stderr = tpctl("-tenant", "acme")
	if st, _ := generation.New(s.rdb).Get(ctx, "acme"); st.Phase == generation.PhaseDrop {
		if code != 0 || !strings.Contains(stderr, "attached to the running rebuild of tenant acme into generation 1") ||
			!strings.HasPrefix(stdout, "tenant acme: switched, generation 1 (") {
			t.Errorf("the same rebuild again during the grace period: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
		}
	}
	code, _, stderr = tpctl("-tenant", "acme", "-detach", "-from", "2026-01-01T00:00:00Z")
	if st, _ := generation.New(s.rdb).Get(ctx, "acme"); st.Phase == generation.PhaseDrop {
		if code != 1 || !strings.Contains(stderr, "tpctl kpi rebuild: start: FailedPrecondition: StartRebuild: tenant acme: a rebuild of the tenant is running: the previous rebuild switched at ") {
			t.Errorf("a rebuild during the old generation's deletion: exit %d, stderr %q", code, stderr)
		}
	}
	waitJob(t, s.rdb, 20*time.Second)
	// A second rebuild, detached: it starts generation 2 and returns at once.
	code, stdout, stderr = tpctl("-tenant", "acme", "-detach")
	if code != 0 || !strings.Contains(stderr, "started rebuild of tenant acme into generation 2 (readers use 1 until it is done)") ||
		!strings.HasPrefix(stdout, "tenant acme: building, generation 1 -> 2, ") {
		t.Errorf("detached: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	// Re-attaching to it waits for its end.
	code, _, stderr = tpctl("-tenant", "acme")
	if code != 0 || !strings.Contains(stderr, "attached to the running rebuild of tenant acme into generation 2") {
		t.Errorf("re-attach: exit %d\nstderr %q", code, stderr)
	}
	// A tenant key is refused.
	tenantKey := filepath.Join(dir, "acme.key")
	if err := writeFile(tenantKey, ts.Acme); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = tpctl("-tenant", "acme", "-key-file", tenantKey)
	if code != 1 || stderr != "tpctl kpi rebuild: start: PermissionDenied: the credential lacks the scope operator\n" {
		t.Errorf("tenant key: exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(stderr, ts.Acme) {
		t.Error("the key appears in the output")
	}
}

// -from rebuilds only from the messages stored since then: the new generation holds only what
// they derive. A stream that lost its first messages (retention) refuses a rebuild from before
// its first one, naming the time to rebuild from instead.
func TestRebuildFromAndRetention(t *testing.T) {
	s := newStack(t)
	js := ticketsJS(t, s)
	ctx := context.Background()
	for n := 0; n < 40; n++ {
		if _, err := publishLife(ctx, js, n); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	from := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	for n := 40; n < 70; n++ {
		if _, err := publishLife(ctx, js, n); err != nil {
			t.Fatal(err)
		}
	}
	ts := servicetest.WriteTenants(t, nil)
	r := runKPIWith(t, s, ts, nil)
	caughtUp(t, js)
	admin := tpv1.NewKpiAdminServiceClient(r.DialAs(ts.Operator))
	assigned := func(ks string) int64 {
		var sum int64
		for sc, k := range figuresOf(t, s.rdb, ks) {
			if sc.Kind == bucket.Team {
				sum += k.GetAssigned()
			}
		}
		return sum
	}
	if got := assigned("acme"); got != 70 {
		t.Fatalf("assigned before the rebuild = %d, want 70", got)
	}
	if _, err := admin.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme", From: timestamppb.New(from)}); err != nil {
		t.Fatal(err)
	}
	st := waitJob(t, s.rdb, 30*time.Second)
	if st.Current != 1 || !st.From.Equal(time.UnixMilli(from.UnixMilli()).UTC()) {
		t.Fatalf("job %+v", st)
	}
	if got := assigned("acme@1"); got != 30 {
		t.Errorf("assigned after a rebuild from the 41st ticket = %d, want the 30 tickets since", got)
	}

	// Retention took the first message.
	str, err := js.Stream(ctx, stream.TicketsName)
	if err != nil {
		t.Fatal(err)
	}
	if err := str.DeleteMsg(ctx, 1); err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := info.State.FirstTime.UTC()
	_, err = admin.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme"})
	want := "StartRebuild: tenant acme: TICKETS no longer holds the events to rebuild from: its first message (sequence 2) was stored at " +
		first.Format(time.RFC3339) + ", the earlier ones are gone (retention); rebuild from that time or later (--from " +
		first.Add(time.Second).Truncate(time.Second).Format(time.RFC3339) + ") to derive KPIs from what is left"
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || st.Message() != want {
		t.Errorf("rebuild past the retention = %v %q\nwant %q", st.Code(), st.Message(), want)
	}
	if st, _ := generation.New(s.rdb).Get(ctx, "acme"); st.Phase != generation.PhaseNone || st.Current != 1 {
		t.Errorf("a refused rebuild changed the state: %+v", st)
	}
}

// A job resumed after retention dropped messages it had not replayed yet cannot finish: it
// fails with the reason, readers keep the current generation, and the partial one is deleted.
func TestRebuildFailsWhenRetentionOvertookItsCheckpoint(t *testing.T) {
	s := newStack(t)
	js := ticketsJS(t, s)
	ctx := context.Background()
	for n := 0; n < 200; n++ {
		if _, err := publishLife(ctx, js, n); err != nil {
			t.Fatal(err)
		}
	}
	ts := servicetest.WriteTenants(t, nil)
	slow := func(d *Deps) {
		d.RebuildBatch = 5
		d.WriteHook = func(string) error { time.Sleep(3 * time.Millisecond); return nil }
	}
	first := runKPIWith(t, s, ts, slow)
	caughtUp(t, js)
	if _, err := tpv1.NewKpiAdminServiceClient(first.DialAs(ts.Operator)).StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	gens := generation.New(s.rdb)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := gens.Get(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if st.Phase != generation.PhaseBuild {
			t.Fatalf("the rebuild ended before kpi could be stopped: %+v", st)
		}
		if st.Checkpoint > 0 && st.Checkpoint+10 < st.End {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.Stop()
	stopped, _ := gens.Get(ctx, "acme")
	str, err := js.Stream(ctx, stream.TicketsName)
	if err != nil {
		t.Fatal(err)
	}
	// Retention: everything up to a few messages past the checkpoint is gone.
	keep := stopped.Checkpoint + 5
	if err := str.Purge(ctx, jetstream.WithPurgeSequence(keep)); err != nil {
		t.Fatal(err)
	}
	second := runKPIWith(t, s, ts, slow)
	st := waitJob(t, s.rdb, 30*time.Second)
	wantErr := fmt.Sprintf("TICKETS no longer holds the events to rebuild from: the job stopped at sequence %d and the stream now starts at %d (retention); start it again with a later --from",
		stopped.Checkpoint, keep)
	if st.Result != "failed" || st.Err != wantErr || st.Current != 0 {
		t.Fatalf("job %+v\nwant failed with %q and generation 0 kept", st, wantErr)
	}
	if left, _ := s.rdb.Keys(ctx, "tp:{acme@1:*").Result(); len(left) != 0 {
		t.Errorf("%d keys of the failed generation left, e.g. %s", len(left), left[0])
	}
	w, err := tpv1.NewKpiAdminServiceClient(second.DialAs(ts.Operator)).WatchRebuild(ctx, &tpv1.WatchRebuildRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.Recv()
	if err != nil || resp.GetProgress().GetPhase() != "failed" || resp.GetProgress().GetError() != wantErr || resp.GetProgress().GetCurrent() != 0 {
		t.Errorf("WatchRebuild after the failure = %v, %v", resp, err)
	}
}
