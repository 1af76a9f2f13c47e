package grpcapi

import (
	"context"
	"testing"
	"time"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query/querytest"
)

// BenchmarkListKpiSeries500x30d reads a page of 500 agents' daily series over the rolling 30
// days (15,000 points) through gRPC, and reports the cost per point besides the per-page figures.
// In UTC each point is one day's totals; in Berlin each local day straddles two UTC days, so each
// point is a day's totals less its last hour or two, plus the last hour or two of the day before.
// The "first_response" runs ask only for the first-response figures, as the console's team
// page does for its first-response p90 sparklines.
func BenchmarkListKpiSeries500x30d(b *testing.B) {
	for _, zone := range []string{"UTC", "Europe/Berlin"} {
		b.Run(zone, func(b *testing.B) { benchSeries(b, zone, nil) })
		b.Run(zone+"/first_response", func(b *testing.B) { benchSeries(b, zone, []string{"first_response"}) })
	}
}

func benchSeries(b *testing.B, zone string, kpis []string) {
	c := serve(b, query.NewReader(querytest.LoadedRedis(b, tenant, benchLoad)), func() time.Time { return benchNow })
	ctx := context.Background()
	req := &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT,
		Window:      &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Rolling{Rolling: "30d"}, TimeZone: zone},
		Granularity: ticketpulsev1.Granularity_GRANULARITY_DAY, PageSize: 500, Kpis: kpis}
	const points = 500 * 30
	b.ReportAllocs()
	measure(b, func(int) error {
		resp, err := c.ListKpiSeries(ctx, req)
		if err != nil {
			return err
		}
		if len(resp.GetSeries()) != benchLoad.Agents || len(resp.GetSeries()[0].GetPoints()) != 30 {
			b.Fatalf("%d series of %d points, want %d of 30", len(resp.GetSeries()), len(resp.GetSeries()[0].GetPoints()), benchLoad.Agents)
		}
		if last := resp.GetSeries()[0].GetPoints()[29].GetKpis(); last.GetAssigned() == 0 && last.GetFirstResponse().GetCount() == 0 {
			b.Fatal("the last day has no figures: the data set is not what the benchmark measures")
		}
		return nil
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/points, "ns/point")
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() { _, _ = c.ListKpiSeries(ctx, req) }))/points, "allocs/point")
}
