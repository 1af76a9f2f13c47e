package receiver

import (
	"fmt"
	"strings"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// teamsMaxChanges bounds the changes one card lists (Teams rejects messages over ~28 KB).
const teamsMaxChanges = 50

// Adaptive Card elements (https://adaptivecards.io/explorer/), the subset used here.
type cardElement struct {
	Type      string     `json:"type"` // "TextBlock" or "FactSet"
	Text      string     `json:"text,omitempty"`
	Size      string     `json:"size,omitempty"`
	Weight    string     `json:"weight,omitempty"`
	Color     string     `json:"color,omitempty"`
	IsSubtle  bool       `json:"isSubtle,omitempty"`
	Wrap      bool       `json:"wrap,omitempty"`
	Separator bool       `json:"separator,omitempty"`
	Spacing   string     `json:"spacing,omitempty"`
	Facts     []cardFact `json:"facts,omitempty"`
}

type cardFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

type adaptiveCard struct {
	Schema  string            `json:"$schema"`
	Type    string            `json:"type"`
	Version string            `json:"version"`
	Body    []cardElement     `json:"body"`
	MSTeams map[string]string `json:"msteams,omitempty"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"` // null, as Teams' examples send it
	Content     adaptiveCard `json:"content"`
}

// teamsMessage is the envelope Teams incoming webhooks and Workflows ("post to a channel when
// a webhook request is received") accept.
type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

func teamsAny(n *Notification, r rendered, customText bool) any {
	return teamsPayload(n, r, customText)
}

func titleColor(n *Notification) string {
	if allResolved(n) {
		return "Good"
	}
	switch worstSeverity(n) {
	case tpv1.Severity_SEVERITY_CRITICAL:
		return "Attention"
	case tpv1.Severity_SEVERITY_WARNING:
		return "Warning"
	}
	return "Default"
}

// teamsPayload builds the card. r's Title and Text print ticket data escaped for markdown (see
// teamsEscape); what is built here from the changes escapes their data the same way.
func teamsPayload(n *Notification, r rendered, customText bool) teamsMessage {
	body := []cardElement{{
		Type: "TextBlock", Text: r.Title, Size: "Large", Weight: "Bolder", Color: titleColor(n), Wrap: true,
	}}
	if customText {
		// Adaptive Card markdown needs a blank line for a line break.
		body = append(body, cardElement{Type: "TextBlock", Text: strings.ReplaceAll(r.Text, "\n", "\n\n"), Wrap: true})
	} else {
		shown := n.Changes
		if len(shown) > teamsMaxChanges {
			shown = shown[:teamsMaxChanges]
		}
		for _, c := range shown {
			body = append(body, teamsChange(c, string(n.LinkOf(c)))...)
		}
		if more := len(n.Changes) - len(shown); more > 0 {
			body = append(body, cardElement{Type: "TextBlock", Text: fmt.Sprintf("…and **%d more**", more), Wrap: true, Separator: true})
		}
	}
	body = append(body, cardElement{Type: "TextBlock", Text: teamsEscape(idsLine(n)), Size: "Small", IsSubtle: true, Wrap: true, Separator: true})
	return teamsMessage{
		Type: "message",
		Attachments: []teamsAttachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content: adaptiveCard{
				Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
				Type:    "AdaptiveCard",
				Version: "1.4",
				Body:    body,
				MSTeams: map[string]string{"width": "Full"},
			},
		}},
	}
}

// teamsChange is one change: a TextBlock with its headline and summary, a FactSet of its facts.
func teamsChange(c *tpv1.EscalationChange, link string) []cardElement {
	kind := kindName(c.GetKind())
	text := "**" + kind + "**" + teamsEscape(strings.TrimPrefix(headline(c), kind))
	if s := c.GetEscalation().GetSummary(); s != "" {
		text += "\n\n" + teamsEscape(s)
	}
	if link != "" {
		text += "\n\n[Open " + teamsEscape(c.GetEscalation().GetSubjectKind()+" "+c.GetEscalation().GetSubjectId()) + "](" + markdownURL(link) + ")"
	}
	out := []cardElement{{Type: "TextBlock", Text: text, Wrap: true, Separator: true}}
	if fs := c.GetEscalation().GetFacts(); len(fs) > 0 {
		set := cardElement{Type: "FactSet", Spacing: "Small"}
		for _, f := range fs {
			set.Facts = append(set.Facts, cardFact{Title: teamsEscape(f.GetName()), Value: teamsEscape(factValue(f.GetValue()))})
		}
		out = append(out, set)
	}
	return out
}
