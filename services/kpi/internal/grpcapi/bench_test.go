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
	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query/querytest"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
)

// benchNow is a Sunday afternoon: the 30-day window then starts on a Saturday, so its cover is the
// longest one a 30-day window can need (2 days, 3 weeks, 6 days and today's hours: 12 keys).
var benchNow = mustTime("2026-11-22T14:20:00Z")

// benchLoad is 500 agents in 20 teams, 10 tickets each per day, over 800 days (back to September
// 2024): the last 31 days with their hourly detail, as the short windows read them, and every day
// with its totals, as the long windows read them. 4 million tickets; the load takes a while.
var benchLoad = querytest.Load{Agents: 500, Teams: 20, Days: 800, DetailDays: 31, TicketsPerDay: 10, EndHour: window.HourOf(benchNow), Seed: 1}

// measure makes one call on its own, reported as cold-ms (the reader holds nothing decoded yet, as
// after a start or once the rollup or a late event dropped what it held), then runs call b.N times
// and reports the mean, p50 and p99 latency in milliseconds, and the time redis-server itself
// spent per call (from its command statistics), which shows how much of the latency is the
// store's and how much the service's.
func measure(b *testing.B, call func(i int) error) {
	b.Helper()
	ctx := context.Background()
	rdb := querytest.LoadedRedis(b, tenant, benchLoad)
	start := time.Now()
	if err := call(0); err != nil {
		b.Fatal(err)
	}
	cold := time.Since(start)
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
	b.ReportMetric(ms(cold), "cold-ms")
	b.ReportMetric(ms(total/time.Duration(len(lat))), "mean-ms")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[(len(lat)*99+99)/100-1]), "p99-ms")
	b.ReportMetric(float64(serverUsec)/1000/float64(len(lat)), "redis-ms/op")
}

// redisUsec sums the microseconds redis-server spent in commands since the statistics were reset.
func redisUsec(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
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
	benchGetAgentIn(b, &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Rolling{Rolling: rolling}})
}

func benchGetAgentIn(b *testing.B, w *ticketpulsev1.Window) {
	c := benchClient(b)
	ctx := context.Background()
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

// BenchmarkGetAgentKpis2y reads one agent over the two years up to now, from midnight two years
// ago: 8 days, a month, a year, 10 months, a day, 2 weeks, 6 days and today's hours (30 keys).
func BenchmarkGetAgentKpis2y(b *testing.B) {
	from := mustTime("2024-11-23T00:00:00Z")
	to := window.HourTime(window.HourOf(benchNow) + 1)
	if c := window.Cover(window.HourOf(from), window.HourOf(to)); c.Len() != 30 || len(c.Years) != 1 {
		b.Fatalf("cover %+v, want 30 keys with a year", c)
	}
	benchGetAgentIn(b, &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Range{Range: &ticketpulsev1.TimeRange{
		From: timestamppb.New(from), To: timestamppb.New(to)}}})
}

// BenchmarkGetAgentKpisAll reads one agent over the rolling "all" (ten calendar years, of which
// the data fills the last three).
func BenchmarkGetAgentKpisAll(b *testing.B) { benchGetAgent(b, "all") }

// BenchmarkListAgentKpis500x30d orders every agent by a quantile, so all 500 agents' 30-day
// figures are read and merged for each call.
func BenchmarkListAgentKpis500x30d(b *testing.B) { benchListAll(b, "30d") }

// BenchmarkListAgentKpis500x365d is the same over the rolling year: a day, a week, 11 months, a
// day, 3 weeks and today's hours per agent, and the listing index of 365 days.
func BenchmarkListAgentKpis500x365d(b *testing.B) { benchListAll(b, "365d") }

func benchListAll(b *testing.B, rolling string) {
	c := benchClient(b)
	ctx := context.Background()
	req := &ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Rolling{Rolling: rolling}},
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
