package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/consumerlag"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// Docker cannot run here, so the observability profile is checked by reading its files: every
// file compose mounts exists, and the addresses the collector, Prometheus and Grafana give each
// other are the ones the others listen on. The metric names the dashboard and the alert rules
// query are the ones the services export (their TestMetricsPage tests scrape each of them).

// exported are the series the dashboard and the alerts may use: the services' own, with the
// suffixes Prometheus gives them.
var exported = []string{
	"ingest_events_total", "ingest_webhook_deliveries_total", "ingest_http_requests_total", "ingest_publish_duration_seconds_bucket",
	"kpi_batch_write_seconds_bucket", "kpi_batch_size_bucket", "kpi_events_total", "kpi_duplicate_events_total",
	"messaging_consumer_pending", "messaging_consumer_ack_pending", "messaging_consumer_redelivered", "messaging_consumer_oldest_unacked_age_seconds",
	"deadletter_messages_total",
	"escalation_open", "escalation_timer_delay_seconds_bucket", "escalation_timers_pending", "escalation_ticket_events_total",
	"notify_deliveries_total", "notify_attempts_total", "notify_attempt_seconds_bucket",
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Profiles    []string          `yaml:"profiles"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// mounts maps each bind mount's container path to its path in the repository.
func (s composeService) mounts() map[string]string {
	out := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.HasPrefix(parts[0], "./") {
			out[parts[1]] = strings.TrimPrefix(parts[0], "./")
		}
	}
	return out
}

// hostFile maps a container path of svc to the repository file bind-mounted there ("" if none).
func (s composeService) hostFile(container string) string {
	for target, src := range s.mounts() {
		if container == target {
			return src
		}
		if rest, ok := strings.CutPrefix(container, target+"/"); ok {
			return filepath.Join(src, rest)
		}
	}
	return ""
}

// containerPorts lists the container ports svc publishes.
func (s composeService) containerPorts() []string {
	var out []string
	for _, p := range s.Ports {
		out = append(out, p[strings.LastIndexByte(p, ':')+1:])
	}
	return out
}

func splitHostPort(t *testing.T, what, addr string) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	return host, port
}

func TestObservabilityProfile(t *testing.T) {
	var c composeFile
	readYAML(t, "docker-compose.yml", &c)
	for name, s := range c.Services {
		for target, src := range s.mounts() {
			if _, err := os.Stat(filepath.Join("..", src)); err != nil {
				t.Errorf("%s mounts %s at %s: %v", name, src, target, err)
			}
		}
		observability := slices.Contains([]string{"otel-collector", "jaeger", "prometheus", "grafana"}, name)
		if got := slices.Equal(s.Profiles, []string{"observability"}); got != observability {
			t.Errorf("%s: profiles %v; want [observability] exactly for the collector, Jaeger, Prometheus and Grafana", name, s.Profiles)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %q is published beyond the host's loopback", name, p)
			}
		}
	}

	// The collector: OTLP where compose publishes it and where the services are told to send.
	col := c.Services["otel-collector"]
	var collector struct {
		Receivers map[string]struct {
			Protocols map[string]struct {
				Endpoint string `yaml:"endpoint"`
			} `yaml:"protocols"`
		} `yaml:"receivers"`
		Processors map[string]any `yaml:"processors"`
		Exporters  map[string]struct {
			Endpoint string `yaml:"endpoint"`
		} `yaml:"exporters"`
		Service struct {
			Pipelines map[string]struct {
				Receivers, Processors, Exporters []string
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	config := strings.TrimPrefix(col.Command[0], "--config=")
	file := col.hostFile(config)
	if file == "" {
		t.Fatalf("otel-collector: its config %s is not mounted from the repository", config)
	}
	readYAML(t, file, &collector)
	wantPorts := map[string]string{"grpc": "4317", "http": "4318"}
	for proto, port := range wantPorts {
		_, got := splitHostPort(t, "collector otlp "+proto, collector.Receivers["otlp"].Protocols[proto].Endpoint)
		if got != port {
			t.Errorf("collector OTLP %s listens on %s; want %s", proto, got, port)
		}
		if !slices.Contains(col.Ports, "127.0.0.1:"+port+":"+port) {
			t.Errorf("otel-collector ports %v lack OTLP %s on 127.0.0.1:%s", col.Ports, proto, port)
		}
	}
	for name, p := range collector.Service.Pipelines {
		for _, r := range p.Receivers {
			if _, ok := collector.Receivers[r]; !ok {
				t.Errorf("collector pipeline %s: receiver %s not defined", name, r)
			}
		}
		for _, r := range p.Processors {
			if _, ok := collector.Processors[r]; !ok {
				t.Errorf("collector pipeline %s: processor %s not defined", name, r)
			}
		}
		for _, r := range p.Exporters {
			if _, ok := collector.Exporters[r]; !ok {
				t.Errorf("collector pipeline %s: exporter %s not defined", name, r)
			}
		}
	}
	if len(collector.Service.Pipelines["traces"].Exporters) == 0 || len(collector.Service.Pipelines["metrics"].Exporters) == 0 {
		t.Error("collector: want a traces and a metrics pipeline")
	}
	if host, port := splitHostPort(t, "collector jaeger exporter", collector.Exporters["otlp/jaeger"].Endpoint); host != "jaeger" || port != "4317" {
		t.Errorf("collector sends traces to %s:%s; want jaeger:4317 (Jaeger's OTLP gRPC port)", host, port)
	}
	_, promExporterPort := splitHostPort(t, "collector prometheus exporter", collector.Exporters["prometheus"].Endpoint)
	// The services' endpoint: .env's example names the collector's gRPC port.
	example, err := os.ReadFile(filepath.Join("..", "deploy", "compose.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(example), "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317\n") {
		t.Error("deploy/compose.env.example does not show the collector's endpoint http://otel-collector:4317")
	}
	for _, svc := range services {
		if got := c.Services[svc].Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]; got != "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q; want it from .env, empty by default", svc, got)
		}
	}

	// Prometheus: each service's admin port, the collector's exporter, and rule files that exist.
	prom := c.Services["prometheus"]
	promConfig := prom.hostFile(strings.TrimPrefix(prom.Command[0], "--config.file="))
	if promConfig == "" {
		t.Fatalf("prometheus: its config %s is not mounted from the repository", prom.Command[0])
	}
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, promConfig, &pc)
	for _, rf := range pc.RuleFiles {
		if _, err := os.Stat(filepath.Join("..", filepath.Dir(promConfig), rf)); err != nil {
			t.Errorf("prometheus rule file %s: %v", rf, err)
		}
	}
	targets := map[string]string{}
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[sc.JobName] = tg
			}
		}
	}
	for _, svc := range services {
		_, admin := splitHostPort(t, svc+" admin address", c.Services[svc].Environment["TICKETPULSE_ADMIN_ADDR"])
		if want := svc + ":" + admin; targets[svc] != want {
			t.Errorf("prometheus job %s scrapes %q; want %s (its admin address)", svc, targets[svc], want)
		}
	}
	if want := "otel-collector:" + promExporterPort; targets["otel-collector"] != want {
		t.Errorf("prometheus scrapes the collector at %q; want %s", targets["otel-collector"], want)
	}

	// Grafana: data sources at the addresses Prometheus and Jaeger listen on, and the dashboard
	// where the provider reads it.
	graf := c.Services["grafana"]
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, graf.hostFile("/etc/grafana/provisioning/datasources/datasources.yaml"), &ds)
	uids := map[string]bool{}
	for _, d := range ds.Datasources {
		uids[d.UID] = true
		u, err := url.Parse(d.URL)
		if err != nil {
			t.Fatalf("grafana data source %s: %v", d.UID, err)
		}
		target, ok := c.Services[u.Hostname()]
		if !ok {
			t.Errorf("grafana data source %s points at %s, not a compose service", d.UID, d.URL)
			continue
		}
		if !slices.Contains(target.containerPorts(), u.Port()) {
			t.Errorf("grafana data source %s uses port %s; %s listens on %v", d.UID, u.Port(), u.Hostname(), target.containerPorts())
		}
	}
	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, graf.hostFile("/etc/grafana/provisioning/dashboards/dashboards.yaml"), &providers)
	if len(providers.Providers) != 1 {
		t.Fatalf("grafana: %d dashboard providers; want 1", len(providers.Providers))
	}
	dashDir := graf.hostFile(providers.Providers[0].Options.Path)
	home := graf.hostFile(graf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
	if dashDir == "" || filepath.Dir(home) != dashDir {
		t.Fatalf("grafana reads dashboards from %q (home %q); want the mounted deploy/grafana/dashboards", dashDir, home)
	}
	raw, err := os.ReadFile(filepath.Join("..", home))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", home, err)
	}
	var exprs []string
	rows := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			rows[p.Title] = true
			continue
		}
		if !uids[p.Datasource.UID] {
			t.Errorf("dashboard panel %q uses data source %q, which is not provisioned", p.Title, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, want := range []string{"Pipeline throughput and lag", "KPI write latency", "Escalation timers", "Notification outcomes"} {
		if !rows[want] {
			t.Errorf("dashboard lacks the row %q", want)
		}
	}

	// Alert rules query the same series.
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, filepath.Join(filepath.Dir(promConfig), "alerts.yml"), &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	checkSeriesNames(t, exprs)
}

// ourSeries finds the names of Ticketpulse series in a PromQL expression.
var ourSeries = regexp.MustCompile(`\b(?:ingest|kpi|escalation|notify|messaging|deadletter)_[a-z0-9_]+\b`)

func checkSeriesNames(t *testing.T, exprs []string) {
	t.Helper()
	used := map[string]bool{}
	for _, e := range exprs {
		// Label names (messaging_consumer_group_name in "by (...)" or "{...}") are not series.
		for _, loc := range ourSeries.FindAllStringIndex(e, -1) {
			name := e[loc[0]:loc[1]]
			if strings.HasSuffix(name, "_name") || strings.HasSuffix(name, "_system") {
				continue
			}
			used[name] = true
			if !slices.Contains(exported, name) {
				t.Errorf("%q queries %s, which no service exports", e, name)
			}
		}
	}
	for _, want := range []string{"messaging_consumer_oldest_unacked_age_seconds", "deadletter_messages_total", "escalation_timer_delay_seconds_bucket",
		"notify_deliveries_total", "kpi_batch_write_seconds_bucket", "ingest_events_total", "escalation_open"} {
		if !used[want] {
			t.Errorf("neither the dashboard nor the alerts use %s", want)
		}
	}
}

// Each service's NATS user of deploy/nats.conf may read what consumerlag reads for its durables:
// their state, and the oldest message each has not acknowledged.
func TestDeployConsumerLagPermissions(t *testing.T) {
	natsPW, _ := deployPasswords(t)
	_, natsHost := deployNATS(t)
	as := func(svc string) jetstream.JetStream { return jsAs(t, "nats://"+svc+":"+natsPW[svc]+"@"+natsHost, svc) }
	ctx := context.Background()
	// Each stream created by its owner, with one message in it.
	for _, o := range []struct {
		owner   string
		sc      jetstream.StreamConfig
		subject string
	}{
		{"ingest", stream.Tickets(0, 1), "tickets.acme.ticket_created"},
		{"kpi", stream.KPI(1), "kpi.acme.agent.ana"},
		{"escalation", stream.Escalations(1), "escalations.acme.sla-first-response"},
	} {
		js := as(o.owner)
		if _, err := stream.Ensure(ctx, js, o.sc); err != nil {
			t.Fatalf("%s creates %s: %v", o.owner, o.sc.Name, err)
		}
		if _, err := js.Publish(ctx, o.subject, []byte("x")); err != nil {
			t.Fatalf("%s publishes on %s: %v", o.owner, o.subject, err)
		}
	}
	for _, c := range []struct {
		svc      string
		durables []consumerlag.Durable
	}{
		{"kpi", []consumerlag.Durable{{Stream: stream.TicketsName, Name: "kpi", Filter: stream.TicketsFilter}}},
		{"escalation", []consumerlag.Durable{{Stream: stream.TicketsName, Name: "escalation", Filter: stream.TicketsFilter},
			{Stream: stream.KPIName, Name: "escalation-kpi", Filter: stream.KPIFilter}}},
		{"notify", []consumerlag.Durable{{Stream: stream.EscalationsName, Name: "notify", Filter: stream.EscalationsFilter}}},
	} {
		t.Run(c.svc, func(t *testing.T) {
			js := as(c.svc)
			for _, d := range c.durables {
				if _, err := js.CreateOrUpdateConsumer(ctx, d.Stream, jetstream.ConsumerConfig{Durable: d.Name, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: d.Filter}); err != nil {
					t.Fatalf("create durable %s/%s: %v", d.Stream, d.Name, err)
				}
			}
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer mp.Shutdown(ctx)
			logs := &testenv.LogBuffer{}
			if err := consumerlag.Observe(mp.Meter("test"), js, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), c.durables...); err != nil {
				t.Fatal(err)
			}
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(ctx, &rm); err != nil {
				t.Fatal(err)
			}
			ages := map[string]float64{}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if g, ok := m.Data.(metricdata.Gauge[float64]); ok && m.Name == consumerlag.OldestAgeName {
						for _, p := range g.DataPoints {
							v, _ := p.Attributes.Value("messaging.consumer.group.name")
							ages[v.AsString()] = p.Value
						}
					}
				}
			}
			for _, d := range c.durables {
				if a, ok := ages[d.Name]; !ok || a <= 0 {
					t.Errorf("%s: oldest unacknowledged age of %s is %v (read: %v); want the waiting message's age. Log:\n%s", c.svc, d.Name, a, ok, logs.String())
				}
			}
		})
	}
}
