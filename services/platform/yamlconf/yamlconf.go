// Package yamlconf is the shared machinery of Ticketpulse's strict YAML configuration loaders.
//
// A loader walks the yaml.Node tree rather than decoding into structs: only the tree knows the
// line of every value, and walking it lets one pass report every problem, not just the first.
// Every problem is "<file>:<line>: <path>: <reason>", where path is the dotted position of the
// value in the file (tenants.acme.sources.zendesk.secrets[0]).
//
// The helpers here record problems on a Loader and answer whether the value was usable, so a
// loader reads as a description of its schema:
//
//	l := &yamlconf.Loader{File: path}
//	root := l.Decode(data, "a mapping with a tenants: key", "the tenants file")
//	f, _ := l.Fields(root, "", "tenants")
//	...
//	return yamlconf.Checked(cfg, l) // cfg, or every problem when there was one
package yamlconf

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one reason a file was refused.
type Problem struct {
	File   string
	Line   int
	Reason string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Reason) }

// Problems is every reason a file was refused, in line order. Loaders return it as their error
// when the file is readable but wrong.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Loader collects the problems of one file. The zero value with File set is ready to use.
type Loader struct {
	// File names the file in every problem.
	File string
	// Problems found so far, in the order they were found; Err sorts them.
	Problems Problems
}

// Addf records a problem at n's line.
func (l *Loader) Addf(n *yaml.Node, format string, args ...any) {
	l.AddLine(n.Line, fmt.Sprintf(format, args...))
}

// AddLine records a problem at a line; lines before the first count as the first.
func (l *Loader) AddLine(line int, reason string) {
	l.Problems = append(l.Problems, Problem{File: l.File, Line: max(line, 1), Reason: reason})
}

// Err returns the problems sorted by line (problems on one line keep the order they were found
// in), or nil when there are none.
func (l *Loader) Err() error {
	if len(l.Problems) == 0 {
		return nil
	}
	slices.SortStableFunc(l.Problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	return l.Problems
}

// Resolve follows aliases to the node they name.
func Resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is YAML's null (~, null, or nothing at all after a key).
func IsNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// Describe names a node's kind without quoting its value, which may be a misplaced secret.
func Describe(n *yaml.Node) string {
	n = Resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch {
		case IsNull(n):
			return "nothing"
		case n.Value == "":
			return "an empty string"
		}
		return "a single value"
	}
	return "something else"
}

// Shown quotes a scalar for a message about a setting that is not secret, and describes
// anything else.
func Shown(n *yaml.Node) string {
	n = Resolve(n)
	if n.Kind == yaml.ScalarNode && !IsNull(n) {
		return fmt.Sprintf("%q", n.Value)
	}
	return Describe(n)
}

// Join extends a dotted path with a mapping key; keys that would make the path ambiguous are
// quoted (tenants["a.b"]).
func Join(path, key string) string {
	if key == "" || strings.ContainsFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) {
		return path + "[" + fmt.Sprintf("%q", key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index extends a path with a list position.
func Index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// Prefix starts a message about path; the root has no path, so no prefix.
func Prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}
