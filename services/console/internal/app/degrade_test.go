package app

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

// syncBuffer is a log destination the console's goroutines share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startKpiReplica runs another kpi on the stack's NATS and Redis, serving gRPC on its own
// address, and returns that address and a stop that ends the process (and waits for it).
func startKpiReplica(t *testing.T, s *stack) (string, func()) {
	t.Helper()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(filepath.Join(binDir, "kpi"))
	cmd.Env = append(append(os.Environ(), slices.Clone(s.kpiEnv)...), "TICKETPULSE_GRPC_ADDR="+grpcAddr, "TICKETPULSE_HTTP_ADDR="+httpAddr,
		"TICKETPULSE_ADMIN_ADDR=127.0.0.1:0", "TICKETPULSE_LOG_LEVEL=error")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("stop kpi: %v", err)
			}
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(stop)
	eventually(t, "the second kpi ready", func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return grpcAddr, stop
}

// A secondary call that fails leaves its page standing: the team table renders without its
// sparklines (kpi stopped after the agents' figures arrived) and says why, logged once; the
// agent page renders its figures when escalation refuses its open escalations (a key without
// escalations:read).
func TestSecondaryCallsDegrade(t *testing.T) {
	kpisOnly, hash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONSOLE_TEST_KPIS_ONLY_HASH", hash.String())
	s := startStackWith(t, map[string]string{"acme": "      - {name: kpis-only, scopes: [kpis:read], hash: {env: CONSOLE_TEST_KPIS_ONLY_HASH}}\n"})
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	postEvents(t, s.ingest, s.tenants.Acme, append(ticket("D-1", oddAgent, "billing", start, 5), ticket("D-2", "bob", "billing", start, 1)...))

	// The agent page with a key that may read KPIs but not escalations.
	kb := newBrowser(t, "http://"+s.console.HTTP)
	if a := kb.post("/signin", url.Values{"api_key": {kpisOnly}}); a.code != http.StatusSeeOther {
		t.Fatalf("sign in with the kpis-only key: %d %s", a.code, a.body)
	}
	var agent answer
	eventually(t, "bob's resolution on the agent page", func() bool {
		agent = kb.get("/t/acme/agent?id=bob")
		return agent.code == http.StatusOK && strings.Contains(agent.body, `<tr><th scope="row">Resolutions</th><td><a class="drill" href="/t/acme/tickets?agent=bob&amp;window=24h">1</a>`)
	})
	if !strings.Contains(agent.body, `id="escalations-missing">Open escalations not shown: your credential may not read them</p>`) {
		t.Errorf("agent page without escalations:read does not say why its escalations are missing:\n%s", agent.body)
	}
	if strings.Count(agent.body, `<svg class="chart"`) != 5 {
		t.Errorf("agent page: %d charts, want 5 (the charts are kpi's, which the key may read)", strings.Count(agent.body, `<svg class="chart"`))
	}

	// A console on a second kpi, which the hook stops once the agents' figures are in.
	kpi2, stop := startKpiReplica(t, s)
	var armed atomic.Bool
	logs := &syncBuffer{}
	cfg := s.cfg
	cfg.KPIAddr = kpi2
	c := startConsoleWith(t, cfg, Deps{AfterPrimary: func(page string) {
		if page == "team" && armed.CompareAndSwap(true, false) {
			stop()
		}
	}}, slog.New(slog.NewTextHandler(logs, nil)))
	b := newBrowser(t, "http://"+c.HTTP)
	if a := b.post("/signin", url.Values{"api_key": {s.tenants.Acme}}); a.code != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", a.code, a.body)
	}
	teamURL := "/t/acme/team?team=billing&window=24h"
	eventually(t, "both agents with sparklines on the second kpi", func() bool {
		a := b.get(teamURL)
		return a.code == http.StatusOK && len(sparkRE.FindAllString(a.body, -1)) == 2
	})
	armed.Store(true)
	team := b.get(teamURL)
	if team.code != http.StatusOK {
		t.Fatalf("team page with kpi stopped after the agents' figures: %d, want 200\n%s", team.code, team.body)
	}
	for _, want := range []string{"bob", "ana/&#34;q&#34; &lt;script&gt;alert(1)&lt;/script&gt; ü", `id="trend-missing">(unavailable:`, `<h3>Team total</h3><p class="missing">unavailable:`} {
		if !strings.Contains(team.body, want) {
			t.Errorf("degraded team page lacks %q:\n%s", want, team.body)
		}
	}
	if strings.Contains(team.body, `<svg class="spark"`) || strings.Contains(team.body, "<script>alert") {
		t.Errorf("degraded team page has sparklines or an unescaped id")
	}
	if n := strings.Count(logs.String(), `what="team sparklines"`); n != 1 {
		t.Errorf("the failed sparkline call logged %d times, want once:\n%s", n, logs.String())
	}
	// With kpi gone the primary call fails too: that is an error page, not an empty table.
	if a := b.get(teamURL); a.code != http.StatusServiceUnavailable {
		t.Errorf("team page with kpi down: %d, want 503", a.code)
	}
}
