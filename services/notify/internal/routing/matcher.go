package routing

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// Matcher operators, as in Alertmanager.
const (
	OpEqual     = "="
	OpNotEqual  = "!="
	OpRegexp    = "=~"
	OpNotRegexp = "!~"
)

// labelName is the shape of a label name in matchers, group_by and equal.
var labelName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

const labelRule = "must match [A-Za-z_][A-Za-z0-9_]*"

// Matcher tests one label of an escalation: label="value", label!="value", label=~"regexp" or
// label!~"regexp". Regular expressions are anchored at both ends, so =~"bill" does not match
// "billing". A label the escalation does not have counts as "" (Alertmanager semantics), so
// team!="billing" matches an escalation without a team.
type Matcher struct {
	Label, Op, Value string
	re               *regexp.Regexp
}

// Matchers match when every one of them does; no matchers match everything.
type Matchers []Matcher

// ParseMatcher reads a matcher as written in the routing file: a label name, an operator and a
// double-quoted value (Go escapes), with optional spaces between them.
func ParseMatcher(s string) (Matcher, error) {
	m, reason := parseMatcher(s)
	if reason != "" {
		return Matcher{}, fmt.Errorf("matcher %q: %s", s, reason)
	}
	return m, nil
}

// parseMatcher answers why s is not a matcher, or "".
func parseMatcher(s string) (Matcher, string) {
	rest := strings.TrimSpace(s)
	i := strings.IndexAny(rest, "=!~<> \t\"")
	if i < 0 {
		return Matcher{}, `want label="value" (or !=, =~, !~)`
	}
	label := rest[:i]
	switch {
	case label == "":
		return Matcher{}, `missing the label name (want label="value")`
	case !labelName.MatchString(label):
		return Matcher{}, fmt.Sprintf("label name %q %s", label, labelRule)
	}
	rest = strings.TrimLeft(rest[i:], " \t")
	j := strings.IndexFunc(rest, func(r rune) bool { return !strings.ContainsRune("=!~<>", r) })
	if j < 0 {
		j = len(rest)
	}
	op := rest[:j]
	switch op {
	case OpEqual, OpNotEqual, OpRegexp, OpNotRegexp:
	case "":
		return Matcher{}, `missing the operator (want =, !=, =~ or !~)`
	default:
		return Matcher{}, fmt.Sprintf("unknown operator %q (want =, !=, =~ or !~)", op)
	}
	quoted := strings.TrimLeft(rest[j:], " \t")
	if !strings.HasPrefix(quoted, `"`) {
		return Matcher{}, `the value must be in double quotes (label="value")`
	}
	value, err := strconv.Unquote(quoted)
	if err != nil {
		return Matcher{}, `the value must be one double-quoted string, with \" and \\ escaped`
	}
	m := Matcher{Label: label, Op: op, Value: value}
	if op == OpRegexp || op == OpNotRegexp {
		if _, err := regexp.Compile(value); err != nil {
			var se *syntax.Error
			if errors.As(err, &se) {
				return Matcher{}, fmt.Sprintf("bad regular expression: %s: %#q", se.Code, se.Expr)
			}
			return Matcher{}, "bad regular expression: " + err.Error()
		}
		m.re = regexp.MustCompile("^(?:" + value + ")$")
	}
	return m, ""
}

// String writes the matcher back the way ParseMatcher reads it: label="value".
func (m Matcher) String() string { return m.Label + m.Op + strconv.Quote(m.Value) }

// Matches tests the matcher's label in labels; a missing label is "".
func (m Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Label]
	switch m.Op {
	case OpEqual:
		return v == m.Value
	case OpNotEqual:
		return v != m.Value
	case OpRegexp:
		return m.regexp().MatchString(v)
	case OpNotRegexp:
		return !m.regexp().MatchString(v)
	}
	return false
}

// regexp is the anchored expression; a Matcher built by hand rather than by ParseMatcher gets
// it compiled here (and one with a bad expression matches nothing).
func (m Matcher) regexp() *regexp.Regexp {
	if m.re != nil {
		return m.re
	}
	re, err := regexp.Compile("^(?:" + m.Value + ")$")
	if err != nil {
		return regexp.MustCompile(`[^\x00-\x{10FFFF}]`)
	}
	return re
}

// Matches reports whether every matcher matches labels.
func (ms Matchers) Matches(labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

// String lists the matchers as written: {tenant="acme", team=~"billing"}.
func (ms Matchers) String() string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
