package grpcapi

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query/querytest"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
)

// benchNow is a Sunday afternoon: the 30-day window then starts on a Saturday, so its cover is the
// longest one a 30-day window can need (2 days, 3 weeks, 6 days and today's hours: 12 keys).
var benchNow = mustTime("2026-11-22T14:20:00Z")

// benchLoad is 500 agents in 20 teams, 10 tickets each per day, over 31 days.
var benchLoad = querytest.Load{Agents: 500, Teams: 20, Days: 31, TicketsPerDay: 10, EndHour: window.HourOf(benchNow), Seed: 1}

// measure runs call b.N times and reports the mean, p50 and p99 latency in milliseconds, and the
// time redis-server itself spent per call (from its command statistics), which shows how much of
// the latency is the store's and how much the service's.
func measure(b *testing.B, call func(i int) error) {
	b.Helper()
	ctx := context.Background()
	rdb := querytest.LoadedRedis(b, tenant, benchLoad)
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, 1024)
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if err := call(i); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		lat = append(lat, d)
		total += d
	}
	b.StopTimer()
	serverUsec, err := redisUsec(ctx, rdb)
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(total/time.Duration(len(lat))), "mean-ms")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[(len(lat)*99+99)/100-1]), "p99-ms")
	b.ReportMetric(float64(serverUsec)/1000/float64(len(lat)), "redis-ms/op")
}

// redisUsec sums the microseconds redis-server spent in commands since the statistics were reset.
func redisUsec(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.InfoMap(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	var usec int64
	for name, stat := range info["Commandstats"] {
		if strings.HasPrefix(name, "cmdstat_info") {
			continue
		}
		for _, kv := range strings.Split(stat, ",") {
			if v, ok := strings.CutPrefix(kv, "usec="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("commandstats %s: %w", name, err)
				}
				usec += n
			}
		}
	}
	return usec, nil
}

func benchClient(b *testing.B) ticketpulsev1.KpiServiceClient {
	return serve(b, query.NewReader(querytest.LoadedRedis(b, tenant, benchLoad)), func() time.Time { return benchNow })
}

func benchGetAgent(b *testing.B, rolling string) {
	c := benchClient(b)
	ctx := context.Background()
	w := &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Rolling{Rolling: rolling}}
	measure(b, func(i int) error {
		resp, err := c.GetAgentKpis(ctx, &ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: querytest.AgentID(i % benchLoad.Agents), Window: w})
		if err == nil && resp.GetAgent().GetKpis().GetAssigned() == 0 {
			b.Fatalf("agent %s has no figures: the data set is not what the benchmark measures", resp.GetAgent().GetAgentId())
		}
		return err
	})
}

func BenchmarkGetAgentKpis24h(b *testing.B) { benchGetAgent(b, "24h") }

func BenchmarkGetAgentKpis30d(b *testing.B) { benchGetAgent(b, "30d") }

// BenchmarkListAgentKpis500x30d orders every agent by a quantile, so all 500 agents' 30-day
// figures are read and merged for each call.
func BenchmarkListAgentKpis500x30d(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	req := &ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Rolling{Rolling: "30d"}},
		OrderBy: "first_response_p90 desc", PageSize: 1000}
	measure(b, func(int) error {
		resp, err := c.ListAgentKpis(ctx, req)
		if err == nil && len(resp.GetAgents()) != benchLoad.Agents {
			b.Fatalf("listed %d agents, want %d", len(resp.GetAgents()), benchLoad.Agents)
		}
		return err
	})
}

// BenchmarkListAgentKpisPageByID is the cheap path: ordered by agent_id, a page of 100 reads
// only its own agents.
func BenchmarkListAgentKpisPageByID(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	req := &ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Rolling{Rolling: "30d"}}, PageSize: 100}
	measure(b, func(int) error {
		resp, err := c.ListAgentKpis(ctx, req)
		if err == nil && len(resp.GetAgents()) != 100 {
			b.Fatalf("listed %d agents, want 100", len(resp.GetAgents()))
		}
		return err
	})
}
