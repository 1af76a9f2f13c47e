package contrib

import (
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
	"github.com/ticketpulse/ticketpulse/services/platform/eventorder"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

func seq(n uint64) func(*Event) { return func(e *Event) { e.Sequence = n } }

// The same-instant cases below name their events so that ordering by id alone would get them
// wrong: each pair is (the event that comes first, the one after it), and the second's id hashes
// lower. Without this the cases could pass by luck of the ids.
func TestSameInstantCasesDefeatTheIDOrder(t *testing.T) {
	for _, p := range [][2]string{{"create", "solve"}, {"take", "solve"}, {"reply", "solve"}, {"s", "o"}, {"reopen", "solve"}} {
		if KeyOf(p[1]) > KeyOf(p[0]) {
			t.Errorf("%q sorts after %q by id: pick ids the id order gets wrong", p[1], p[0])
		}
	}
}

func TestEventsAtTheSameInstant(t *testing.T) {
	ana, billing := "ana", "billing"
	fiveDays := float64(5 * 24 * 60)
	tests := []struct {
		name   string
		events []Event
		want   []want
	}{
		{
			name: "created and solved in one minute, closed days later: one resolution of 0 s",
			events: []Event{
				ev("create", created, 0, by(kCustomer, "cu"), to(ana), team(billing), status(tpv1.TicketStatus_TICKET_STATUS_NEW)),
				ev("solve", statusCh, 0, status(solved)),
				ev("close", statusCh, fiveDays, by(tpv1.ActorKind_ACTOR_KIND_AUTOMATION, "auto"), status(closed)),
			},
			want: []want{
				{bucket.Agent, ana, cf(bucket.Resolutions), 1},
				{bucket.Agent, ana, cf(bucket.ResolutionCount), 1},
				{bucket.Agent, ana, cf(bucket.ResolutionSumMillis), 0},
				{bucket.Agent, ana, BinField(bucket.Resolution, hist.ZeroBin), 1},
				{bucket.Agent, ana, cf(bucket.Reopens), 0},
				{bucket.Team, billing, cf(bucket.Resolutions), 1},
				{bucket.Team, billing, cf(bucket.Reopens), 0},
			},
		},
		{
			name: "taken, replied and solved in one second: the reply is the first response, a one-touch resolution",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team(billing)),
				ev("take", assigned, 10, to(ana)),
				ev("reply", agentMsg, 10, by(kAgent, ana), public(true)),
				ev("solve", statusCh, 10, status(solved)),
			},
			want: []want{
				{bucket.Agent, ana, cf(bucket.FirstCount), 1},
				{bucket.Agent, ana, cf(bucket.FirstSumMillis), 10 * 60_000},
				{bucket.Agent, ana, cf(bucket.SLAMet), 1},
				{bucket.Agent, ana, cf(bucket.Resolutions), 1},
				{bucket.Agent, ana, cf(bucket.ResolutionSumMillis), 10 * 60_000},
				{bucket.Agent, ana, cf(bucket.OneTouch), 1},
				{bucket.Unassigned, "", cf(bucket.Resolutions), 0},
				{bucket.Unassigned, "", cf(bucket.OneTouch), 0},
			},
		},
		{
			name: "follow-up answered and solved in one second: the reply answers before the solve",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), to(ana)),
				ev("r1", agentMsg, 5, by(kAgent, ana), public(true)),
				ev("m", custMsg, 20, by(kCustomer, "cu")),
				ev("reply", agentMsg, 30, by(kAgent, ana), public(true)),
				ev("solve", statusCh, 30, status(solved)),
			},
			want: []want{
				{bucket.Agent, ana, cf(bucket.NextCount), 1},
				{bucket.Agent, ana, cf(bucket.NextSumMillis), 10 * 60_000},
				{bucket.Agent, ana, cf(bucket.Resolutions), 1},
				{bucket.Agent, ana, cf(bucket.OneTouch), 0},
			},
		},
		{
			name: "two status changes in one minute: solve (sequence 4) then reopen (sequence 9) is reopened",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), to(ana)),
				ev("s", statusCh, 60, status(solved), seq(4)),
				ev("o", statusCh, 60, status(open), seq(9)),
			},
			want: []want{
				{bucket.Agent, ana, cf(bucket.Resolutions), 1},
				{bucket.Agent, ana, cf(bucket.Reopens), 1},
				{bucket.Agent, ana, cf(bucket.AssignedNowResolved), 0},
			},
		},
		{
			name: "two status changes in one minute: reopen (sequence 4) then solve (sequence 9) is solved",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), to(ana)),
				ev("reopen", statusCh, 60, status(open), seq(4)),
				ev("solve", statusCh, 60, status(solved), seq(9)),
			},
			want: []want{
				{bucket.Agent, ana, cf(bucket.Resolutions), 1},
				{bucket.Agent, ana, cf(bucket.Reopens), 0},
				{bucket.Agent, ana, cf(bucket.AssignedNowResolved), 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Compute(tt.events, DefaultSLA())
			for _, w := range tt.want {
				if got := fig(c, w.kind, w.id, w.field); got != w.value {
					t.Errorf("%c:%s %s = %d, want %d", w.kind, w.id, w.field.Name(), got, w.value)
				}
			}
		})
	}
}

func TestResolutionLandsInTheHourOfTheSolveNotOfTheClose(t *testing.T) {
	c := Compute([]Event{
		ev("create", created, 0, by(kCustomer, "cu"), to("ana")),
		ev("solve", statusCh, 0, status(solved)),
		ev("close", statusCh, 5*24*60, status(closed)),
	}, DefaultSLA())
	if got, want := hourOf(c, bucket.Agent, "ana", cf(bucket.Resolutions)), t0.Unix()/3600; got != want {
		t.Fatalf("resolution in hour %d, want %d", got, want)
	}
}

func TestReopenBelongsToTheResolutionItUndoes(t *testing.T) {
	ana, bob, billing, tech := "ana", "bob", "billing", "tech"
	start := []Event{
		ev("c", created, 0, by(kCustomer, "cu"), team(billing)),
		ev("a", assigned, 1, to(ana)),
		ev("s1", statusCh, 60, status(solved)),
	}
	tests := []struct {
		name   string
		events []Event
		want   []want
	}{
		{
			name: "solved by ana, reassigned to bob, reopened: ana's and her team's",
			events: append(start[:3:3],
				ev("a2", assigned, 70, to(bob), team(tech)),
				ev("o", statusCh, 120, status(open))),
			want: []want{
				{bucket.Agent, ana, cf(bucket.Reopens), 1},
				{bucket.Team, billing, cf(bucket.Reopens), 1},
				{bucket.Agent, bob, cf(bucket.Reopens), 0},
				{bucket.Team, tech, cf(bucket.Reopens), 0},
				{bucket.Agent, ana, cf(bucket.Resolutions), 1},
			},
		},
		{
			name: "closed by bob after ana's solve, reopened: ana's",
			events: append(start[:3:3],
				ev("cl", statusCh, 90, by(kAgent, bob), to(bob), status(closed)),
				ev("o", statusCh, 120, status(open))),
			want: []want{
				{bucket.Agent, ana, cf(bucket.Reopens), 1},
				{bucket.Team, billing, cf(bucket.Reopens), 1},
				{bucket.Agent, bob, cf(bucket.Reopens), 0},
				{bucket.Agent, ana, cf(bucket.Resolutions), 1},
				{bucket.Agent, bob, cf(bucket.Resolutions), 0},
			},
		},
		{
			name: "a reopen after bob's re-solve is bob's",
			events: append(start[:3:3],
				ev("o1", statusCh, 120, status(open)),
				ev("a2", assigned, 121, to(bob)),
				ev("s2", statusCh, 180, status(solved)),
				ev("a3", assigned, 200, to(ana)),
				ev("o2", statusCh, 240, status(pending))),
			want: []want{
				{bucket.Agent, ana, cf(bucket.Reopens), 1},
				{bucket.Agent, bob, cf(bucket.Reopens), 1},
				{bucket.Team, billing, cf(bucket.Reopens), 2},
				{bucket.Agent, bob, cf(bucket.Resolutions), 1},
				// Each one's reopen is of one of their own solves: a rate of 1 each.
				{bucket.Agent, ana, cf(bucket.Solves), 1},
				{bucket.Agent, bob, cf(bucket.Solves), 1},
				{bucket.Team, billing, cf(bucket.Solves), 2},
				{bucket.Agent, ana, cf(bucket.Resolutions), 0},
			},
		},
		{
			name: "ana's solve reopened, bob's re-solve holds: ana 1 reopen of 1 solve, bob 0 of 1",
			events: append(start[:3:3],
				ev("o1", statusCh, 120, status(open)),
				ev("a2", assigned, 121, to(bob)),
				ev("s2", statusCh, 180, status(solved))),
			want: []want{
				{bucket.Agent, ana, cf(bucket.Reopens), 1},
				{bucket.Agent, ana, cf(bucket.Solves), 1},
				{bucket.Agent, ana, cf(bucket.Resolutions), 0},
				{bucket.Agent, bob, cf(bucket.Reopens), 0},
				{bucket.Agent, bob, cf(bucket.Solves), 1},
				{bucket.Agent, bob, cf(bucket.Resolutions), 1},
			},
		},
		{
			name: "unassigned at the solve: the reopen is the unassigned figures', not the later assignee's",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team(billing)),
				ev("s1", statusCh, 60, status(solved)),
				ev("a", assigned, 70, to(bob)),
				ev("o", statusCh, 120, status(open)),
			},
			want: []want{
				{bucket.Unassigned, "", cf(bucket.Reopens), 1},
				{bucket.Unassigned, "", cf(bucket.Resolutions), 1},
				{bucket.Agent, bob, cf(bucket.Reopens), 0},
				{bucket.Team, billing, cf(bucket.Reopens), 1},
			},
		},
		{
			name: "created solved, never solved by anyone: the reopen is the assignee's before it",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), to(ana), status(solved)),
				ev("o", statusCh, 120, status(open)),
			},
			want: []want{
				{bucket.Agent, ana, cf(bucket.Reopens), 1},
				{bucket.Agent, ana, cf(bucket.Resolutions), 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Compute(tt.events, DefaultSLA())
			for _, w := range tt.want {
				if got := fig(c, w.kind, w.id, w.field); got != w.value {
					t.Errorf("%c:%s %s = %d, want %d", w.kind, w.id, w.field.Name(), got, w.value)
				}
			}
		})
	}
}

func TestFromProtoCarriesTheOrder(t *testing.T) {
	e := FromProto(&tpv1.TicketEvent{Id: "zd-audit-77", Type: statusCh, OccurredAt: timestamppb.New(t0), Sequence: 77})
	want := eventorder.Key{AtMillis: t0.UnixMilli(), Type: statusCh, Sequence: 77, ID: eventorder.IDHash("zd-audit-77")}
	if got := e.orderKey(); got != want {
		t.Fatalf("order key %+v, want %+v", got, want)
	}
	// Keys of histories stored before the shared order stay valid.
	if KeyOf("zd-audit-77") != 0x9f049d09791ed836 {
		t.Fatalf("KeyOf changed: %#x", KeyOf("zd-audit-77"))
	}
}
