package freshdesk

import (
	"strings"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
)

// change is {{triggered_event}}: Freshdesk renders the event that fired the rule as
// "{ticket_action:created}", "{note_type:private}" or "{status:{from:4,to:6}}" — braces and
// colons without JSON quoting, so it is parsed here. Only the first event that matched the
// rule is rendered.
type change struct {
	key, val, from, toVal string
}

func parseChange(s string) (change, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return change{}, nil
	}
	inner, opened := strings.CutPrefix(s, "{")
	inner, closed := strings.CutSuffix(inner, "}")
	if !opened || !closed {
		return change{}, adapter.Malformed("triggered_event", "not of the form {name:value} or {name:{from:x,to:y}}: %q", adapter.Truncate(s, 60))
	}
	key, rest, ok := strings.Cut(inner, ":")
	if !ok {
		return change{}, adapter.Malformed("triggered_event", "not of the form {name:value}: %q", adapter.Truncate(s, 60))
	}
	c := change{key: strings.TrimSpace(key)}
	rest = strings.TrimSpace(rest)
	sub, isObject := strings.CutPrefix(rest, "{")
	if !isObject {
		c.val = rest
		return c, nil
	}
	sub, ok = strings.CutSuffix(sub, "}")
	if !ok {
		return change{}, adapter.Malformed("triggered_event", "unbalanced braces: %q", adapter.Truncate(s, 60))
	}
	for part := range strings.SplitSeq(sub, ",") {
		k, v, _ := strings.Cut(part, ":")
		switch strings.TrimSpace(k) {
		case "from":
			c.from = strings.TrimSpace(v)
		case "to":
			c.toVal = strings.TrimSpace(v)
		}
	}
	return c, nil
}

// value is the plain value of the event named key ("private" of {note_type:private}).
func (c change) value(key string) string {
	if c.key != key {
		return ""
	}
	return c.val
}

// to is the new value of a property change named key ("6" of {status:{from:4,to:6}}).
func (c change) to(key string) string {
	if c.key != key {
		return ""
	}
	return c.toVal
}
