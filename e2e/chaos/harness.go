package chaos

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// Config is one chaos run.
type Config struct {
	// Duration is how long the load runs; faults are injected during it.
	Duration time.Duration
	// Rate is the load in events per second.
	Rate int
	// Seed makes the run's choices (which fault, when, on what) reproducible.
	Seed uint64
	// Kinds are the fault kinds to inject, taken in a seeded order that uses each once before
	// any twice.
	Kinds []string
	// Interval is the mean time between one fault's end and the next one's start.
	Interval time.Duration
	// Settle bounds how long the system may take, once the load stops, to take in every event
	// and deliver every notification.
	Settle time.Duration
	// BinDir holds the built service binaries.
	BinDir string
}

// AckWait is the consumers' ack wait in the run: a pause lasts longer than it.
const AckWait = 2 * time.Second

const tenant = "acme"

// System is the running services of a run and what the harness drives them with.
type System struct {
	Topo     Topology
	Procs    []*Proc
	Ingest   string
	KPI      string // gRPC address of kpi-1
	Esc      string // gRPC address of escalation-1
	Notify   string // gRPC address of notify-1
	Tenants  *servicetest.Tenants
	Receiver *Receiver
	LogDir   string
}

// LogDir is a directory for the logs of a run, kept when the test fails so they can be read.
func LogDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ticketpulse-chaos-logs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	})
	return dir
}

// StartSystem starts ingest, two kpi, two escalation and two notify processes on topo, with a
// rules file whose SLA policy covers every team of the load, and a receiver for notify's
// webhooks; the processes log into logDir. Everything stops when the test ends.
func StartSystem(t testing.TB, topo Topology, binDir, logDir string, seed uint64) *System {
	t.Helper()
	dir := t.TempDir()
	s := &System{Topo: topo, Tenants: servicetest.WriteTenants(t, nil), LogDir: logDir}
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(fmt.Sprintf(`tenants:
  %s:
    escalation_policies:
      leads: {levels: [{targets: [team-lead]}]}
    sla_policies:
      - name: support
        match: {team: [%q, %q]}
        at_risk: off
        escalation: leads
        targets: {default: {first_response: %s, resolution: 24h}}
`, tenant, Teams[0], Teams[1], FirstResponseSLA)), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("chaos-receiver-secret-32-bytes!!"))
	recv, err := StartReceiver(secret, 10, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(recv.Close)
	s.Receiver = recv
	routing := filepath.Join(dir, "routing.yaml")
	if err := os.WriteFile(routing, []byte(fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: CHAOS_HOOK_SECRET}]}
    limits: {timeout: 2s, deadline: 10m, rate_per_second: 100, burst: 100, concurrency: 4}
route: {receiver: hook, group_by: [tenant, team, rule], group_wait: 0s, group_interval: 1s}
`, recv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}

	common := []string{"TICKETPULSE_NATS_URL=" + topo.NATSURL(), "TICKETPULSE_TENANTS_FILE=" + s.Tenants.File,
		fmt.Sprintf("TICKETPULSE_STREAM_REPLICAS=%d", topo.StreamReplicas())}
	consumer := []string{"TICKETPULSE_REDIS_URL=" + topo.RedisURL(), "TICKETPULSE_ACK_WAIT=" + AckWait.String(),
		"TICKETPULSE_BATCH_LINGER=1ms", "TICKETPULSE_WATERMARK_INTERVAL=500ms"}
	addr := func() string {
		port, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	add := func(name, bin string, env ...string) *Proc {
		p := NewProc(name, filepath.Join(binDir, bin), addr(), s.LogDir, append(append([]string{}, common...), env...))
		s.Procs = append(s.Procs, p)
		return p
	}
	s.Ingest = addr()
	ingest := NewProc("ingest-1", filepath.Join(binDir, "ingest"), s.Ingest, s.LogDir,
		// The stream must fit the small disk the disk-full fault fills.
		append(append([]string{}, common...), "TICKETPULSE_TICKETS_MAX_BYTES=67108864", "TICKETPULSE_PUBLISH_TIMEOUT=3s"))
	s.Procs = append(s.Procs, ingest)
	for i := 1; i <= 2; i++ {
		g := addr()
		if i == 1 {
			s.KPI = g
		}
		add(fmt.Sprintf("kpi-%d", i), "kpi", append([]string{"TICKETPULSE_GRPC_ADDR=" + g, "TICKETPULSE_RULES_FILE=" + rules,
			"TICKETPULSE_SNAPSHOT_INTERVAL=1s", "TICKETPULSE_REBUILD_LEASE=5s"}, consumer...)...)
	}
	for i := 1; i <= 2; i++ {
		g := addr()
		if i == 1 {
			s.Esc = g
		}
		add(fmt.Sprintf("escalation-%d", i), "escalation", append([]string{"TICKETPULSE_GRPC_ADDR=" + g, "TICKETPULSE_RULES_FILE=" + rules,
			"TICKETPULSE_TIMER_LEASE=3s"}, consumer...)...)
	}
	for i := 1; i <= 2; i++ {
		g := addr()
		if i == 1 {
			s.Notify = g
		}
		add(fmt.Sprintf("notify-%d", i), "notify", append([]string{"TICKETPULSE_GRPC_ADDR=" + g, "TICKETPULSE_ROUTING_FILE=" + routing,
			"TICKETPULSE_TIMER_LEASE=3s", "CHAOS_HOOK_SECRET=" + secret}, consumer...)...)
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, p := range s.Procs {
			wg.Add(1)
			go func(p *Proc) {
				defer wg.Done()
				if err := p.Stop(15 * time.Second); err != nil {
					t.Errorf("%v (log %s)", err, p.LogPath())
				}
			}(p)
		}
		wg.Wait()
	})
	// Sequentially: ingest and kpi create the streams the others read.
	for _, p := range s.Procs {
		if err := p.Start(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Dial is a gRPC connection to addr that sends the tenant's key, closed when the test ends.
func (s *System) Dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(s.Tenants.Acme)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// consumers are the durables whose backlog says whether the system caught up: stream, durable.
var consumers = [][2]string{{"TICKETS", "kpi"}, {"TICKETS", "escalation"}, {"KPI", "escalation-kpi"}, {"ESCALATIONS", "notify"}}

// lagMonitor reads the consumers' backlog (pending plus unacknowledged) every period and keeps
// the moments when all of them had none.
type lagMonitor struct {
	js    jetstream.JetStream
	mu    sync.Mutex
	zeros []time.Time
	last  string
}

func connect(url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name("chaos"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// lag is the total backlog of the consumers, and a description; ok is false when a reading failed.
func lag(ctx context.Context, js jetstream.JetStream) (uint64, string, bool) {
	var total uint64
	desc := ""
	for _, c := range consumers {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		cons, err := js.Consumer(ctx, c[0], c[1])
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = cons.Info(ctx)
		}
		cancel()
		if err != nil {
			return 0, fmt.Sprintf("%s/%s: %v", c[0], c[1], err), false
		}
		n := info.NumPending + uint64(info.NumAckPending)
		total += n
		desc += fmt.Sprintf("%s/%s=%d ", c[0], c[1], n)
	}
	return total, desc, true
}

func (m *lagMonitor) run(ctx context.Context, every time.Duration) {
	for ctx.Err() == nil {
		n, desc, ok := lag(ctx, m.js)
		m.mu.Lock()
		m.last = desc
		if ok && n == 0 {
			m.zeros = append(m.zeros, time.Now())
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

// firstZero is the first moment in [from, to) with no backlog.
func (m *lagMonitor) firstZero(from, to time.Time) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, z := range m.zeros {
		if !z.Before(from) && z.Before(to) {
			return z
		}
	}
	return time.Time{}
}

// Run drives the load through s for cfg.Duration while injecting faults, lets the system settle
// and checks what it made against the ledger. It returns the report; the caller fails the test
// when the report has problems.
func Run(t testing.TB, s *System, cfg Config) *Report {
	t.Helper()
	rep := &Report{Config: cfg, Topology: s.Topo.Describe()}
	nc, js, err := connect(s.Topo.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	monCtx, stopMon := context.WithCancel(context.Background())
	mon := &lagMonitor{js: js}
	monDone := make(chan struct{})
	go func() { defer close(monDone); mon.run(monCtx, 200*time.Millisecond) }()
	defer func() { stopMon(); <-monDone }()

	load := NewLoad(s.Ingest, tenant, s.Tenants.AcmeEvents, cfg.Rate, cfg.Seed)
	start := time.Now()
	gen, stopGen := context.WithTimeout(context.Background(), cfg.Duration)
	defer stopGen()
	retry, stopRetry := context.WithTimeout(context.Background(), cfg.Duration+cfg.Settle)
	defer stopRetry()
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); load.Run(gen, retry) }()

	in := &injector{topo: s.Topo, procs: s.Procs, rnd: rand.New(rand.NewPCG(cfg.Seed, 1)), ackWait: AckWait, mounted: true,
		// Once the load stopped and every ticket was acknowledged there is nothing to wait for.
		ackedSince: func(t time.Time) bool {
			_, ok := load.Ledger.FirstAckAfter(t)
			return ok || (gen.Err() != nil && len(load.Ledger.Unacked()) == 0)
		},
		replicasBehind: func() []string { return replicaMismatches(js) }}
	if local, ok := s.Topo.(*Local); ok && !local.Mounted() {
		in.mounted = false
		in.notMount = "no small filesystem for the NATS store: " + local.StoreFS
	}
	var order []string
	for wait := jitter(in.rnd, cfg.Interval); ; wait = jitter(in.rnd, cfg.Interval) {
		select {
		case <-gen.Done():
		case <-time.After(wait):
		}
		if gen.Err() != nil {
			break
		}
		if len(order) == 0 {
			order = append(order, cfg.Kinds...)
			in.rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		kind := order[0]
		order = order[1:]
		f := in.inject(kind)
		t.Logf("chaos: %-5s %-22s at %5.1fs, over after %.1fs %s%v", f.Kind, f.Target, f.Start.Sub(start).Seconds(),
			f.Healed.Sub(f.Start).Seconds(), f.NotInjected, errText(f.Err))
		rep.Faults = append(rep.Faults, f)
		if f.Err != nil {
			rep.problem("%s fault on %s: %v", f.Kind, f.Target, f.Err)
		}
	}
	t.Logf("chaos: load stopped after %s; settling (at most %s)", time.Since(start).Round(time.Second), cfg.Settle)
	<-loadDone
	settled := waitSettled(js, time.Now().Add(cfg.Settle))
	end := time.Now()
	for i := range rep.Faults {
		f := &rep.Faults[i]
		next := end
		if i+1 < len(rep.Faults) {
			next = rep.Faults[i+1].Start
		}
		if at, ok := load.Ledger.FirstAckAfter(f.Healed); ok && at.Before(next) {
			f.FirstAck = at
		}
		f.LagZero = mon.firstZero(f.Healed, next)
	}
	rep.Settled = settled
	if !settled {
		mon.mu.Lock()
		rep.problem("the consumers did not catch up within %s of the load's end: %s", cfg.Settle, mon.last)
		mon.mu.Unlock()
	}
	check(t, s, js, load.Ledger, rep, time.Now().Add(cfg.Settle))
	for _, p := range s.Procs {
		if alive, err := p.Alive(); !alive {
			rep.problem("%s is not running at the end: %v (log %s)", p.Name, err, p.LogPath())
		}
	}
	return rep
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return "error: " + err.Error()
}

// jitter is d give or take 30 %.
func jitter(rnd *rand.Rand, d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.7 + 0.6*rnd.Float64()))
}

// waitSettled waits until the consumers have no backlog, or deadline.
func waitSettled(js jetstream.JetStream, deadline time.Time) bool {
	for time.Now().Before(deadline) {
		if n, _, ok := lag(context.Background(), js); ok && n == 0 {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}
