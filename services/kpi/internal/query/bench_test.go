package query

import (
	"context"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query/querytest"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
)

// benchLoad matches the gRPC benchmarks' data set: 500 agents, 31 days, 10 tickets a day each.
var benchLoad = querytest.Load{Agents: 500, Teams: 20, Days: 31, TicketsPerDay: 10, EndHour: hourAt("2026-11-22T14:00:00Z"), Seed: 1}

// BenchmarkTotals500x30d reads the 30-day totals of every agent without the gRPC layer, to
// separate the store's share of BenchmarkListAgentKpis500x30d.
func BenchmarkTotals500x30d(b *testing.B) {
	r := NewReader(querytest.LoadedRedis(b, tenant, benchLoad))
	scopes := make([]bucket.Scope, benchLoad.Agents)
	for i := range scopes {
		scopes[i] = bucket.Scope{Kind: bucket.Agent, ID: querytest.AgentID(i)}
	}
	// 2026-10-24 (a Saturday) to now: the 12-key cover of the gRPC benchmark.
	from, to := hourAt("2026-10-24T00:00:00Z"), benchLoad.EndHour+1
	if n := window.Cover(from, to).Len(); n != 12 {
		b.Fatalf("cover of %d keys, want 12", n)
	}
	for b.Loop() {
		ts, err := r.Totals(context.Background(), tenant, scopes, from, to)
		if err != nil {
			b.Fatal(err)
		}
		if ts[0].C[bucket.Assigned] == 0 {
			b.Fatal("no figures")
		}
	}
}
