package traffic

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

var testNow = time.Date(2026, 3, 2, 9, 14, 5, 0, time.UTC)

func baseConfig() Config {
	return Config{Agents: 40, Teams: 5, Events: 20000, Seed: 7, Now: testNow, Spread: 28 * 24 * time.Hour, Interleave: 64, Prefix: "t1"}
}

func drain(t *testing.T, cfg Config) []Event {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var out []Event
	for {
		ev, ok := g.Next()
		if !ok {
			return out
		}
		out = append(out, ev)
	}
}

func TestLifeCycles(t *testing.T) {
	tests := []struct {
		name string
		give func(*Config)
	}{
		{name: "capped by events", give: func(c *Config) {}},
		{name: "capped by tickets", give: func(c *Config) { c.Events = 0; c.Tickets = 500 }},
		{name: "no interleaving", give: func(c *Config) { c.Interleave = 1; c.Events = 3000 }},
		{name: "one agent one team", give: func(c *Config) { c.Agents, c.Teams, c.Events = 1, 1, 2000 }},
		{name: "short spread cuts lives", give: func(c *Config) { c.Spread = 2 * time.Hour; c.Events = 3000 }},
	}
	validTypes := []string{TicketCreated, TicketAssigned, AgentMessage, CustomerMessage, StatusChanged, PriorityChanged, SatisfactionRated}
	validKinds := []string{KindAgent, KindCustomer, KindBot, KindAutomation, KindSystem}
	validStatus := []string{"new", "open", "pending", "on_hold", "solved", "closed"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			tt.give(&cfg)
			events := drain(t, cfg)
			if len(events) == 0 {
				t.Fatal("no events")
			}
			if cfg.Events > 0 && len(events) > cfg.Events {
				t.Fatalf("emitted %d events, cap %d", len(events), cfg.Events)
			}
			ids := map[string]bool{}
			first := map[string]Event{}
			latest := cfg.Now.Add(-time.Minute)
			earliest := cfg.Now.Add(-cfg.Spread - 2*time.Minute)
			for _, ev := range events {
				if ids[ev.ID] {
					t.Fatalf("duplicate event id %q", ev.ID)
				}
				ids[ev.ID] = true
				f, seen := first[ev.TicketID]
				if !seen {
					if ev.Type != TicketCreated {
						t.Fatalf("ticket %s: first emitted event is %s, want %s", ev.TicketID, ev.Type, TicketCreated)
					}
					first[ev.TicketID] = ev
				} else if ev.OccurredAt.Before(f.OccurredAt) {
					t.Fatalf("ticket %s: %s at %s precedes its creation at %s", ev.TicketID, ev.ID, ev.OccurredAt, f.OccurredAt)
				}
				if ev.OccurredAt.After(latest) || ev.OccurredAt.Before(earliest) {
					t.Fatalf("%s at %s outside [%s, %s]", ev.ID, ev.OccurredAt, earliest, latest)
				}
				if !slices.Contains(validTypes, ev.Type) || !slices.Contains(validKinds, ev.Actor.Kind) || ev.Actor.ID == "" {
					t.Fatalf("%s: invalid type %q or actor %+v", ev.ID, ev.Type, ev.Actor)
				}
				if ev.Type == AgentMessage && ev.Public == nil {
					t.Fatalf("%s: agent_message without public", ev.ID)
				}
				if (ev.Type == StatusChanged) != (ev.Status != "") && ev.Type != TicketCreated {
					t.Fatalf("%s: type %s with status %q", ev.ID, ev.Type, ev.Status)
				}
				if ev.Status != "" && !slices.Contains(validStatus, ev.Status) {
					t.Fatalf("%s: status %q", ev.ID, ev.Status)
				}
				if ev.Type == SatisfactionRated && (ev.Satisfaction == nil || ev.Satisfaction.Score < 1 || ev.Satisfaction.Score > 5) {
					t.Fatalf("%s: satisfaction %+v", ev.ID, ev.Satisfaction)
				}
				if ev.TeamID == "" || ev.Priority == "" {
					t.Fatalf("%s: missing team or priority", ev.ID)
				}
			}
		})
	}
}

func TestBatchesBounded(t *testing.T) {
	tests := []struct {
		name       string
		events     int
		batch      int
		wantFull   int
		wantLast   int
		minTickets int
	}{
		{name: "exact multiple", events: 1000, batch: 100, wantFull: 10, wantLast: 100, minTickets: 20},
		{name: "remainder", events: 1050, batch: 100, wantFull: 10, wantLast: 50, minTickets: 20},
		{name: "batch of one", events: 7, batch: 1, wantFull: 7, wantLast: 1, minTickets: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Events = tt.events
			g, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var sizes []int
			var buf []Event
			for {
				buf = g.Batch(buf, tt.batch)
				if len(buf) == 0 {
					break
				}
				sizes = append(sizes, len(buf))
				tickets := map[string]bool{}
				for _, ev := range buf {
					tickets[ev.TicketID] = true
				}
				if len(buf) == tt.batch && len(tickets) < tt.minTickets {
					t.Fatalf("batch of %d mixes only %d tickets, want at least %d (interleaving)", len(buf), len(tickets), tt.minTickets)
				}
			}
			full := 0
			for _, s := range sizes {
				if s > tt.batch {
					t.Fatalf("batch of %d > %d", s, tt.batch)
				}
				if s == tt.batch {
					full++
				}
			}
			if full < tt.wantFull-1 || sizes[len(sizes)-1] != tt.wantLast || g.Emitted() != tt.events {
				t.Fatalf("sizes %v emitted %d, want %d full batches ending with %d, %d events", sizes, g.Emitted(), tt.wantFull, tt.wantLast, tt.events)
			}
		})
	}
}

func TestStableAndNamespacedIDs(t *testing.T) {
	cfg := baseConfig()
	cfg.Events = 3000
	a, b := drain(t, cfg), drain(t, cfg)
	if len(a) != len(b) {
		t.Fatalf("same config gave %d and %d events", len(a), len(b))
	}
	for i := range a {
		ja, _ := json.Marshal(a[i])
		jb, _ := json.Marshal(b[i])
		if string(ja) != string(jb) {
			t.Fatalf("event %d differs between identical runs:\n%s\n%s", i, ja, jb)
		}
	}
	other := cfg
	other.Prefix = "t2"
	ids := map[string]bool{}
	for _, ev := range a {
		ids[ev.ID] = true
	}
	for _, ev := range drain(t, other) {
		if ids[ev.ID] {
			t.Fatalf("prefix t2 reused id %q of prefix t1", ev.ID)
		}
	}
}

// TestRealisticMix checks the shares that make KPIs meaningful: every kind of event occurs, in
// about the proportions a helpdesk shows, and tickets cover the 30-day window.
func TestRealisticMix(t *testing.T) {
	cfg := baseConfig()
	cfg.Events, cfg.Tickets, cfg.Spread = 0, 4000, 29*24*time.Hour
	events := drain(t, cfg)
	perTicket := map[string][]Event{}
	for _, ev := range events {
		perTicket[ev.TicketID] = append(perTicket[ev.TicketID], ev)
	}
	var solved, reopened, rated, outbound, private, bot, transfers int
	days := map[int]bool{}
	agents := map[string]bool{}
	for _, evs := range perTicket {
		days[int(cfg.Now.Sub(evs[0].OccurredAt).Hours()/24)] = true
		if evs[0].Actor.Kind == KindAgent {
			outbound++
		}
		solves, assigns := 0, 0
		for _, ev := range evs {
			switch {
			case ev.Type == StatusChanged && ev.Status == "solved":
				solves++
			case ev.Type == SatisfactionRated:
				rated++
			case ev.Type == AgentMessage && !*ev.Public:
				private++
			case ev.Type == AgentMessage && ev.Actor.Kind == KindBot:
				bot++
			case ev.Type == TicketAssigned:
				assigns++
			}
			if ev.AssigneeID != "" {
				agents[ev.AssigneeID] = true
			}
		}
		if solves > 0 {
			solved++
		}
		if solves > 1 {
			reopened++
		}
		if assigns > 1 {
			transfers++
		}
	}
	n := float64(len(perTicket))
	tests := []struct {
		name     string
		give     float64
		min, max float64
	}{
		{name: "events per ticket", give: float64(len(events)) / n, min: 5, max: 14},
		{name: "solved share", give: float64(solved) / n, min: 0.8, max: 0.95},
		{name: "reopened share of solved", give: float64(reopened) / float64(solved), min: 0.05, max: 0.15},
		{name: "ratings per solved", give: float64(rated) / float64(solved), min: 0.25, max: 0.45},
		{name: "outbound share", give: float64(outbound) / n, min: 0.02, max: 0.08},
		{name: "private notes per ticket", give: float64(private) / n, min: 0.1, max: 0.5},
		{name: "bot replies per ticket", give: float64(bot) / n, min: 0.03, max: 0.2},
		{name: "transferred share", give: float64(transfers) / n, min: 0.01, max: 0.15},
		{name: "days with new tickets", give: float64(len(days)), min: 27, max: 30},
		{name: "share of agents with tickets", give: float64(len(agents)) / float64(cfg.Agents), min: 1, max: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.give < tt.min || tt.give > tt.max {
				t.Fatalf("%s = %.3f, want in [%.3f, %.3f]", tt.name, tt.give, tt.min, tt.max)
			}
		})
	}
}

func TestCanonicalJSON(t *testing.T) {
	ev := Event{ID: "evt-1042", TicketID: "T-77", Type: AgentMessage, OccurredAt: testNow,
		Actor: Actor{ID: "ana", Kind: KindAgent}, AssigneeID: "ana", TeamID: "billing", Priority: "high", Public: boolp(true)}
	got, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt-1042","ticket_id":"T-77","type":"agent_message","occurred_at":"2026-03-02T09:14:05Z","actor":{"id":"ana","kind":"agent"},"assignee_id":"ana","team_id":"billing","priority":"high","public":true}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestProbeTicket(t *testing.T) {
	evs := ProbeTicket("p", 3, "probe-01", "probes", testNow.Add(300*time.Millisecond))
	types := []string{evs[0].Type, evs[1].Type, evs[2].Type}
	if !slices.Equal(types, []string{TicketCreated, TicketAssigned, AgentMessage}) {
		t.Fatalf("types %v", types)
	}
	last := evs[2]
	if !last.OccurredAt.Equal(testNow) || last.Actor != (Actor{ID: "probe-01", Kind: KindAgent}) || !*last.Public || last.AssigneeID != "probe-01" {
		t.Fatalf("last event %+v: want a public reply by probe-01 at %s", last, testNow)
	}
	if evs[0].AssigneeID != "" || !strings.HasPrefix(evs[0].ID, "p-000003-") || evs[0].TicketID != "p-T000003" {
		t.Fatalf("created event %+v", evs[0])
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		give func(*Config)
		want string
	}{
		{name: "unbounded", give: func(c *Config) { c.Events, c.Tickets = 0, 0 }, want: "at least one positive"},
		{name: "no agents", give: func(c *Config) { c.Agents = 0 }, want: "agents 0"},
		{name: "more teams than agents", give: func(c *Config) { c.Teams = 41 }, want: "teams 41"},
		{name: "tiny spread", give: func(c *Config) { c.Spread = time.Minute }, want: "spread"},
		{name: "no prefix", give: func(c *Config) { c.Prefix = "" }, want: "prefix"},
		{name: "no interleave", give: func(c *Config) { c.Interleave = 0 }, want: "interleave"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			tt.give(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func drainTickets(t *testing.T, cfg Config) (*Generator, [][]Event) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var out [][]Event
	for {
		evs, ok := g.Ticket()
		if !ok {
			return g, out
		}
		out = append(out, evs)
	}
}

func TestTicketWholeLives(t *testing.T) {
	tests := []struct {
		name        string
		give        func(*Config)
		wantEvents  int
		wantTickets int
	}{
		{name: "capped by events", give: func(c *Config) { c.Events = 5003 }, wantEvents: 5003},
		{name: "capped by tickets", give: func(c *Config) { c.Events, c.Tickets = 0, 300 }, wantTickets: 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			tt.give(&cfg)
			g, tickets := drainTickets(t, cfg)
			limit := testNow.Truncate(time.Second).Add(-time.Minute)
			total := 0
			for i, evs := range tickets {
				if len(evs) == 0 || evs[0].Type != TicketCreated {
					t.Fatalf("ticket %d starts with %+v, want a ticket_created", i, evs)
				}
				for j, ev := range evs {
					if ev.TicketID != evs[0].TicketID {
						t.Fatalf("ticket %d mixes %s and %s", i, evs[0].TicketID, ev.TicketID)
					}
					if j > 0 && ev.OccurredAt.Before(evs[j-1].OccurredAt) || ev.OccurredAt.After(limit) {
						t.Fatalf("ticket %d event %d at %s: want time order, none after %s", i, j, ev.OccurredAt, limit)
					}
				}
				if want := fmt.Sprintf("t1-T%06d", i); evs[0].TicketID != want {
					t.Fatalf("ticket %d id %s, want %s", i, evs[0].TicketID, want)
				}
				total += len(evs)
			}
			if g.Emitted() != total || g.Started() != len(tickets) {
				t.Fatalf("emitted %d, started %d; want %d and %d", g.Emitted(), g.Started(), total, len(tickets))
			}
			if tt.wantEvents > 0 && total != tt.wantEvents {
				t.Fatalf("%d events, want exactly %d", total, tt.wantEvents)
			}
			if tt.wantTickets > 0 && len(tickets) != tt.wantTickets {
				t.Fatalf("%d tickets, want %d", len(tickets), tt.wantTickets)
			}
			if _, ok := g.Ticket(); ok {
				t.Fatal("Ticket after exhaustion: want false")
			}
		})
	}
}

// Ticket's traffic is a pure function of Config, as Next's is: the memory benchmarks that use it
// measure the same traffic on every run.
func TestTicketDeterministic(t *testing.T) {
	cfg := baseConfig()
	cfg.Events = 4000
	_, a := drainTickets(t, cfg)
	_, b := drainTickets(t, cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two generators of one Config gave different tickets")
	}
	cfg.Seed++
	_, c := drainTickets(t, cfg)
	if reflect.DeepEqual(a, c) {
		t.Fatal("another seed gave the same tickets")
	}
}

func TestProto(t *testing.T) {
	ev := Event{ID: "evt-7", TicketID: "T-1", Type: SatisfactionRated, OccurredAt: testNow,
		Actor: Actor{ID: "cust-1", Kind: KindCustomer}, AssigneeID: "ana", TeamID: "billing", Priority: "urgent",
		Status: "solved", Public: boolp(false), Satisfaction: &Satisfaction{Score: 4, Comment: "ok"},
		Channel: "chat", Tags: []string{"vip", "bug"}}
	want := &tpv1.TicketEvent{Id: "evt-7", TicketId: "T-1", Type: tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED,
		OccurredAt: timestamppb.New(testNow), Actor: &tpv1.Actor{Id: "cust-1", Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER},
		AssigneeId: "ana", TeamId: "billing", Priority: tpv1.Priority_PRIORITY_URGENT, Status: tpv1.TicketStatus_TICKET_STATUS_SOLVED,
		Public: boolp(false), Satisfaction: &tpv1.Satisfaction{Score: 4, Comment: "ok"}, Channel: "chat", Tags: []string{"vip", "bug"}}
	got := ev.Proto()
	if !proto.Equal(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	got.Tags[0], *got.Public = "changed", true
	if ev.Tags[0] != "vip" || *ev.Public {
		t.Fatal("the proto shares tags or public with the event")
	}
	// Every word the generator writes is one the proto knows.
	for _, ev := range drain(t, baseConfig()) {
		pe := ev.Proto()
		if pe.GetType() == 0 || pe.GetActor().GetKind() == 0 || pe.GetPriority() == 0 || (ev.Status != "") != (pe.GetStatus() != 0) {
			t.Fatalf("event %+v: proto %v has an unspecified value", ev, pe)
		}
	}
}
