package yamlconf

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Pair is one mapping entry. Key is a scalar; Val may still be an alias (see Resolve).
type Pair struct{ Key, Val *yaml.Node }

// Pairs returns a mapping's entries in file order, reporting duplicate keys (the first one
// wins) and keys that are not scalars. Null counts as an empty mapping, so "key:" with nothing
// after it is a mapping without entries. ok is false when n is not a mapping at all.
func (l *Loader) Pairs(n *yaml.Node, path string) (ps []Pair, ok bool) {
	return l.pairs(n, path, false)
}

// QuietPairs is Pairs for a mapping whose keys must never be quoted in a message: in a secret
// reference, "{hunter2}" is a mapping whose only key is the secret.
func (l *Loader) QuietPairs(n *yaml.Node, path string) (ps []Pair, ok bool) {
	return l.pairs(n, path, true)
}

func (l *Loader) pairs(n *yaml.Node, path string, quiet bool) ([]Pair, bool) {
	n = Resolve(n)
	if IsNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		l.Addf(n, "%swant a mapping, not %s", Prefix(path), Describe(n))
		return nil, false
	}
	var out []Pair
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := Resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.Addf(k, "%skeys must be plain words, not %s", Prefix(path), Describe(k))
			continue
		}
		if line, dup := first[k.Value]; dup {
			if quiet {
				l.Addf(k, "%sduplicate key (first on line %d)", Prefix(path), line)
			} else {
				l.Addf(k, "%sduplicate key %q (first on line %d)", Prefix(path), k.Value, line)
			}
			continue
		}
		first[k.Value] = k.Line
		out = append(out, Pair{k, v})
	}
	return out, true
}

// Fields is Pairs for a mapping with a fixed vocabulary: unknown keys are problems, and the
// known ones come back by name. A setting that does not apply is best left out of allowed, so
// that it is refused rather than silently ignored.
func (l *Loader) Fields(n *yaml.Node, path string, allowed ...string) (map[string]Pair, bool) {
	ps, ok := l.Pairs(n, path)
	out := make(map[string]Pair, len(ps))
	for _, p := range ps {
		if slices.Contains(allowed, p.Key.Value) {
			out[p.Key.Value] = p
			continue
		}
		l.Addf(p.Key, "%sunknown key %q (allowed: %s)", Prefix(path), p.Key.Value, strings.Join(allowed, ", "))
	}
	return out, ok
}

// Str reads a non-empty scalar. Numbers and booleans are taken as written ("42", "true"), since
// ids and labels are often numeric.
func (l *Loader) Str(n *yaml.Node, path string) (string, bool) {
	n = Resolve(n)
	if n.Kind != yaml.ScalarNode || IsNull(n) || n.Value == "" {
		l.Addf(n, "%s: want a non-empty string, not %s", path, Describe(n))
		return "", false
	}
	return n.Value, true
}

// OneOf reads a string that must be one of words; what names the kind of word in the message
// ("unknown priority "asap" (want one of low, normal, high, urgent)").
func (l *Loader) OneOf(n *yaml.Node, path, what string, words ...string) (string, bool) {
	s, ok := l.Str(n, path)
	if !ok {
		return "", false
	}
	if !slices.Contains(words, s) {
		l.Addf(n, "%s: unknown %s %q (want one of %s)", path, what, s, strings.Join(words, ", "))
		return "", false
	}
	return s, true
}

// OneOrMany walks a value that may be written as a single item or as a list of them: each
// calls item with every entry and its path (the single item keeps path unchanged). It answers
// how many items there were; ok is false when n is a mapping or null, which is neither. An
// empty list has zero items; whether that is allowed is the caller's business.
func (l *Loader) OneOrMany(n *yaml.Node, path string, each func(item *yaml.Node, path string)) (count int, ok bool) {
	n = Resolve(n)
	switch {
	case n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			each(item, Index(path, i))
		}
		return len(n.Content), true
	case n.Kind == yaml.ScalarNode && !IsNull(n):
		each(n, path)
		return 1, true
	}
	l.Addf(n, "%s: want a single value or a list, not %s", path, Describe(n))
	return 0, false
}

// Strings reads a string or a list of strings (see OneOrMany); ok is false when any of them
// is not a non-empty string, and the good ones are still returned.
func (l *Loader) Strings(n *yaml.Node, path string) (out []string, ok bool) {
	ok = true
	_, shaped := l.OneOrMany(n, path, func(item *yaml.Node, path string) {
		s, good := l.Str(item, path)
		if !good {
			ok = false
			return
		}
		out = append(out, s)
	})
	return out, ok && shaped
}

// DurationRule says which durations Duration accepts besides positive Go durations.
type DurationRule struct {
	// Days accepts whole days written Nd (3d is 72h); see ParseDuration.
	Days bool
	// Zero accepts a zero duration ("0" or "0s"), which callers use for "never".
	Zero bool
	// Min is the smallest non-zero duration accepted; 0 means any positive duration.
	Min time.Duration
}

// Duration reads a positive Go duration ("90s", "5m").
func (l *Loader) Duration(n *yaml.Node, path string) (time.Duration, bool) {
	return l.DurationWith(n, path, DurationRule{})
}

// DurationWith reads a duration as rule allows.
func (l *Loader) DurationWith(n *yaml.Node, path string, rule DurationRule) (time.Duration, bool) {
	s, ok := l.Str(n, path)
	if !ok {
		return 0, false
	}
	parse, example := time.ParseDuration, "5m or 90s"
	if rule.Days {
		parse, example = ParseDuration, "90s, 15m, 4h or 3d"
	}
	d, err := parse(s)
	switch {
	case err != nil:
		l.Addf(n, "%s: %q is not a duration (write e.g. %s)", path, s, example)
		return 0, false
	case d == 0 && rule.Zero:
		return 0, true
	case d <= 0:
		l.Addf(n, "%s: %s is not positive", path, s)
		return 0, false
	case d < rule.Min:
		l.Addf(n, "%s: %s is less than the minimum of %s", path, s, FormatDuration(rule.Min))
		return 0, false
	}
	return d, true
}

var errNotDuration = errors.New("not a duration")

// ParseDuration is time.ParseDuration that also takes a whole number of days, "Nd", for the
// targets that support teams think of in days ("resolution: 3d"). Days are 24 hours: SLA clocks
// count elapsed (or business) time, not calendar days.
func ParseDuration(s string) (time.Duration, error) {
	days, ok := strings.CutSuffix(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	if days == "" || strings.Trim(days, "0123456789") != "" {
		return 0, errNotDuration
	}
	n, err := strconv.ParseInt(days, 10, 64)
	if err != nil || n > int64(math.MaxInt64/(24*time.Hour)) {
		return 0, errNotDuration
	}
	return time.Duration(n) * 24 * time.Hour, nil
}

// FormatDuration writes d the way people write it in a file: 1m rather than 1m0s, 3d for
// whole days from 1 day on.
func FormatDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// AsNumber decodes a finite int or float scalar without recording a problem, for values that
// may be written either as a number or otherwise ("0.8" or "80%"). A quoted number ("1") is a
// string, not a number: it is refused rather than guessed at.
func AsNumber(n *yaml.Node) (float64, bool) {
	n = Resolve(n)
	var f float64
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil ||
		math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// Number reads a finite number.
func (l *Loader) Number(n *yaml.Node, path string) (float64, bool) {
	n = Resolve(n)
	f, ok := AsNumber(n)
	if !ok {
		l.Addf(n, "%s: want a number, not %s", path, Shown(n))
	}
	return f, ok
}

// PositiveNumber reads a finite number above 0.
func (l *Loader) PositiveNumber(n *yaml.Node, path string) (float64, bool) {
	n = Resolve(n)
	f, ok := AsNumber(n)
	if !ok || f <= 0 {
		l.Addf(n, "%s: want a positive number, not %s", path, Shown(n))
		return 0, false
	}
	return f, true
}

// Int reads a whole number.
func (l *Loader) Int(n *yaml.Node, path string) (int64, bool) {
	n = Resolve(n)
	var i int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		l.Addf(n, "%s: want a whole number, not %s", path, Shown(n))
		return 0, false
	}
	return i, true
}

// PositiveInt reads a whole number above 0 that fits an int.
func (l *Loader) PositiveInt(n *yaml.Node, path string) (int, bool) {
	n = Resolve(n)
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || i <= 0 {
		l.Addf(n, "%s: want a positive whole number, not %s", path, Shown(n))
		return 0, false
	}
	return i, true
}
