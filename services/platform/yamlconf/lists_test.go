package yamlconf

import (
	"cmp"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestList(t *testing.T) {
	tests := []struct {
		give  string
		want  string
		probs string
	}{
		{"[a, b]", "2 true", ""},
		{"[]", "0 true", ""},
		{"", "0 true", ""},
		{"{a: 1}", "0 false", "f.yaml:1: x: want a list of rules, not a mapping"},
		{"a", "0 false", "f.yaml:1: x: want a list of rules, not a single value"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			items, ok := l.List(value(t, tt.give), "x", "rules")
			if got := fmt.Sprintf("%d %v", len(items), ok); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if got := problems(l); got != tt.probs {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.probs)
			}
		})
	}
}

func TestUniqueItems(t *testing.T) {
	short := func(l *Loader) func(n *yaml.Node, path string) (string, bool) {
		return func(n *yaml.Node, path string) (string, bool) {
			s, ok := l.Str(n, path)
			if ok && len(s) > 3 {
				l.Addf(n, "%s: %q is too long", path, s)
				return "", false
			}
			return s, ok
		}
	}
	tests := []struct {
		name  string
		give  string
		want  string // "" means the list may be empty
		out   string
		probs string
	}{
		{"single", "a", "", `["a"] true`, ""},
		{"list", "[a, b]", "", `["a" "b"] true`, ""},
		{"repeat, first kept", "\n  - a\n  - b\n  - a", "", `["a" "b"] true`, `f.yaml:4: x[2]: "a" is listed twice (first on line 2)`},
		{"empty allowed", "[]", "", `[] true`, ""},
		{"empty refused", "[]", "at least one team", `[] false`, "f.yaml:1: x: want at least one team, not an empty list"},
		{"unusable item", "[a, long]", "", `["a"] false`, `f.yaml:1: x[1]: "long" is too long`},
		{"mapping", "{a: 1}", "", `[] false`, "f.yaml:1: x: want a single value or a list, not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			out, ok := l.UniqueItems(value(t, tt.give), "x", tt.want, short(l))
			if got := fmt.Sprintf("%q %v", out, ok); got != tt.out {
				t.Errorf("got %s, want %s", got, tt.out)
			}
			if got := problems(l); got != tt.probs {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.probs)
			}
		})
	}
}

func TestNameField(t *testing.T) {
	pattern := regexp.MustCompile(`^[a-z]+$`)
	tests := []struct {
		name  string
		give  string // a list of entries, from line 2
		want  string // the names read, "-" for none
		probs string
	}{
		{"unique", "\n  - name: a\n  - name: b", "a b", ""},
		{"repeat", "\n  - name: a\n  - name: b\n  - name: a", "a b -", `f.yaml:4: x[2].name: duplicate name "a" (first on line 2)`},
		{"missing", "\n  - {}\n  - other: 1", "- -", "f.yaml:2: x[0]: missing name:\nf.yaml:3: x[1]: missing name:"},
		{"bad shape is not taken", "\n  - name: A1\n  - name: a", "- a", `f.yaml:2: x[0].name: "A1" must be lower-case letters`},
		{"not a string", "\n  - name: [a]", "-", "f.yaml:2: x[0].name: want a non-empty string, not a list"},
		{"repeat of a bad one is still bad", "\n  - name: A1\n  - name: A1", "- -",
			"f.yaml:2: x[0].name: \"A1\" must be lower-case letters\nf.yaml:3: x[1].name: \"A1\" must be lower-case letters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			items, _ := l.List(value(t, tt.give), "x", "entries")
			first := map[string]int{}
			var got []string
			for i, entry := range items {
				path := Index("x", i)
				f, _ := l.Fields(entry, path, "name", "other")
				got = append(got, cmp.Or(l.NameField(f, entry, path, pattern, "must be lower-case letters", first), "-"))
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("got %q, want %q", g, tt.want)
			}
			if got := problems(l); got != tt.probs {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.probs)
			}
		})
	}
}
