package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Slack Block Kit limits (https://api.slack.com/reference/block-kit).
const (
	slackMaxBlocks       = 50
	slackMaxHeader       = 150  // header block plain_text
	slackMaxSectionText  = 3000 // section text
	slackMaxFields       = 10   // fields per section
	slackMaxFieldText    = 2000 // each field
	slackMaxContextText  = 2000
	slackMaxFallbackText = 4000 // top-level "text"; Slack allows more, but it is only a preview
	// A message is a header, up to slackMaxChanges change sections and a closing block (the ids,
	// or "…and N more" when changes were left out): slackMaxBlocks in all.
	slackMaxChanges = slackMaxBlocks - 2
)

type slackText struct {
	Type string `json:"type"` // "plain_text" or "mrkdwn"
	Text string `json:"text"`
	// Verbatim (mrkdwn only) stops Slack from turning bare URLs, channel names and mentions in
	// ticket data into links and notifications; the links made here are explicit <url|label>.
	Verbatim bool `json:"verbatim,omitempty"`
}

type slackBlock struct {
	Type     string      `json:"type"` // "header", "section", "context"
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackMessage struct {
	// Text is the fallback shown in notifications and by clients without blocks.
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// chatSender posts a chat message (Slack blocks, a Teams card) that payload builds from the
// notification and its rendered texts.
type chatSender struct {
	httpSender
	payload func(n *Notification, r rendered, customText bool) any
}

func (s *chatSender) Send(ctx context.Context, n *Notification) Result {
	return timed(func() Result {
		if err := checkNotification(n); err != nil {
			return Result{Err: s.errorf("%v", err)}
		}
		r, err := s.tpl.render(n, false)
		if err != nil {
			return Result{Err: s.errorf("%v", err)}
		}
		body, err := json.Marshal(s.payload(n, r, s.tpl.customText))
		if err != nil {
			return Result{Err: s.errorf("encoding message: %v", err)}
		}
		return s.post(ctx, body, nil)
	})
}

func slackAny(n *Notification, r rendered, customText bool) any {
	return slackPayload(n, r, customText)
}

// slackURL is a URL for a <url|label> link: "&" as the entity Slack requires, "<", ">" and "|"
// percent-encoded so the URL cannot end the link early.
func slackURL(u string) string { return strings.ReplaceAll(markdownURL(u), "&", "&amp;") }

func mrkdwn(s string) slackText { return slackText{Type: "mrkdwn", Text: s, Verbatim: true} }

// slackPayload builds the message. r's Title and Text print ticket data escaped for mrkdwn (see
// slackEscape); the header is plain_text, which Slack never formats, so it shows the title as
// is; what is built here from the changes escapes their data the same way.
func slackPayload(n *Notification, r rendered, customText bool) slackMessage {
	msg := slackMessage{Text: truncate(slackMaxFallbackText, r.Title+"\n"+r.Text)}
	msg.Blocks = append(msg.Blocks, slackBlock{
		Type: "header",
		Text: &slackText{Type: "plain_text", Text: truncate(slackMaxHeader, r.PlainTitle)},
	})
	ids := slackEscape(idsLine(n))

	if customText {
		// An overridden Text template is the message: the operator's text as written, ticket
		// data escaped, in sections of at most slackMaxSectionText characters.
		chunks := splitText(r.Text, slackMaxSectionText)
		if len(chunks) > slackMaxChanges {
			chunks = chunks[:slackMaxChanges]
		}
		for _, c := range chunks {
			t := mrkdwn(c)
			msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: &t})
		}
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "context", Elements: []slackText{mrkdwn(truncate(slackMaxContextText, ids))}})
		return msg
	}

	shown := n.Changes
	if len(shown) > slackMaxChanges {
		shown = shown[:slackMaxChanges]
	}
	for _, c := range shown {
		msg.Blocks = append(msg.Blocks, slackChangeBlock(c, string(n.LinkOf(c))))
	}
	if more := len(n.Changes) - len(shown); more > 0 {
		// No room for a context block: the ids go under the "more" line.
		t := mrkdwn(truncate(slackMaxSectionText, fmt.Sprintf("…and *%d more*\n_%s_", more, ids)))
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: &t})
	} else {
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "context", Elements: []slackText{mrkdwn(truncate(slackMaxContextText, ids))}})
	}
	return msg
}

func severityEmoji(c *tpv1.EscalationChange) string {
	if c.GetKind() == tpv1.ChangeKind_CHANGE_KIND_RESOLVED {
		return ":white_check_mark:"
	}
	switch c.GetEscalation().GetSeverity() {
	case tpv1.Severity_SEVERITY_CRITICAL:
		return ":red_circle:"
	case tpv1.Severity_SEVERITY_WARNING:
		return ":large_orange_circle:"
	}
	return ":large_blue_circle:"
}

// slackChangeBlock is one change: its headline and summary, its facts as fields.
func slackChangeBlock(c *tpv1.EscalationChange, link string) slackBlock {
	kind := kindName(c.GetKind())
	rest := strings.TrimPrefix(headline(c), kind)
	text := severityEmoji(c) + " *" + kind + "*" + slackEscape(rest)
	if s := c.GetEscalation().GetSummary(); s != "" {
		text += "\n" + slackEscape(s)
	}
	if link != "" {
		text += "\n<" + slackURL(link) + "|Open " + slackEscape(c.GetEscalation().GetSubjectKind()+" "+c.GetEscalation().GetSubjectId()) + ">"
	}
	t := mrkdwn(truncate(slackMaxSectionText, text))
	b := slackBlock{Type: "section", Text: &t}
	facts := c.GetEscalation().GetFacts()
	for i, f := range facts {
		if i == slackMaxFields-1 && len(facts) > slackMaxFields {
			// The last field takes the facts that do not fit.
			var lines []string
			for _, g := range facts[i:] {
				lines = append(lines, slackEscape(g.GetName()+"="+factValue(g.GetValue())))
			}
			b.Fields = append(b.Fields, mrkdwn(truncate(slackMaxFieldText, "*more*\n"+strings.Join(lines, "\n"))))
			break
		}
		b.Fields = append(b.Fields, mrkdwn(truncate(slackMaxFieldText,
			"*"+slackEscape(f.GetName())+"*\n"+slackEscape(factValue(f.GetValue())))))
	}
	return b
}

// idsLine names the notification and its escalations, for whoever traces a message back.
func idsLine(n *Notification) string {
	parts := []string{"notification " + n.ID}
	if n.GroupKey != "" {
		parts = append(parts, "group "+n.GroupKey)
	}
	var ids []string
	seen := map[string]bool{}
	for _, c := range n.Changes {
		if id := c.GetEscalation().GetId(); id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		parts = append(parts, "escalations "+strings.Join(ids, ", "))
	}
	return strings.Join(parts, " · ")
}

// splitText cuts s into pieces of at most max runes, at line ends where it can.
func splitText(s string, max int) []string {
	var out []string
	var cur []rune
	for _, line := range strings.SplitAfter(s, "\n") {
		l := []rune(line)
		for len(l) > 0 {
			if len(cur)+len([]rune(strings.TrimSuffix(string(l), "\n"))) <= max {
				cur = append(cur, l...)
				break
			}
			if len(cur) > 0 {
				out = append(out, strings.TrimRight(string(cur), "\n"))
				cur = nil
				continue
			}
			out = append(out, string(l[:max]))
			l = l[max:]
		}
	}
	if s := strings.TrimRight(string(cur), "\n"); s != "" {
		out = append(out, s)
	}
	return out
}
