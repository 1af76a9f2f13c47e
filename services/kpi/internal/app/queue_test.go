package app

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/generation"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/snapshot"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// oddQueue is a queue id with what could break a key's hash tag or a subject token.
const oddQueue = "sales: {EU} ünï/2 }{"

// queueCall is one inbound call of the queue test: answered after wait by agent (and then
// handled for talk+hold+wrap) or, with no agent, abandoned after wait.
type queueCall struct {
	id, queue, agent, team string
	wait, talk, hold, wrap time.Duration
	offeredAt              time.Duration // after the test's start
}

func (c queueCall) answered() bool { return c.agent != "" }

// events are the call's events; the queue is named on the offer only for calls whose id ends in
// "-q1" (the later events leave it out: the latest queue named is kept), on every event otherwise.
func (c queueCall) events(tenant string, start time.Time) []*tpv1.TicketEvent {
	in := tpv1.CallDirection_CALL_DIRECTION_INBOUND
	info := func(agent string, withQueue bool) *tpv1.CallInfo {
		k := &tpv1.CallInfo{CallId: c.id, AgentId: agent, TeamId: c.team, Direction: in}
		if withQueue {
			k.QueueId = c.queue
		}
		return k
	}
	later := !strings.HasSuffix(c.id, "-q1")
	ev := func(suffix string, typ tpv1.EventType, at time.Duration, k *tpv1.CallInfo) *tpv1.TicketEvent {
		return &tpv1.TicketEvent{Id: c.id + suffix, Tenant: tenant, Source: "generic", TicketId: c.id, Type: typ,
			OccurredAt: timestamppb.New(start.Add(at)), Actor: &tpv1.Actor{Kind: tpv1.ActorKind_ACTOR_KIND_SYSTEM}, Call: k}
	}
	evs := []*tpv1.TicketEvent{ev("-o", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, c.offeredAt, info("", true))}
	if !c.answered() {
		ab := info("", later)
		ab.WaitSeconds = c.wait.Seconds()
		return append(evs, ev("-x", tpv1.EventType_EVENT_TYPE_CALL_ABANDONED, c.offeredAt+c.wait, ab))
	}
	end := info(c.agent, later)
	end.TalkSeconds, end.HoldSeconds, end.WrapUpSeconds = c.talk.Seconds(), c.hold.Seconds(), c.wrap.Seconds()
	return append(evs,
		ev("-a", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, c.offeredAt+c.wait, info(c.agent, later)),
		ev("-e", tpv1.EventType_EVENT_TYPE_CALL_ENDED, c.offeredAt+c.wait+c.talk+c.hold+c.wrap, end))
}

// queueWant is what the calls of one queue add up to, computed from the calls themselves.
type queueWant struct {
	offered, answered, abandoned, inSL int64
	asaSum, ahtSum                     time.Duration
}

func wantOfQueues(calls []queueCall, threshold time.Duration) map[string]*queueWant {
	out := map[string]*queueWant{}
	for _, c := range calls {
		if c.queue == "" {
			continue
		}
		w := out[c.queue]
		if w == nil {
			w = &queueWant{}
			out[c.queue] = w
		}
		w.offered++
		if !c.answered() {
			w.abandoned++
			continue
		}
		w.answered++
		w.asaSum += c.wait
		w.ahtSum += c.talk + c.hold + c.wrap
		if c.wait <= threshold {
			w.inSL++
		}
	}
	return out
}

func (w *queueWant) check(t *testing.T, who string, k *tpv1.Kpis) {
	t.Helper()
	checks := []struct {
		name      string
		got, want float64
	}{
		{"calls_offered", float64(k.GetCallsOffered()), float64(w.offered)},
		{"calls_answered", float64(k.GetCallsAnswered()), float64(w.answered)},
		{"calls_abandoned", float64(k.GetCallsAbandoned()), float64(w.abandoned)},
		{"calls_answered_in_service_level", float64(k.GetCallsAnsweredInServiceLevel()), float64(w.inSL)},
		{"call_abandon_rate", k.GetCallAbandonRate(), float64(w.abandoned) / float64(w.offered)},
		{"call_speed_of_answer.count", float64(k.GetCallSpeedOfAnswer().GetCount()), float64(w.answered)},
		{"call_speed_of_answer.mean", k.GetCallSpeedOfAnswer().GetMeanSeconds(), w.asaSum.Seconds() / float64(w.answered)},
		{"call_handle_time.count", float64(k.GetCallHandleTime().GetCount()), float64(w.answered)},
		{"call_handle_time.mean", k.GetCallHandleTime().GetMeanSeconds(), w.ahtSum.Seconds() / float64(w.answered)},
		{"first_response.count (a queue has no ticket figures)", float64(k.GetFirstResponse().GetCount()), 0},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s %s = %v, want %v", who, c.name, c.got, c.want)
		}
	}
}

// Calls credited to their queue through the running service (real NATS, Redis and gRPC
// listener): each queue's figures are the sum of its calls, and equal those of a team holding the
// same calls; a call with no queue credits none; events out of order and delivered twice count
// once; an id with spaces, unicode, ':', '{' and '}' works in the keys, the listing, the series
// and the snapshot subject; another tenant's queue of the same name never shows; and after the
// ended calls are compacted and the tenant is rebuilt from TICKETS, the figures are the same.
func TestServiceQueueCalls(t *testing.T) {
	s := newStack(t)
	js := ticketsJS(t, s)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeRules(t, path, "tenants:\n  acme:\n    call_service_level: 30s\n")
	ts := servicetest.WriteTenants(t, nil)
	cfg := Config{
		Common:  servicetest.Settings(s.natsURL, s.redisURL),
		Consume: consume.Settings{Durable: "kpi", BatchMax: 200, Linger: time.Millisecond, AckWait: 2 * time.Second},
		Workers: 2, SuspectAfter: 5,
		SLA: contrib.DefaultSLA(), SnapshotInterval: 100 * time.Millisecond, StreamReplicas: 1, RollupInterval: time.Second,
		RulesFile: path, RulesReload: time.Second, RebuildGrace: 500 * time.Millisecond, RebuildLease: 2 * time.Second,
		CompactAfter: time.Second, CompactInterval: 100 * time.Millisecond,
	}
	cfg.TenantsFile = ts.File
	r := servicetest.Start(t, func(ctx context.Context, h service.Hooks) error { return Deps{Hooks: h}.Run(ctx, cfg, quiet) })
	defer r.Stop()
	client := tpv1.NewKpiServiceClient(r.DialAs(ts.Acme))
	globexClient := tpv1.NewKpiServiceClient(r.DialAs(ts.Globex))

	// Recent enough for the snapshots' rolling 24h window.
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	sec := time.Second
	// Each queue's calls are also its team's, so the team's figures are a second account of them.
	calls := []queueCall{
		{id: "C1", queue: "support", team: "t-support", agent: "ana", wait: 10 * sec, talk: 100 * sec, hold: 20 * sec, wrap: 30 * sec},
		{id: "C2-q1", queue: "support", team: "t-support", agent: "bo", wait: 45 * sec, talk: 200 * sec, offeredAt: 70 * time.Minute},
		{id: "C3", queue: "support", team: "t-support", wait: 60 * sec, offeredAt: 5 * time.Minute},
		{id: "C4", queue: oddQueue, team: "t-odd", agent: "ana", wait: 5 * sec, talk: 60 * sec, wrap: 15 * sec, offeredAt: 20 * time.Minute},
		{id: "C5-q1", queue: oddQueue, team: "t-odd", wait: 90 * sec, offeredAt: 25 * time.Minute},
		{id: "C6", team: "t-none", agent: "bo", wait: 3 * sec, talk: 30 * sec, offeredAt: 30 * time.Minute},
	}
	want := wantOfQueues(calls, 30*sec)
	publish := func(ev *tpv1.TicketEvent, msgID string) {
		t.Helper()
		data, err := marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg("tickets." + ev.GetTenant() + "." + eventcodec.TypeWord(ev.GetType()))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range calls {
		evs := c.events("acme", start)
		slices.Reverse(evs) // out of order: the end first, the offer last
		for _, ev := range evs {
			publish(ev, "acme/"+ev.GetId())
		}
		if i%2 == 0 { // a redelivery after the duplicate window: the same event, a new message id
			publish(evs[0], "acme/"+evs[0].GetId()+"/again")
		}
	}
	// globex has a queue of the same name as acme's, and one acme has not.
	for _, c := range []queueCall{
		{id: "G1", queue: "support", team: "t-support", agent: "ana", wait: 2 * sec, talk: 10 * sec},
		{id: "G2", queue: "globex-only", wait: 2 * sec},
	} {
		for _, ev := range c.events("globex", start) {
			publish(ev, "globex/"+ev.GetId())
		}
	}

	w := window(start, start.Add(2*time.Hour))
	queueKpis := func(c tpv1.KpiServiceClient, tenant, queue string) *tpv1.Kpis {
		t.Helper()
		resp, err := c.GetQueueKpis(ctx, &tpv1.GetQueueKpisRequest{Tenant: tenant, QueueId: queue, Window: w})
		if err != nil {
			t.Fatalf("GetQueueKpis %s %q: %v", tenant, queue, err)
		}
		if resp.GetQueueId() != queue {
			t.Errorf("GetQueueKpis %q answered queue_id %q", queue, resp.GetQueueId())
		}
		return resp.GetKpis()
	}
	// Every call handled (or abandoned) and globex's too, before anything is compared.
	deadline := time.Now().Add(20 * time.Second)
	for {
		sup, odd, g := queueKpis(client, "acme", "support"), queueKpis(client, "acme", oddQueue), queueKpis(globexClient, "globex", "globex-only")
		// An end with talk time counts as handled before its call's answer is consumed (the
		// events arrive end first): the answers are waited for too.
		if sup.GetCallsOffered() == want["support"].offered && sup.GetCallHandleTime().GetCount() == want["support"].answered &&
			sup.GetCallsAnswered() == want["support"].answered && odd.GetCallsAnswered() == want[oddQueue].answered &&
			odd.GetCallsOffered() == want[oddQueue].offered && odd.GetCallHandleTime().GetCount() == want[oddQueue].answered &&
			g.GetCallsAbandoned() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue figures never settled: support %v, odd %v, globex-only %v", sup, odd, g)
		}
		time.Sleep(50 * time.Millisecond)
	}

	before := map[string]*tpv1.Kpis{}
	for q, wq := range want {
		k := queueKpis(client, "acme", q)
		wq.check(t, "queue "+q, k)
		team, err := client.GetTeamKpis(ctx, &tpv1.GetTeamKpisRequest{Tenant: "acme", TeamId: map[string]string{"support": "t-support", oddQueue: "t-odd"}[q], Window: w})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(team.GetKpis(), k) {
			t.Errorf("queue %q = %v\nits team (the same calls) = %v", q, k, team.GetKpis())
		}
		before[q] = k
	}
	// The call with no queue is in no queue: only the two queues are listed, in queue_id order,
	// a page at a time, and neither holds it.
	var listed []string
	token := ""
	for range 3 {
		resp, err := client.ListQueueKpis(ctx, &tpv1.ListQueueKpisRequest{Tenant: "acme", Window: w, PageSize: 1, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetTotalSize() != 2 {
			t.Errorf("ListQueueKpis total_size = %d, want 2", resp.GetTotalSize())
		}
		for _, q := range resp.GetQueues() {
			listed = append(listed, q.GetQueueId())
			if !proto.Equal(q.GetKpis(), before[q.GetQueueId()]) {
				t.Errorf("ListQueueKpis %q = %v, GetQueueKpis %v", q.GetQueueId(), q.GetKpis(), before[q.GetQueueId()])
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if !slices.Equal(listed, []string{oddQueue, "support"}) {
		t.Errorf("ListQueueKpis listed %q, want the odd queue then support", listed)
	}
	byRate, err := client.ListQueueKpis(ctx, &tpv1.ListQueueKpisRequest{Tenant: "acme", Window: w, OrderBy: "call_abandon_rate desc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(byRate.GetQueues()) != 2 || byRate.GetQueues()[0].GetQueueId() != oddQueue { // 1/2 before 1/3
		t.Errorf("ListQueueKpis by call_abandon_rate desc = %v", byRate.GetQueues())
	}
	// Tenants never mix: acme's support is acme's calls alone (checked above), globex lists its
	// own two queues, and acme's credential cannot read globex's.
	gl, err := globexClient.ListQueueKpis(ctx, &tpv1.ListQueueKpisRequest{Tenant: "globex", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	if len(gl.GetQueues()) != 2 || gl.GetQueues()[0].GetQueueId() != "globex-only" || gl.GetQueues()[1].GetKpis().GetCallsOffered() != 1 {
		t.Errorf("globex's queues = %v; want globex-only, and support with its one call", gl.GetQueues())
	}
	if k := queueKpis(client, "acme", "globex-only"); k.GetCallsOffered() != 0 {
		t.Errorf("acme's globex-only queue = %v; want zeros", k)
	}
	if _, err := client.GetQueueKpis(ctx, &tpv1.GetQueueKpisRequest{Tenant: "globex", QueueId: "support", Window: w}); err == nil {
		t.Error("acme's key read globex's queue")
	}

	// The queue series: one per queue, in queue_id order, whose hours add up to the queue's figures.
	series, err := client.ListKpiSeries(ctx, &tpv1.ListKpiSeriesRequest{Tenant: "acme", Scope: tpv1.ScopeKind_SCOPE_KIND_QUEUE,
		Window: w, Granularity: tpv1.Granularity_GRANULARITY_HOUR})
	if err != nil {
		t.Fatal(err)
	}
	var seriesIDs []string
	for _, sr := range series.GetSeries() {
		seriesIDs = append(seriesIDs, sr.GetScopeId())
		var offered, abandoned, handled int64
		for _, p := range sr.GetPoints() {
			offered += p.GetKpis().GetCallsOffered()
			abandoned += p.GetKpis().GetCallsAbandoned()
			handled += p.GetKpis().GetCallHandleTime().GetCount()
		}
		if wq := want[sr.GetScopeId()]; wq == nil || offered != wq.offered || abandoned != wq.abandoned || handled != wq.answered {
			t.Errorf("series of %q adds up to %d offered, %d abandoned, %d handled; want %+v", sr.GetScopeId(), offered, abandoned, handled, wq)
		}
		if len(sr.GetPoints()) != 2 {
			t.Errorf("series of %q has %d hourly points, want 2", sr.GetScopeId(), len(sr.GetPoints()))
		}
	}
	if !slices.Equal(seriesIDs, listed) {
		t.Errorf("queue series %q, want %q", seriesIDs, listed)
	}

	// Each queue's snapshot is on its own subject, scope "queue", with the same figures in 24h.
	nc, err := nats.Connect(s.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	kjs, _ := jetstream.New(nc)
	kpiStream, err := kjs.Stream(ctx, stream.KPIName)
	if err != nil {
		t.Fatal(err)
	}
	for q, wq := range want {
		subject := snapshot.Subject("acme", bucket.Scope{Kind: bucket.Queue, ID: q})
		deadline := time.Now().Add(10 * time.Second)
		for {
			var snap tpv1.KpiSnapshot
			m, err := kpiStream.GetLastMsgForSubject(ctx, subject)
			if err == nil {
				err = proto.Unmarshal(m.Data, &snap)
			}
			if err == nil && snap.GetWindows()["24h"].GetCallsOffered() == wq.offered &&
				snap.GetWindows()["24h"].GetCallHandleTime().GetCount() == wq.answered {
				if snap.GetScope() != "queue" || snap.GetId() != q || snap.GetTenant() != "acme" {
					t.Errorf("snapshot on %s: tenant %q scope %q id %q", subject, snap.GetTenant(), snap.GetScope(), snap.GetId())
				}
				wq.check(t, "snapshot 24h of "+q, snap.GetWindows()["24h"])
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("no snapshot of queue %q on %s with its calls (last: %v, %v)", q, subject, snap.GetWindows()["24h"], err)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The ended calls are done: compacted, and a redelivery of their events changes nothing.
	deadline = time.Now().Add(15 * time.Second)
	for _, c := range calls {
		for {
			if st, _ := s.rdb.HGet(ctx, store.TicketKey("acme", contrib.CallState(c.id)), "s").Result(); len(st) > 0 && st[0] == 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("call %s was never compacted", c.id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, ev := range calls[0].events("acme", start) {
		publish(ev, "acme/"+ev.GetId()+"/after-compaction")
	}
	// A call published after the redelivery: once it counts, the redelivery was handled too.
	marker := queueCall{id: "C7", queue: "marker", agent: "cy", wait: sec, talk: sec}
	for _, ev := range marker.events("acme", start) {
		publish(ev, "acme/"+ev.GetId())
	}
	deadline = time.Now().Add(15 * time.Second)
	for queueKpis(client, "acme", "marker").GetCallHandleTime().GetCount() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the marker call never counted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for q := range want {
		if k := queueKpis(client, "acme", q); !proto.Equal(k, before[q]) {
			t.Errorf("after compaction and a redelivery queue %q = %v\nbefore %v", q, k, before[q])
		}
	}

	// Rebuilt from the event log into fresh keys, every queue has the same figures.
	admin := tpv1.NewKpiAdminServiceClient(r.DialAs(ts.Operator))
	if _, err := admin.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if st := waitJob(t, s.rdb, 30*time.Second); st.Result != "done" {
		t.Fatalf("rebuild: %+v", st)
	}
	for q := range want {
		if k := queueKpis(client, "acme", q); !proto.Equal(k, before[q]) {
			t.Errorf("after the rebuild queue %q = %v\nbefore %v", q, k, before[q])
		}
	}
	// Every queue's snapshot is published again from the new generation, though no call arrived.
	switched, err := generation.New(s.rdb).Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"marker", oddQueue, "support"} {
		subject := snapshot.Subject("acme", bucket.Scope{Kind: bucket.Queue, ID: q})
		deadline := time.Now().Add(10 * time.Second)
		for {
			m, err := kpiStream.GetLastMsgForSubject(ctx, subject)
			if err == nil && !m.Time.Before(switched.Switched) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("no snapshot of queue %q published after the switch (last: %v, %v)", q, m, err)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	resp, err := client.ListQueueKpis(ctx, &tpv1.ListQueueKpisRequest{Tenant: "acme", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	var rebuilt []string
	for _, q := range resp.GetQueues() {
		rebuilt = append(rebuilt, q.GetQueueId())
	}
	if !slices.Equal(rebuilt, []string{"marker", oddQueue, "support"}) {
		t.Errorf("after the rebuild ListQueueKpis lists %q", rebuilt)
	}
}
