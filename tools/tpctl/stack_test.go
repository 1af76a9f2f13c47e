package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// runMainEnv makes the test binary act as tpctl itself, so a test can run tpctl as a process
// and kill it.
const runMainEnv = "TPCTL_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
	}
	code := m.Run()
	testenv.Shutdown()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// services builds the service binaries of this repository once per test binary, as the e2e
// tests do (go.work at the repository root picks the local modules).
func services(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the real services; skipped in -short mode")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "tpctl-test-bin-")
		if buildErr != nil {
			return
		}
		buildErr = servicetest.BuildServices(binDir, "../..", "ingest", "kpi", "escalation", "notify")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// stack is one test's real NATS (embedded), the shared redis-server (emptied) and a tenants
// file with acme's and globex's keys, each key also in a file for -key-file.
type stack struct {
	bin      string
	natsURL  string
	redisURL string
	tenants  *servicetest.Tenants
	// keyFile holds acme's key with every scope; eventsKey only events:write; globexKey is
	// the wrong tenant's.
	keyFile, eventsKey, globexKey string
}

func newStack(t *testing.T) *stack { return newStackWith(t, nil) }

// newStackWith is newStack with extra appended to the tenants file under each tenant.
func newStackWith(t *testing.T, extra map[string]string) *stack {
	t.Helper()
	bin := services(t)
	rdb := testenv.RedisSingle(t)
	_, url := testenv.NATS(t)
	ts := servicetest.WriteTenants(t, extra)
	dir := t.TempDir()
	write := func(name, key string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return &stack{bin: bin, natsURL: url, redisURL: "redis://" + rdb.Options().Addr, tenants: ts,
		keyFile: write("acme-key", ts.Acme), eventsKey: write("acme-events-key", ts.AcmeEvents), globexKey: write("globex-key", ts.Globex)}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// start runs a service binary against the stack with env on top, waits for its /readyz and
// stops it with SIGTERM when the test ends. db is the Redis database it uses. It returns the
// HTTP address.
func (s *stack) start(t *testing.T, name string, db int, env ...string) string {
	t.Helper()
	httpAddr := freeAddr(t)
	servicetest.StartBinary(t, filepath.Join(s.bin, name), httpAddr, nil, append([]string{"TICKETPULSE_NATS_URL=" + s.natsURL,
		"TICKETPULSE_TENANTS_FILE=" + s.tenants.File, "TICKETPULSE_STREAM_REPLICAS=1", fmt.Sprintf("TICKETPULSE_REDIS_URL=%s/%d", s.redisURL, db)}, env...)...)
	return httpAddr
}

// ingest starts ingest and returns its base URL.
func (s *stack) ingest(t *testing.T) string {
	t.Helper()
	return "http://" + s.start(t, "ingest", 0)
}

// grpcService starts kpi, escalation or notify with its gRPC server on a free port and
// returns that address.
func (s *stack) grpcService(t *testing.T, name string, db int, env ...string) string {
	t.Helper()
	addr := freeAddr(t)
	s.grpcServiceAt(t, addr, name, db, env...)
	return addr
}

func (s *stack) grpcServiceAt(t *testing.T, addr, name string, db int, env ...string) {
	t.Helper()
	s.start(t, name, db, append([]string{"TICKETPULSE_GRPC_ADDR=" + addr}, env...)...)
}

// tpctlProcess runs tpctl as a process (the test binary acting as main).
type tpctlProcess struct {
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan error
}

func startTpctl(t *testing.T, args ...string) *tpctlProcess {
	t.Helper()
	p := &tpctlProcess{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	return p
}

// wait waits for the process to end and returns its exit code.
func (p *tpctlProcess) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(within):
		t.Fatalf("tpctl did not end within %s; stderr:\n%s", within, p.stderr.String())
		return -1
	}
}

// lockedBuffer is written by a process's pipe goroutine and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls cond until it holds or fails the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
