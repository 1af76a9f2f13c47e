package routing

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"

	// Quiet hours must not depend on the host's zoneinfo: a routing file valid on a laptop would
	// otherwise be refused in a container image without one.
	_ "time/tzdata"
)

// Problem is one reason the routing file was refused: "<file>:<line>: <path>: <reason>".
type Problem = yamlconf.Problem

// Problems is every reason the routing file was refused, in line order; the error of Load and
// Parse when the file is readable but wrong.
type Problems = yamlconf.Problems

// Load reads and validates the routing file at path. Secrets are {env: NAME} references, read
// with getenv (os.Getenv when nil), or {file: PATH} references relative to the file's
// directory. A file that is readable but wrong yields Problems, all of them at once.
func Load(path string, getenv func(string) string) (*Config, error) {
	return yamlconf.LoadFile(path, "routing file", func(data []byte) (*Config, error) {
		return Parse(path, filepath.Dir(path), data, getenv)
	})
}

// Parse validates a routing file's content: file names it in problems and becomes Config.File,
// dir is where {file: PATH} secrets are relative to.
func Parse(file, dir string, data []byte, getenv func(string) string) (*Config, error) {
	l := &loader{Loader: yamlconf.Loader{File: file}, dir: dir, getenv: getenv}
	return yamlconf.Checked(l.load(data), &l.Loader)
}

// The file is walked as a yaml.Node tree (see package yamlconf) so that one pass reports every
// problem with its line. A value with a problem is left at its zero value and walking goes on;
// the half-built Config is thrown away when there was any problem.
type loader struct {
	yamlconf.Loader
	dir    string
	getenv func(string) string
	// receiverNames are the receivers defined, in file order, even those whose definition has
	// problems, so a route naming a broken receiver is not also told it is unknown.
	receiverNames []string
}

// namePattern is the shape of a receiver name: the tenant-id shape, safe in logs, keys and
// metrics labels as it is.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

const nameRule = "must match [a-z0-9][a-z0-9_-]{0,62}"

// Every duration may be written in days too. group_wait may be 0 (send at once); the others
// have floors below which a value is a typo or a flood.
var (
	groupWaitRule      = yamlconf.DurationRule{Days: true, Zero: true}
	groupIntervalRule  = yamlconf.DurationRule{Days: true, Min: time.Second}
	repeatIntervalRule = yamlconf.DurationRule{Days: true, Min: time.Minute}
)

func (l *loader) load(data []byte) *Config {
	root := l.Decode(data, "a mapping with receivers: and route: keys", "the routing file")
	if root == nil {
		return nil
	}
	top, _ := l.Fields(root, "", "receivers", "route", "silences", "inhibit_rules")
	cfg := &Config{File: l.File, Receivers: map[string]*receiver.Config{}}
	// Receivers first, whatever their place in the file, so routes can be checked against them.
	if p, ok := top["receivers"]; ok {
		l.receivers(p.Val, "receivers", cfg)
	} else {
		l.Addf(root, "missing receivers: (where notifications go)")
	}
	if p, ok := top["route"]; ok {
		cfg.Root = l.route(p.Val, "route", nil, map[*yaml.Node]bool{})
	} else {
		l.Addf(root, "missing route: (the root route, with the default receiver)")
	}
	if p, ok := top["silences"]; ok {
		items, _ := l.List(p.Val, "silences", "silences")
		for i, item := range items {
			cfg.Silences = append(cfg.Silences, l.silence(item, yamlconf.Index("silences", i)))
		}
	}
	if p, ok := top["inhibit_rules"]; ok {
		items, _ := l.List(p.Val, "inhibit_rules", "inhibit rules")
		for i, item := range items {
			cfg.Inhibits = append(cfg.Inhibits, l.inhibitRule(item, yamlconf.Index("inhibit_rules", i)))
		}
	}
	return cfg
}

// route reads a route; parent is nil for the root. onPath holds the routes being read above
// this one: an alias can make a route its own descendant, which would never end.
func (l *loader) route(n *yaml.Node, path string, parent *Route, onPath map[*yaml.Node]bool) *Route {
	n = yamlconf.Resolve(n)
	if onPath[n] {
		l.Addf(n, "%s: the route contains itself (through an alias)", path)
		return nil
	}
	onPath[n] = true
	defer delete(onPath, n)

	r := &Route{
		Path:           path,
		GroupBy:        DefaultGroupBy,
		GroupWait:      DefaultGroupWait,
		GroupInterval:  DefaultGroupInterval,
		RepeatInterval: DefaultRepeatInterval,
	}
	if parent != nil {
		r.Receiver, r.GroupBy, r.GroupByAll = parent.Receiver, parent.GroupBy, parent.GroupByAll
		r.GroupWait, r.GroupInterval, r.RepeatInterval = parent.GroupWait, parent.GroupInterval, parent.RepeatInterval
	}
	f, ok := l.Fields(n, path, "receiver", "matchers", "continue", "group_by", "group_wait",
		"group_interval", "repeat_interval", "quiet_hours", "routes")
	if !ok {
		return r
	}
	if p, ok := f["receiver"]; ok {
		r.Receiver, _ = l.receiverRef(p.Val, path+".receiver")
	} else if parent == nil {
		l.Addf(n, "%s: missing receiver: (the default for escalations no other route takes)", path)
	}
	if p, ok := f["matchers"]; ok {
		if parent == nil {
			l.Addf(p.Key, "%s: the root route takes every escalation; put matchers: on its routes", path)
		} else {
			r.Matchers, _ = l.matchers(p.Val, path+".matchers", "at least one matcher (leave matchers: out to match everything)")
		}
	}
	if p, ok := f["continue"]; ok {
		if parent == nil {
			l.Addf(p.Key, "%s: continue: does not apply to the root route, which has no siblings", path)
		} else {
			r.Continue, _ = l.boolean(p.Val, path+".continue")
		}
	}
	if p, ok := f["group_by"]; ok {
		if by, all, ok := l.groupBy(p.Val, path+".group_by"); ok {
			r.GroupBy, r.GroupByAll = by, all
		}
	}
	if p, ok := f["group_wait"]; ok {
		r.GroupWait, _ = l.DurationWith(p.Val, path+".group_wait", groupWaitRule)
	}
	if p, ok := f["group_interval"]; ok {
		r.GroupInterval, _ = l.DurationWith(p.Val, path+".group_interval", groupIntervalRule)
	}
	if p, ok := f["repeat_interval"]; ok {
		r.RepeatInterval, _ = l.DurationWith(p.Val, path+".repeat_interval", repeatIntervalRule)
	}
	if p, ok := f["quiet_hours"]; ok {
		r.Quiet, r.QuietName = l.quietHours(p.Val, path+".quiet_hours")
	}
	if p, ok := f["routes"]; ok {
		items, _ := l.List(p.Val, path+".routes", "routes")
		for i, item := range items {
			if c := l.route(item, yamlconf.Index(path+".routes", i), r, onPath); c != nil {
				r.Routes = append(r.Routes, c)
			}
		}
	}
	return r
}

func (l *loader) receiverRef(n *yaml.Node, path string) (string, bool) {
	name, ok := l.Str(n, path)
	if !ok {
		return "", false
	}
	switch {
	case slices.Contains(l.receiverNames, name):
		return name, true
	case len(l.receiverNames) == 0:
		l.Addf(n, "%s: unknown receiver %q (the file defines none)", path, name)
	default:
		l.Addf(n, "%s: unknown receiver %q (want one of %s)", path, name, strings.Join(l.receiverNames, ", "))
	}
	return "", false
}

// groupBy reads label names, or "..." alone for every label. An empty list is allowed: one
// group for everything the route takes.
func (l *loader) groupBy(n *yaml.Node, path string) (by []string, all, ok bool) {
	by, ok = l.UniqueItems(n, path, "", func(item *yaml.Node, path string) (string, bool) {
		s, ok := l.Str(item, path)
		if !ok || s == EveryLabel {
			return s, ok
		}
		return s, l.checkLabel(item, path, s)
	})
	if !ok {
		return nil, false, false
	}
	if slices.Contains(by, EveryLabel) {
		if len(by) > 1 {
			l.Addf(yamlconf.Resolve(n), "%s: %q groups by every label, so it stands alone", path, EveryLabel)
			return nil, false, false
		}
		return nil, true, true
	}
	if by == nil {
		by = []string{}
	}
	return by, false, true
}

func (l *loader) checkLabel(n *yaml.Node, path, s string) bool {
	if !labelName.MatchString(s) {
		l.Addf(n, "%s: label name %q %s", path, s, labelRule)
		return false
	}
	return true
}

// matchers reads one matcher or a list of them; want says what an empty list lacks. ok is
// false when any matcher was unusable.
func (l *loader) matchers(n *yaml.Node, path, want string) (out Matchers, ok bool) {
	ok = true
	first := map[string]int{}
	count, shaped := l.OneOrMany(n, path, func(item *yaml.Node, path string) {
		s, good := l.Str(item, path)
		if !good {
			ok = false
			return
		}
		m, reason := parseMatcher(s)
		if reason != "" {
			l.Addf(item, "%s: %s", path, reason)
			ok = false
			return
		}
		// Repeats are told apart by what they mean, not how they are spaced.
		if line, dup := first[m.String()]; dup {
			l.Addf(item, "%s: %s is listed twice (first on line %d)", path, m, line)
			return
		}
		first[m.String()] = yamlconf.Resolve(item).Line
		out = append(out, m)
	})
	if shaped && count == 0 {
		l.Addf(yamlconf.Resolve(n), "%s: want %s, not an empty list", path, want)
		return nil, false
	}
	return out, ok && shaped
}

func (l *loader) boolean(n *yaml.Node, path string) (bool, bool) {
	n = yamlconf.Resolve(n)
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		l.Addf(n, "%s: want true or false, not %s", path, yamlconf.Shown(n))
		return false, false
	}
	return b, true
}

func (l *loader) silence(n *yaml.Node, path string) *Silence {
	s := &Silence{}
	f, ok := l.Fields(n, path, "matchers", "starts", "ends", "comment")
	if !ok {
		return s
	}
	at := yamlconf.Resolve(n)
	if p, ok := f["matchers"]; ok {
		var good bool
		s.Matchers, good = l.matchers(p.Val, path+".matchers", "at least one matcher")
		if good && len(s.Matchers) > 0 && s.Matchers.Matches(map[string]string{}) {
			l.Addf(yamlconf.Resolve(p.Val), "%s.matchers: these match an escalation without labels, so they would silence everything; add one that needs a value", path)
		}
	} else {
		l.Addf(at, "%s: missing matchers: (which escalations to silence)", path)
	}
	var startsOK, endsOK bool
	if p, ok := f["starts"]; ok {
		s.Starts, startsOK = l.timestamp(p.Val, path+".starts")
	} else {
		l.Addf(at, "%s: missing starts: (an RFC 3339 time, e.g. 2026-12-24T00:00:00Z)", path)
	}
	if p, ok := f["ends"]; ok {
		s.Ends, endsOK = l.timestamp(p.Val, path+".ends")
		if startsOK && endsOK && !s.Ends.After(s.Starts) {
			l.Addf(p.Val, "%s.ends: %s is not after starts: %s", path,
				s.Ends.Format(time.RFC3339), s.Starts.Format(time.RFC3339))
		}
	} else {
		l.Addf(at, "%s: missing ends: (an RFC 3339 time, e.g. 2026-12-27T00:00:00Z)", path)
	}
	if p, ok := f["comment"]; ok {
		s.Comment, _ = l.Str(p.Val, path+".comment")
	} else {
		l.Addf(at, "%s: missing comment: (why, and who to ask)", path)
	}
	return s
}

func (l *loader) timestamp(n *yaml.Node, path string) (time.Time, bool) {
	s, ok := l.Str(n, path)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		l.Addf(n, "%s: %q is not an RFC 3339 time (write e.g. 2026-12-24T00:00:00Z)", path, s)
		return time.Time{}, false
	}
	return t, true
}

func (l *loader) inhibitRule(n *yaml.Node, path string) *InhibitRule {
	r := &InhibitRule{}
	f, ok := l.Fields(n, path, "source_matchers", "target_matchers", "equal")
	if !ok {
		return r
	}
	at := yamlconf.Resolve(n)
	if p, ok := f["source_matchers"]; ok {
		r.Source, _ = l.matchers(p.Val, path+".source_matchers", "at least one matcher")
	} else {
		l.Addf(at, "%s: missing source_matchers: (the open escalations that inhibit)", path)
	}
	if p, ok := f["target_matchers"]; ok {
		r.Target, _ = l.matchers(p.Val, path+".target_matchers", "at least one matcher")
	} else {
		l.Addf(at, "%s: missing target_matchers: (the escalations they hold back)", path)
	}
	if p, ok := f["equal"]; ok {
		r.Equal, _ = l.UniqueItems(p.Val, path+".equal", "", func(item *yaml.Node, path string) (string, bool) {
			s, ok := l.Str(item, path)
			return s, ok && l.checkLabel(item, path, s)
		})
	}
	return r
}
