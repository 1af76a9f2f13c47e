package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// The console is tested against the real services: TestMain builds the kpi, escalation, notify
// and ingest binaries of this repository, and each test runs them against an embedded NATS
// server and a real redis-server, exactly as a deployment would, with the console in-process.

var binDir string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	defer testenv.Shutdown()
	dir, err := os.MkdirTemp("", "ticketpulse-console-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "console tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := servicetest.BuildServices(dir, "../../../..", "ingest", "kpi", "escalation", "notify"); err != nil {
		fmt.Fprintln(os.Stderr, "console tests:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// testRules escalate a rating of 2 or less at once.
const testRules = `tenants:
  acme:
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
            ack_timeout: 15m
    quality_rules:
      - name: bad-rating
        kind: bad_rating
        max_score: 2
        severity: critical
        escalation: leads
`

// stack is the services one test runs, and the console in front of them.
type stack struct {
	tenants *servicetest.Tenants
	ingest  string
	console *servicetest.Running
	hook    *hookServer
	// kpi is kpi's gRPC address, and cfg the console's settings, for tests that add a second one;
	// kpiEnv is kpi's environment but for its addresses, for a second replica.
	kpi    string
	kpiEnv []string
	cfg    Config
}

func freeAddr(t testing.TB) string {
	t.Helper()
	p, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

// startStack runs NATS, Redis, ingest, kpi, escalation, notify (delivering to a local hook) and
// the console.
func startStack(t testing.TB) *stack { return startStackWith(t, nil) }

// startStackWith is startStack with extra added under each tenant of the tenants file.
func startStackWith(t testing.TB, extra map[string]string) *stack {
	t.Helper()
	rdb := testenv.RedisSingle(t)
	_, natsURL := testenv.NATS(t)
	redisURL := func(db int) string { return fmt.Sprintf("redis://%s/%d", rdb.Options().Addr, db) }
	s := &stack{tenants: servicetest.WriteTenants(t, extra), hook: newHook(t)}
	dir := t.TempDir()
	rules, routing := filepath.Join(dir, "rules.yaml"), filepath.Join(dir, "routing.yaml")
	if err := os.WriteFile(rules, []byte(testRules), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(routing, []byte(fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: CONSOLE_TEST_HOOK_SECRET}]}
route: {receiver: hook, group_by: ["..."], group_wait: 0s, group_interval: 1s}
`, s.hook.url+"/hook")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONSOLE_TEST_HOOK_SECRET", "whsec_"+base64.StdEncoding.EncodeToString([]byte("console-test-secret-32-bytes-long")))
	common := []string{"TICKETPULSE_NATS_URL=" + natsURL, "TICKETPULSE_TENANTS_FILE=" + s.tenants.File, "TICKETPULSE_STREAM_REPLICAS=1"}
	s.ingest = freeAddr(t)
	startBinary(t, "ingest", s.ingest, common...)
	kpiAddr, escAddr, notifyAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	s.kpiEnv = append(common, "TICKETPULSE_REDIS_URL="+redisURL(0), "TICKETPULSE_BATCH_LINGER=1ms", "TICKETPULSE_SNAPSHOT_INTERVAL=100ms",
		"TICKETPULSE_RULES_FILE="+rules, "TICKETPULSE_TICKET_INDEX=true")
	startBinary(t, "kpi", freeAddr(t), append(s.kpiEnv, "TICKETPULSE_GRPC_ADDR="+kpiAddr)...)
	startBinary(t, "escalation", freeAddr(t), append(common, "TICKETPULSE_REDIS_URL="+redisURL(1), "TICKETPULSE_GRPC_ADDR="+escAddr,
		"TICKETPULSE_RULES_FILE="+rules)...)
	startBinary(t, "notify", freeAddr(t), append(common, "TICKETPULSE_REDIS_URL="+redisURL(2), "TICKETPULSE_GRPC_ADDR="+notifyAddr,
		"TICKETPULSE_ROUTING_FILE="+routing)...)
	cfg := Config{Common: servicetest.Settings(natsURL, ""), KPIAddr: kpiAddr, EscalationAddr: escAddr, NotifyAddr: notifyAddr,
		SessionMaxAge: time.Hour, CallTimeout: 5 * time.Second, SimulateTimeout: time.Minute, Refresh: time.Minute, MaxStreams: 2, OIDCScopes: "profile,email"}
	cfg.GRPCAddr = ""
	cfg.TenantsFile = s.tenants.File
	s.kpi, s.cfg = kpiAddr, cfg
	s.console = startConsole(t, cfg)
	return s
}

// startConsole runs a console with cfg until the test ends.
func startConsole(t testing.TB, cfg Config) *servicetest.Running {
	t.Helper()
	return startConsoleWith(t, cfg, Deps{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startConsoleWith runs a console with cfg, deps (their hooks set here) and log until the test ends.
func startConsoleWith(t testing.TB, cfg Config, deps Deps, log *slog.Logger) *servicetest.Running {
	t.Helper()
	return servicetest.Start(t, func(ctx context.Context, hooks service.Hooks) error {
		deps.Hooks = hooks
		return deps.Run(ctx, cfg, log)
	})
}

// startBinary runs a built service with its settings until the test ends (servicetest.StartBinary).
func startBinary(t testing.TB, name, httpAddr string, env ...string) {
	t.Helper()
	servicetest.StartBinary(t, filepath.Join(binDir, name), httpAddr, nil, env...)
}

// hookServer is notify's receiver in the tests.
type hookServer struct{ url string }

func newHook(t testing.TB) *hookServer {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})}
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &hookServer{url: "http://" + ln.Addr().String()}
}

// browser is an HTTP client that keeps cookies and does not follow redirects, so a test sees
// each answer.
type browser struct {
	t    testing.TB
	c    *http.Client
	base string
}

func newBrowser(t *testing.T, base string) *browser { return newBrowserTB(t, base) }

func newBrowserTB(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	code int
	body string
	h    http.Header
}

func (b *browser) do(req *http.Request) answer {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, body: string(body), h: resp.Header}
}

func (b *browser) get(path string) answer {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

// post sends a form; header adds request headers (e.g. Sec-Fetch-Site).
func (b *browser) post(path string, form url.Values, header ...string) answer {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

// postEvents posts canonical events to ingest with key.
func postEvents(t testing.TB, addr, key string, events []map[string]any) {
	t.Helper()
	body, _ := json.Marshal(events)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/tenants/acme/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("post events: %d %s", resp.StatusCode, b)
	}
}

// ticket is one ticket's life: created, assigned to agent, answered after 10 minutes, solved
// after an hour, rated.
func ticket(id, agent, team string, start time.Time, rating int) []map[string]any {
	at := func(m int) string { return start.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }
	return []map[string]any{
		{"id": id + "-c", "ticket_id": id, "type": "ticket_created", "occurred_at": at(0), "actor": map[string]any{"id": "cust", "kind": "customer"}, "team_id": team, "priority": "high"},
		{"id": id + "-a", "ticket_id": id, "type": "ticket_assigned", "occurred_at": at(1), "actor": map[string]any{"id": "lead", "kind": "agent"}, "assignee_id": agent, "team_id": team},
		{"id": id + "-r", "ticket_id": id, "type": "agent_message", "occurred_at": at(10), "actor": map[string]any{"id": agent, "kind": "agent"}, "public": true},
		{"id": id + "-s", "ticket_id": id, "type": "status_changed", "occurred_at": at(60), "actor": map[string]any{"id": agent, "kind": "agent"}, "status": "solved"},
		{"id": id + "-q", "ticket_id": id, "type": "satisfaction_rated", "occurred_at": at(61), "actor": map[string]any{"id": "cust", "kind": "customer"}, "satisfaction": map[string]any{"score": rating}},
	}
}

// eventually polls cond until it holds or fails the test after 20 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	// Generous: with the race detector on a loaded 2-core machine, a posted event can take well
	// over 20 s to reach kpi's figures; a passing test waits only as long as it needs.
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
