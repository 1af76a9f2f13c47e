// Command tpdev runs the whole Ticketpulse stack on this machine for development: the embedded
// NATS server with JetStream, a redis-server, and every service built from this workspace, with
// their logs prefixed in one terminal. Ctrl-C stops the services first, then Redis and NATS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/natsembed"
)

type config struct {
	NATSURL      string
	NATSAddr     string
	NATSSync     string
	RedisURL     string
	RedisAddr    string
	RedisServer  string
	RunDir       string
	Services     string
	ReadyTimeout time.Duration
	StopTimeout  time.Duration
}

func (c *config) register(s *envflag.Set) {
	s.String(&c.NATSURL, "nats-url", "", "NATS server URL for the services; empty starts the embedded NATS server with JetStream on -nats-addr.")
	s.String(&c.NATSAddr, "nats-addr", "127.0.0.1:4222", "Address of the embedded NATS server when -nats-url is empty.")
	s.String(&c.NATSSync, "nats-sync", "always", "JetStream fsync policy of the embedded NATS server: always (fsync every write before acknowledging, see DESIGN.md §6) or an interval such as 2m.")
	s.String(&c.RedisURL, "redis-url", "", "Redis URL for the services; empty starts redis-server on -redis-addr.")
	s.String(&c.RedisAddr, "redis-addr", "127.0.0.1:6379", "Address of the redis-server tpdev starts when -redis-url is empty.")
	s.String(&c.RedisServer, "redis-server", "redis-server", "The redis-server program to start (a name on PATH or a path); scripts/ensure-deps.sh installs it.")
	s.String(&c.RunDir, "run-dir", ".run", "Directory for binaries, the NATS store, Redis data, and the demo tenants file with its API keys (secrets/); relative paths are taken from the repository root.")
	s.String(&c.Services, "services", strings.Join(serviceNames(), ","), "Comma-separated services to build and run ("+strings.Join(serviceNames(), ", ")+", or all).")
	s.Duration(&c.ReadyTimeout, "ready-timeout", 60*time.Second, "How long each service may take to answer 200 on /readyz after it starts.")
	s.Duration(&c.StopTimeout, "stop-timeout", 15*time.Second, "How long the services may take to stop after SIGTERM before they are killed.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout *os.File, stderr io.Writer) int {
	var cfg config
	s := envflag.New("tpdev", "tpdev runs the Ticketpulse stack locally: embedded NATS (JetStream), redis-server and the services, with\nlogs prefixed by service (coloured on a terminal unless NO_COLOR is set). Ctrl-C stops the services,\nthen Redis and NATS; a second Ctrl-C kills what is left.", os.LookupEnv)
	s.SetOutput(stderr)
	cfg.register(s)
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "tpdev: %v\n", err)
		return 2
	}
	specs, err := parseServices(cfg.Services)
	if err == nil {
		_, _, err = natsembed.ParseSync(cfg.NATSSync)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tpdev: %v\n", err)
		return 2
	}
	names := []string{"tpdev", "redis"}
	for _, sp := range specs {
		names = append(names, sp.name)
	}
	con := newConsole(stdout, useColour(stdout, os.Getenv("NO_COLOR")), names)
	st := &stack{cfg: cfg, specs: specs, con: con, say: con.writer("tpdev", "1")}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = st.run(ctx)
	started := st.nats != nil || st.redis != nil || len(st.procs) > 0
	switch {
	case err != nil && started:
		st.say.Printf("%v; stopping the rest", err)
	case err != nil:
		st.say.Printf("%v", err)
	default:
		st.say.Printf("stopping")
	}
	force, stopForce := secondSignal(time.Second)
	defer stopForce()
	failed := st.shutdown(force)
	if err != nil || failed {
		return 1
	}
	st.say.Printf("stopped")
	return 0
}

// secondSignal returns a channel closed by an interrupt or SIGTERM that arrives after quiet, so a
// further Ctrl-C kills what is left instead of waiting. Signals within quiet of the first one are
// echoes of it: timeout(1) and process-group kills deliver the same stop twice.
func secondSignal(quiet time.Duration) (<-chan struct{}, func()) {
	raw := make(chan os.Signal, 1)
	signal.Notify(raw, os.Interrupt, syscall.SIGTERM)
	force := make(chan struct{})
	done := make(chan struct{})
	start := time.Now()
	go func() {
		for {
			select {
			case <-done:
				return
			case <-raw:
				if time.Since(start) >= quiet {
					close(force)
					return
				}
			}
		}
	}()
	return force, func() { signal.Stop(raw); close(done) }
}

// stack is the running dev stack; shutdown undoes whatever run got to.
type stack struct {
	cfg   config
	specs []serviceSpec
	con   *console
	say   *prefixWriter

	root, runDir string
	// webhookToken is the demo tenant's Freshdesk URL token, empty when the tenants file is the user's.
	webhookToken string
	// keyFiles holds each demo tenant's API key file, nil when the tenants file is the user's.
	keyFiles map[string]string
	// rulesFile is the escalation rules file tpdev wrote ("" when TICKETPULSE_RULES_FILE names one).
	rulesFile string
	// inbox receives the demo's notifications (nil when TICKETPULSE_ROUTING_FILE names a file).
	inbox *inbox
	nats  *server.Server
	redis *proc
	procs []*proc
}

func (st *stack) run(ctx context.Context) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	st.root = root
	st.runDir = st.cfg.RunDir
	if !filepath.IsAbs(st.runDir) {
		st.runDir = filepath.Join(root, st.runDir)
	}
	for _, sp := range st.specs {
		for _, addr := range []string{sp.httpAddr, sp.grpcAddr, sp.adminAddr} {
			if addr == "" {
				continue
			}
			if err := checkFree(addr); err != nil {
				return fmt.Errorf("%v, and %s needs it: stop whatever listens there (an earlier tpdev?) and run again", err, sp.name)
			}
		}
	}
	if err := st.build(ctx); err != nil || ctx.Err() != nil {
		return err
	}

	natsURL, redisURL := st.cfg.NATSURL, st.cfg.RedisURL
	if natsURL == "" {
		s, err := startNATS(st.cfg.NATSAddr, filepath.Join(st.runDir, "nats"), st.cfg.NATSSync)
		if err != nil {
			return err
		}
		st.nats = s
		natsURL = s.ClientURL()
		st.say.Printf("embedded NATS with JetStream on %s (store %s, sync %s)", natsURL, st.rel(filepath.Join(st.runDir, "nats")), st.cfg.NATSSync)
	}
	if redisURL == "" {
		dir := filepath.Join(st.runDir, "redis")
		p, err := startRedis(ctx, st.cfg.RedisServer, st.cfg.RedisAddr, dir, st.con.writer("redis", "31"), st.con.writer("redis", "31"))
		if err != nil {
			return err
		}
		st.redis = p
		redisURL = "redis://" + st.cfg.RedisAddr + "/0"
		st.say.Printf("redis-server on %s (data %s, AOF everysec, log %s)", redisURL, st.rel(dir), st.rel(filepath.Join(dir, "redis.log")))
	}

	// Every service refuses requests of tenants the tenants file does not name, and callers
	// without a key it lists; the local file has two demo tenants with a key each.
	var tenantsEnv []string
	if os.Getenv("TICKETPULSE_TENANTS_FILE") == "" {
		path, token, keys, err := devTenants(st.runDir)
		if err != nil {
			return err
		}
		st.webhookToken, st.keyFiles = token, keys
		tenantsEnv = append(tenantsEnv, "TICKETPULSE_TENANTS_FILE="+path)
	}

	// Escalation needs rules to escalate anything; the local ones cover the demo tenant. kpi reads
	// the same file, so its SLA figures are judged by the same policies and business hours.
	var rulesEnv []string
	if os.Getenv("TICKETPULSE_RULES_FILE") == "" {
		path, err := devRules(st.runDir)
		if err != nil {
			return err
		}
		st.rulesFile = path
		rulesEnv = append(rulesEnv, "TICKETPULSE_RULES_FILE="+path)
	}

	// Notify needs receivers; the local ones deliver to a demo inbox that prints what arrives.
	var notifyEnv []string
	if os.Getenv("TICKETPULSE_ROUTING_FILE") == "" && slices.ContainsFunc(st.specs, func(sp serviceSpec) bool { return sp.name == "notify" }) {
		path, key, err := devRouting(st.runDir)
		if err != nil {
			return err
		}
		in, err := startInbox(key, st.con.writer("inbox", "35"))
		if err != nil {
			return err
		}
		st.inbox = in
		notifyEnv = append(notifyEnv, "TICKETPULSE_ROUTING_FILE="+path)
	}

	// The console seals its sessions with a key kept under the run directory, so a restart of
	// the stack keeps people signed in.
	var consoleEnv []string
	if os.Getenv("TICKETPULSE_SESSION_KEY_FILE") == "" && slices.ContainsFunc(st.specs, func(sp serviceSpec) bool { return sp.name == "console" }) {
		path, err := devSessionKey(st.runDir)
		if err != nil {
			return err
		}
		consoleEnv = append(consoleEnv, "TICKETPULSE_SESSION_KEY_FILE="+path)
	}

	exited := make(chan *proc, len(st.specs))
	for _, sp := range st.specs {
		cmd := exec.Command(filepath.Join(st.runDir, "bin", sp.name))
		cmd.Dir = st.root
		cmd.Env = append(os.Environ(),
			"TICKETPULSE_NATS_URL="+natsURL,
			"TICKETPULSE_REDIS_URL="+redisURL,
			"TICKETPULSE_HTTP_ADDR="+sp.httpAddr,
			"TICKETPULSE_ADMIN_ADDR="+sp.adminAddr,
		)
		cmd.Env = append(cmd.Env, tenantsEnv...)
		if sp.grpcAddr != "" {
			cmd.Env = append(cmd.Env, "TICKETPULSE_GRPC_ADDR="+sp.grpcAddr)
		}
		switch sp.name {
		case "escalation":
			cmd.Env = append(cmd.Env, rulesEnv...)
		case "kpi":
			// The demo's console drills down to tickets, which needs kpi's ticket index.
			cmd.Env = append(cmd.Env, rulesEnv...)
			if os.Getenv("TICKETPULSE_TICKET_INDEX") == "" {
				cmd.Env = append(cmd.Env, "TICKETPULSE_TICKET_INDEX=true")
			}
		case "notify":
			cmd.Env = append(cmd.Env, notifyEnv...)
		case "console":
			cmd.Env = append(cmd.Env, consoleEnv...)
		}
		w := st.con.writer(sp.name, sp.colour)
		p, err := startProc(sp.name, cmd, w, w)
		if err != nil {
			return err
		}
		st.procs = append(st.procs, p)
		go func() { <-p.done; exited <- p }()
	}
	if err := st.waitReady(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	st.printSummary(natsURL, redisURL)

	select {
	case <-ctx.Done():
		return nil
	case p := <-exited:
		p.reported = true
		return fmt.Errorf("%s exited unexpectedly (%v)", p.name, p.err)
	}
}

// build compiles the services from the workspace in one go command, which builds them in parallel.
func (st *stack) build(ctx context.Context) error {
	args := []string{"build", "-o", filepath.Join(st.runDir, "bin") + string(filepath.Separator)}
	for _, sp := range st.specs {
		args = append(args, "./services/"+sp.name+"/cmd/"+sp.name)
	}
	st.say.Printf("building %s", strings.Join(specNames(st.specs), ", "))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = st.root
	w := st.con.writer("tpdev", "1")
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	_ = w.Flush()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// waitReady polls every service's /readyz until it answers 200, failing on the first that exits
// or is not ready in time.
func (st *stack) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(st.cfg.ReadyTimeout)
	pending := append([]*proc(nil), st.procs...)
	specOf := map[string]serviceSpec{}
	for _, sp := range st.specs {
		specOf[sp.name] = sp
	}
	for len(pending) > 0 {
		var still []*proc
		for _, p := range pending {
			if p.exited() {
				p.reported = true
				return fmt.Errorf("%s exited before it was ready (%v)", p.name, p.err)
			}
			if !ready(ctx, client, "http://"+specOf[p.name].httpAddr+"/readyz") {
				still = append(still, p)
			}
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v (GET /readyz did not answer 200)", strings.Join(procNames(pending), ", "), st.cfg.ReadyTimeout)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func ready(ctx context.Context, c *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// shutdown stops the services (SIGTERM, bounded wait), then Redis, then NATS, so no service
// loses a dependency while it finishes in-flight work. It reports whether anything failed to stop
// cleanly.
func (st *stack) shutdown(force <-chan struct{}) (failed bool) {
	errs := make(chan error, len(st.procs))
	for _, p := range st.procs {
		go func() {
			err := p.stop(st.cfg.StopTimeout, force)
			if p.reported {
				err = nil
			}
			errs <- err
		}()
	}
	for range st.procs {
		if err := <-errs; err != nil {
			st.say.Printf("%v", err)
			failed = true
		}
	}
	if st.inbox != nil {
		st.inbox.close()
	}
	if st.redis != nil {
		if err := st.redis.stop(10*time.Second, force); err != nil {
			st.say.Printf("redis-server: %v", err)
			failed = true
		}
	}
	if st.nats != nil {
		st.nats.Shutdown()
		st.nats.WaitForShutdown()
	}
	return failed
}

func (st *stack) rel(path string) string {
	if r, err := filepath.Rel(st.root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// repoRoot is the nearest directory at or above the working directory holding go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work found here or above: run tpdev from inside the Ticketpulse repository")
		}
		dir = parent
	}
}

func specNames(specs []serviceSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.name
	}
	return out
}

func procNames(ps []*proc) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.name
	}
	return out
}
