package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// binDir holds the service binaries TestMain built.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	defer testenv.Shutdown()
	dir, err := os.MkdirTemp("", "ticketpulse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := servicetest.BuildServices(dir, "..", "ingest", "kpi", "escalation", "notify"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// stack is one test's servers: an embedded NATS server and the shared redis-server, emptied,
// and the tenants file every service of the test reads, with its keys.
type stack struct {
	natsURL  string
	rdb      redis.UniversalClient
	redisURL string
	tenants  *servicetest.Tenants
}

// newStack is a stack whose tenants file has acme and globex with their keys (see
// servicetest.WriteTenants).
func newStack(t *testing.T) stack { return newStackWith(t, nil) }

// newStackWith is newStack with extra appended to the tenants file under each tenant.
func newStackWith(t testing.TB, extra map[string]string) stack {
	t.Helper()
	rdb := testenv.Redis(t)
	_, url := testenv.NATS(t)
	return stack{natsURL: url, rdb: rdb, redisURL: testenv.RedisURL(rdb), tenants: servicetest.WriteTenants(t, extra)}
}

// bearer sends an API key with every gRPC call; the tests speak plain text to loopback, so it
// does not insist on TLS as a real client would.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// dialAs is a gRPC connection to addr that sends key with every call, closed when the test ends.
func dialAs(t *testing.T, addr, key string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(key)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func freeAddr(t testing.TB) string {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// startService runs a built service binary with the given TICKETPULSE_* settings on top of the
// test's environment, waits until its /readyz on httpAddr answers 200, and on cleanup stops it
// with SIGTERM and checks that it stops cleanly within 15 s. It returns what the service logged
// (warnings and errors), which also goes to the test's stderr.
func startService(t testing.TB, name, httpAddr string, env ...string) *logBuffer {
	t.Helper()
	logs := &logBuffer{}
	servicetest.StartBinary(t, filepath.Join(binDir, name), httpAddr, io.MultiWriter(os.Stderr, logs), env...)
	return logs
}

// logBuffer keeps what a service wrote, for a test to read while it runs.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startIngest runs the ingest binary against the stack's NATS and tenants file and returns its
// HTTP address.
func startIngest(t testing.TB, s stack, env ...string) string {
	t.Helper()
	addr := freeAddr(t)
	startService(t, "ingest", addr, append([]string{"TICKETPULSE_NATS_URL=" + s.natsURL, "TICKETPULSE_TENANTS_FILE=" + s.tenants.File}, env...)...)
	return addr
}

// kpiService is a running kpi: clients of its KpiService, each calling with one key.
type kpiService struct {
	t    *testing.T
	addr string
}

// as is a KpiService client that calls with key.
func (k kpiService) as(key string) tpv1.KpiServiceClient {
	k.t.Helper()
	return tpv1.NewKpiServiceClient(dialAs(k.t, k.addr, key))
}

// startKPI runs the kpi binary against the stack. The settings are kpi's defaults but for
// quicker snapshots and rollups, so a test sees them soon.
func startKPI(t *testing.T, s stack) kpiService {
	t.Helper()
	k, _ := startKPILogs(t, s)
	return k
}

// startKPILogs is startKPI that also returns what kpi logs; env is added to (and overrides)
// those settings.
func startKPILogs(t *testing.T, s stack, env ...string) (kpiService, *logBuffer) {
	t.Helper()
	grpcAddr := freeAddr(t)
	settings := append([]string{
		"TICKETPULSE_NATS_URL=" + s.natsURL,
		"TICKETPULSE_REDIS_URL=" + s.redisURL,
		"TICKETPULSE_TENANTS_FILE=" + s.tenants.File,
		"TICKETPULSE_GRPC_ADDR=" + grpcAddr,
		"TICKETPULSE_BATCH_MAX=200",
		"TICKETPULSE_BATCH_LINGER=1ms",
		"TICKETPULSE_WORKERS=2",
		"TICKETPULSE_ACK_WAIT=2s",
		"TICKETPULSE_SUSPECT_AFTER=5",
		"TICKETPULSE_SNAPSHOT_INTERVAL=100ms",
		"TICKETPULSE_ROLLUP_INTERVAL=1s",
		"TICKETPULSE_STREAM_REPLICAS=1",
	}, env...)
	logs := startService(t, "kpi", freeAddr(t), settings...)
	return kpiService{t: t, addr: grpcAddr}, logs
}

// jsonEvents is one ticket's life in canonical JSON: created by a customer, assigned to ana,
// answered after 10 minutes, solved after 2 hours, rated 5.
func jsonEvents(ticket string, start time.Time) []map[string]any {
	at := func(m int) string { return start.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }
	return []map[string]any{
		{"id": ticket + "-c", "ticket_id": ticket, "type": "ticket_created", "occurred_at": at(0),
			"actor": map[string]any{"id": "cust", "kind": "customer"}, "team_id": "billing", "priority": "high"},
		{"id": ticket + "-a", "ticket_id": ticket, "type": "ticket_assigned", "occurred_at": at(1),
			"actor": map[string]any{"id": "lead", "kind": "agent"}, "assignee_id": "ana", "team_id": "billing"},
		{"id": ticket + "-r", "ticket_id": ticket, "type": "agent_message", "occurred_at": at(10),
			"actor": map[string]any{"id": "ana", "kind": "agent"}, "public": true},
		{"id": ticket + "-s", "ticket_id": ticket, "type": "status_changed", "occurred_at": at(120),
			"actor": map[string]any{"id": "ana", "kind": "agent"}, "status": "solved"},
		{"id": ticket + "-q", "ticket_id": ticket, "type": "satisfaction_rated", "occurred_at": at(130),
			"actor": map[string]any{"id": "cust", "kind": "customer"}, "satisfaction": map[string]any{"score": 5}},
	}
}

// post sends canonical events to ingest's events API with key and expects them all accepted.
func post(t *testing.T, addr, tenant, key string, events []map[string]any) {
	t.Helper()
	if status, b := postAs(t, addr, tenant, key, events); status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", status, b)
	}
}

// postAs sends canonical events to ingest's events API with key (none when empty) and returns
// the answer.
func postAs(t testing.TB, addr, tenant, key string, events []map[string]any) (int, string) {
	t.Helper()
	body, _ := json.Marshal(events)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/tenants/"+tenant+"/events", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func window(from, to time.Time) *tpv1.Window {
	return &tpv1.Window{Kind: &tpv1.Window_Range{Range: &tpv1.TimeRange{From: timestamppb.New(from), To: timestamppb.New(to)}}}
}

// waitKpis polls until cond holds for ana's KPIs over the window, or fails after a minute (a
// loaded machine can be slow; a passing test waits no longer).
func waitKpis(t *testing.T, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window, cond func(*tpv1.Kpis) bool) *tpv1.Kpis {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := c.GetAgentKpis(context.Background(), &tpv1.GetAgentKpisRequest{Tenant: tenant, AgentId: "ana", Window: w})
		if err == nil && cond(resp.GetAgent().GetKpis()) {
			return resp.GetAgent().GetKpis()
		}
		if time.Now().After(deadline) {
			t.Fatalf("KPIs never reached the expected state: last %v, err %v", resp.GetAgent().GetKpis(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkFigures checks ana's KPIs after the given number of jsonEvents tickets.
func checkFigures(t *testing.T, k *tpv1.Kpis, tickets int64) {
	t.Helper()
	checks := []struct {
		name      string
		got, want float64
	}{
		{"first_response.count", float64(k.GetFirstResponse().GetCount()), float64(tickets)},
		{"first_response.mean_seconds", k.GetFirstResponse().GetMeanSeconds(), 600},
		{"resolution.count", float64(k.GetResolution().GetCount()), float64(tickets)},
		{"resolution.mean_seconds", k.GetResolution().GetMeanSeconds(), 7200},
		{"assigned", float64(k.GetAssigned()), float64(tickets)},
		{"resolution_rate", k.GetResolutionRate(), 1},
		{"csat_count", float64(k.GetCsatCount()), float64(tickets)},
		{"csat_mean", k.GetCsatMean(), 5},
		{"sla_first_response_met", float64(k.GetSlaFirstResponseMet()), float64(tickets)},
		{"one_touch_rate", k.GetOneTouchRate(), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if p50 := k.GetFirstResponse().GetP50Seconds(); p50 < 594 || p50 > 606 {
		t.Errorf("first_response.p50 = %v, want 600 within 1%%", p50)
	}
}
