package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/grpcapi"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query/querytest"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/tenants"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

const tenant = "acme"

var now = time.Date(2026, 4, 20, 12, 0, 0, 0, time.UTC)

// oddIDs are agent and team ids as helpdesks send them, with what breaks CSV files and
// spreadsheets: separators, quotes, line breaks, a leading formula sign, markup and Unicode.
var oddIDs = []string{"ana@例え.jp", "=HYPERLINK(\"http://x\",\"y\")", "comma, \"quote\"", "two\r\nlines", "+1", "-2", "@cmd", "\tTAB", "<script>alert(1)</script>", "a/b c"}

// figures writes random figures for every odd id as agent and as team, and random call figures
// for every odd id as queue, between from and to.
func figures(t testing.TB, rdb redis.UniversalClient, from, to time.Time) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 5))
	b := querytest.NewBuilder(tenant)
	for h := from.Unix() / 3600; h < to.Unix()/3600; h++ {
		for _, id := range oddIDs {
			for _, s := range []bucket.Scope{{Kind: bucket.Agent, ID: id}, {Kind: bucket.Team, ID: id}} {
				if rng.IntN(5) != 0 {
					continue
				}
				secs := int64(20 + rng.IntN(50_000))
				b.Add(s, h, bucket.Assigned.Field(), int64(1+rng.IntN(3)))
				b.Add(s, h, bucket.Resolutions.Field(), int64(rng.IntN(2)))
				b.Add(s, h, bucket.ResolutionCount.Field(), 1)
				b.Add(s, h, bucket.ResolutionSumMillis.Field(), secs*1000)
				b.Add(s, h, bucket.BinField(bucket.Resolution, hist.Bin(float64(secs))), 1)
				b.Add(s, h, bucket.CSATCount.Field(), 1)
				b.Add(s, h, bucket.CSATScoreSum.Field(), int64(1+rng.IntN(5)))
				b.Add(s, h, bucket.SLAMet.Field(), int64(rng.IntN(2)))
				b.Add(s, h, bucket.Solves.Field(), 1)
				b.Add(s, h, bucket.Reopens.Field(), int64(rng.IntN(2)))
				if s.Kind == bucket.Agent {
					b.Index(id, "", h)
				} else {
					b.Index("", id, h)
				}
			}
		}
	}
	// Queues have their own generator, so the agents' and teams' figures stay as they were.
	qrng := rand.New(rand.NewPCG(7, 11))
	for h := from.Unix() / 3600; h < to.Unix()/3600; h++ {
		for _, id := range oddIDs {
			if qrng.IntN(5) != 0 {
				continue
			}
			calls(b, id, h, qrng)
		}
	}
	if _, err := b.Flush(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
}

// calls adds random call figures of an hour to a queue, as the write path credits them: some
// calls offered, of them some answered (with their speed of answer and handle time) and the
// rest abandoned, some of the answered within the service level.
func calls(b *querytest.Builder, queue string, h int64, rng *rand.Rand) {
	s := bucket.Scope{Kind: bucket.Queue, ID: queue}
	offered := int64(1 + rng.IntN(6))
	answered := rng.Int64N(offered + 1)
	b.Add(s, h, bucket.CallsOffered.Field(), offered)
	b.Add(s, h, bucket.CallsAnswered.Field(), answered)
	b.Add(s, h, bucket.CallsAbandoned.Field(), offered-answered)
	b.Add(s, h, bucket.CallsInServiceLevel.Field(), rng.Int64N(answered+1))
	for range answered {
		wait, handle := int64(1+rng.IntN(120)), int64(30+rng.IntN(1200))
		b.Add(s, h, bucket.CallAnswerCount.Field(), 1)
		b.Add(s, h, bucket.CallAnswerSumMillis.Field(), wait*1000)
		b.Add(s, h, bucket.BinField(bucket.CallSpeedOfAnswer, hist.Bin(float64(wait))), 1)
		b.Add(s, h, bucket.CallHandleCount.Field(), 1)
		b.Add(s, h, bucket.CallHandleSumMillis.Field(), handle*1000)
		b.Add(s, h, bucket.BinField(bucket.CallHandleTime, hist.Bin(float64(handle))), 1)
	}
	b.IndexQueue(queue, h)
}

// fixture is a running KpiService on a real gRPC listener and the exports on a real HTTP one,
// both over a real Redis, behind the real credential check.
type fixture struct {
	grpc ticketpulsev1.KpiServiceClient
	url  string
	keys *servicetest.Tenants
}

func newFixture(t *testing.T, sources func(*grpcapi.Server) map[string]Source, perTenant int) *fixture {
	t.Helper()
	rdb := testenv.Redis(t)
	figures(t, rdb, time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC))
	srv := grpcapi.NewServer(query.NewReader(rdb), func() time.Time { return now }, slog.New(slog.DiscardHandler))
	return serve(t, srv, sources, perTenant)
}

// serve runs srv on a real gRPC listener and the exports of sources (the agents, teams and
// queues exports when nil) on a real HTTP one.
func serve(t *testing.T, srv *grpcapi.Server, sources func(*grpcapi.Server) map[string]Source, perTenant int) *fixture {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	srv.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); gs.Stop() })

	keys := servicetest.WriteTenants(t, nil)
	reg, err := tenants.Open(context.Background(), keys.File, tenants.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sources == nil {
		sources = func(s *grpcapi.Server) map[string]Source {
			return map[string]Source{
				"agents": NewSeries(s, ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT, func() time.Time { return now }),
				"teams":  NewSeries(s, ticketpulsev1.ScopeKind_SCOPE_KIND_TEAM, func() time.Time { return now }),
				"queues": NewSeries(s, ticketpulsev1.ScopeKind_SCOPE_KIND_QUEUE, func() time.Time { return now }),
			}
		}
	}
	h, err := New(Config{Auth: auth.NewGate(reg, slog.New(slog.DiscardHandler)), Sources: sources(srv), PerTenant: perTenant}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	hs := httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(hs.Close)
	return &fixture{grpc: ticketpulsev1.NewKpiServiceClient(conn), url: hs.URL, keys: keys}
}

func (f *fixture) get(t *testing.T, key, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", path, err)
	}
	return resp, body
}

// table is an export read back: column names and rows of named values.
type table struct {
	cols []string
	rows []map[string]string
}

func readCSV(t *testing.T, b []byte) table {
	t.Helper()
	if !bytes.Contains(b, []byte("\r\n")) {
		t.Error("CSV lines do not end with CRLF (RFC 4180)")
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("read CSV back: %v", err)
	}
	tb := table{cols: recs[0]}
	for _, r := range recs[1:] {
		row := map[string]string{}
		for i, c := range tb.cols {
			row[c] = r[i]
		}
		tb.rows = append(tb.rows, row)
	}
	return tb
}

func readParquet(t *testing.T, b []byte, zone *time.Location) table {
	t.Helper()
	return readParquetOf(t, b, zone, SeriesColumns)
}

// readParquetOf reads back a Parquet export of cols; a null is an empty string, as in the CSV.
func readParquetOf(t *testing.T, b []byte, zone *time.Location, cols []Column) table {
	t.Helper()
	r := parquet.NewReader(bytes.NewReader(b))
	defer r.Close()
	var tb table
	for _, path := range r.Schema().Columns() {
		tb.cols = append(tb.cols, path[0])
	}
	kinds := map[string]Kind{}
	for _, c := range cols {
		kinds[c.Name] = c.Kind
	}
	buf := make([]parquet.Row, 64)
	for {
		n, err := r.ReadRows(buf)
		for _, pr := range buf[:n] {
			row := map[string]string{}
			for _, v := range pr {
				name := tb.cols[v.Column()]
				if v.IsNull() {
					row[name] = ""
					continue
				}
				switch kinds[name] {
				case Bool:
					row[name] = strconv.FormatBool(v.Boolean())
				case Text:
					row[name] = string(v.ByteArray())
				case Instant:
					row[name] = time.UnixMilli(v.Int64()).In(zone).Format(time.RFC3339)
				case Int:
					row[name] = strconv.FormatInt(v.Int64(), 10)
				default:
					row[name] = strconv.FormatFloat(v.Double(), 'f', -1, 64)
				}
			}
			tb.rows = append(tb.rows, row)
		}
		if errors.Is(err, io.EOF) {
			return tb
		}
		if err != nil {
			t.Fatalf("read Parquet back: %v", err)
		}
	}
}

// kpiValues are the figures of k by column name, derived from the message's own field names, so
// a KPI added to the API and missing from the export fails the comparison.
func kpiValues(k *ticketpulsev1.Kpis) map[string]string {
	out := map[string]string{}
	var add func(prefix string, m protoreflect.Message)
	add = func(prefix string, m protoreflect.Message) {
		fields := m.Descriptor().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			v := m.Get(fd)
			name := prefix + string(fd.Name())
			switch fd.Kind() {
			case protoreflect.MessageKind:
				add(name+"_", v.Message())
			case protoreflect.Int64Kind:
				out[name] = strconv.FormatInt(v.Int(), 10)
			case protoreflect.DoubleKind:
				out[name] = strconv.FormatFloat(v.Float(), 'f', -1, 64)
			}
		}
	}
	add("", k.ProtoReflect())
	return out
}

func listAll(t *testing.T, c ticketpulsev1.KpiServiceClient, req *ticketpulsev1.ListKpiSeriesRequest) []*ticketpulsev1.KpiSeries {
	t.Helper()
	var out []*ticketpulsev1.KpiSeries
	for {
		resp, err := c.ListKpiSeries(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetSeries()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return out
		}
	}
}

// Both formats read back hold, row for row and value for value, what ListKpiSeries answers
// over gRPC (which TestListKpiSeriesMatchesGet holds equal to GetAgentKpis), and the monthly
// rows equal GetAgentKpis and GetTeamKpis for their ranges directly.
func TestExportMatchesGRPC(t *testing.T) {
	f := newFixture(t, nil, 0)
	tests := []struct {
		name, export, format, gran, zone string
		from, to                         string
		scope                            ticketpulsev1.ScopeKind
		wantRows                         int
	}{
		{name: "agents daily csv over DST", export: "agents", format: "csv", gran: "day", zone: "Europe/Berlin", from: "2026-03-25", to: "2026-04-02",
			scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT, wantRows: 8 * len(oddIDs)},
		{name: "agents daily parquet over DST", export: "agents", format: "parquet", gran: "day", zone: "Europe/Berlin", from: "2026-03-25", to: "2026-04-02",
			scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT, wantRows: 8 * len(oddIDs)},
		{name: "teams hourly csv", export: "teams", format: "csv", gran: "hour", zone: "UTC", from: "2026-03-28T20:00:00Z", to: "2026-03-29T04:00:00Z",
			scope: ticketpulsev1.ScopeKind_SCOPE_KIND_TEAM, wantRows: 8 * len(oddIDs)},
		{name: "teams weekly parquet", export: "teams", format: "parquet", gran: "week", zone: "Europe/Berlin", from: "2026-03-23", to: "2026-04-06",
			scope: ticketpulsev1.ScopeKind_SCOPE_KIND_TEAM, wantRows: 2 * len(oddIDs)},
		{name: "agents monthly csv", export: "agents", format: "csv", gran: "month", zone: "Europe/Berlin", from: "2026-03-01", to: "2026-05-01",
			scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT, wantRows: 2 * len(oddIDs)},
		{name: "teams monthly parquet", export: "teams", format: "parquet", gran: "month", zone: "Europe/Berlin", from: "2026-03-01", to: "2026-05-01",
			scope: ticketpulsev1.ScopeKind_SCOPE_KIND_TEAM, wantRows: 2 * len(oddIDs)},
		{name: "queues daily csv over DST", export: "queues", format: "csv", gran: "day", zone: "Europe/Berlin", from: "2026-03-25", to: "2026-04-02",
			scope: ticketpulsev1.ScopeKind_SCOPE_KIND_QUEUE, wantRows: 8 * len(oddIDs)},
		{name: "queues hourly parquet", export: "queues", format: "parquet", gran: "hour", zone: "UTC", from: "2026-03-28T20:00:00Z", to: "2026-03-29T04:00:00Z",
			scope: ticketpulsev1.ScopeKind_SCOPE_KIND_QUEUE, wantRows: 8 * len(oddIDs)},
		{name: "queues monthly csv", export: "queues", format: "csv", gran: "month", zone: "America/New_York", from: "2026-03-01", to: "2026-05-01",
			scope: ticketpulsev1.ScopeKind_SCOPE_KIND_QUEUE, wantRows: 2 * len(oddIDs)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"from": {tt.from}, "to": {tt.to}, "granularity": {tt.gran}, "time_zone": {tt.zone}}
			resp, body := f.get(t, f.keys.Acme, fmt.Sprintf("/v1/tenants/%s/exports/%s.%s?%s", tenant, tt.export, tt.format, q.Encode()))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Content-Type"); got != Formats[tt.format] {
				t.Errorf("Content-Type %q, want %q", got, Formats[tt.format])
			}
			loc, _ := time.LoadLocation(tt.zone)
			var tb table
			if tt.format == "csv" {
				tb = readCSV(t, body)
			} else {
				tb = readParquet(t, body, loc)
			}
			var wantCols []string
			for _, c := range SeriesColumns {
				wantCols = append(wantCols, c.Name)
			}
			if !slices.Equal(tb.cols, wantCols) {
				t.Fatalf("columns %q\nwant %q", tb.cols, wantCols)
			}
			if len(tb.rows) != tt.wantRows {
				t.Fatalf("%d rows, want %d", len(tb.rows), tt.wantRows)
			}
			from, _ := instant("from", tt.from, loc)
			to, _ := instant("to", tt.to, loc)
			gran := map[string]ticketpulsev1.Granularity{"hour": 1, "day": 2, "week": 3, "month": 4}[tt.gran]
			series := listAll(t, f.grpc, &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: tt.scope, Granularity: gran, PageSize: 3,
				Window: &ticketpulsev1.Window{TimeZone: tt.zone, Kind: &ticketpulsev1.Window_Range{Range: &ticketpulsev1.TimeRange{From: timestamppb.New(from), To: timestamppb.New(to)}}}})
			i, nonzero := 0, 0
			for _, s := range series {
				for _, p := range s.GetPoints() {
					row := tb.rows[i]
					i++
					want := kpiValues(p.GetKpis())
					id := s.GetScopeId()
					if tt.format == "csv" {
						id = csvID(id)
					}
					want["tenant"], want["scope"], want["scope_id"], want["time_zone"] = tenant, map[ticketpulsev1.ScopeKind]string{1: "agent", 2: "team", 4: "queue"}[tt.scope], id, tt.zone
					want["period_start"] = p.GetFrom().AsTime().In(loc).Format(time.RFC3339)
					want["period_end"] = p.GetTo().AsTime().In(loc).Format(time.RFC3339)
					if len(want) != len(SeriesColumns) {
						t.Fatalf("the API has %d figures and keys, the export %d columns", len(want), len(SeriesColumns))
					}
					for name, w := range want {
						if row[name] != w {
							t.Errorf("row %d (%q %s) %s = %q, want %q", i, s.GetScopeId(), want["period_start"], name, row[name], w)
						}
					}
					if p.GetKpis().GetAssigned() > 0 || p.GetKpis().GetCallsOffered() > 0 {
						nonzero++
					}
					if tt.gran == "month" {
						direct := getKpis(t, f.grpc, tt.scope, s.GetScopeId(), p.GetFrom(), p.GetTo(), tt.zone)
						for name, w := range kpiValues(direct) {
							if row[name] != w {
								t.Errorf("row %d %s = %q, Get*Kpis answers %q", i, name, row[name], w)
							}
						}
					}
				}
			}
			if nonzero == 0 {
				t.Fatal("every row is zero: the fixture does not reach the window")
			}
			if tt.gran == "day" && tt.zone == "Europe/Berlin" {
				// March 29 has 23 hours in Berlin; its row says so in its bounds.
				found := false
				for _, r := range tb.rows {
					if r["period_start"] == "2026-03-29T00:00:00+01:00" {
						found = r["period_end"] == "2026-03-30T00:00:00+02:00"
					}
				}
				if !found {
					t.Error("no row for the DST day 2026-03-29 ending at 2026-03-30T00:00:00+02:00")
				}
			}
		})
	}
}

// csvID is an id as encoding/csv reads it back: quoted against formulas (what a spreadsheet must
// not evaluate), and with a line break inside the field as LF, which the reader makes of the
// CRLF the writer puts there.
func csvID(id string) string { return SafeText(strings.ReplaceAll(id, "\r\n", "\n")) }

func getKpis(t *testing.T, c ticketpulsev1.KpiServiceClient, scope ticketpulsev1.ScopeKind, id string, from, to *timestamppb.Timestamp, zone string) *ticketpulsev1.Kpis {
	t.Helper()
	w := &ticketpulsev1.Window{TimeZone: zone, Kind: &ticketpulsev1.Window_Range{Range: &ticketpulsev1.TimeRange{From: from, To: to}}}
	switch scope {
	case ticketpulsev1.ScopeKind_SCOPE_KIND_QUEUE:
		r, err := c.GetQueueKpis(context.Background(), &ticketpulsev1.GetQueueKpisRequest{Tenant: tenant, QueueId: id, Window: w})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetKpis()
	case ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT:
		r, err := c.GetAgentKpis(context.Background(), &ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: id, Window: w})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetAgent().GetKpis()
	}
	r, err := c.GetTeamKpis(context.Background(), &ticketpulsev1.GetTeamKpisRequest{Tenant: tenant, TeamId: id, Window: w})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetKpis()
}

// The CSV cells of ids are RFC 4180 fields that encoding/csv reads back exactly, with a quote
// before a leading formula sign; Parquet keeps every id as it is. Agents' and queues' ids alike.
func TestExportOddIDs(t *testing.T) {
	f := newFixture(t, nil, 0)
	for _, export := range []string{"agents", "queues"} {
		t.Run(export, func(t *testing.T) { checkOddIDs(t, f, export) })
	}
}

func checkOddIDs(t *testing.T, f *fixture, export string) {
	q := "?from=2026-03-30&to=2026-03-31&granularity=day"
	got := map[string][]string{}
	for _, format := range []string{"csv", "parquet"} {
		resp, body := f.get(t, f.keys.Acme, "/v1/tenants/acme/exports/"+export+"."+format+q)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", format, resp.StatusCode, body)
		}
		var tb table
		if format == "csv" {
			tb = readCSV(t, body)
		} else {
			tb = readParquet(t, body, time.UTC)
		}
		for _, r := range tb.rows {
			got[format] = append(got[format], r["scope_id"])
		}
	}
	want := slices.Sorted(slices.Values(oddIDs))
	if !slices.Equal(got["parquet"], want) {
		t.Errorf("parquet ids %q, want %q", got["parquet"], want)
	}
	var wantCSV []string
	for _, id := range want {
		wantCSV = append(wantCSV, csvID(id))
	}
	if !slices.Equal(got["csv"], wantCSV) {
		t.Errorf("csv ids %q, want %q", got["csv"], wantCSV)
	}
	for _, id := range got["csv"] {
		if strings.ContainsAny(id[:1], "=+-@\t\r") {
			t.Errorf("csv id %q starts with a formula character", id)
		}
	}
}

func TestExportRefusals(t *testing.T) {
	f := newFixture(t, nil, 0)
	unknown, _, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	ok := "?from=2026-03-01&to=2026-04-01"
	tests := []struct {
		name       string
		key        string
		path       string
		wantStatus int
		wantField  string
		wantText   string
	}{
		{name: "no credential", path: "/v1/tenants/acme/exports/agents.csv" + ok, wantStatus: 401, wantText: "no credential"},
		{name: "unknown key", key: unknown, path: "/v1/tenants/acme/exports/agents.csv" + ok, wantStatus: 401, wantText: "invalid credential"},
		{name: "revoked key", key: f.keys.AcmeRevoked, path: "/v1/tenants/acme/exports/agents.csv" + ok, wantStatus: 401, wantText: "revoked"},
		{name: "other tenant's key", key: f.keys.Globex, path: "/v1/tenants/acme/exports/teams.parquet" + ok, wantStatus: 403, wantText: "not for this tenant"},
		{name: "key without kpis:read", key: f.keys.AcmeEvents, path: "/v1/tenants/acme/exports/agents.csv" + ok, wantStatus: 403, wantText: "kpis:read"},
		{name: "unknown export", key: f.keys.Acme, path: "/v1/tenants/acme/exports/tickets.csv" + ok, wantStatus: 404, wantField: "path"},
		{name: "unknown format", key: f.keys.Acme, path: "/v1/tenants/acme/exports/agents.xlsx" + ok, wantStatus: 404, wantField: "path"},
		{name: "no from", key: f.keys.Acme, path: "/v1/tenants/acme/exports/agents.csv?to=2026-04-01", wantStatus: 400, wantField: "from"},
		{name: "bad to", key: f.keys.Acme, path: "/v1/tenants/acme/exports/agents.csv?from=2026-03-01&to=tomorrow", wantStatus: 400, wantField: "to"},
		{name: "reversed range", key: f.keys.Acme, path: "/v1/tenants/acme/exports/agents.csv?from=2026-04-01&to=2026-03-01", wantStatus: 400, wantField: "to"},
		{name: "hourly over two years", key: f.keys.Acme, path: "/v1/tenants/acme/exports/agents.csv?from=2024-01-01&to=2026-01-03&granularity=hour",
			wantStatus: 400, wantField: "to", wantText: "at most 732 days"},
		{name: "daily over ten years", key: f.keys.Acme, path: "/v1/tenants/acme/exports/agents.csv?from=2014-01-01&to=2026-01-01",
			wantStatus: 400, wantField: "to", wantText: "longer than 10 years"},
		{name: "unknown granularity", key: f.keys.Acme, path: "/v1/tenants/acme/exports/agents.csv" + ok + "&granularity=minute", wantStatus: 400, wantField: "granularity"},
		{name: "unknown zone", key: f.keys.Acme, path: "/v1/tenants/acme/exports/agents.csv" + ok + "&time_zone=Mars%2FOlympus", wantStatus: 400, wantField: "time_zone"},
		{name: "unknown parameter", key: f.keys.Acme, path: "/v1/tenants/acme/exports/agents.csv" + ok + "&format=xml", wantStatus: 400, wantField: "format"},
		{name: "repeated parameter", key: f.keys.Acme, path: "/v1/tenants/acme/exports/agents.csv" + ok + "&from=2026-02-01", wantStatus: 400, wantField: "from"},
		{name: "malformed query", key: f.keys.Acme, path: "/v1/tenants/acme/exports/agents.csv" + ok + "&x=%zz", wantStatus: 400, wantField: "query"},
		{name: "team_id on teams", key: f.keys.Acme, path: "/v1/tenants/acme/exports/teams.csv" + ok + "&team_id=x", wantStatus: 400, wantField: "team_id"},
		{name: "unknown rolling", key: f.keys.Acme, path: "/v1/tenants/acme/exports/teams.csv?rolling=2w", wantStatus: 400, wantField: "rolling"},
		{name: "queues without credential", path: "/v1/tenants/acme/exports/queues.csv" + ok, wantStatus: 401, wantText: "no credential"},
		{name: "queues with another tenant's key", key: f.keys.Globex, path: "/v1/tenants/acme/exports/queues.csv" + ok, wantStatus: 403, wantText: "not for this tenant"},
		{name: "queues with a key without kpis:read", key: f.keys.AcmeEvents, path: "/v1/tenants/acme/exports/queues.parquet" + ok, wantStatus: 403, wantText: "kpis:read"},
		{name: "queues in an unknown format", key: f.keys.Acme, path: "/v1/tenants/acme/exports/queues.xlsx" + ok, wantStatus: 404, wantField: "path"},
		{name: "queues without from", key: f.keys.Acme, path: "/v1/tenants/acme/exports/queues.csv?to=2026-04-01", wantStatus: 400, wantField: "from"},
		{name: "queues hourly over two years", key: f.keys.Acme, path: "/v1/tenants/acme/exports/queues.parquet?from=2024-01-01&to=2026-01-03&granularity=hour",
			wantStatus: 400, wantField: "to", wantText: "at most 732 days"},
		{name: "queues by week of a bad zone", key: f.keys.Acme, path: "/v1/tenants/acme/exports/queues.csv" + ok + "&granularity=week&time_zone=Nowhere", wantStatus: 400, wantField: "time_zone"},
		{name: "queues of a team", key: f.keys.Acme, path: "/v1/tenants/acme/exports/queues.csv" + ok + "&team_id=x", wantStatus: 400, wantField: "team_id"},
		{name: "queues of a queue", key: f.keys.Acme, path: "/v1/tenants/acme/exports/queues.csv" + ok + "&queue_id=x", wantStatus: 400, wantField: "queue_id"},
		{name: "queues of an agent", key: f.keys.Acme, path: "/v1/tenants/acme/exports/queues.csv" + ok + "&agent_id=x", wantStatus: 400, wantField: "agent_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, tt.key, tt.path)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var r struct{ Error, Field, Reason string }
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if r.Error == "" || r.Reason == "" || r.Field != tt.wantField || !strings.Contains(r.Reason, tt.wantText) {
				t.Errorf("body %s: want field %q and a reason saying %q", body, tt.wantField, tt.wantText)
			}
		})
	}
}

// blocking is a source whose export waits until released, then fails or ends.
type blocking struct {
	started chan struct{}
	release chan error
}

func (b *blocking) Columns() []Column {
	return []Column{{Name: "scope_id", Kind: Text}, {Name: "n", Kind: Int}}
}

func (b *blocking) Params() []string { return []string{"rolling"} }

func (b *blocking) Rows(ctx context.Context, _ Query, emit func([]Value) error) error {
	if err := emit([]Value{{S: "=a"}, {I: 1}}); err != nil {
		return err
	}
	b.started <- struct{}{}
	if err := <-b.release; err != nil {
		return err
	}
	return emit([]Value{{S: "b"}, {I: 2}})
}

// A tenant runs at most PerTenant exports at once, and an export that fails after its first row
// ends in a failed download, never in a file that looks whole.
func TestExportConcurrencyAndAbort(t *testing.T) {
	src := &blocking{started: make(chan struct{}), release: make(chan error)}
	f := newFixture(t, func(*grpcapi.Server) map[string]Source { return map[string]Source{"slow": src} }, 1)
	path := "/v1/tenants/acme/exports/slow.csv?rolling=7d"
	type result struct {
		body []byte
		err  error
	}
	first := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, f.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+f.keys.Acme)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		first <- result{b, err}
	}()
	<-src.started
	resp, body := f.get(t, f.keys.Acme, path)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second export: status %d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	src.release <- errors.New("store lost")
	r := <-first
	if r.err == nil {
		t.Errorf("an export that failed midway downloaded without error: %q", r.body)
	}

	go func() { <-src.started; src.release <- nil }()
	resp, body = f.get(t, f.keys.Acme, path)
	if resp.StatusCode != http.StatusOK || string(body) != "scope_id,n\r\n'=a,1\r\nb,2\r\n" {
		t.Errorf("export after the first ended: status %d body %q", resp.StatusCode, body)
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"from=2026-03-01&to=2026-04-01",
		"from=2026-03-01T00:00:00%2B01:00&to=2026-04-01T00:00:00Z&granularity=hour&time_zone=Europe%2FBerlin",
		"rolling=30d&granularity=week&team_id=billing%20EU",
		"rolling=all&granularity=hour",
		"from=2024-01-01&to=2026-01-03&granularity=hour",
		"from=x&to=&from=y",
		"time_zone=..%2F..%2Fetc%2Fpasswd&from=2026-01-01&to=2026-01-02",
		"team_id=%3Cscript%3E&rolling=7d",
		"from=2026-03-01&to=2026-04-01&agent_id=ana%20%C3%A9&min_first_response_seconds=90.5&max_rating=2&min_reopens=1&sla_breached=true&unresolved=false",
		"rolling=30d&team_id=a&agent_id=b",
		"rolling=7d&min_resolution_seconds=NaN&max_rating=9&min_reopens=-3&sla_breached=yes",
		"rolling=7d&min_first_response_seconds=1e13&min_reopens=99999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(tenant, v)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Field == "" || p.Reason == "" {
				t.Fatalf("error %v is not a Problem naming a field and a reason", err)
			}
			return
		}
		tf := q.Tickets
		if (q.AgentID != "" && q.TeamID != "") || (tf.MaxRating != nil && (*tf.MaxRating < 1 || *tf.MaxRating > 5)) || (tf.MinReopens != nil && *tf.MinReopens < 0) {
			t.Fatalf("ticket scope or filter %+v accepted", q)
		}
		for _, s := range []*float64{tf.MinFirstResponseSeconds, tf.MinResolutionSeconds} {
			if s != nil && !(*s >= 0 && *s <= maxFilterSeconds) {
				t.Fatalf("duration filter %v accepted", *s)
			}
		}
		if !slices.Contains(Granularities, q.Granularity) {
			t.Fatalf("granularity %q accepted", q.Granularity)
		}
		if q.Rolling == "" {
			if !q.From.Before(q.To) {
				t.Fatalf("range [%s, %s) accepted", q.From, q.To)
			}
			if q.Granularity == "hour" && q.To.Sub(q.From) > MaxHourlyDays*24*time.Hour {
				t.Fatalf("hourly range of %s accepted", q.To.Sub(q.From))
			}
		}
	})
}
