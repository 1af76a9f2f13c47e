package routing

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
)

// examplePath is the example docs/notifications.md and deployments point at, so it is kept valid by this test.
const examplePath = "../../../../deploy/notify/routing.example.yaml"

var (
	hookSecret     = "whsec_" + base64.StdEncoding.EncodeToString([]byte("sekrit-hook-key"))
	hookSecretPrev = "whsec_" + base64.StdEncoding.EncodeToString([]byte("sekrit-old-key"))
)

// Every secret value in these tests contains "sekrit", so one check can tell that none leaked.
var testEnv = map[string]string{
	"SLACK_BILLING_URL":    "https://hooks.slack.example/services/sekrit",
	"HOOK_SECRET":          hookSecret,
	"HOOK_SECRET_PREVIOUS": hookSecretPrev,
	"SMTP_PASSWORD":        "sekrit-password",
	"NOT_WHSEC":            "sekrit-not-whsec",
	"BAD_BASE64":           "whsec_sekrit!!",
	"EMPTY_KEY":            "whsec_",
	"NOT_A_URL":            "sekrit-not-a-url",
}

func getenv(name string) string { return testEnv[name] }

const teamsURL = "https://example.webhook.office.com/webhookb2/sekrit"

// exampleDir copies the example into a fresh directory next to the secret file it reads.
func exampleDir(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "routing.yaml"), string(data))
	writeFile(t, filepath.Join(dir, "secrets", "teams-url"), teamsURL+"\n")
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func loadExample(t *testing.T) *Config {
	t.Helper()
	path := filepath.Join(exampleDir(t), "routing.yaml")
	cfg, err := Load(path, getenv)
	if err != nil {
		t.Fatalf("Load(example):\n%v", err)
	}
	if cfg.File != path {
		t.Errorf("File = %q, want %q", cfg.File, path)
	}
	return cfg
}

func TestLoadExampleReceivers(t *testing.T) {
	cfg := loadExample(t)
	wantOrder := []string{"billing-slack", "ops-teams", "supervisor-hook", "leads-mail", "local-relay"}
	if !slices.Equal(cfg.ReceiverOrder, wantOrder) || len(cfg.Receivers) != len(wantOrder) {
		t.Fatalf("receivers %v (%d); want %v", cfg.ReceiverOrder, len(cfg.Receivers), wantOrder)
	}
	want := map[string]*receiver.Config{
		"billing-slack": {
			Name: "billing-slack", Kind: receiver.KindSlack,
			Slack:  &receiver.ChatConfig{URL: testEnv["SLACK_BILLING_URL"]},
			Limits: receiver.Limits{Timeout: 5 * time.Second, Deadline: 2 * time.Hour, RatePerSecond: 0.5, Burst: 3, Concurrency: 1},
			Templates: receiver.Templates{
				Title: `{{ upper "billing" }}: {{ len .Changes }} escalation change(s)`,
				Text:  `{{ range .Changes }}{{ .GetEscalation.GetRule }} {{ end }}`,
				Link:  `https://acme.zendesk.com/agent/tickets/{{ label . "ticket" }}`,
			},
		},
		"ops-teams": {
			Name: "ops-teams", Kind: receiver.KindTeams,
			Teams:  &receiver.ChatConfig{URL: teamsURL},
			Limits: DefaultLimits,
		},
		"supervisor-hook": {
			Name: "supervisor-hook", Kind: receiver.KindWebhook,
			Webhook: &receiver.WebhookConfig{URL: "https://hooks.example.com/ticketpulse", Secrets: []string{hookSecret, hookSecretPrev}},
			Limits:  DefaultLimits,
		},
		"leads-mail": {
			Name: "leads-mail", Kind: receiver.KindEmail,
			Email: &receiver.EmailConfig{
				To: []string{"lead@example.com", "manager@example.com"}, From: "Ticketpulse <ticketpulse@example.com>",
				Smarthost: "smtp.example.com:587", Username: "ticketpulse", Password: "sekrit-password", TLS: receiver.TLSStartTLS,
			},
			Limits:    DefaultLimits,
			Templates: receiver.Templates{HTML: `<p>{{ len .Changes }} change(s) · notification {{ .ID }}</p>`},
		},
		"local-relay": {
			Name: "local-relay", Kind: receiver.KindEmail,
			Email: &receiver.EmailConfig{
				To: []string{"oncall@example.com"}, From: "ticketpulse@example.com", Smarthost: "localhost:25", TLS: receiver.TLSNone,
			},
			Limits: DefaultLimits,
		},
	}
	for name, w := range want {
		if got := cfg.Receivers[name]; !reflect.DeepEqual(got, w) {
			t.Errorf("receiver %s:\n got %+v\nwant %+v", name, got, w)
		}
	}
	if DefaultLimits != (receiver.Limits{Timeout: 10 * time.Second, Deadline: time.Hour, RatePerSecond: 1, Burst: 5, Concurrency: 2}) {
		t.Errorf("DefaultLimits = %+v", DefaultLimits)
	}
}

// routeSummary is what the file says of a route, without its children.
type routeSummary struct {
	Path, Receiver, Matchers, QuietName string
	Continue, GroupByAll, Quiet         bool
	GroupBy                             []string
	Wait, Interval, Repeat              time.Duration
	Children                            int
}

func summary(r *Route) routeSummary {
	return routeSummary{
		Path: r.Path, Receiver: r.Receiver, Matchers: r.Matchers.String(), QuietName: r.QuietName,
		Continue: r.Continue, GroupByAll: r.GroupByAll, Quiet: r.Quiet != nil, GroupBy: r.GroupBy,
		Wait: r.GroupWait, Interval: r.GroupInterval, Repeat: r.RepeatInterval, Children: len(r.Routes),
	}
}

// walk lists the routes depth-first.
func walk(r *Route) []*Route {
	out := []*Route{r}
	for _, c := range r.Routes {
		out = append(out, walk(c)...)
	}
	return out
}

func TestLoadExampleRoutes(t *testing.T) {
	cfg := loadExample(t)
	const s, m, h = time.Second, time.Minute, time.Hour
	want := []routeSummary{
		{Path: "route", Receiver: "ops-teams", Matchers: "{}", GroupBy: []string{"tenant", "rule"},
			Wait: 30 * s, Interval: 5 * m, Repeat: 4 * h, Children: 3},
		{Path: "route.routes[0]", Receiver: "leads-mail",
			Matchers: `{tenant="acme", team=~"billing|finance", severity!="info"}`,
			Continue: true, GroupBy: []string{"tenant", "team", "rule"}, Quiet: true, QuietName: "Europe/Berlin quiet hours",
			Wait: 30 * s, Interval: 5 * m, Repeat: 4 * h},
		{Path: "route.routes[1]", Receiver: "billing-slack", Matchers: `{tenant="acme"}`, GroupBy: []string{"tenant", "rule"},
			Wait: 10 * s, Interval: 5 * m, Repeat: 4 * h, Children: 2},
		{Path: "route.routes[1].routes[0]", Receiver: "supervisor-hook", Matchers: `{severity="critical"}`, GroupByAll: true,
			Wait: 10 * s, Interval: 5 * m, Repeat: 1 * h},
		{Path: "route.routes[1].routes[1]", Receiver: "billing-slack", Matchers: `{subject_kind!~"ticket|team"}`,
			GroupBy: []string{"tenant", "rule"}, Wait: 10 * s, Interval: 10 * m, Repeat: 4 * h},
		{Path: "route.routes[2]", Receiver: "local-relay", Matchers: `{rule="reopened-twice"}`, GroupBy: []string{},
			Wait: 30 * s, Interval: 5 * m, Repeat: 4 * h},
	}
	routes := walk(cfg.Root)
	if len(routes) != len(want) {
		t.Fatalf("%d routes, want %d", len(routes), len(want))
	}
	for i, r := range routes {
		if got := summary(r); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("route %d:\n got %+v\nwant %+v", i, got, want[i])
		}
	}
}

func TestLoadExampleSilencesAndInhibits(t *testing.T) {
	cfg := loadExample(t)
	if len(cfg.Silences) != 1 {
		t.Fatalf("%d silences, want 1", len(cfg.Silences))
	}
	sil := cfg.Silences[0]
	if got := sil.Matchers.String(); got != `{rule="reopened-twice"}` ||
		!sil.Starts.Equal(time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC)) ||
		!sil.Ends.Equal(time.Date(2026, 12, 27, 0, 0, 0, 0, time.UTC)) ||
		sil.Comment != "holidays: nobody reads reopen reports" {
		t.Errorf("silence = %s %v..%v %q", got, sil.Starts, sil.Ends, sil.Comment)
	}
	if len(cfg.Inhibits) != 1 {
		t.Fatalf("%d inhibit rules, want 1", len(cfg.Inhibits))
	}
	ir := cfg.Inhibits[0]
	if ir.Source.String() != `{rule=~"low-csat|low-resolution-rate", subject_kind="agent"}` ||
		ir.Target.String() != `{subject_kind="ticket"}` || !slices.Equal(ir.Equal, []string{"tenant", "agent"}) {
		t.Errorf("inhibit rule = %s %s %v", ir.Source, ir.Target, ir.Equal)
	}
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Parse("r.yaml", t.TempDir(), []byte("receivers: [{name: a, slack: {url: {env: SLACK_BILLING_URL}}}]\nroute: {receiver: a}\n"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	got := summary(cfg.Root)
	want := routeSummary{Path: "route", Receiver: "a", Matchers: "{}", GroupBy: DefaultGroupBy,
		Wait: DefaultGroupWait, Interval: DefaultGroupInterval, Repeat: DefaultRepeatInterval}
	if !reflect.DeepEqual(got, want) || cfg.Silences != nil || cfg.Inhibits != nil {
		t.Errorf("root = %+v, silences %v, inhibits %v", got, cfg.Silences, cfg.Inhibits)
	}
	if DefaultGroupWait != 30*time.Second || DefaultGroupInterval != 5*time.Minute || DefaultRepeatInterval != 4*time.Hour ||
		!slices.Equal(DefaultGroupBy, []string{"tenant", "rule"}) {
		t.Error("defaults changed")
	}
}

func TestLoadUnreadable(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), getenv)
	var probs Problems
	if err == nil || errors.As(err, &probs) || !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "read routing file: ") {
		t.Fatalf("err = %v; want a read error", err)
	}
}

func TestLoadUsesOSEnvironmentByDefault(t *testing.T) {
	t.Setenv("TP_ROUTING_TEST_URL", "https://hooks.slack.example/services/x")
	cfg, err := Parse("r.yaml", t.TempDir(), []byte("receivers: [{name: a, slack: {url: {env: TP_ROUTING_TEST_URL}}}]\nroute: {receiver: a}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Receivers["a"].Slack.URL; got != "https://hooks.slack.example/services/x" {
		t.Errorf("URL = %q", got)
	}
}
