package receiver

import (
	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"

	"bytes"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"text/template"
)

// Default templates: a supervisor reads the title in a notification preview and the text (or
// the HTML table in e-mail) to see which escalations changed and what to look at.
const (
	// DefaultTitle reads e.g. "[CRITICAL] 3 escalations · acme · billing".
	DefaultTitle = `{{if .Reminder}}Still open: {{end}}[{{if resolved .}}RESOLVED{{else}}{{severity .}}{{end}}] ` +
		`{{escalations . | plural "escalation"}}{{range group .}} · {{.}}{{end}}`

	// DefaultText is one line per change, its facts indented beneath:
	//
	//	TRIGGERED sla-first-response · ticket T-77 · level 1 → team-lead: First reply overdue
	//	    target=1h0m0s elapsed=1h5m0s
	DefaultText = `{{range .Changes}}{{headline .}}{{with .GetEscalation.GetSummary}}: {{.}}{{end}}
{{with facts .}}    {{.}}
{{end}}{{with $.LinkOf .}}    {{.}}
{{end}}{{end}}`

	// DefaultHTML is the e-mail body: the title and a small table of the changes.
	DefaultHTML = `<!DOCTYPE html>
<html><body style="font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;color:#1f2328">
<p style="font-size:16px;margin:0 0 12px"><strong>[{{if resolved .}}RESOLVED{{else}}{{severity .}}{{end}}]</strong> {{escalations . | plural "escalation"}}{{range group .}} · {{.}}{{end}}</p>
<table cellpadding="6" cellspacing="0" style="border-collapse:collapse;font-size:13px">
<tr style="background:#f3f4f6;text-align:left"><th>Change</th><th>Rule</th><th>Subject</th><th>Level</th><th>Summary</th><th>Facts</th></tr>
{{range $c := .Changes}}<tr style="border-top:1px solid #d0d7de;vertical-align:top"><td><strong>{{kind $c}}</strong><br><small>{{severity $c}}</small></td><td>{{$c.GetEscalation.GetRule}}</td><td>{{subject $c}}</td><td>{{$c.GetEscalation.GetLevel}}{{with targets $c}} → {{.}}{{end}}</td><td>{{$c.GetEscalation.GetSummary}}{{with $.LinkOf $c}}<br><a href="{{.}}">Open</a>{{end}}</td><td>{{range $c.GetEscalation.GetFacts}}{{.GetName}}={{fact $c .GetName}}<br>{{end}}</td></tr>
{{end}}</table>
<p style="color:#656d76;font-size:12px;margin-top:12px">ticketpulse · notification {{.ID}}{{with .GroupKey}} · group {{.}}{{end}}</p>
</body></html>
`
)

// templates are one receiver's compiled templates.
type templates struct {
	// title and text print ticket data escaped for the receiver's markup; plainTitle prints
	// it as is, for plain-text places (a Slack header, an e-mail subject).
	title      *template.Template
	plainTitle *template.Template
	text       *template.Template
	html       *htmltemplate.Template
	// link makes each change's URL; nil without a link template.
	link *template.Template
	// customText is set when Text was overridden: chat messages then show the rendered text
	// instead of their per-change blocks.
	customText bool
}

// compileTemplates compiles a receiver's templates; esc, when set, escapes what the title and
// text templates print for the receiver's markup. The link template's values are always
// URL-escaped, and the HTML template is html/template's to escape.
func compileTemplates(name string, t Templates, esc *markup) (*templates, error) {
	if err := ParseTemplates(name, t); err != nil {
		return nil, err
	}
	pick := func(src, def string) string {
		if src != "" {
			return src
		}
		return def
	}
	parseText := func(field, src string, esc *markup) (*template.Template, error) {
		tt, err := template.New(name + "." + field).Funcs(Funcs).Option("missingkey=zero").Parse(src)
		if err != nil {
			return nil, fmt.Errorf("%s template: %w", field, err)
		}
		if esc != nil {
			withEscaper(tt, esc)
		}
		return tt, nil
	}
	plainTitle, err := parseText("title", pick(t.Title, DefaultTitle), nil)
	if err != nil {
		return nil, err
	}
	title := plainTitle
	if esc != nil {
		if title, err = parseText("title", pick(t.Title, DefaultTitle), esc); err != nil {
			return nil, err
		}
	}
	text, err := parseText("text", pick(t.Text, DefaultText), esc)
	if err != nil {
		return nil, err
	}
	html, err := htmltemplate.New(name + ".html").Funcs(htmltemplate.FuncMap(Funcs)).Option("missingkey=zero").Parse(pick(t.HTML, DefaultHTML))
	if err != nil {
		return nil, fmt.Errorf("html template: %w", err)
	}
	tpl := &templates{title: title, plainTitle: plainTitle, text: text, html: html, customText: t.Text != ""}
	if t.Link != "" {
		if tpl.link, err = parseText("link", t.Link, &linkMarkup); err != nil {
			return nil, err
		}
	}
	return tpl, nil
}

// fillLinks renders each change's link into the notification; a link that is not a safe
// http(s) URL (see safeLink) is left out rather than sent.
func (t *templates) fillLinks(n *Notification) error {
	if t.link == nil {
		return nil
	}
	n.links = make(map[*tpv1.EscalationChange]Link, len(n.Changes))
	var buf bytes.Buffer
	for _, c := range n.Changes {
		buf.Reset()
		if err := t.link.Execute(&buf, c); err != nil {
			return fmt.Errorf("link template: %w", err)
		}
		u := strings.TrimSpace(buf.String())
		if safeLink(u) {
			n.links[c] = Link(u)
		}
	}
	return nil
}

// rendered is a notification's message texts.
type rendered struct {
	Title      string // one line, ticket data escaped for the receiver's markup
	PlainTitle string // the same line with ticket data as is, for plain-text places
	Text       string
	HTML       string // only when asked for
}

func (t *templates) render(n *Notification, withHTML bool) (rendered, error) {
	var r rendered
	if err := t.fillLinks(n); err != nil {
		return r, err
	}
	var buf bytes.Buffer
	if err := t.title.Execute(&buf, n); err != nil {
		return r, fmt.Errorf("title template: %w", err)
	}
	r.Title = truncate(250, strings.Join(strings.Fields(buf.String()), " "))
	r.PlainTitle = r.Title
	if t.plainTitle != t.title {
		buf.Reset()
		if err := t.plainTitle.Execute(&buf, n); err != nil {
			return r, fmt.Errorf("title template: %w", err)
		}
		r.PlainTitle = truncate(250, strings.Join(strings.Fields(buf.String()), " "))
	}
	buf.Reset()
	if err := t.text.Execute(&buf, n); err != nil {
		return r, fmt.Errorf("text template: %w", err)
	}
	r.Text = strings.TrimRight(buf.String(), "\n ")
	if withHTML {
		buf.Reset()
		if err := t.html.Execute(&buf, n); err != nil {
			return r, fmt.Errorf("html template: %w", err)
		}
		r.HTML = buf.String()
	}
	return r, nil
}
