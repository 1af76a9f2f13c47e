package receiver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

func TestDefaultTemplates(t *testing.T) {
	tpl, err := compileTemplates("t", Templates{}, nil)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("one change", func(t *testing.T) {
		r, err := tpl.render(notification(1), true)
		if err != nil {
			t.Fatal(err)
		}
		if want := "[CRITICAL] 1 escalation · acme · billing"; r.Title != want {
			t.Errorf("title = %q, want %q", r.Title, want)
		}
		want := "TRIGGERED sla-first-response · ticket T-77 · level 1 → team-lead: First reply overdue on “Refund not received”\n" +
			"    target=1h0m0s elapsed=1h5m0s"
		if r.Text != want {
			t.Errorf("text =\n%s\nwant\n%s", r.Text, want)
		}
		for _, s := range []string{"<table", "<strong>TRIGGERED</strong>", "T-77", "target=1h0m0s", "notification ntf-0001", "[CRITICAL]"} {
			if !strings.Contains(r.HTML, s) {
				t.Errorf("html lacks %q:\n%s", s, r.HTML)
			}
		}
	})

	t.Run("sixty changes", func(t *testing.T) {
		n := notification(60)
		r, err := tpl.render(n, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := "[CRITICAL] 60 escalations · acme · billing"; r.Title != want {
			t.Errorf("title = %q, want %q", r.Title, want)
		}
		if got := strings.Count(r.Text, "TRIGGERED sla-first-response"); got != 60 {
			t.Errorf("text has %d change lines, want 60", got)
		}
		if got := strings.Count(r.HTML, "<tr style=\"border-top"); got != 60 {
			t.Errorf("html has %d change rows, want 60", got)
		}
	})

	t.Run("mixed and resolved", func(t *testing.T) {
		n := notification(0)
		n.Changes = []*tpv1.EscalationChange{
			change(0, tpv1.ChangeKind_CHANGE_KIND_RESOLVED, tpv1.Severity_SEVERITY_WARNING),
			change(0, tpv1.ChangeKind_CHANGE_KIND_RESOLVED, tpv1.Severity_SEVERITY_WARNING), // same escalation
		}
		r, err := tpl.render(n, false)
		if err != nil {
			t.Fatal(err)
		}
		if want := "[RESOLVED] 1 escalation · acme · billing"; r.Title != want {
			t.Errorf("title = %q, want %q", r.Title, want)
		}
		n.Changes = append(n.Changes, change(1, tpv1.ChangeKind_CHANGE_KIND_RAISED, tpv1.Severity_SEVERITY_WARNING))
		if r, _ = tpl.render(n, false); r.Title != "[WARNING] 2 escalations · acme · billing" {
			t.Errorf("title = %q", r.Title)
		}
	})

	t.Run("HTML escapes", func(t *testing.T) {
		n := notification(1)
		n.Changes[0].Escalation.Summary = `<script>alert("x")</script>`
		r, err := tpl.render(n, true)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(r.HTML, "<script>") || !strings.Contains(r.HTML, "&lt;script&gt;") {
			t.Errorf("summary not escaped in html")
		}
	})
}

func TestCustomTemplates(t *testing.T) {
	rec := newRecorder(t, nil)
	s, err := New(Config{
		Name: "custom", Kind: KindSlack, Slack: &ChatConfig{URL: rec.url("/hook")},
		Templates: Templates{
			Title: `{{len .Changes}} for team {{label . "team"}}`,
			Text:  `{{range .Changes}}{{kind . | lower}} {{.Escalation.SubjectId}} ({{fact . "elapsed"}}){{"\n"}}{{end}}`,
		},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res := s.Send(context.Background(), notification(2)); res.Err != nil {
		t.Fatal(res.Err)
	}
	var msg slackMessage
	if err := json.Unmarshal(rec.requests()[0].Body, &msg); err != nil {
		t.Fatal(err)
	}
	if got := msg.Blocks[0].Text.Text; got != "2 for team billing" {
		t.Errorf("header = %q", got)
	}
	// An overridden text replaces the per-change sections.
	if len(msg.Blocks) != 3 || msg.Blocks[1].Type != "section" ||
		msg.Blocks[1].Text.Text != "triggered T-77 (1h5m0s)\ntriggered T-78 (1h5m0s)" {
		t.Errorf("blocks = %+v", msg.Blocks)
	}
	if !strings.HasPrefix(msg.Text, "2 for team billing\ntriggered T-77") {
		t.Errorf("fallback text = %q", msg.Text)
	}
}

func TestBrokenTemplates(t *testing.T) {
	for name, tpl := range map[string]Templates{
		"title": {Title: `{{if}}`},
		"text":  {Text: `{{range .Changes}}`},
		"html":  {HTML: `<p>{{.ID</p>`},
		"func":  {Title: `{{nosuchfunc .}}`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(Config{Name: "r", Kind: KindSlack, Slack: &ChatConfig{URL: "http://127.0.0.1:1/x"}, Templates: tpl}, Options{})
			if err == nil || !strings.Contains(err.Error(), "template") {
				t.Fatalf("New = %v, want a template error", err)
			}
		})
	}

	t.Run("fails when executed", func(t *testing.T) {
		rec := newRecorder(t, nil)
		s, err := New(Config{Name: "r", Kind: KindSlack, Slack: &ChatConfig{URL: rec.url("/")},
			Templates: Templates{Title: `{{.NoSuchField}}`}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		res := s.Send(context.Background(), notification(1))
		if res.Err == nil || res.Retryable || len(rec.requests()) != 0 {
			t.Fatalf("Send = %+v, %d requests; want a non-retryable error and none", res, len(rec.requests()))
		}
	})
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"unknown kind":     {Kind: "pager"},
		"missing slack":    {Kind: KindSlack},
		"relative url":     {Kind: KindTeams, Teams: &ChatConfig{URL: "/hook"}},
		"no secrets":       {Kind: KindWebhook, Webhook: &WebhookConfig{URL: "https://x.example/h"}},
		"bad secret":       {Kind: KindWebhook, Webhook: &WebhookConfig{URL: "https://x.example/h", Secrets: []string{"whsec_!!"}}},
		"no smarthost":     {Kind: KindEmail, Email: &EmailConfig{From: "a@x.example", To: []string{"b@x.example"}}},
		"no recipients":    {Kind: KindEmail, Email: &EmailConfig{From: "a@x.example", Smarthost: "127.0.0.1:25"}},
		"unknown tls mode": {Kind: KindEmail, Email: &EmailConfig{From: "a@x.example", To: []string{"b@x.example"}, Smarthost: "127.0.0.1:25", TLS: "ssl"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg, Options{}); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestFuncs(t *testing.T) {
	c := change(0, tpv1.ChangeKind_CHANGE_KIND_RAISED, tpv1.Severity_SEVERITY_WARNING)
	c.Escalation.Level = 2
	c.Escalation.Labels["targets"] = "duty-manager,cx-director"
	c.Escalation.Facts = append(c.Escalation.Facts, &tpv1.Fact{Name: "rating", Value: "1"})
	if got, want := headline(c), "RAISED sla-first-response · ticket T-77 · level 2 → duty-manager, cx-director"; got != want {
		t.Errorf("headline = %q, want %q", got, want)
	}
	if got, want := factsLine(c), "target=1h0m0s elapsed=1h5m0s rating=1"; got != want {
		t.Errorf("facts = %q, want %q", got, want)
	}
	if got := fact(c, "missing"); got != "" {
		t.Errorf("fact(missing) = %q", got)
	}
	if got := truncate(5, "abcdefgh"); got != "abcd…" {
		t.Errorf("truncate = %q", got)
	}
	if got := plural("escalation", 0); got != "0 escalations" {
		t.Errorf("plural = %q", got)
	}
	if got := splitText("aaaa\nbbbb\ncc", 9); len(got) != 2 || got[0] != "aaaa\nbbbb" || got[1] != "cc" {
		t.Errorf("splitText = %q", got)
	}
	if got := messageID("ntf 1/<x>"); got != "<ntf-1/-x-@ticketpulse>" {
		t.Errorf("messageID = %q", got)
	}
}
