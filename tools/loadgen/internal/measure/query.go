package measure

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/traffic"
)

// Query is the latency of one kind of read, called back to back by one client.
type Query struct {
	Name    string    `json:"name"`
	Latency Quantiles `json:"latency"`
	// Rows is the number of agents the last answer held, to show the read did real work.
	Rows int `json:"rows"`
}

func rolling(w string) *ticketpulsev1.Window {
	return &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Rolling{Rolling: w}}
}

// runQueries measures GetAgentKpis (24h, 30d) for random generated agents and ListAgentKpis of
// one page over 30d, each for at most cfg.GRPCCalls calls or cfg.GRPCTime.
func runQueries(ctx context.Context, e *env) ([]Query, error) {
	cfg := e.cfg
	rng := rand.New(rand.NewPCG(cfg.Seed, 3))
	type call func(ctx context.Context) (int, error)
	get := func(w string) call {
		return func(ctx context.Context) (int, error) {
			agent := traffic.AgentID(rng.IntN(cfg.Agents))
			resp, err := e.kpi.GetAgentKpis(ctx, &ticketpulsev1.GetAgentKpisRequest{Tenant: cfg.Tenant, AgentId: agent, Window: rolling(w)})
			if err != nil {
				return 0, fmt.Errorf("GetAgentKpis %s %s: %w", agent, w, err)
			}
			if resp.GetAgent().GetKpis() == nil {
				return 0, nil
			}
			return 1, nil
		}
	}
	list := func(ctx context.Context) (int, error) {
		resp, err := e.kpi.ListAgentKpis(ctx, &ticketpulsev1.ListAgentKpisRequest{Tenant: cfg.Tenant, Window: rolling("30d"), PageSize: int32(cfg.ListPageSize)})
		if err != nil {
			return 0, fmt.Errorf("ListAgentKpis page %d 30d: %w", cfg.ListPageSize, err)
		}
		return len(resp.GetAgents()), nil
	}
	kinds := []struct {
		name string
		fn   call
	}{
		{name: "GetAgentKpis 24h", fn: get("24h")},
		{name: "GetAgentKpis 30d", fn: get("30d")},
		{name: fmt.Sprintf("ListAgentKpis %d agents 30d", cfg.ListPageSize), fn: list},
	}
	var out []Query
	for _, k := range kinds {
		// One unmeasured call warms the connection and any cache kpi keeps of the key layout.
		if _, err := k.fn(ctx); err != nil {
			return out, err
		}
		var lats []time.Duration
		rows := 0
		deadline := time.Now().Add(cfg.GRPCTime)
		for len(lats) < cfg.GRPCCalls && time.Now().Before(deadline) {
			t := time.Now()
			n, err := k.fn(ctx)
			if err != nil {
				return out, err
			}
			lats = append(lats, time.Since(t))
			rows = n
		}
		out = append(out, Query{Name: k.name, Latency: Summarise(lats), Rows: rows})
	}
	return out, nil
}
