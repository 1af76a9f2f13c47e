// Package stack runs the whole pipeline on loopback for a benchmark: the embedded NATS server
// with JetStream, a redis-server with AOF, and the ingest and kpi binaries reading a tenants file
// of its own with an operator API key, and tears all of it down when its context ends, its
// lifetime runs out, or any part dies.
package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/natsembed"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// Config locates the binaries and says how the servers are set up.
type Config struct {
	// Dir holds the NATS store, the Redis data and every log.
	Dir string
	// Sync is the JetStream sync setting: "always" or an interval such as "2m".
	Sync                string
	IngestBin, KpiBin   string
	IngestArgs, KpiArgs []string
	// EnvFile receives the addresses (shell syntax) once everything is ready; it is removed on exit.
	EnvFile string
	// Lifetime bounds how long the stack stays up, so a forgotten one goes away by itself.
	Lifetime time.Duration
	// ReadyTimeout bounds the wait for each service's /readyz.
	ReadyTimeout time.Duration
	// ServersOnly runs NATS and Redis without the services, e.g. to measure the raw limits alone
	// or to run ingest and kpi by hand against them.
	ServersOnly bool
}

// child is a service binary run by the stack.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (c *child) wait() { c.err = c.cmd.Wait(); close(c.done) }

// stop asks the service to finish (SIGTERM) and kills it if it has not within grace.
func (c *child) stop(grace time.Duration) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within %s after SIGTERM; killed", c.name, grace)
	}
}

// tail returns the last lines of the child's log, for an error that says why it failed.
func (c *child) tail() string { return tailFile(c.log, 20) }

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// Addrs are where the running stack listens, and where its tenants file and API key are.
type Addrs struct {
	NATSURL, RedisURL, IngestURL, KpiGRPC, KpiHTTP string
	// TenantsFile is the services' tenants file; APIKeyFile holds its operator key (the path, never
	// the key, goes into the env file).
	TenantsFile, APIKeyFile string
}

// Env renders the addresses as shell assignments.
func (a Addrs) Env() string {
	return fmt.Sprintf("NATS_URL=%s\nREDIS_URL=%s\nINGEST_URL=%s\nKPI_GRPC=%s\nKPI_HTTP=%s\nTENANTS_FILE=%s\nAPI_KEY_FILE=%s\n",
		a.NATSURL, a.RedisURL, a.IngestURL, a.KpiGRPC, a.KpiHTTP, a.TenantsFile, a.APIKeyFile)
}

// Run starts everything, writes cfg.EnvFile, and blocks until ctx ends, the lifetime runs out or a
// part exits; then it stops the services (kpi first, so it stops fetching before ingest goes),
// Redis and NATS. It returns an error when a part failed, not for an ordinary stop.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (err error) {
	for _, bin := range []string{cfg.IngestBin, cfg.KpiBin} {
		if cfg.ServersOnly {
			break
		}
		if _, serr := os.Stat(bin); serr != nil {
			return fmt.Errorf("service binary %s: %w (build it with go build -o %s ./services/<name>/cmd/<name>)", bin, serr, bin)
		}
	}
	logs := filepath.Join(cfg.Dir, "logs")
	for _, d := range []string{filepath.Join(cfg.Dir, "nats"), filepath.Join(cfg.Dir, "redis"), logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Lifetime)
	defer cancel()

	ns, err := natsembed.Start(natsembed.Options{Addr: "127.0.0.1:0", StoreDir: filepath.Join(cfg.Dir, "nats"), Sync: cfg.Sync, Name: "loadgen-stack"})
	if err != nil {
		return fmt.Errorf("start nats: %w", err)
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	rs, err := testenv.StartRedis(filepath.Join(cfg.Dir, "redis"), "--logfile", filepath.Join(logs, "redis.log"))
	if err != nil {
		return fmt.Errorf("start redis: %w", err)
	}
	defer rs.Kill()
	log.Info("servers up", "nats", ns.ClientURL(), "sync", cfg.Sync, "redis", rs.Addr)

	tenantsFile, keyFile, err := writeTenants(cfg.Dir)
	if err != nil {
		return err
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = testenv.FreePort(); err != nil {
			return fmt.Errorf("free port: %w", err)
		}
	}
	a := Addrs{
		NATSURL:   ns.ClientURL(),
		RedisURL:  "redis://" + rs.Addr + "/0",
		IngestURL: "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		KpiGRPC:   "127.0.0.1:" + strconv.Itoa(ports[1]),
		KpiHTTP:   "127.0.0.1:" + strconv.Itoa(ports[2]),

		TenantsFile: tenantsFile,
		APIKeyFile:  keyFile,
	}
	var children []*child
	pidFile := filepath.Join(cfg.Dir, "stack.pids")
	_ = os.Remove(pidFile)
	defer func() {
		for i := len(children) - 1; i >= 0; i-- {
			if serr := children[i].stop(20 * time.Second); serr != nil {
				err = errors.Join(err, serr)
			}
		}
	}()
	start := func(name, bin string, args []string, readyURL string) (*child, error) {
		c, err := startChild(name, bin, args, filepath.Join(logs, name+".log"))
		if err != nil {
			return nil, err
		}
		children = append(children, c)
		// Should this process be killed outright, whoever started it can still stop the services by id.
		if err := appendPid(pidFile, c.cmd.Process.Pid); err != nil {
			return nil, err
		}
		if err := waitReady(ctx, c, readyURL, cfg.ReadyTimeout); err != nil {
			return nil, err
		}
		log.Info("service ready", "service", name, "pid", c.cmd.Process.Pid)
		return c, nil
	}
	if cfg.ServersOnly {
		a.IngestURL, a.KpiGRPC, a.KpiHTTP = "", "", ""
		if err := writeEnv(cfg.EnvFile, a); err != nil {
			return err
		}
		defer os.Remove(cfg.EnvFile)
		log.Info("servers ready (no services)", "env_file", cfg.EnvFile)
		<-ctx.Done()
		return nil
	}
	ingest, err := start("ingest", cfg.IngestBin,
		append([]string{"-http-addr", strings.TrimPrefix(a.IngestURL, "http://"), "-admin-addr", "", "-tenants-file", a.TenantsFile, "-nats-url", a.NATSURL}, cfg.IngestArgs...),
		a.IngestURL+"/readyz")
	if err != nil {
		return err
	}
	kpi, err := start("kpi", cfg.KpiBin,
		append([]string{"-grpc-addr", a.KpiGRPC, "-http-addr", a.KpiHTTP, "-admin-addr", "", "-tenants-file", a.TenantsFile, "-nats-url", a.NATSURL, "-redis-url", a.RedisURL}, cfg.KpiArgs...),
		"http://"+a.KpiHTTP+"/readyz")
	if err != nil {
		return err
	}
	if err := writeEnv(cfg.EnvFile, a); err != nil {
		return err
	}
	defer os.Remove(cfg.EnvFile)
	log.Info("stack ready", "env_file", cfg.EnvFile, "ingest", a.IngestURL, "kpi_grpc", a.KpiGRPC)

	select {
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			log.Warn("stack lifetime over; stopping", "lifetime", cfg.Lifetime)
		} else {
			log.Info("stopping")
		}
		return nil
	case <-ingest.done:
		return fmt.Errorf("ingest exited: %v\n%s", ingest.err, ingest.tail())
	case <-kpi.done:
		return fmt.Errorf("kpi exited: %v\n%s", kpi.err, kpi.tail())
	}
}

func startChild(name, bin string, args []string, logPath string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", logPath, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	// The child holds its own descriptor; ours is not needed once it runs.
	f.Close()
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go c.wait()
	return c, nil
}

// waitReady polls url until it answers 200, the child exits, or timeout passes.
func waitReady(ctx context.Context, c *child, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("readyz request: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s (last answer: %s)\n%s", c.name, url, timeout, last, c.tail())
		}
		select {
		case <-c.done:
			return fmt.Errorf("%s exited while starting: %v\n%s", c.name, c.err, c.tail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", c.name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func appendPid(path string, pid int) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := fmt.Fprintln(f, pid); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// writeEnv replaces path atomically, so a reader polling for it never sees half a file.
func writeEnv(path string, a Addrs) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(a.Env()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
