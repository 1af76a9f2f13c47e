package receiver

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"
)

// Ticket data (ids, rules, labels, summaries with customer text, facts) is untrusted: whoever
// can write a ticket comment must not be able to make a chat message link somewhere, mention a
// channel, or change a link's URL. So every value a template prints is escaped for where the
// message goes, while the literal text an operator wrote in a template stays as written.

// markup is how values are escaped for one kind of message text: text makes ticket data
// literal, url makes a Link (already safe, see safeLink) a URL of the markup.
type markup struct {
	text func(string) string
	url  func(string) string
}

var (
	slackMarkup = markup{text: slackEscape, url: slackURL}
	teamsMarkup = markup{text: teamsEscape, url: markdownURL}
	// linkMarkup escapes the values a link template puts into its URL.
	linkMarkup = markup{text: linkEscape, url: linkEscape}
)

// zwsp (U+200B ZERO WIDTH SPACE) around a Slack formatting character keeps it from opening or
// closing bold, italic, strike or code: Slack formats only between word boundaries, and mrkdwn
// has no backslash escape.
const zwsp = "\u200b"

// slackEscape makes s literal in Slack mrkdwn: "&", "<" and ">" become the entities Slack
// requires (so no <link|label>, <!channel> or <@user> can be formed), "*", "_", "~" and "`"
// are fenced by zero-width spaces, and a ">" starting a line gets one before it so it does not
// quote the line.
func slackEscape(s string) string {
	var b strings.Builder
	lineStart := true
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			if lineStart {
				b.WriteString(zwsp)
			}
			b.WriteString("&gt;")
		case '*', '_', '~', '`':
			b.WriteString(zwsp)
			b.WriteRune(r)
			b.WriteString(zwsp)
		default:
			b.WriteRune(r)
		}
		lineStart = r == '\n'
	}
	return b.String()
}

// teamsEscape makes s literal in Teams (Adaptive Card) markdown: each markdown punctuation
// character gets a backslash, and so do "-", "+" and a number's "." that would start a list
// at the start of a line. Even a client that ignores the backslashes shows no link: "]" is
// never directly followed by "(".
func teamsEscape(s string) string {
	var b strings.Builder
	lineStart, digits := true, false
	for _, r := range s {
		switch {
		case strings.ContainsRune("\\`*_~[]()#<>|", r):
			b.WriteByte('\\')
		case lineStart && (r == '-' || r == '+'):
			b.WriteByte('\\')
		case digits && r == '.':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
		switch {
		case r == '\n':
			lineStart, digits = true, false
		case lineStart && r >= '0' && r <= '9', digits && r >= '0' && r <= '9':
			lineStart, digits = false, true
		case lineStart && (r == ' ' || r == '\t'):
		default:
			lineStart, digits = false, false
		}
	}
	return b.String()
}

// linkEscape makes s one URL component: everything but letters, digits and "-._~" is
// percent-encoded, so a value cannot add a path segment, a query, a fragment or a user to the
// URL wherever the template puts it.
func linkEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// markdownURL is a URL fit for a Markdown link's (…) or a Slack <…|…>: characters that would
// end it are percent-encoded.
func markdownURL(u string) string {
	return strings.NewReplacer("(", "%28", ")", "%29", " ", "%20", "<", "%3C", ">", "%3E", "|", "%7C", "\\", "%5C", "[", "%5B", "]", "%5D").Replace(u)
}

// safeLink reports whether u, a link template's result, is an absolute http(s) URL with a host
// and without "." or ".." path segments (which browsers resolve, a value could climb out of
// the path with them).
func safeLink(u string) bool {
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return false
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.User != nil {
		return false
	}
	for _, seg := range strings.Split(p.EscapedPath(), "/") {
		switch strings.ToLower(seg) {
		case ".", "..", "%2e", "%2e%2e", ".%2e", "%2e.":
			return false
		}
	}
	return true
}

// escapeFunc is the name the rewritten templates call the escaper by.
const escapeFunc = "_ticketpulse_escape"

// withEscaper rewrites every template of t so that what each action prints is escaped for m:
// the values of ticket data come out escaped, the template's own text does not. A string
// constant ({{"\n"}}) is the operator's and stays. t must be parsed and not executed.
func withEscaper(t *template.Template, m *markup) *template.Template {
	t.Funcs(template.FuncMap{escapeFunc: func(v reflect.Value) string {
		for v.IsValid() && v.Kind() == reflect.Interface && !v.IsNil() {
			v = v.Elem()
		}
		if v.IsValid() && v.Type() == reflect.TypeFor[Link]() {
			return m.url(v.String())
		}
		return m.text(printed(v))
	}})
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			escapeList(tt.Tree, tt.Tree.Root)
		}
	}
	return t
}

func escapeList(tree *parse.Tree, l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			// An assignment ({{$x := …}}) prints nothing.
			if len(n.Pipe.Decl) > 0 || constantString(n.Pipe) {
				continue
			}
			cmd := &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos,
				Args: []parse.Node{parse.NewIdentifier(escapeFunc).SetTree(tree).SetPos(n.Pos)}}
			n.Pipe.Cmds = append(n.Pipe.Cmds, cmd)
		case *parse.IfNode:
			escapeList(tree, n.List)
			escapeList(tree, n.ElseList)
		case *parse.RangeNode:
			escapeList(tree, n.List)
			escapeList(tree, n.ElseList)
		case *parse.WithNode:
			escapeList(tree, n.List)
			escapeList(tree, n.ElseList)
		case *parse.ListNode:
			escapeList(tree, n)
		}
	}
}

func constantString(p *parse.PipeNode) bool {
	if len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	_, ok := p.Cmds[0].Args[0].(*parse.StringNode)
	return ok
}

// printed is v as text/template prints it.
func printed(v reflect.Value) string {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && !v.IsNil() &&
		!v.Type().Implements(reflect.TypeFor[fmt.Stringer]()) && !v.Type().Implements(reflect.TypeFor[error]()) {
		v = v.Elem()
	}
	if !v.IsValid() {
		return "<no value>"
	}
	return fmt.Sprint(v.Interface())
}
