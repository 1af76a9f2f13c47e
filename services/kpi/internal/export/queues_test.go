package export

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/grpcapi"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query/querytest"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files of the exports' tests")

// call is one call of a queue as the write path credits it: offered in an hour, answered after
// wait seconds and handled in handle seconds, or (wait 0) abandoned.
type call struct {
	queue     string
	hour      time.Time
	wait      int64
	handle    int64
	inService bool
}

func (c call) add(b *querytest.Builder) {
	s := bucket.Scope{Kind: bucket.Queue, ID: c.queue}
	h := c.hour.Unix() / 3600
	b.Add(s, h, bucket.CallsOffered.Field(), 1)
	b.IndexQueue(c.queue, h)
	if c.wait == 0 {
		b.Add(s, h, bucket.CallsAbandoned.Field(), 1)
		return
	}
	b.Add(s, h, bucket.CallsAnswered.Field(), 1)
	if c.inService {
		b.Add(s, h, bucket.CallsInServiceLevel.Field(), 1)
	}
	b.Add(s, h, bucket.CallAnswerCount.Field(), 1)
	b.Add(s, h, bucket.CallAnswerSumMillis.Field(), c.wait*1000)
	b.Add(s, h, bucket.BinField(bucket.CallSpeedOfAnswer, hist.Bin(float64(c.wait))), 1)
	b.Add(s, h, bucket.CallHandleCount.Field(), 1)
	b.Add(s, h, bucket.CallHandleSumMillis.Field(), c.handle*1000)
	b.Add(s, h, bucket.BinField(bucket.CallHandleTime, hist.Bin(float64(c.handle))), 1)
}

// The queues export of a few known calls is the golden CSV, byte for byte (refresh with
// -update and review the diff), its Parquet file holds the same rows, and the call figures a
// person can check by hand are what the calls make: support's first day offered 4 calls, lost
// one (abandon rate 0.25) and answered the others after 20 s on average. The second queue's id
// is a formula with a comma and quotes, which the CSV quotes and the Parquet file keeps as is;
// a queue's ticket columns are there, and 0.
func TestQueuesExportGolden(t *testing.T) {
	rdb := testenv.Redis(t)
	day1 := time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC)
	day2 := time.Date(2026, 3, 31, 14, 0, 0, 0, time.UTC)
	const odd = `=sales, "EU"`
	b := querytest.NewBuilder(tenant)
	for _, c := range []call{
		{queue: "support", hour: day1, wait: 10, handle: 100, inService: true},
		{queue: "support", hour: day1, wait: 20, handle: 200, inService: true},
		{queue: "support", hour: day1, wait: 30, handle: 300},
		{queue: "support", hour: day1},
		{queue: "support", hour: day2, wait: 5, handle: 60, inService: true},
		{queue: "support", hour: day2, wait: 15, handle: 120, inService: true},
		{queue: odd, hour: day2.Add(-4 * time.Hour)},
	} {
		c.add(b)
	}
	if _, err := b.Flush(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	srv := grpcapi.NewServer(query.NewReader(rdb), func() time.Time { return now }, slog.New(slog.DiscardHandler))
	f := serve(t, srv, nil, 0)

	q := "?from=2026-03-30&to=2026-04-01&granularity=day&time_zone=Europe/Berlin"
	resp, csvBody := f.get(t, f.keys.Acme, "/v1/tenants/acme/exports/queues.csv"+q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("csv: status %d: %s", resp.StatusCode, csvBody)
	}
	if got, want := resp.Header.Get("Content-Disposition"), `attachment; filename="acme-queues-day.csv"`; got != want {
		t.Errorf("Content-Disposition %q, want %q", got, want)
	}
	golden := filepath.Join("testdata", "queues-day.golden.csv")
	if *update {
		if err := os.WriteFile(golden, csvBody, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(csvBody, want) {
		t.Errorf("queues CSV differs from %s:\n got %q\nwant %q", golden, csvBody, want)
	}

	resp, parquetBody := f.get(t, f.keys.Acme, "/v1/tenants/acme/exports/queues.parquet"+q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("parquet: status %d: %s", resp.StatusCode, parquetBody)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	fromCSV, fromParquet := readCSV(t, csvBody), readParquet(t, parquetBody, berlin)
	if !slices.Equal(fromCSV.cols, fromParquet.cols) || len(fromCSV.rows) != 4 || len(fromParquet.rows) != 4 {
		t.Fatalf("csv %d rows of %q, parquet %d rows of %q; want 4 rows, same columns", len(fromCSV.rows), fromCSV.cols, len(fromParquet.rows), fromParquet.cols)
	}
	for i, pr := range fromParquet.rows {
		for _, c := range fromParquet.cols {
			w := pr[c]
			if c == "scope_id" {
				w = csvID(w)
			}
			if fromCSV.rows[i][c] != w {
				t.Errorf("row %d %s: csv %q, parquet %q", i, c, fromCSV.rows[i][c], pr[c])
			}
		}
	}

	// Rows by queue, then period; the figures of support's first day and the odd queue's second.
	type key struct{ id, start string }
	rows := map[key]map[string]string{}
	for _, r := range fromParquet.rows {
		rows[key{r["scope_id"], r["period_start"]}] = r
	}
	checks := []struct {
		name string
		row  key
		want map[string]string
	}{
		{"support on day 1", key{"support", "2026-03-30T00:00:00+02:00"}, map[string]string{
			"tenant": tenant, "scope": "queue", "period_end": "2026-03-31T00:00:00+02:00", "time_zone": "Europe/Berlin",
			"calls_offered": "4", "calls_answered": "3", "calls_abandoned": "1", "calls_answered_in_service_level": "2",
			"call_abandon_rate": "0.25", "call_service_level": "0.5",
			"call_speed_of_answer_count": "3", "call_speed_of_answer_sum_seconds": "60", "call_speed_of_answer_mean_seconds": "20",
			"call_handle_time_count": "3", "call_handle_time_sum_seconds": "600", "call_handle_time_mean_seconds": "200",
			"assigned": "0", "resolution_count": "0", "csat_count": "0", "qa_score_count": "0"}},
		{"support on day 2", key{"support", "2026-03-31T00:00:00+02:00"}, map[string]string{
			"calls_offered": "2", "calls_answered": "2", "calls_abandoned": "0", "call_abandon_rate": "0", "call_service_level": "1",
			"call_speed_of_answer_mean_seconds": "10", "call_handle_time_sum_seconds": "180"}},
		{"the odd queue on day 1", key{odd, "2026-03-30T00:00:00+02:00"}, map[string]string{
			"calls_offered": "0", "call_abandon_rate": "0"}},
		{"the odd queue on day 2", key{odd, "2026-03-31T00:00:00+02:00"}, map[string]string{
			"calls_offered": "1", "calls_answered": "0", "calls_abandoned": "1", "call_abandon_rate": "1", "call_speed_of_answer_count": "0"}},
	}
	for _, c := range checks {
		r, ok := rows[c.row]
		if !ok {
			t.Errorf("%s: no row %v", c.name, c.row)
			continue
		}
		for col, w := range c.want {
			if r[col] != w {
				t.Errorf("%s: %s = %q, want %q", c.name, col, r[col], w)
			}
		}
	}
}
