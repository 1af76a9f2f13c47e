package receiver

import (
	"encoding/json"
	"strings"
	"testing"
)

// A receiver's link template gives each change a URL, shown in every message format; a result
// that is not an http(s) URL is left out.
func TestLinks(t *testing.T) {
	link := Templates{Link: `{{if eq (label . "ticket") "T-78"}}javascript:alert(1){{else}}https://acme.example.com/tickets/{{label . "ticket"}}{{end}}`}
	n := notification(2)
	tpl, err := compileTemplates("ops", link, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tpl.render(n, true)
	if err != nil {
		t.Fatal(err)
	}
	if n.LinkOf(n.Changes[0]) != "https://acme.example.com/tickets/T-77" || n.LinkOf(n.Changes[1]) != "" {
		t.Fatalf("links %q %q", n.LinkOf(n.Changes[0]), n.LinkOf(n.Changes[1]))
	}
	if !strings.Contains(r.Text, "    https://acme.example.com/tickets/T-77\n") || strings.Contains(r.Text, "javascript") {
		t.Errorf("text:\n%s", r.Text)
	}
	if !strings.Contains(r.HTML, `<a href="https://acme.example.com/tickets/T-77">Open</a>`) || strings.Contains(r.HTML, "javascript") {
		t.Errorf("html lacks the link:\n%s", r.HTML)
	}
	slack, _ := json.Marshal(slackPayload(n, r, false))
	if !strings.Contains(string(slack), `\u003chttps://acme.example.com/tickets/T-77|Open ticket T-77\u003e`) {
		t.Errorf("slack payload lacks the link: %s", slack)
	}
	teams, _ := json.Marshal(teamsPayload(n, r, false))
	if !strings.Contains(string(teams), `[Open ticket T-77](https://acme.example.com/tickets/T-77)`) {
		t.Errorf("teams payload lacks the link: %s", teams)
	}
	if _, err := New(Config{Name: "ops", Kind: KindSlack, Slack: &ChatConfig{URL: "http://127.0.0.1:1/x"}, Templates: Templates{Link: "{{"}}, Options{}); err == nil {
		t.Error("a broken link template was accepted")
	}
	if err := ParseTemplates("ops", Templates{Link: "{{ .Nope"}); err == nil || !strings.Contains(err.Error(), "link template") {
		t.Errorf("ParseTemplates(broken link) = %v", err)
	}
}
