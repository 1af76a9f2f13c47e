package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/tenants"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Docker cannot run everywhere the tests do, so the deploy configs are checked here with the
// same server code and programs the containers run: deploy/nats.conf read by the NATS server,
// the ACL file deploy/redis-acl.sh writes loaded by redis-server, and the five service binaries
// logging in as their own users.

var services = []string{"ingest", "kpi", "escalation", "notify", "console"}

// withoutRedis are the services that keep no state in Redis: they have no Redis user.
var withoutRedis = []string{"ingest", "console"}

// deployPasswords sets the passwords the deploy configs read from the environment to the
// placeholders of deploy/compose.env.example, so those are known to work as they are.
func deployPasswords(t *testing.T) (natsPW, redisPW map[string]string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "compose.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
			t.Setenv(k, v)
		}
	}
	natsPW, redisPW = map[string]string{}, map[string]string{}
	for _, svc := range services {
		up := strings.ToUpper(svc)
		natsPW[svc] = env["TICKETPULSE_"+up+"_NATS_PASSWORD"]
		if natsPW[svc] == "" {
			t.Fatalf("deploy/compose.env.example has no NATS password for %s", svc)
		}
		if !slices.Contains(withoutRedis, svc) {
			if redisPW[svc] = env["TICKETPULSE_"+up+"_REDIS_PASSWORD"]; redisPW[svc] == "" {
				t.Fatalf("deploy/compose.env.example has no Redis password for %s", svc)
			}
		}
	}
	return natsPW, redisPW
}

// deployNATS runs the NATS server with deploy/nats.conf, on a loopback port of its own.
func deployNATS(t *testing.T) (*server.Server, string) {
	t.Helper()
	opts, err := server.ProcessConfigFile(filepath.Join("..", "deploy", "nats.conf"))
	if err != nil {
		t.Fatalf("deploy/nats.conf: %v", err)
	}
	if !opts.JetStream || len(opts.Users) != len(services) || opts.NoAuthUser != "" {
		t.Fatalf("deploy/nats.conf: jetstream %v, %d users, no_auth_user %q; want JetStream, one user per service, every client logging in",
			opts.JetStream, len(opts.Users), opts.NoAuthUser)
	}
	ns, url := testenv.NATSFromOptions(t, opts)
	return ns, strings.TrimPrefix(url, "nats://")
}

// deployRedis runs redis-server with the ACL file deploy/redis-acl.sh writes, on a loopback port
// of its own (tools/tpdev checks deploy/redis.conf itself).
func deployRedis(t *testing.T) *testenv.RedisServer {
	t.Helper()
	dir := t.TempDir()
	acl := filepath.Join(dir, "users.acl")
	if out, err := exec.Command("sh", filepath.Join("..", "deploy", "redis-acl.sh"), acl).CombinedOutput(); err != nil {
		t.Fatalf("deploy/redis-acl.sh: %v\n%s", err, out)
	}
	rs, err := testenv.StartRedis(dir, "--aclfile", acl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Kill)
	return rs
}

// Each service runs with its own NATS and Redis user of the deploy configs, does its whole
// job (events in through ingest, counted by kpi, an escalation change watched through
// escalation and delivered by notify), and logs no permission error; and each user is refused
// what belongs to another service.
func TestDeployConfigsLeastPrivilege(t *testing.T) {
	natsPW, redisPW := deployPasswords(t)
	_, natsHost := deployNATS(t)
	rs := deployRedis(t)
	natsURL := func(svc string) string { return "nats://" + svc + ":" + natsPW[svc] + "@" + natsHost }
	redisURL := func(svc string) string { return "redis://" + svc + ":" + redisPW[svc] + "@" + rs.Addr + "/0" }

	hooks := make(chan string, 16)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hooks <- string(body)
	}))
	t.Cleanup(receiver.Close)
	routing := filepath.Join(t.TempDir(), "routing.yaml")
	if err := os.WriteFile(routing, []byte(fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: E2E_HOOK_SECRET}]}
route: {receiver: hook, group_wait: 0s}
`, receiver.URL+"/hook")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_HOOK_SECRET", "whsec_"+base64.StdEncoding.EncodeToString([]byte("e2e-hook-secret-32-bytes-long!!!")))

	// One tenants file, with its keys, for every service, as a deployment has.
	keys := servicetest.WriteTenants(t, nil)
	tenantsFile := "TICKETPULSE_TENANTS_FILE=" + keys.File
	logs := map[string]*logBuffer{}
	ingestAddr := freeAddr(t)
	logs["ingest"] = startService(t, "ingest", ingestAddr, "TICKETPULSE_NATS_URL="+natsURL("ingest"), "TICKETPULSE_STREAM_REPLICAS=1", tenantsFile)
	// A short grace period, so the rebuild below also deletes the old generation.
	kpi, kpiLogs := startKPILogs(t, stack{natsURL: natsURL("kpi"), redisURL: redisURL("kpi"), tenants: keys}, "TICKETPULSE_REBUILD_GRACE=1s")
	logs["kpi"] = kpiLogs
	escGRPC := freeAddr(t)
	logs["escalation"] = startService(t, "escalation", freeAddr(t),
		"TICKETPULSE_NATS_URL="+natsURL("escalation"), "TICKETPULSE_REDIS_URL="+redisURL("escalation"),
		"TICKETPULSE_GRPC_ADDR="+escGRPC, "TICKETPULSE_STREAM_REPLICAS=1", tenantsFile,
		"TICKETPULSE_RULES_FILE="+filepath.Join("..", "deploy", "escalation", "rules.example.yaml"))
	notifyGRPC := freeAddr(t)
	logs["notify"] = startService(t, "notify", freeAddr(t),
		"TICKETPULSE_NATS_URL="+natsURL("notify"), "TICKETPULSE_REDIS_URL="+redisURL("notify"),
		"TICKETPULSE_GRPC_ADDR="+notifyGRPC, "TICKETPULSE_STREAM_REPLICAS=1", tenantsFile, "TICKETPULSE_ROUTING_FILE="+routing)
	// The console logs in with a user that may publish and subscribe to nothing: it is ready
	// (StartBinary waits for /readyz) and serves its sign-in page all the same.
	consoleAddr := freeAddr(t)
	logs["console"] = startConsole(t, consoleAddr, "TICKETPULSE_NATS_URL="+natsURL("console"), tenantsFile,
		"TICKETPULSE_KPI_ADDR="+kpi.addr, "TICKETPULSE_ESCALATION_ADDR="+escGRPC, "TICKETPULSE_NOTIFY_ADDR="+notifyGRPC)
	if resp, err := http.Get("http://" + consoleAddr + "/signin"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("console sign-in page: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// ingest publishes to TICKETS; kpi consumes, acknowledges, stores in Redis and answers.
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	post(t, ingestAddr, "acme", keys.AcmeEvents, jsonEvents("T-1", start))
	k := waitKpis(t, kpi.as(keys.Acme), "acme", window(start.Add(-time.Hour), start.Add(4*time.Hour)), func(k *tpv1.Kpis) bool {
		return k.GetCsatCount() == 1
	})
	checkFigures(t, k, 1)

	// kpi's watermark works as its own users: emptied, it is noticed at the next tick and
	// TICKETS is replayed through an ordered consumer of kpi's own, which closes the gap.
	kpiRedis := redis.NewClient(&redis.Options{Addr: rs.Addr, Username: "kpi", Password: redisPW["kpi"], Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { kpiRedis.Close() })
	watermarkAt := func(what string, ok func(map[string]string) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for h := kpiRedis.HGetAll(context.Background(), "tp:{wm}:kpi:kpi").Val(); !ok(h); h = kpiRedis.HGetAll(context.Background(), "tp:{wm}:kpi:kpi").Val() {
			if time.Now().After(deadline) {
				t.Fatalf("kpi's watermark never %s: %v\n%s", what, h, logs["kpi"])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	recorded := func(h map[string]string) bool { return h["w"] == "5" && h["gap"] == "0" }
	watermarkAt("recorded the 5 events", recorded)
	if err := kpiRedis.Del(context.Background(), "tp:{wm}:kpi:kpi").Err(); err != nil {
		t.Fatal(err)
	}
	watermarkAt("replayed TICKETS", func(h map[string]string) bool {
		return recorded(h) && strings.Contains(logs["kpi"].String(), `durable=kpi from=1 to=5 count=5 reason="watermark missing`)
	})

	// escalation watches ESCALATIONS through an ordered consumer of its own; what it publishes
	// there reaches the watch, and notify's durable delivers it to the receiver.
	conn := dialAs(t, escGRPC, keys.Acme)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watch, err := tpv1.NewEscalationServiceClient(conn).WatchEscalations(ctx, &tpv1.WatchEscalationsRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatalf("watch not established: %v", err)
	}
	change := &tpv1.EscalationChange{Kind: tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, Sequence: 1, At: timestamppb.Now(),
		Escalation: &tpv1.Escalation{Id: "e2e-1", Tenant: "acme", Rule: "first-response", SubjectKind: "ticket", SubjectId: "T-1",
			State: tpv1.EscalationState_ESCALATION_STATE_OPEN, Severity: tpv1.Severity_SEVERITY_WARNING, Level: 1,
			Summary: "e2e", TriggeredAt: timestamppb.Now(), UpdatedAt: timestamppb.Now()}}
	data, err := proto.Marshal(change)
	if err != nil {
		t.Fatal(err)
	}
	esc := jsAs(t, natsURL("escalation"), "escalation")
	if _, err := esc.Publish(ctx, "escalations.acme.first-response", data); err != nil {
		t.Fatalf("escalation publishes a change: %v", err)
	}
	got, err := watch.Recv()
	if err != nil || got.GetChange().GetEscalation().GetId() != "e2e-1" {
		t.Fatalf("watch got %v, %v; want the change", got, err)
	}
	select {
	case body := <-hooks:
		if !strings.Contains(body, "e2e-1") {
			t.Errorf("receiver got %s, want the change e2e-1", body)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("notify delivered nothing within 15s")
	}

	// The operator's rebuilds run to completion as the services' own users.
	escRedis := redis.NewClient(&redis.Options{Addr: rs.Addr, Username: "escalation", Password: redisPW["escalation"], Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { escRedis.Close() })
	checkRebuilds(t, kpi, escGRPC, keys.Operator, kpiRedis, escRedis, window(start.Add(-time.Hour), start.Add(4*time.Hour)), logs)

	// Forbidden: each user is refused what is not its own.
	denied := []struct {
		user, what string
		do         func(nc *nats.Conn) error
	}{
		{"ingest", "publish an escalation", func(nc *nats.Conn) error { return nc.Publish("escalations.acme.first-response", data) }},
		{"ingest", "publish a KPI snapshot", func(nc *nats.Conn) error { return nc.Publish("kpi.acme.agent.ana", nil) }},
		{"ingest", "read every advisory", func(nc *nats.Conn) error { _, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.>"); return err }},
		{"kpi", "read the TICKETS leader advisory", func(nc *nats.Conn) error {
			_, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.TICKETS")
			return err
		}},
		{"notify", "publish a ticket event", func(nc *nats.Conn) error { return nc.Publish("tickets.acme.ticket_created", nil) }},
		{"notify", "read kpi's replies", func(nc *nats.Conn) error { _, err := nc.SubscribeSync("_INBOX.kpi.>"); return err }},
		{"notify", "read every reply", func(nc *nats.Conn) error { _, err := nc.SubscribeSync("_INBOX.>"); return err }},
		{"kpi", "delete TICKETS", func(nc *nats.Conn) error { return nc.Publish("$JS.API.STREAM.DELETE.TICKETS", nil) }},
		{"kpi", "take escalation's messages", func(nc *nats.Conn) error {
			return nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.TICKETS.escalation", "_INBOX.kpi.x", []byte(`{"batch":1}`))
		}},
		{"escalation", "take notify's messages", func(nc *nats.Conn) error {
			return nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.ESCALATIONS.notify", "_INBOX.escalation.x", []byte(`{"batch":1}`))
		}},
		{"escalation", "delete notify's consumer", func(nc *nats.Conn) error {
			return nc.Publish("$JS.API.CONSUMER.DELETE.ESCALATIONS.notify", nil)
		}},
		{"escalation", "purge ESCALATIONS", func(nc *nats.Conn) error { return nc.Publish("$JS.API.STREAM.PURGE.ESCALATIONS", nil) }},
		{"escalation", "take kpi's messages", func(nc *nats.Conn) error {
			return nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.TICKETS.kpi", "_INBOX.escalation.x", []byte(`{"batch":1}`))
		}},
		{"kpi", "delete escalation's consumer", func(nc *nats.Conn) error {
			return nc.Publish("$JS.API.CONSUMER.DELETE.TICKETS.escalation", nil)
		}},
		{"kpi", "delete its own durable", func(nc *nats.Conn) error { return nc.Publish("$JS.API.CONSUMER.DELETE.TICKETS.kpi", nil) }},
		{"escalation", "delete its KPI durable", func(nc *nats.Conn) error {
			return nc.Publish("$JS.API.CONSUMER.DELETE.KPI.escalation-kpi", nil)
		}},
		{"notify", "dead-letter as kpi", func(nc *nats.Conn) error { return nc.Publish("deadletter.kpi.acme", nil) }},
		{"console", "publish a ticket event", func(nc *nats.Conn) error { return nc.Publish("tickets.acme.ticket_created", nil) }},
		{"console", "call the JetStream API", func(nc *nats.Conn) error {
			return nc.PublishRequest("$JS.API.INFO", "_INBOX.console.x", nil)
		}},
		{"console", "read escalations", func(nc *nats.Conn) error { _, err := nc.SubscribeSync("escalations.>"); return err }},
		{"console", "read replies", func(nc *nats.Conn) error { _, err := nc.SubscribeSync("_INBOX.>"); return err }},
	}
	for _, d := range denied {
		t.Run(d.user+" may not "+d.what, func(t *testing.T) {
			errs := make(chan error, 4)
			nc, err := nats.Connect(natsURL(d.user), nats.Name(d.user), nats.CustomInboxPrefix("_INBOX."+d.user),
				nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if err := d.do(nc); err != nil {
				t.Fatal(err)
			}
			_ = nc.Flush()
			select {
			case err := <-errs:
				if !strings.Contains(err.Error(), "Permissions Violation") {
					t.Errorf("got %v, want a permissions violation", err)
				}
			case <-time.After(2 * time.Second):
				t.Error("the server allowed it")
			}
		})
	}
	// What was refused changed nothing: TICKETS and notify's consumer are still there.
	ing := jsAs(t, natsURL("ingest"), "ingest")
	if _, err := ing.Stream(ctx, "TICKETS"); err != nil {
		t.Errorf("TICKETS: %v", err)
	}
	nt := jsAs(t, natsURL("notify"), "notify")
	if _, err := nt.Consumer(ctx, "ESCALATIONS", "notify"); err != nil {
		t.Errorf("notify's consumer: %v", err)
	}
	for _, wrong := range []string{"nats://kpi:guess@" + natsHost, "nats://" + natsHost, "nats://kpi:" + natsPW["ingest"] + "@" + natsHost} {
		if nc, err := nats.Connect(wrong); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
			if nc != nil {
				nc.Close()
			}
			t.Errorf("logging in with a wrong or no password: %v, want an authorization violation", err)
		}
	}

	checkRedisACL(t, rs.Addr, redisPW)

	for _, svc := range services {
		if l := logs[svc].String(); strings.Contains(l, "Permissions Violation") || strings.Contains(l, "NOPERM") {
			t.Errorf("%s was refused something it needs:\n%s", svc, l)
		}
	}
}

// startConsole builds the console (the other tests need no console binary) and runs it with a
// session key file of its own and env, returning what it logs.
func startConsole(t *testing.T, httpAddr string, env ...string) *logBuffer {
	t.Helper()
	dir := t.TempDir()
	if err := servicetest.BuildServices(dir, "..", "console"); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "session-key")
	if err := os.WriteFile(key, []byte(strings.Repeat("5e", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	servicetest.StartBinary(t, filepath.Join(dir, "console"), httpAddr, io.MultiWriter(os.Stderr, logs),
		append([]string{"TICKETPULSE_SESSION_KEY_FILE=" + key}, env...)...)
	return logs
}

// checkRebuilds runs a KPI rebuild and an escalation ticket-log rebuild of acme with the
// operator's key, each service as its own user: the KPIs after the switch equal those before,
// the old generation is deleted, and the ticket log escalation lost is back.
func checkRebuilds(t *testing.T, kpi kpiService, escGRPC, operator string, kpiRedis, escRedis *redis.Client, w *tpv1.Window, logs map[string]*logBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	figures := func() (agent, team *tpv1.Kpis) {
		t.Helper()
		c := kpi.as(operator)
		a, err := c.GetAgentKpis(ctx, &tpv1.GetAgentKpisRequest{Tenant: "acme", AgentId: "ana", Window: w})
		if err != nil {
			t.Fatalf("GetAgentKpis: %v", err)
		}
		tm, err := c.GetTeamKpis(ctx, &tpv1.GetTeamKpisRequest{Tenant: "acme", TeamId: "billing", Window: w})
		if err != nil {
			t.Fatalf("GetTeamKpis: %v", err)
		}
		return a.GetAgent().GetKpis(), tm.GetKpis()
	}
	agentBefore, teamBefore := figures()
	if agentBefore.GetAssigned() != 1 || teamBefore.GetAssigned() != 1 {
		t.Fatalf("before the rebuild: ana %v, billing %v; want the ticket counted", agentBefore, teamBefore)
	}

	admin := tpv1.NewKpiAdminServiceClient(dialAs(t, kpi.addr, operator))
	started, err := admin.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme"})
	if err != nil || started.GetProgress().GetTarget() != 1 {
		t.Fatalf("StartRebuild = %v, %v; want generation 1 built", started, err)
	}
	// WatchRebuild ends once the job left "building"; asked again, it says where the job is.
	phase := func() *tpv1.RebuildProgress {
		t.Helper()
		watch, err := admin.WatchRebuild(ctx, &tpv1.WatchRebuildRequest{Tenant: "acme"})
		if err != nil {
			t.Fatalf("WatchRebuild: %v", err)
		}
		var last *tpv1.RebuildProgress
		for {
			resp, err := watch.Recv()
			if errors.Is(err, io.EOF) {
				return last
			}
			if err != nil {
				t.Fatalf("WatchRebuild: %v (last %v)\n%s", err, last, logs["kpi"])
			}
			last = resp.GetProgress()
		}
	}
	p := phase()
	if (p.GetPhase() != "switched" && p.GetPhase() != "done") || p.GetCurrent() != 1 || p.GetEventsDone() != 5 {
		t.Fatalf("the KPI rebuild ended with %v; want generation 1 switched to after the 5 events\n%s", p, logs["kpi"])
	}
	if agent, team := figures(); !proto.Equal(agent, agentBefore) || !proto.Equal(team, teamBefore) {
		t.Errorf("after the rebuild: ana %v, billing %v; want them as before: %v, %v", agent, team, agentBefore, teamBefore)
	}
	// The old generation is deleted after the grace period (found with SCAN).
	deadline := time.Now().Add(20 * time.Second)
	for p = phase(); p.GetPhase() != "done"; p = phase() {
		if time.Now().After(deadline) {
			t.Fatalf("the old generation was never deleted: %v\n%s", p, logs["kpi"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n, err := kpiRedis.Exists(ctx, "tp:{acme:t:T-1}").Result(); err != nil || n != 0 {
		t.Errorf("generation 0's ticket after the deletion: %d, %v; want it gone", n, err)
	}
	if n, err := kpiRedis.Exists(ctx, "tp:{acme@1:t:T-1}").Result(); err != nil || n != 1 {
		t.Errorf("generation 1's ticket: %d, %v; want it there", n, err)
	}

	// escalation's ticket log, lost, is filled in again from TICKETS.
	const logKey = "tp:{acme:t:T-1}:esc:ev"
	before, err := escRedis.HGetAll(ctx, logKey).Result()
	if err != nil || len(before) == 0 {
		t.Fatalf("T-1's ticket log before: %v, %v; want its events", before, err)
	}
	if err := escRedis.Del(ctx, logKey).Err(); err != nil {
		t.Fatal(err)
	}
	escAdmin := tpv1.NewEscalationAdminServiceClient(dialAs(t, escGRPC, operator))
	if _, err := escAdmin.StartLogRebuild(ctx, &tpv1.StartLogRebuildRequest{Tenant: "acme"}); err != nil {
		t.Fatalf("StartLogRebuild: %v", err)
	}
	watch, err := escAdmin.WatchLogRebuild(ctx, &tpv1.WatchLogRebuildRequest{Tenant: "acme"})
	if err != nil {
		t.Fatalf("WatchLogRebuild: %v", err)
	}
	var last *tpv1.RebuildProgress
	for {
		resp, err := watch.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("WatchLogRebuild: %v (last %v)\n%s", err, last, logs["escalation"])
		}
		last = resp.GetProgress()
	}
	if last.GetPhase() != "done" || last.GetEventsDone() != 5 {
		t.Fatalf("the ticket-log rebuild ended with %v; want done after the 5 events\n%s", last, logs["escalation"])
	}
	if after, err := escRedis.HGetAll(ctx, logKey).Result(); err != nil || !maps.Equal(after, before) {
		t.Errorf("T-1's ticket log after the rebuild: %v, %v; want %v", after, err, before)
	}
}

// jsAs is a JetStream client logged in as user, with the user's reply subjects.
func jsAs(t *testing.T, url, user string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(user), nats.CustomInboxPrefix("_INBOX."+user))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// checkRedisACL checks each Redis user against the keys and commands of the other services.
func checkRedisACL(t *testing.T, addr string, pw map[string]string) {
	t.Helper()
	ctx := context.Background()
	client := func(user, password string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, Username: user, Password: password, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
		t.Cleanup(func() { c.Close() })
		return c
	}
	kpi, esc, notify := client("kpi", pw["kpi"]), client("escalation", pw["escalation"]), client("notify", pw["notify"])
	// The kpi store's compare-and-set, run as kpi on a ticket of its own.
	script := redis.NewScript(`local v = redis.call('HGET', KEYS[1], 'v') or '0'
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2])
return 1`)
	if n, err := script.Run(ctx, kpi, []string{"tp:{acme:t:T-9}"}, "0", "1").Int(); err != nil || n != 1 {
		t.Errorf("kpi's script on its ticket key: %d, %v", n, err)
	}
	allowed := []struct {
		user string
		c    *redis.Client
		cmd  []any
	}{
		{"kpi", kpi, []any{"hgetall", "tp:{acme:a:ana}:h:20000"}},
		{"kpi", kpi, []any{"sismember", "tp:{tenants}", "acme"}},
		{"escalation", esc, []any{"hlen", "tp:{acme:t:T-9}:esc:ev"}},
		{"escalation", esc, []any{"zcard", "tp:{tq:0}:due"}},
		{"notify", notify, []any{"hget", "tp:{nf}:disabled", "r"}},
		{"notify", notify, []any{"zcard", "tp:notify:{tq:0}:due"}},
		{"kpi", kpi, []any{"hget", "tp:{wm}:kpi:kpi", "w"}},
		{"kpi", kpi, []any{"info", "server"}},
		// Deleting an old generation after a rebuild finds its keys by pattern.
		{"kpi", kpi, []any{"scan", "0", "match", "tp:{acme@1:*", "count", "10"}},
		{"kpi", kpi, []any{"hget", "tp:{acme:kgen}", "cur"}},
		{"kpi", kpi, []any{"smembers", "tp:{kgen}:jobs"}},
		{"escalation", esc, []any{"hgetall", "tp:{acme:escrb}"}},
		{"escalation", esc, []any{"smembers", "tp:{escrb}:jobs"}},
		{"escalation", esc, []any{"hget", "tp:{wm}:escalation:escalation-kpi", "w"}},
		{"notify", notify, []any{"hget", "tp:{wm}:notify:notify", "w"}},
	}
	for _, a := range allowed {
		if err := a.c.Do(ctx, a.cmd...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			t.Errorf("%s %v: %v, want it allowed", a.user, a.cmd, err)
		}
	}
	refused := []struct {
		user string
		c    *redis.Client
		cmd  []any
	}{
		{"kpi", kpi, []any{"get", "tp:{acme:t:T-9}:esc:ev"}},
		{"kpi", kpi, []any{"zcard", "tp:{acme:ix}:esc"}},
		{"kpi", kpi, []any{"flushall"}},
		{"kpi", kpi, []any{"flushdb"}},
		{"kpi", kpi, []any{"config", "get", "*"}},
		{"kpi", kpi, []any{"keys", "*"}},
		{"escalation", esc, []any{"scan", "0"}},
		{"notify", notify, []any{"scan", "0"}},
		{"escalation", esc, []any{"hgetall", "tp:{acme:kgen}"}},
		{"kpi", kpi, []any{"script", "flush"}},
		{"kpi", kpi, []any{"shutdown"}},
		{"escalation", esc, []any{"hgetall", "tp:{acme:t:T-9}"}},
		{"escalation", esc, []any{"zadd", "tp:notify:{tq:0}:due", "1", "x"}},
		{"escalation", esc, []any{"config", "set", "appendonly", "no"}},
		{"escalation", esc, []any{"monitor"}},
		{"notify", notify, []any{"smembers", "tp:{tenants}"}},
		{"notify", notify, []any{"hgetall", "tp:{acme:a:ana}:e:first-response"}},
		{"notify", notify, []any{"acl", "list"}},
		{"kpi", kpi, []any{"info"}},
		{"kpi", kpi, []any{"info", "clients"}},
		{"kpi", kpi, []any{"hget", "tp:{wm}:escalation:escalation", "w"}},
		{"escalation", esc, []any{"hset", "tp:{wm}:kpi:kpi", "w", "0"}},
	}
	for _, r := range refused {
		if err := r.c.Do(ctx, r.cmd...).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Errorf("%s %v: %v, want NOPERM", r.user, r.cmd, err)
		}
	}
	if err := client("", "").Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Errorf("no login: %v, want NOAUTH", err)
	}
	if err := client("kpi", "guess").Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Errorf("wrong password: %v, want WRONGPASS", err)
	}
	health := client("healthcheck", "anything")
	if err := health.Ping(ctx).Err(); err != nil {
		t.Errorf("healthcheck ping: %v", err)
	}
	if err := health.Get(ctx, "tp:{tenants}").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Errorf("healthcheck get: %v, want NOPERM", err)
	}
}

// docker-compose.yml gives each service its own NATS and Redis user and password, the servers
// every password, and deploy/compose.env.example names every password compose reads. Every
// service reads the example tenants file, mounted read-only, with every key hash it references,
// and serves its admin listener on its own port, published on loopback only.
func TestComposeCredentials(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Entrypoint  []string          `yaml:"entrypoint"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
			Secrets     []string          `yaml:"secrets"`
			Build       struct {
				Dockerfile string            `yaml:"dockerfile"`
				Args       map[string]string `yaml:"args"`
			} `yaml:"build"`
		} `yaml:"services"`
		Secrets map[string]struct {
			Environment string `yaml:"environment"`
			File        string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	example, err := os.ReadFile(filepath.Join("..", "deploy", "compose.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	ref := func(v string) string { return "${" + v + ":?set it in .env (cp deploy/compose.env.example .env)}" }
	for _, svc := range services {
		up := strings.ToUpper(svc)
		env := compose.Services[svc].Environment
		natsVar := "TICKETPULSE_" + up + "_NATS_PASSWORD"
		if got, want := env["TICKETPULSE_NATS_URL"], "nats://"+svc+":"+ref(natsVar)+"@nats:4222"; got != want {
			t.Errorf("%s: TICKETPULSE_NATS_URL %q, want %q", svc, got, want)
		}
		if got := compose.Services["nats"].Environment[natsVar]; got != ref(natsVar) {
			t.Errorf("nats: %s is %q, want %q", natsVar, got, ref(natsVar))
		}
		vars := []string{natsVar}
		if !slices.Contains(withoutRedis, svc) {
			redisVar := "TICKETPULSE_" + up + "_REDIS_PASSWORD"
			if got, want := env["TICKETPULSE_REDIS_URL"], "redis://"+svc+":"+ref(redisVar)+"@redis:6379/0"; got != want {
				t.Errorf("%s: TICKETPULSE_REDIS_URL %q, want %q", svc, got, want)
			}
			if got := compose.Services["redis"].Environment[redisVar]; got != ref(redisVar) {
				t.Errorf("redis: %s is %q, want %q", redisVar, got, ref(redisVar))
			}
			vars = append(vars, redisVar)
		} else if _, ok := env["TICKETPULSE_REDIS_URL"]; ok {
			t.Errorf("%s keeps no state in Redis but is given a Redis URL", svc)
		}
		for _, v := range vars {
			if !strings.Contains(string(example), "\n"+v+"=") {
				t.Errorf("deploy/compose.env.example lacks %s", v)
			}
		}
		// A service sees its own passwords only.
		for k, v := range env {
			for _, other := range services {
				if other != svc && strings.Contains(v, "TICKETPULSE_"+strings.ToUpper(other)+"_") {
					t.Errorf("%s: %s reads %s's password", svc, k, other)
				}
			}
		}
	}
	for _, svc := range services {
		if b := compose.Services[svc].Build; b.Dockerfile != "deploy/Dockerfile" || b.Args["SERVICE"] != svc {
			t.Errorf("%s: built from %q with %v, want deploy/Dockerfile with SERVICE=%s", svc, b.Dockerfile, b.Args, svc)
		}
		if _, err := os.Stat(filepath.Join("..", "services", svc, "cmd", svc)); err != nil {
			t.Errorf("%s: the Dockerfile builds ./cmd/%s: %v", svc, svc, err)
		}
	}
	checkComposeConsole(t, compose.Services["console"].Environment, compose.Services["console"].Secrets, compose.Services["console"].Ports,
		func(name string) (env, file string) { s := compose.Secrets[name]; return s.Environment, s.File },
		func(svc string) string { return compose.Services[svc].Environment["TICKETPULSE_GRPC_ADDR"] }, string(example))
	if got := strings.Join(compose.Services["redis"].Entrypoint, " "); !strings.Contains(got, "redis-acl.sh") {
		t.Errorf("redis entrypoint %q does not write the ACL file", got)
	}

	hashVars := checkExampleTenants(t, string(example))
	admin := map[string]string{"ingest": "9289", "kpi": "9290", "escalation": "9291", "notify": "9292", "console": "8288"}
	for _, svc := range services {
		s := compose.Services[svc]
		if got, want := s.Environment["TICKETPULSE_TENANTS_FILE"], "/etc/ticketpulse/tenants.yaml"; got != want {
			t.Errorf("%s: TICKETPULSE_TENANTS_FILE %q, want %q", svc, got, want)
		}
		if mount := "./deploy/tenants.example.yaml:/etc/ticketpulse/tenants.yaml:ro"; !slices.Contains(s.Volumes, mount) {
			t.Errorf("%s: volumes %q lack the read-only tenants file %s", svc, s.Volumes, mount)
		}
		for _, v := range hashVars {
			if got := s.Environment[v]; got != ref(v) {
				t.Errorf("%s: %s is %q, want %q (the tenants file references it)", svc, v, got, ref(v))
			}
		}
		if got, want := s.Environment["TICKETPULSE_ADMIN_ADDR"], "0.0.0.0:"+admin[svc]; got != want {
			t.Errorf("%s: TICKETPULSE_ADMIN_ADDR %q, want %q", svc, got, want)
		}
		if port := "127.0.0.1:" + admin[svc] + ":" + admin[svc]; !slices.Contains(s.Ports, port) {
			t.Errorf("%s: ports %q lack the admin port %s", svc, s.Ports, port)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %q is published beyond the host's loopback", svc, p)
			}
		}
	}
}

// checkComposeConsole checks the console's compose settings: the gRPC addresses of kpi,
// escalation and notify as compose names and serves them, its page on loopback port 8088, and
// its session key as a compose secret from a variable that compose.env.example lists with a
// placeholder the console refuses (not 64 hex digits).
func checkComposeConsole(t *testing.T, env map[string]string, secrets, ports []string, secret func(string) (env, file string),
	grpcAddr func(svc string) string, example string) {
	t.Helper()
	for _, up := range []string{"kpi", "escalation", "notify"} {
		_, port, _ := strings.Cut(grpcAddr(up), ":")
		if got, want := env["TICKETPULSE_"+strings.ToUpper(up)+"_ADDR"], up+":"+port; port == "" || got != want {
			t.Errorf("console: TICKETPULSE_%s_ADDR %q, want %q (%s's TICKETPULSE_GRPC_ADDR %q)", strings.ToUpper(up), got, want, up, grpcAddr(up))
		}
	}
	if got := env["TICKETPULSE_HTTP_ADDR"]; got != "0.0.0.0:8088" {
		t.Errorf("console: TICKETPULSE_HTTP_ADDR %q, want 0.0.0.0:8088", got)
	}
	if !slices.Contains(ports, "127.0.0.1:8088:8088") {
		t.Errorf("console: ports %q lack 127.0.0.1:8088:8088", ports)
	}
	if got := env["TICKETPULSE_PUBLIC_URL"]; got != "http://127.0.0.1:8088" {
		t.Errorf("console: TICKETPULSE_PUBLIC_URL %q, want the loopback address it is published on", got)
	}
	const name = "console-session-key"
	if got, want := env["TICKETPULSE_SESSION_KEY_FILE"], "/run/secrets/"+name; got != want || !slices.Contains(secrets, name) {
		t.Errorf("console: TICKETPULSE_SESSION_KEY_FILE %q with secrets %q; want %s, the secret %s", got, secrets, want, name)
	}
	v, file := secret(name)
	if v == "" || file != "" {
		t.Fatalf("secret %s: environment %q file %q; want it from a variable of .env", name, v, file)
	}
	_, after, ok := strings.Cut(example, "\n"+v+"=")
	if !ok {
		t.Fatalf("deploy/compose.env.example lacks %s", v)
	}
	placeholder, _, _ := strings.Cut(after, "\n")
	if regexp.MustCompile(`^[0-9a-fA-F]{64}$`).MatchString(placeholder) {
		t.Errorf("deploy/compose.env.example: %s=%s is a usable key; want a placeholder the console refuses", v, placeholder)
	}
	for k, val := range env {
		if strings.Contains(val, v) || strings.Contains(val, "REDIS") {
			t.Errorf("console: %s=%q; want the session key only as the secret file and no Redis", k, val)
		}
	}
}

// checkExampleTenants checks deploy/tenants.example.yaml with the services' own parser and
// returns the environment variables it reads the key hashes from, each of which
// compose.env.example must list. Its placeholders must be refused, so no stack starts with a
// key nobody made; real hashes in their place must be accepted.
func checkExampleTenants(t *testing.T, example string) []string {
	t.Helper()
	path := filepath.Join("..", "deploy", "tenants.example.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The commented-out webhook sources are examples, not settings the stack reads (ingest's
	// tenants tests load them uncommented).
	var vars []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range regexp.MustCompile(`\{env: ([A-Z0-9_]+)\}`).FindAllStringSubmatch(line, -1) {
			vars = append(vars, m[1])
		}
	}
	if len(vars) != 3 {
		t.Fatalf("tenants.example.yaml references %q, want the hashes of acme's, globex's and the operators' keys", vars)
	}
	placeholder, real := map[string]string{}, map[string]string{}
	for _, v := range vars {
		_, after, ok := strings.Cut(example, "\n"+v+"=")
		if !ok {
			t.Errorf("deploy/compose.env.example lacks %s", v)
			continue
		}
		placeholder[v], _, _ = strings.Cut(after, "\n")
		_, h, err := auth.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		real[v] = h.String()
	}
	load := func(env map[string]string) (*tenants.Config[tenants.NoSources], error) {
		return tenants.Parse(path, filepath.Dir(path), raw, func(k string) string { return env[k] }, tenants.SourcesParser[tenants.NoSources](nil))
	}
	if _, err := load(placeholder); err == nil {
		t.Error("tenants.example.yaml loads with the placeholder hashes of compose.env.example; want them refused")
	}
	cfg, err := load(real)
	if err != nil {
		t.Fatalf("tenants.example.yaml with real hashes: %v", err)
	}
	if _, ok := cfg.Tenant("acme"); !ok || len(cfg.Operators) != 1 {
		t.Errorf("tenants.example.yaml: want tenant acme and one operator key, got %+v", cfg)
	}
	if _, ok := cfg.Tenant("globex"); !ok {
		t.Error("tenants.example.yaml: want tenant globex")
	}
	return vars
}
