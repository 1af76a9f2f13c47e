package yamlconf

import (
	"regexp"

	"go.yaml.in/yaml/v3"
)

// List returns the entries of a value that must be a list (of policies, rules, receivers); null
// is an empty list. of names the entries in the message about anything else ("want a list of
// routes, not a mapping"). ok is false when n is not a list.
func (l *Loader) List(n *yaml.Node, path, of string) (items []*yaml.Node, ok bool) {
	n = Resolve(n)
	switch {
	case IsNull(n):
		return nil, true
	case n.Kind != yaml.SequenceNode:
		l.Addf(n, "%s: want a list of %s, not %s", path, of, Describe(n))
		return nil, false
	}
	return n.Content, true
}

// UniqueItems walks a single value or a list of them (see OneOrMany), reading each with read
// and reporting repeats; the first of equal items is kept. An empty list is refused, saying
// what was wanted instead ("at least one matcher"), unless want is "", where empty is
// meaningful. ok is false when any item was unusable.
func (l *Loader) UniqueItems(n *yaml.Node, path, want string, read func(item *yaml.Node, path string) (string, bool)) (out []string, ok bool) {
	ok = true
	first := map[string]int{}
	count, shaped := l.OneOrMany(n, path, func(item *yaml.Node, path string) {
		s, good := read(item, path)
		if !good {
			ok = false
			return
		}
		if line, dup := first[s]; dup {
			l.Addf(item, "%s: %q is listed twice (first on line %d)", path, s, line)
			return
		}
		first[s] = Resolve(item).Line
		out = append(out, s)
	})
	if shaped && count == 0 && want != "" {
		l.Addf(Resolve(n), "%s: want %s, not an empty list", path, want)
		return nil, false
	}
	return out, ok && shaped
}

// NameField reads the name: of a list entry whose fields are f (entry is the entry itself, for
// a missing name). The name must match pattern (rule says how in messages: "must match
// [a-z0-9]+") and be unique among its siblings: first holds the line of every name seen so
// far, and a new name is added to it. It answers the name, or "" when there is none usable.
func (l *Loader) NameField(f map[string]Pair, entry *yaml.Node, path string, pattern *regexp.Regexp, rule string, first map[string]int) string {
	p, ok := f["name"]
	if !ok {
		l.Addf(Resolve(entry), "%s: missing name:", path)
		return ""
	}
	name, ok := l.Str(p.Val, path+".name")
	if !ok {
		return ""
	}
	if !pattern.MatchString(name) {
		l.Addf(p.Val, "%s.name: %q %s", path, name, rule)
		return ""
	}
	if line, dup := first[name]; dup {
		l.Addf(p.Val, "%s.name: duplicate name %q (first on line %d)", path, name, line)
		return ""
	}
	first[name] = Resolve(p.Val).Line
	return name
}
