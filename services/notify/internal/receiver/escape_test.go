package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Hostile ticket data: a customer comment that is a Markdown link, a ticket id with the
// characters that end or format a link, an agent id that is Slack's channel mention.
const (
	evilComment = "[Sign in](https://evil.example)"
	evilTicket  = "T 1|<x>*&"
	evilAgent   = "<!channel>"
)

// hostile is a notification of two changes carrying the hostile data: a ticket escalation whose
// summary is the comment, and an agent escalation whose summary is a Slack link.
func hostile() *Notification {
	n := notification(2)
	// A line break in a label would start a new e-mail header if the subject kept it.
	n.GroupLabels = map[string]string{"tenant": "acme", "agent": evilAgent, "team": "billing\r\nBcc: victim@evil.example"}
	t := n.Changes[0].Escalation
	t.SubjectId, t.Labels["ticket"], t.Summary = evilTicket, evilTicket, evilComment
	t.Facts = []*tpv1.Fact{{Name: "note_1", Value: "*bold* _it_ ~s~ `c`"}}
	a := n.Changes[1].Escalation
	a.SubjectKind, a.SubjectId, a.Summary = "agent", evilAgent, "<https://evil.example|Sign in> &\n> quote\n- item\n12. item"
	delete(a.Labels, "ticket")
	a.Labels["agent"] = evilAgent
	a.Facts = nil
	return n
}

const hostileLink = `https://acme.example.com/tickets/{{with label . "ticket"}}{{.}}{{else}}none{{end}}?agent={{label . "agent"}}`

// sendChat sends n through a Slack or Teams receiver with tpls and returns the body the
// receiver's server got.
func sendChat(t *testing.T, kind string, tpls Templates, n *Notification) []byte {
	t.Helper()
	rec := newRecorder(t, nil)
	cfg := Config{Name: "ops", Kind: kind, Templates: tpls}
	if kind == KindSlack {
		cfg.Slack = &ChatConfig{URL: rec.url("/hook")}
	} else {
		cfg.Teams = &ChatConfig{URL: rec.url("/hook")}
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res := s.Send(context.Background(), n); res.Err != nil {
		t.Fatal(res.Err)
	}
	return rec.requests()[0].Body
}

func TestHostileChat(t *testing.T) {
	for kind, want := range map[string]string{KindSlack: hostileSlack, KindTeams: hostileTeams} {
		t.Run(kind, func(t *testing.T) {
			sameJSON(t, sendChat(t, kind, Templates{Link: hostileLink}, hostile()), want)
		})
	}
}

func TestHostileEmail(t *testing.T) {
	be := &smtpBackend{}
	addr := startSMTP(t, be, nil, nil)
	s, err := New(Config{Name: "mail", Kind: KindEmail, Templates: Templates{Link: hostileLink}, Limits: Limits{Timeout: 5 * time.Second},
		Email: &EmailConfig{From: "notify@ticketpulse.example", To: []string{"oncall@acme.example"}, Smarthost: addr, TLS: TLSNone}},
		Options{Now: (&clock{t: t0}).Now, HelloName: "notify.test"})
	if err != nil {
		t.Fatal(err)
	}
	if res := s.Send(context.Background(), hostile()); res.Err != nil {
		t.Fatal(res.Err)
	}
	data := be.messages()[0].Data
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// The subject stays one header: the label's line break is gone, no Bcc header appears.
	var keys []string
	for k := range msg.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"Auto-Submitted", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}; !slices.Equal(keys, want) {
		t.Errorf("headers %v, want %v", keys, want)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if want := "[CRITICAL] 2 escalations · acme · <!channel> · billing Bcc: victim@evil.example"; err != nil || subject != want {
		t.Errorf("Subject = %q, %v; want %q", subject, err, want)
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, string(b))
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts", len(parts))
	}
	// Plain text shows the data as it is: nothing there makes a link or formats.
	wantText := "TRIGGERED sla-first-response · ticket T 1|<x>*& · level 1 → team-lead: [Sign in](https://evil.example)\r\n" +
		"    note_1=*bold* _it_ ~s~ `c`\r\n" +
		"    https://acme.example.com/tickets/T%201%7C%3Cx%3E%2A%26?agent=\r\n" +
		"TRIGGERED sla-first-response · agent <!channel> · level 1 → team-lead: <https://evil.example|Sign in> &\r\n" +
		"> quote\r\n- item\r\n12. item\r\n" +
		"    https://acme.example.com/tickets/none?agent=%3C%21channel%3E\r\n"
	if parts[0] != wantText {
		t.Errorf("text part =\n%q\nwant\n%q", parts[0], wantText)
	}
	// HTML escapes the data: the comment is text, the only links are the link template's.
	for _, want := range []string{
		"<strong>[CRITICAL]</strong> 2 escalations · acme · &lt;!channel&gt; · billing\r\nBcc: victim@evil.example</p>",
		"<td>ticket T 1|&lt;x&gt;*&amp;</td>",
		`<td>[Sign in](https://evil.example)<br><a href="https://acme.example.com/tickets/T%201%7C%3Cx%3E%2A%26?agent=">Open</a></td>`,
		"<td>agent &lt;!channel&gt;</td>",
		`<td>&lt;https://evil.example|Sign in&gt; &amp;` + "\r\n" + `&gt; quote` + "\r\n- item\r\n12. item" +
			`<br><a href="https://acme.example.com/tickets/none?agent=%3C%21channel%3E">Open</a></td>`,
	} {
		if !strings.Contains(parts[1], want) {
			t.Errorf("html part lacks %q:\n%s", want, parts[1])
		}
	}
	if n := strings.Count(parts[1], "<a "); n != 2 || strings.Contains(parts[1], "<!channel>") || strings.Contains(parts[1], "<https:") {
		t.Errorf("html part has %d links or unescaped data:\n%s", n, parts[1])
	}
}

// sameJSON fails unless got is the JSON want is (spacing aside).
func sameJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		pretty, _ := json.MarshalIndent(g, "", "\t")
		t.Errorf("payload =\n%s\nwant\n%s", pretty, want)
	}
}

// hostileSlack is the Slack message of hostile(): ticket data escaped (entities for "&<>",
// zero-width spaces fencing "*_~`", one before a ">" that starts a line), the header plain
// text, the links' URLs percent-encoded.
const hostileSlack = `{
	"text": "[CRITICAL] 2 escalations \u00b7 acme \u00b7 &lt;!channel&gt; \u00b7 billing Bcc: victim@evil.example\nTRIGGERED sla-first-response \u00b7 ticket T 1|&lt;x&gt;\u200b*\u200b&amp; \u00b7 level 1 \u2192 team-lead: [Sign in](https://evil.example)\n    note\u200b_\u200b1=\u200b*\u200bbold\u200b*\u200b \u200b_\u200bit\u200b_\u200b \u200b~\u200bs\u200b~\u200b \u200b\u0060\u200bc\u200b\u0060\u200b\n    https://acme.example.com/tickets/T%201%7C%3Cx%3E%2A%26?agent=\nTRIGGERED sla-first-response \u00b7 agent &lt;!channel&gt; \u00b7 level 1 \u2192 team-lead: &lt;https://evil.example|Sign in&gt; &amp;\n\u200b&gt; quote\n- item\n12. item\n    https://acme.example.com/tickets/none?agent=%3C%21channel%3E",
	"blocks": [
		{
			"type": "header",
			"text": {
				"type": "plain_text",
				"text": "[CRITICAL] 2 escalations \u00b7 acme \u00b7 <!channel> \u00b7 billing Bcc: victim@evil.example"
			}
		},
		{
			"type": "section",
			"text": {
				"type": "mrkdwn",
				"text": ":red_circle: *TRIGGERED* sla-first-response \u00b7 ticket T 1|&lt;x&gt;\u200b*\u200b&amp; \u00b7 level 1 \u2192 team-lead\n[Sign in](https://evil.example)\n<https://acme.example.com/tickets/T%201%7C%3Cx%3E%2A%26?agent=|Open ticket T 1|&lt;x&gt;\u200b*\u200b&amp;>",
				"verbatim": true
			},
			"fields": [
				{
					"type": "mrkdwn",
					"text": "*note\u200b_\u200b1*\n\u200b*\u200bbold\u200b*\u200b \u200b_\u200bit\u200b_\u200b \u200b~\u200bs\u200b~\u200b \u200b\u0060\u200bc\u200b\u0060\u200b",
					"verbatim": true
				}
			]
		},
		{
			"type": "section",
			"text": {
				"type": "mrkdwn",
				"text": ":red_circle: *TRIGGERED* sla-first-response \u00b7 agent &lt;!channel&gt; \u00b7 level 1 \u2192 team-lead\n&lt;https://evil.example|Sign in&gt; &amp;\n\u200b&gt; quote\n- item\n12. item\n<https://acme.example.com/tickets/none?agent=%3C%21channel%3E|Open agent &lt;!channel&gt;>",
				"verbatim": true
			}
		},
		{
			"type": "context",
			"elements": [
				{
					"type": "mrkdwn",
					"text": "notification ntf-0001 \u00b7 group acme/billing \u00b7 escalations esc-1, esc-2",
					"verbatim": true
				}
			]
		}
	]
}`

// hostileTeams is the Teams card of hostile(): markdown characters of ticket data
// backslash-escaped, so no link, emphasis or list forms; the links' URLs percent-encoded.
const hostileTeams = `{
	"type": "message",
	"attachments": [
		{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl": null,
			"content": {
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"type": "AdaptiveCard",
				"version": "1.4",
				"body": [
					{
						"type": "TextBlock",
						"text": "[CRITICAL] 2 escalations \u00b7 acme \u00b7 \\<!channel\\> \u00b7 billing Bcc: victim@evil.example",
						"size": "Large",
						"weight": "Bolder",
						"color": "Attention",
						"wrap": true
					},
					{
						"type": "TextBlock",
						"text": "**TRIGGERED** sla-first-response \u00b7 ticket T 1\\|\\<x\\>\\*& \u00b7 level 1 \u2192 team-lead\n\n\\[Sign in\\]\\(https://evil.example\\)\n\n[Open ticket T 1\\|\\<x\\>\\*&](https://acme.example.com/tickets/T%201%7C%3Cx%3E%2A%26?agent=)",
						"wrap": true,
						"separator": true
					},
					{
						"type": "FactSet",
						"spacing": "Small",
						"facts": [
							{
								"title": "note\\_1",
								"value": "\\*bold\\* \\_it\\_ \\~s\\~ \\\u0060c\\\u0060"
							}
						]
					},
					{
						"type": "TextBlock",
						"text": "**TRIGGERED** sla-first-response \u00b7 agent \\<!channel\\> \u00b7 level 1 \u2192 team-lead\n\n\\<https://evil.example\\|Sign in\\> &\n\\> quote\n\\- item\n12\\. item\n\n[Open agent \\<!channel\\>](https://acme.example.com/tickets/none?agent=%3C%21channel%3E)",
						"wrap": true,
						"separator": true
					},
					{
						"type": "TextBlock",
						"text": "notification ntf-0001 \u00b7 group acme/billing \u00b7 escalations esc-1, esc-2",
						"size": "Small",
						"isSubtle": true,
						"wrap": true,
						"separator": true
					}
				],
				"msteams": {
					"width": "Full"
				}
			}
		}
	]
}`

// Values a link template puts into its URL are percent-encoded as one URL component, so a
// ticket id cannot add path segments, a query or a fragment; a URL with a "." or ".." segment
// is left out.
func TestLinkEscaping(t *testing.T) {
	tpl, err := compileTemplates("ops", Templates{Link: `https://acme.example.com/agent/tickets/{{label . "ticket"}}?agent={{label . "agent"}}#{{label . "team"}}`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ticket, agent, team, want string }{
		{"T-77", "a.b", "billing", "https://acme.example.com/agent/tickets/T-77?agent=a.b#billing"},
		{"a/../b?x=1#y", "x&y=1", "a b", "https://acme.example.com/agent/tickets/a%2F..%2Fb%3Fx%3D1%23y?agent=x%26y%3D1#a%20b"},
		{"T 1|<x>", evilAgent, "#", "https://acme.example.com/agent/tickets/T%201%7C%3Cx%3E?agent=%3C%21channel%3E#%23"},
		{"T|<*>&", "@evil.example", "+", "https://acme.example.com/agent/tickets/T%7C%3C%2A%3E%26?agent=%40evil.example#%2B"},
		{"..", "", "", ""},
		{".", "", "", ""},
	} {
		n := notification(1)
		l := n.Changes[0].Escalation.Labels
		l["ticket"], l["agent"], l["team"] = tc.ticket, tc.agent, tc.team
		if _, err := tpl.render(n, false); err != nil {
			t.Fatal(err)
		}
		if got := n.LinkOf(n.Changes[0]); string(got) != tc.want {
			t.Errorf("ticket %q agent %q team %q: link %q, want %q", tc.ticket, tc.agent, tc.team, got, tc.want)
		}
	}
	for u, ok := range map[string]bool{
		"https://acme.example.com/t/1":      true,
		"http://acme.example.com/":          true,
		"https://acme.example.com/t/../x":   false,
		"https://acme.example.com/t/%2E%2e": false,
		"https://acme.example.com/./x":      false,
		"https://user@evil.example/x":       false,
		"https:///x":                        false,
		"javascript:alert(1)":               false,
		"ftp://acme.example.com/":           false,
	} {
		if safeLink(u) != ok {
			t.Errorf("safeLink(%q) = %v", u, !ok)
		}
	}
}

// An operator's own text in a template stays as written (here Slack and Teams links and
// emphasis); only what the actions print from ticket data is escaped.
func TestCustomTemplatesEscapeOnlyTicketData(t *testing.T) {
	tpls := Templates{
		Title: `*Escalated* {{label . "agent"}}`,
		Text:  `{{range .Changes}}*{{.Escalation.SubjectId}}* <https://ops.example/runbook|runbook> [runbook](https://ops.example/runbook): {{.Escalation.Summary}}{{"\n"}}{{end}}`,
	}
	for _, tc := range []struct {
		kind string
		want string
	}{
		{KindSlack, `{"text":"*Escalated* &lt;!channel&gt;\n*T 1|&lt;x&gt;\u200b*\u200b&amp;* <https://ops.example/runbook|runbook> [runbook](https://ops.example/runbook): [Sign in](https://evil.example)\n` +
			`*&lt;!channel&gt;* <https://ops.example/runbook|runbook> [runbook](https://ops.example/runbook): &lt;https://evil.example|Sign in&gt; &amp;\n\u200b&gt; quote\n- item\n12. item",` +
			`"blocks":[{"type":"header","text":{"type":"plain_text","text":"*Escalated* <!channel>"}},` +
			`{"type":"section","text":{"type":"mrkdwn","verbatim":true,"text":"*T 1|&lt;x&gt;\u200b*\u200b&amp;* <https://ops.example/runbook|runbook> [runbook](https://ops.example/runbook): [Sign in](https://evil.example)\n` +
			`*&lt;!channel&gt;* <https://ops.example/runbook|runbook> [runbook](https://ops.example/runbook): &lt;https://evil.example|Sign in&gt; &amp;\n\u200b&gt; quote\n- item\n12. item"}},` +
			`{"type":"context","elements":[{"type":"mrkdwn","verbatim":true,"text":"notification ntf-0001 · group acme/billing · escalations esc-1, esc-2"}]}]}`},
		{KindTeams, `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","contentUrl":null,"content":{` +
			`"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","type":"AdaptiveCard","version":"1.4","msteams":{"width":"Full"},"body":[` +
			`{"type":"TextBlock","text":"*Escalated* \\<!channel\\>","size":"Large","weight":"Bolder","color":"Attention","wrap":true},` +
			`{"type":"TextBlock","wrap":true,"text":"*T 1\\|\\<x\\>\\*&* <https://ops.example/runbook|runbook> [runbook](https://ops.example/runbook): \\[Sign in\\]\\(https://evil.example\\)\n\n` +
			`*\\<!channel\\>* <https://ops.example/runbook|runbook> [runbook](https://ops.example/runbook): \\<https://evil.example\\|Sign in\\> &\n\n\\> quote\n\n\\- item\n\n12\\. item"},` +
			`{"type":"TextBlock","text":"notification ntf-0001 · group acme/billing · escalations esc-1, esc-2","size":"Small","isSubtle":true,"wrap":true,"separator":true}]}}]}`},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			n := hostile()
			n.GroupLabels = map[string]string{"tenant": "acme", "agent": evilAgent}
			sameJSON(t, sendChat(t, tc.kind, tpls, n), tc.want)
		})
	}
}

func TestEscapers(t *testing.T) {
	for _, tc := range []struct{ in, slack, teams string }{
		{"plain T-77 text.", "plain T-77 text.", "plain T-77 text."},
		{"a & b < c > d", "a &amp; b &lt; c &gt; d", "a & b \\< c \\> d"},
		{"<!here> <@U1> <#C1|x>", "&lt;!here&gt; &lt;@U1&gt; &lt;#C1|x&gt;", "\\<!here\\> \\<@U1\\> \\<\\#C1\\|x\\>"},
		{"*b* _i_ ~s~ `c`", "\u200b*\u200bb\u200b*\u200b \u200b_\u200bi\u200b_\u200b \u200b~\u200bs\u200b~\u200b \u200b`\u200bc\u200b`\u200b", "\\*b\\* \\_i\\_ \\~s\\~ \\`c\\`"},
		{"[x](https://e.example) \\", "[x](https://e.example) \\", "\\[x\\]\\(https://e.example\\) \\\\"},
		{"> q\n>q\n # h\n- a\n + b\n3. c\n3 d. 4.e", "\u200b&gt; q\n\u200b&gt;q\n # h\n- a\n + b\n3. c\n3 d. 4.e", "\\> q\n\\>q\n \\# h\n\\- a\n \\+ b\n3\\. c\n3 d. 4.e"},
	} {
		if got := slackEscape(tc.in); got != tc.slack {
			t.Errorf("slackEscape(%q) = %q, want %q", tc.in, got, tc.slack)
		}
		if got := teamsEscape(tc.in); got != tc.teams {
			t.Errorf("teamsEscape(%q) = %q, want %q", tc.in, got, tc.teams)
		}
	}
}
