package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type stack struct {
	natsURL  string
	rdb      redis.UniversalClient
	redisURL string
}

func newStack(t *testing.T) stack {
	t.Helper()
	rdb := testenv.Redis(t)
	_, url := testenv.NATS(t)
	return stack{natsURL: url, rdb: rdb, redisURL: testenv.RedisURL(rdb)}
}

// startKPI runs the kpi app in-process and returns its gRPC client, calling as acme, and a stop
// function that waits.
func startKPI(t *testing.T, s stack, hook func(string) error) (tpv1.KpiServiceClient, func()) {
	t.Helper()
	ts := servicetest.WriteTenants(t, nil)
	r := runKPI(t, s, ts, hook)
	return tpv1.NewKpiServiceClient(r.DialAs(ts.Acme)), r.Stop
}

// runKPI runs the kpi app in-process with the tenants and keys of ts.
func runKPI(t *testing.T, s stack, ts *servicetest.Tenants, hook func(string) error) *servicetest.Running {
	t.Helper()
	cfg := Config{
		Common:  servicetest.Settings(s.natsURL, s.redisURL),
		Consume: consume.Settings{Durable: "kpi", BatchMax: 200, Linger: time.Millisecond, AckWait: 2 * time.Second},
		Workers: 2, SuspectAfter: 5, TicketIndex: true,
		SLA: contrib.DefaultSLA(), SnapshotInterval: 100 * time.Millisecond, StreamReplicas: 1, RollupInterval: time.Second,
		RebuildGrace: 500 * time.Millisecond, RebuildLease: 2 * time.Second,
	}
	cfg.TenantsFile = ts.File
	return servicetest.Start(t, func(ctx context.Context, h service.Hooks) error {
		return Deps{Hooks: h, WriteHook: hook}.Run(ctx, cfg, quiet)
	})
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

func window(from, to time.Time) *tpv1.Window {
	return &tpv1.Window{Kind: &tpv1.Window_Range{Range: &tpv1.TimeRange{From: timestamp(from), To: timestamp(to)}}}
}

// waitKpis polls until cond holds for ana's KPIs over the window, or fails after 15 s.
func waitKpis(t *testing.T, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window, cond func(*tpv1.Kpis) bool) *tpv1.Kpis {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
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

// The kpi process dies between the two write steps (after the ticket state and pending deltas are
// stored, before the buckets are updated) and is restarted: nothing is counted twice or lost.
func TestCrashBetweenWriteStepsThenRestart(t *testing.T) {
	for _, step := range []string{store.StepStored, store.StepApplied} {
		t.Run("after "+step, func(t *testing.T) {
			s := newStack(t)
			js := ticketsJS(t, s)
			var crashes atomic.Int32
			_, stop := startKPI(t, s, func(got string) error {
				if got == step {
					crashes.Add(1)
					return errors.New("process killed")
				}
				return nil
			})
			start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
			for i := 0; i < 10; i++ {
				publishTicket(t, js, fmt.Sprintf("T-%d", i), start)
			}
			deadline := time.Now().Add(10 * time.Second)
			for crashes.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if crashes.Load() == 0 {
				t.Fatal("the write path never reached the crash point")
			}
			stop() // the process is gone; its unacked events will be redelivered

			client, _ := startKPI(t, s, nil)
			waitKpis(t, client, "acme", window(start, start.Add(24*time.Hour)), func(k *tpv1.Kpis) bool { return k.GetCsatCount() >= 10 })
			time.Sleep(300 * time.Millisecond) // let any stray redelivery land before the final read
			k := waitKpis(t, client, "acme", window(start, start.Add(24*time.Hour)), func(*tpv1.Kpis) bool { return true })
			checkFigures(t, k, 10)
		})
	}
}

func publishTicket(t *testing.T, js jetstream.JetStream, ticket string, start time.Time) {
	t.Helper()
	publishEvents(t, js, jsonEvents(ticket, start))
}

// publishEvents publishes acme's events, given in canonical JSON, to TICKETS as ingest does.
func publishEvents(t *testing.T, js jetstream.JetStream, events []map[string]any) {
	t.Helper()
	for _, m := range events {
		ev := toProto(t, m)
		data, err := marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg("tickets.acme." + strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_")))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, "acme/generic/"+ev.GetId())
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	good := Config{Consume: consume.Settings{BatchMax: 500, Linger: time.Millisecond, AckWait: 30 * time.Second}, Workers: 2, SuspectAfter: 5,
		SnapshotInterval: time.Second, RollupInterval: time.Second, RebuildGrace: time.Minute, RebuildLease: 30 * time.Second,
		ExportsPerTenant: 2, ExportTimeout: time.Minute}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"batch", func(c *Config) { c.Consume.BatchMax = 0 }, "-batch-max"},
		{"workers", func(c *Config) { c.Workers = 0 }, "-workers"},
		{"linger", func(c *Config) { c.Consume.Linger = -time.Second }, "-batch-linger"},
		{"ack wait", func(c *Config) { c.Consume.AckWait = time.Millisecond }, "-ack-wait"},
		{"suspect", func(c *Config) { c.SuspectAfter = 1 }, "-suspect-after"},
		{"retention", func(c *Config) { c.Retention = -time.Hour }, "-bucket-retention"},
		{"snapshots", func(c *Config) { c.SnapshotInterval = 0 }, "-snapshot-interval"},
		{"rollup", func(c *Config) { c.RollupInterval = 0 }, "-rollup-interval"},
		{"watermark", func(c *Config) { c.WatermarkInterval = -time.Second }, "-watermark-interval -1s: must not be negative"},
		{"rebuild grace", func(c *Config) { c.RebuildGrace = 0 }, "-rebuild-grace"},
		{"rebuild lease", func(c *Config) { c.RebuildLease = 500 * time.Millisecond }, "-rebuild-lease"},
		{"exports per tenant", func(c *Config) { c.ExportsPerTenant = 0 }, "-exports-per-tenant 0: must be at least 1"},
		{"export timeout", func(c *Config) { c.ExportTimeout = -time.Second }, "-export-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// The real kpi binary is killed with SIGKILL while it works through a backlog, at whatever step it
// is in, and started again: every ticket is counted exactly once.
func TestKillNineMidBacklogThenRestart(t *testing.T) {
	s := newStack(t)
	js := ticketsJS(t, s)
	ctx := context.Background()
	const tickets = 300
	start := time.Date(2026, 2, 2, 9, 0, 0, 0, time.UTC)
	for i := 0; i < tickets; i++ {
		publishTicket(t, js, fmt.Sprintf("T-%d", i), start)
	}

	ts := servicetest.WriteTenants(t, nil)
	bin := filepath.Join(t.TempDir(), "kpi")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ticketpulse/ticketpulse/services/kpi/cmd/kpi").CombinedOutput(); err != nil {
		t.Fatalf("build kpi: %v\n%s", err, out)
	}
	run := func() (*exec.Cmd, string) {
		port, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		grpcAddr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(bin, "-grpc-addr", grpcAddr, "-http-addr", "127.0.0.1:0", "-batch-max", "7", "-workers", "1",
			"-nats-url", s.natsURL, "-redis-url", s.redisURL, "-log-level", "warn", "-ack-wait", "2s",
			"-tenants-file", ts.File)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, grpcAddr
	}
	first, _ := run()
	// Kill it once it has acknowledged some of the backlog but not all of it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		cons, err := js.Consumer(ctx, stream.TicketsName, "kpi")
		if err == nil {
			if info, err := cons.Info(ctx); err == nil && info.AckFloor.Stream > 50 {
				if info.AckFloor.Stream >= tickets*5 {
					t.Fatal("kpi finished the backlog before it could be killed; make the batches smaller")
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("kpi never acknowledged anything")
		}
		time.Sleep(time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()

	_, grpcAddr := run()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(ts.Acme)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := tpv1.NewKpiServiceClient(conn)
	w := window(start, start.Add(24*time.Hour))
	waitKpis(t, client, "acme", w, func(k *tpv1.Kpis) bool { return k.GetCsatCount() >= tickets })
	time.Sleep(2500 * time.Millisecond) // past the ack wait: any redelivery has landed
	checkFigures(t, waitKpis(t, client, "acme", w, func(*tpv1.Kpis) bool { return true }), tickets)
}

// The flags main used to declare are kpi's own settings now: defaults, the environment and
// -sla-first-response parsed into targets.
func TestRegister(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantSLA contrib.SLA
		wantErr string
	}{
		{name: "defaults", wantSLA: contrib.DefaultSLA()},
		{name: "environment", env: map[string]string{"TICKETPULSE_SLA_FIRST_RESPONSE": "urgent=30m"},
			wantSLA: contrib.SLA{FirstResponse: map[tpv1.Priority]time.Duration{tpv1.Priority_PRIORITY_URGENT: 30 * time.Minute}}},
		{name: "flag", args: []string{"-sla-first-response", "low=0,high=2h"},
			wantSLA: contrib.SLA{FirstResponse: map[tpv1.Priority]time.Duration{tpv1.Priority_PRIORITY_LOW: 0, tpv1.Priority_PRIORITY_HIGH: 2 * time.Hour}}},
		{name: "bad flag", args: []string{"-sla-first-response", "soon=1h"},
			wantErr: `invalid value "soon=1h" for flag -sla-first-response: sla target "soon=1h": priority must be urgent, high, normal or low`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			s := envflag.New("kpi", "test", func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			var help strings.Builder
			s.SetOutput(&help)
			cfg.Register(s)
			err := s.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Parse = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if !reflect.DeepEqual(cfg.SLA, tt.wantSLA) {
				t.Errorf("SLA %v, want %v", cfg.SLA, tt.wantSLA)
			}
			if cfg.GRPCAddr != "127.0.0.1:9090" || cfg.HTTPAddr != "127.0.0.1:9190" || cfg.Consume.BatchMax != 500 || cfg.Consume.Durable != "kpi" ||
				cfg.WatermarkInterval != time.Second {
				t.Errorf("defaults %+v", cfg)
			}
		})
	}
}
