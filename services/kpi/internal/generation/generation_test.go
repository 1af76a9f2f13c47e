package generation_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/generation"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func sla(string) contrib.SLA { return contrib.DefaultSLA() }

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func e(id string, typ tpv1.EventType, minutes int, f func(*contrib.Event)) contrib.Event {
	ev := contrib.Event{Key: contrib.KeyOf(id), Type: typ, AtMillis: t0.Add(time.Duration(minutes) * time.Minute).UnixMilli()}
	if f != nil {
		f(&ev)
	}
	return ev
}

// life is one ticket: created by a customer in team, assigned to agent, replied, solved, rated.
func life(ticket, agent, team string, start int) []contrib.Event {
	p := func(s string) string { return ticket + "/" + s }
	return []contrib.Event{
		e(p("c"), tpv1.EventType_EVENT_TYPE_TICKET_CREATED, start, func(ev *contrib.Event) {
			ev.Actor, ev.ActorID, ev.Team = tpv1.ActorKind_ACTOR_KIND_CUSTOMER, "cu", team
		}),
		e(p("a"), tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, start+1, func(ev *contrib.Event) { ev.Assignee = agent }),
		e(p("r"), tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, start+20, func(ev *contrib.Event) {
			ev.Actor, ev.ActorID, ev.Public = tpv1.ActorKind_ACTOR_KIND_AGENT, agent, 2
		}),
		e(p("s"), tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, start+90, func(ev *contrib.Event) {
			ev.Status = tpv1.TicketStatus_TICKET_STATUS_SOLVED
		}),
		e(p("q"), tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, start+200, func(ev *contrib.Event) { ev.Score = 4 }),
	}
}

func keys(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	ks := testenv.Keys(t, rdb, "*")
	slices.Sort(ks)
	return ks
}

// fill writes KPI figures of several tickets, agents and teams (ids that need escaping included)
// into keyspace ks of tenant, rolls them up and reads them, so every kind of kpi key exists.
func fill(t *testing.T, rdb redis.UniversalClient, tenant, ks string) {
	t.Helper()
	ctx := context.Background()
	w := store.NewWriter(rdb, sla, 0, quiet)
	var tickets []store.Ticket
	for i, who := range []struct{ agent, team string }{{"ana", "billing"}, {"bob:x}", "sup{port}"}, {"", "billing"}} {
		id := "T-" + string(rune('1'+i)) + ":{x}"
		tickets = append(tickets, store.Ticket{Tenant: tenant, Keyspace: ks, ID: id, Events: life(id, who.agent, who.team, 60*i)})
	}
	// A call in a queue (an id that needs escaping), for the queue's scope and listing keys.
	call := func(id string, typ tpv1.EventType, minutes int) contrib.Event {
		return e(id, typ, minutes, func(ev *contrib.Event) {
			ev.CallKey, ev.CallDir, ev.CallAgent, ev.CallQueue = contrib.KeyOf("CA-1"), tpv1.CallDirection_CALL_DIRECTION_INBOUND, "ana", "sup{port} q"
		})
	}
	tickets = append(tickets, store.Ticket{Tenant: tenant, Keyspace: ks, ID: contrib.CallState("CA-1"), Events: []contrib.Event{
		call("CA-1/o", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 0), call("CA-1/a", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 1),
	}})
	// One a year earlier, so that an ended year has figures (and totals).
	tickets = append(tickets, store.Ticket{Tenant: tenant, Keyspace: ks, ID: "T-0", Events: life("T-0", "ana", "billing", -60*24*400)})
	if _, err := w.Write(ctx, tickets); err != nil {
		t.Fatal(err)
	}
	if _, err := store.NewRollup(rdb, 0).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	r := query.NewReader(rdb)
	from, to := t0.Unix()/3600-24, t0.Unix()/3600+24*40
	if _, err := r.Agents(ctx, ks, "", from, to); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Totals(ctx, ks, []bucket.Scope{{Kind: bucket.Agent, ID: "ana"}, {Kind: bucket.Team, ID: "sup{port}"}, {Kind: bucket.Unassigned}}, from, to); err != nil {
		t.Fatal(err)
	}
	// The readers' generation tokens, as a read that decodes totals leaves them.
	space := ks
	if space == "" {
		space = tenant
	}
	for _, k := range []string{bucket.GenKey(space, bucket.Scope{Kind: bucket.Agent, ID: "bob:x}"}), bucket.GenKey(space, bucket.Scope{Kind: bucket.Unassigned}), bucket.IndexGenKey(space)} {
		if err := rdb.Set(ctx, k, "g1", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// diff names, bounded, the keys only in a and only in b.
func diff(a, b []string) string {
	var onlyA, onlyB []string
	for _, k := range a {
		if !slices.Contains(b, k) {
			onlyA = append(onlyA, k)
		}
	}
	for _, k := range b {
		if !slices.Contains(a, k) {
			onlyB = append(onlyB, k)
		}
	}
	return fmt.Sprintf("only in got (%d): %.600v\nonly in want (%d): %.600v", len(onlyA), onlyA, len(onlyB), onlyB)
}

// The old generation's deletion removes every kpi key of it and nothing else: not the other
// services' keys under the same tenant tags, not the other generations, not another tenant whose
// id starts alike, not the generation state.
func TestDropDeletesExactlyTheGenerationsKpiKeys(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	fill(t, rdb, "acme", "")
	before := keys(t, rdb)
	fill(t, rdb, "acme", "acme@1")
	fill(t, rdb, "acme-2", "")
	fill(t, rdb, "acme-2", "acme-2@3")
	foreign := []string{
		"tp:{acme:t:T-1:{x}}:esc:ev", "tp:{acme:t:T-1}:esc:ev", "tp:{acme:a:ana}:e:first-response", "tp:{acme:a:ana}:e:first-response:1",
		"tp:{acme:g:billing}:e:backlog}", "tp:{acme:ix}:esc", "tp:{acme:ng:g1}", "tp:{acme:nd}", "tp:{acme:nd}:log", "tp:{acme:nopen}",
		"tp:{acme:u}:other", "tp:{acme:ix}:a:x", "tp:{nf}:disabled", "tp:notify:{tq:0}:due", "tp:{tq:1}:due", "tp:{acme:kgen}",
		"tp:{acme:escrb}", "tp:{acme:k}:other", "tp:{acme:k}",
	}
	for _, k := range foreign {
		if err := rdb.Set(ctx, k, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	all := keys(t, rdb)
	var kpiOfGen0 []string
	for _, k := range before {
		if strings.HasPrefix(k, "tp:{acme:") {
			kpiOfGen0 = append(kpiOfGen0, k)
		}
	}
	// Every kind of key exists, or the test would prove little.
	for _, want := range []string{":t:", "}:h:", "}:dt:", "}:wt:", "}:mt:", "}:yt:", "}:gen", "}:ff", "}:m:", "ix}:a:", "ix}:g:", "ix}:ga:", "ix}:gen",
		"ix}:allagents", "ix}:allteams", "ix}:q:", "ix}:allqueues", "tp:{acme:q:", "tp:{acme:u}:", "}:k:", "tp:{acme:k}:k:", "tp:{acme:k}:m:"} {
		if !slices.ContainsFunc(kpiOfGen0, func(k string) bool { return strings.Contains(k, want) }) {
			t.Errorf("no key of kind %q was written", want)
		}
	}

	n, err := generation.New(rdb).Drop(ctx, "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(kpiOfGen0) {
		t.Errorf("Drop deleted %d keys, want the %d kpi keys of generation 0", n, len(kpiOfGen0))
	}
	var want []string
	for _, k := range all {
		if !slices.Contains(kpiOfGen0, k) {
			want = append(want, k)
		}
	}
	if got := keys(t, rdb); !slices.Equal(got, want) {
		t.Errorf("after Drop: %s", diff(got, want))
	}
	tenants, _ := rdb.SMembers(ctx, bucket.TenantsKey).Result()
	slices.Sort(tenants)
	if !slices.Equal(tenants, []string{"acme-2", "acme-2@3", "acme@1"}) {
		t.Errorf("rollup tenants = %v, want acme dropped only", tenants)
	}
	// Again: nothing left to delete, nothing else touched.
	if n, err := generation.New(rdb).Drop(ctx, "acme", nil); err != nil || n != 0 {
		t.Errorf("second Drop = %d, %v; want 0, nil", n, err)
	}
	for _, bad := range []string{"", "acme*", "ac[me]", "acme}"} {
		if _, err := generation.New(rdb).Drop(ctx, bad, nil); err == nil || !strings.Contains(err.Error(), "not a keyspace") {
			t.Errorf("Drop(%q) = %v, want not a keyspace", bad, err)
		}
	}
}

// A live write goes to the current generation and, while a rebuild builds, to its target, with
// the same figures in both; the batch's counts are the current generation's.
func TestLiveWritesGoToTheTargetWhileARebuildBuilds(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	gens := generation.New(rdb)
	w := store.NewWriter(rdb, sla, 0, quiet)
	w.SetGenerations(gens)
	write := func(id string, start int) store.Result {
		t.Helper()
		res, err := w.Write(ctx, []store.Ticket{{Tenant: "acme", ID: id, Events: life(id, "ana", "billing", start)}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	write("T-1", 0)
	if _, _, err := gens.Start(ctx, "acme", time.Time{}, "me", time.Minute); err != nil {
		t.Fatal(err)
	}
	if res := write("T-2", 30); res.NewEvents != 5 || res.Duplicates != 0 {
		t.Errorf("counts while building = %d new, %d duplicates; want 5, 0 (not doubled)", res.NewEvents, res.Duplicates)
	}
	r := query.NewReader(rdb)
	from, to := t0.Unix()/3600, t0.Unix()/3600+24
	assigned := func(ks string) int64 {
		ts, err := r.Totals(ctx, ks, []bucket.Scope{{Kind: bucket.Agent, ID: "ana"}}, from, to)
		if err != nil {
			t.Fatal(err)
		}
		return ts[0].C[bucket.Assigned]
	}
	if a, b := assigned("acme"), assigned("acme@1"); a != 2 || b != 1 {
		t.Errorf("assigned = %d in generation 0, %d in 1; want 2 and 1 (only the live ticket)", a, b)
	}
	// The rebuild's replay of T-1 and T-2 into the target: T-2 again changes nothing.
	if _, err := w.Write(ctx, []store.Ticket{
		{Tenant: "acme", Keyspace: "acme@1", ID: "T-1", Events: life("T-1", "ana", "billing", 0)},
		{Tenant: "acme", Keyspace: "acme@1", ID: "T-2", Events: life("T-2", "ana", "billing", 30)},
	}); err != nil {
		t.Fatal(err)
	}
	if a, b := assigned("acme"), assigned("acme@1"); a != 2 || b != 2 {
		t.Errorf("assigned = %d in generation 0, %d in 1; want 2 and 2", a, b)
	}
	if err := gens.Switch(ctx, "acme", "me", time.Minute, time.Minute); err != nil {
		t.Fatal(err)
	}
	write("T-3", 60)
	if a, b := assigned("acme"), assigned("acme@1"); a != 2 || b != 3 {
		t.Errorf("after the switch assigned = %d in generation 0, %d in 1; want 2 and 3 (only the current one)", a, b)
	}
	if ks, err := gens.Current(ctx, "acme"); err != nil || ks != "acme@1" {
		t.Errorf("Current = %q, %v; want acme@1", ks, err)
	}
}

// The job's state: one rebuild at a time, a repeated request attaches, a lease held by a live
// replica cannot be taken, a lapsed one can, and the old owner then can neither record progress
// nor switch.
func TestStateTransitionsAndLeases(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	gens := generation.New(rdb)
	if ks, err := gens.Current(ctx, "acme"); err != nil || ks != "acme" {
		t.Fatalf("Current of a tenant never rebuilt = %q, %v; want acme", ks, err)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st, attached, err := gens.Start(ctx, "acme", from, "a", 50*time.Millisecond)
	if err != nil || attached || st.Target != 1 || st.Current != 0 || st.Phase != generation.PhaseBuild || !st.From.Equal(from) {
		t.Fatalf("Start = %+v, %v, %v", st, attached, err)
	}
	if _, attached, err := gens.Start(ctx, "acme", from, "b", time.Minute); err != nil || !attached {
		t.Errorf("the same request again = attached %v, %v; want attached", attached, err)
	}
	_, _, err = gens.Start(ctx, "acme", time.Time{}, "b", time.Minute)
	want := "a rebuild of the tenant is running: it started at " + st.Started.Format(time.RFC3339) +
		", rebuilds from 2026-01-01T00:00:00Z, and has replayed 0 of about 0 events; watch it, or wait for it to end"
	if !errors.Is(err, generation.ErrRunning) || err.Error() != want {
		t.Errorf("another request = %v, want ErrRunning: %q", err, want)
	}
	if ok, err := gens.Claim(ctx, "acme", "b", time.Minute); err != nil || ok {
		t.Errorf("Claim of a held lease = %v, %v; want false", ok, err)
	}
	time.Sleep(80 * time.Millisecond)
	if ok, err := gens.Claim(ctx, "acme", "b", time.Minute); err != nil || !ok {
		t.Errorf("Claim of a lapsed lease = %v, %v; want true", ok, err)
	}
	if err := gens.Checkpoint(ctx, "acme", "a", time.Minute, generation.Progress{End: 9, Checkpoint: 3}); !errors.Is(err, generation.ErrLeaseLost) {
		t.Errorf("Checkpoint by the old owner = %v, want ErrLeaseLost", err)
	}
	if err := gens.Switch(ctx, "acme", "a", time.Minute, time.Minute); !errors.Is(err, generation.ErrLeaseLost) {
		t.Errorf("Switch by the old owner = %v, want ErrLeaseLost", err)
	}
	if err := gens.Checkpoint(ctx, "acme", "b", time.Minute, generation.Progress{End: 9, Checkpoint: 3, Done: 2, Total: 5}); err != nil {
		t.Fatal(err)
	}
	pipe := rdb.Pipeline()
	spaces := gens.Spaces(ctx, pipe, "acme")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if sp, err := spaces(); err != nil || !slices.Equal(sp, []string{"acme", "acme@1"}) {
		t.Errorf("Spaces while building = %v, %v", sp, err)
	}
	if err := gens.Switch(ctx, "acme", "b", time.Minute, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, attached, err := gens.Start(ctx, "acme", from, "c", time.Minute); err != nil || !attached {
		t.Errorf("the same request just after its switch = attached %v, %v; want attached to it", attached, err)
	}
	_, _, err = gens.Start(ctx, "acme", time.Time{}, "c", time.Minute)
	sw, _ := gens.Get(ctx, "acme")
	want = "a rebuild of the tenant is running: the previous rebuild switched at " + sw.Switched.Format(time.RFC3339) +
		" and deletes generation 0 from " + sw.DropAfter.Format(time.RFC3339) + "; start again once that is done"
	if !errors.Is(err, generation.ErrRunning) || err.Error() != want {
		t.Errorf("Start while the old generation waits for deletion = %v, want %q", err, want)
	}
	if err := gens.Dropped(ctx, "acme", "b"); err != nil {
		t.Fatal(err)
	}
	st, err = gens.Get(ctx, "acme")
	if err != nil || st.Current != 1 || st.Phase != generation.PhaseNone || st.Result != "done" || st.Done != 2 {
		t.Errorf("after the job: %+v, %v", st, err)
	}
	if jobs, _ := gens.Jobs(ctx); len(jobs) != 0 {
		t.Errorf("jobs after the job = %v, want none", jobs)
	}
	// The next rebuild gets a generation never used.
	if st, _, err := gens.Start(ctx, "acme", time.Time{}, "c", time.Minute); err != nil || st.Target != 2 || st.Current != 1 {
		t.Errorf("next Start = %+v, %v; want target 2", st, err)
	}
	if err := gens.Fail(ctx, "acme", "c", "broken", time.Minute, time.Minute); err != nil {
		t.Fatal(err)
	}
	if st, _ := gens.Get(ctx, "acme"); st.Current != 1 || st.Old != 2 || st.Result != "failed" || st.Err != "broken" {
		t.Errorf("after Fail: %+v; want the current generation kept and the target to delete", st)
	}
}
