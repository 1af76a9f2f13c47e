package yamlconf

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// value parses "v: <text>" and returns the node of v, for the helpers that read one value.
func value(t *testing.T, text string) *yaml.Node {
	t.Helper()
	l := &Loader{File: "f.yaml"}
	root := l.Decode([]byte("v: "+text+"\n"), "a mapping", "the file")
	if err := l.Err(); err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	return root.Content[1]
}

// problems renders what a loader found, one per line, "" for none.
func problems(l *Loader) string {
	if err := l.Err(); err != nil {
		return err.Error()
	}
	return ""
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // problems; "" means the root is returned
	}{
		{"mapping", "a: 1\n", ""},
		{"empty", "", "f.yaml:1: the file is empty; want a mapping with a tenants: key"},
		{"only a comment", "# soon\n", "f.yaml:1: the file is empty; want a mapping with a tenants: key"},
		{"null root", "~\n", "f.yaml:1: want a mapping with a tenants: key, not nothing"},
		{"list root", "\n- a\n", "f.yaml:2: want a mapping with a tenants: key, not a list"},
		{"scalar root", "hello\n", "f.yaml:1: want a mapping with a tenants: key, not a single value"},
		{"second document", "a: 1\n---\nb: 2\n", "f.yaml:2: a second YAML document; the test file holds one"},
		{"second document broken", "a: 1\n---\nb: [\n", "f.yaml:4: invalid YAML: did not find expected node content"},
		{"scanner error, 1-based", "a:\n\tb: 1\n", "f.yaml:2: invalid YAML: found character that cannot start any token"},
		{"parser error, 0-based in the library", "a:\n  b: 1\n c: 2\n", "f.yaml:3: invalid YAML: did not find expected key"},
		{"error on the first line has no line in the library", "a: b: c\n", "f.yaml:1: invalid YAML: mapping values are not allowed in this context"},
		{"unknown anchor is found by its alias", "a: 1\nb:\n  c: *nope\n", "f.yaml:3: invalid YAML: unknown anchor 'nope' referenced"},
		{"aliases within bounds", "a: &a [1, 2]\nb: [*a, *a, *a]\n", ""},
		{"alias cycle", "a: &a [*a]\n", ""},
		{"billion laughs", laughs(12), fmt.Sprintf("f.yaml:1: the file's aliases expand to more than %d values", MaxExpandedNodes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			root := l.Decode([]byte(tt.give), "a mapping with a tenants: key", "the test file")
			if got := problems(l); got != tt.want {
				t.Fatalf("problems:\n%s\nwant:\n%s", got, tt.want)
			}
			if tt.want == "" && (root == nil || root.Kind != yaml.MappingNode) {
				t.Fatalf("root = %v; want a mapping", root)
			}
		})
	}
}

// laughs builds levels of aliases, each listing the previous level ten times.
func laughs(levels int) string {
	var b strings.Builder
	b.WriteString("l0: &l0 [x]\n")
	for i := 1; i <= levels; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", ")
		fmt.Fprintf(&b, "l%d: &l%d [%s]\n", i, i, refs)
	}
	return b.String()
}

func TestPairsAndFields(t *testing.T) {
	tests := []struct {
		name  string
		give  string
		read  func(l *Loader, n *yaml.Node) string
		want  string
		probs string
	}{
		{
			name: "pairs in order",
			give: "{b: 1, a: 2}",
			read: func(l *Loader, n *yaml.Node) string { ps, ok := l.Pairs(n, "x"); return keys(ps, ok) },
			want: "b,a ok",
		},
		{
			name: "null is an empty mapping",
			give: "",
			read: func(l *Loader, n *yaml.Node) string { ps, ok := l.Pairs(n, "x"); return keys(ps, ok) },
			want: " ok",
		},
		{
			name:  "duplicate key, first wins",
			give:  "\n  a: 1\n  b: 2\n  a: 3",
			read:  func(l *Loader, n *yaml.Node) string { ps, ok := l.Pairs(n, "x"); return keys(ps, ok) },
			want:  "a,b ok",
			probs: "f.yaml:4: x: duplicate key \"a\" (first on line 2)",
		},
		{
			name:  "quiet duplicate",
			give:  "{sekrit: 1, sekrit: 2}",
			read:  func(l *Loader, n *yaml.Node) string { ps, ok := l.QuietPairs(n, "x"); return keys(ps, ok) },
			want:  "sekrit ok",
			probs: "f.yaml:1: x: duplicate key (first on line 1)",
		},
		{
			name:  "not a mapping",
			give:  "[a]",
			read:  func(l *Loader, n *yaml.Node) string { ps, ok := l.Pairs(n, "x"); return keys(ps, ok) },
			want:  " not ok",
			probs: "f.yaml:1: x: want a mapping, not a list",
		},
		{
			name:  "root path has no prefix",
			give:  "7",
			read:  func(l *Loader, n *yaml.Node) string { ps, ok := l.Pairs(n, ""); return keys(ps, ok) },
			want:  " not ok",
			probs: "f.yaml:1: want a mapping, not a single value",
		},
		{
			name:  "complex key",
			give:  "{[a]: 1, b: 2}",
			read:  func(l *Loader, n *yaml.Node) string { ps, ok := l.Pairs(n, "x"); return keys(ps, ok) },
			want:  "b ok",
			probs: "f.yaml:1: x: keys must be plain words, not a list",
		},
		{
			name: "aliased mapping",
			give: "&m {a: 1}\nw: *m",
			read: func(l *Loader, n *yaml.Node) string { ps, ok := l.Pairs(n, "x"); return keys(ps, ok) },
			want: "a ok",
		},
		{
			name: "fields",
			give: "\n  a: 1\n  c: 2\n  b: 3",
			read: func(l *Loader, n *yaml.Node) string {
				f, ok := l.Fields(n, "x", "a", "b")
				return fmt.Sprintf("%d %s %s %v", len(f), f["a"].Val.Value, f["b"].Val.Value, ok)
			},
			want:  "2 1 3 true",
			probs: "f.yaml:3: x: unknown key \"c\" (allowed: a, b)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			if got := tt.read(l, value(t, tt.give)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if got := problems(l); got != tt.probs {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.probs)
			}
		})
	}
}

func keys(ps []Pair, ok bool) string {
	ks := make([]string, len(ps))
	for i, p := range ps {
		ks[i] = p.Key.Value
	}
	if !ok {
		return strings.Join(ks, ",") + " not ok"
	}
	return strings.Join(ks, ",") + " ok"
}

func TestScalars(t *testing.T) {
	str := func(l *Loader, n *yaml.Node) any { s, _ := l.Str(n, "x"); return s }
	oneOf := func(l *Loader, n *yaml.Node) any { s, _ := l.OneOf(n, "x", "colour", "red", "green"); return s }
	strs := func(l *Loader, n *yaml.Node) any { s, ok := l.Strings(n, "x"); return fmt.Sprintf("%q %v", s, ok) }
	num := func(l *Loader, n *yaml.Node) any { f, _ := l.Number(n, "x"); return f }
	pos := func(l *Loader, n *yaml.Node) any { f, _ := l.PositiveNumber(n, "x"); return f }
	whole := func(l *Loader, n *yaml.Node) any { i, _ := l.Int(n, "x"); return i }
	posInt := func(l *Loader, n *yaml.Node) any { i, _ := l.PositiveInt(n, "x"); return i }
	tests := []struct {
		name  string
		give  string
		read  func(l *Loader, n *yaml.Node) any
		want  any
		probs string
	}{
		{"string", "abc", str, "abc", ""},
		{"number as string", "42", str, "42", ""},
		{"empty string", "''", str, "", "f.yaml:1: x: want a non-empty string, not an empty string"},
		{"null string", "", str, "", "f.yaml:1: x: want a non-empty string, not nothing"},
		{"list as string", "[a]", str, "", "f.yaml:1: x: want a non-empty string, not a list"},
		{"one of", "green", oneOf, "green", ""},
		{"not one of", "blue", oneOf, "", "f.yaml:1: x: unknown colour \"blue\" (want one of red, green)"},
		{"single string", "a", strs, `["a"] true`, ""},
		{"string list", "[a, b]", strs, `["a" "b"] true`, ""},
		{"empty list", "[]", strs, `[] true`, ""},
		{"bad item", "\n  - a\n  - {b: 1}\n  - ''", strs, `["a"] false`,
			"f.yaml:3: x[1]: want a non-empty string, not a mapping\nf.yaml:4: x[2]: want a non-empty string, not an empty string"},
		{"mapping for strings", "{a: 1}", strs, `[] false`, "f.yaml:1: x: want a single value or a list, not a mapping"},
		{"null for strings", "~", strs, `[] false`, "f.yaml:1: x: want a single value or a list, not nothing"},
		{"number", "-1.5", num, -1.5, ""},
		{"int number", "3", num, 3.0, ""},
		{"quoted number", "'3'", num, 0.0, "f.yaml:1: x: want a number, not \"3\""},
		{"nan", ".nan", num, 0.0, "f.yaml:1: x: want a number, not \".nan\""},
		{"infinity", "1e400", num, 0.0, "f.yaml:1: x: want a number, not \"1e400\""},
		{"positive", "0.5", pos, 0.5, ""},
		{"zero not positive", "0", pos, 0.0, "f.yaml:1: x: want a positive number, not \"0\""},
		{"list not a number", "[1]", pos, 0.0, "f.yaml:1: x: want a positive number, not a list"},
		{"whole", "-7", whole, int64(-7), ""},
		{"fraction not whole", "1.5", whole, int64(0), "f.yaml:1: x: want a whole number, not \"1.5\""},
		{"positive int", "12", posInt, 12, ""},
		{"negative int", "-1", posInt, 0, "f.yaml:1: x: want a positive whole number, not \"-1\""},
		{"huge int", "99999999999999999999", posInt, 0, "f.yaml:1: x: want a positive whole number, not \"99999999999999999999\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			if got := tt.read(l, value(t, tt.give)); got != tt.want {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if got := problems(l); got != tt.probs {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.probs)
			}
		})
	}
}

func TestOneOrManyPaths(t *testing.T) {
	l := &Loader{File: "f.yaml"}
	var paths []string
	n, ok := l.OneOrMany(value(t, "[a, [b], c]"), "x", func(item *yaml.Node, path string) { paths = append(paths, path) })
	if n != 3 || !ok || strings.Join(paths, " ") != "x[0] x[1] x[2]" {
		t.Fatalf("OneOrMany = %d, %v, paths %v", n, ok, paths)
	}
	paths = nil
	n, ok = l.OneOrMany(value(t, "a"), "x", func(item *yaml.Node, path string) { paths = append(paths, path) })
	if n != 1 || !ok || strings.Join(paths, " ") != "x" {
		t.Fatalf("OneOrMany(single) = %d, %v, paths %v", n, ok, paths)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name  string
		give  string
		rule  DurationRule
		want  time.Duration
		probs string
	}{
		{"go duration", "90s", DurationRule{}, 90 * time.Second, ""},
		{"compound", "1h30m", DurationRule{}, 90 * time.Minute, ""},
		{"days refused without the rule", "3d", DurationRule{}, 0, "f.yaml:1: x: \"3d\" is not a duration (write e.g. 5m or 90s)"},
		{"days", "3d", DurationRule{Days: true}, 72 * time.Hour, ""},
		{"bare number", "300", DurationRule{}, 0, "f.yaml:1: x: \"300\" is not a duration (write e.g. 5m or 90s)"},
		{"bare number, days allowed", "300", DurationRule{Days: true}, 0, "f.yaml:1: x: \"300\" is not a duration (write e.g. 90s, 15m, 4h or 3d)"},
		{"zero", "0s", DurationRule{}, 0, "f.yaml:1: x: 0s is not positive"},
		{"zero allowed", "0", DurationRule{Zero: true, Min: time.Minute}, 0, ""},
		{"zero days allowed", "0d", DurationRule{Days: true, Zero: true}, 0, ""},
		{"negative", "-5m", DurationRule{Zero: true}, 0, "f.yaml:1: x: -5m is not positive"},
		{"below the minimum", "30s", DurationRule{Min: time.Minute}, 0, "f.yaml:1: x: 30s is less than the minimum of 1m"},
		{"at the minimum", "60s", DurationRule{Min: time.Minute}, time.Minute, ""},
		{"not a string", "[1m]", DurationRule{}, 0, "f.yaml:1: x: want a non-empty string, not a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			got, ok := l.DurationWith(value(t, tt.give), "x", tt.rule)
			if got != tt.want || ok != (tt.probs == "") {
				t.Errorf("got %v, %v; want %v", got, ok, tt.want)
			}
			if got := problems(l); got != tt.probs {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.probs)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		give    string
		want    time.Duration
		wantErr bool
	}{
		{"1d", 24 * time.Hour, false},
		{"30d", 720 * time.Hour, false},
		{"007d", 168 * time.Hour, false},
		{"4h", 4 * time.Hour, false},
		{"d", 0, true},
		{"-1d", 0, true},
		{"1.5d", 0, true},
		{"1d12h", 0, true},
		{" 1d", 0, true},
		{"106751d", 106751 * 24 * time.Hour, false},
		{"106752d", 0, true},
		{"99999999999999999999d", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.give)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v (error %v)", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		give time.Duration
		want string
	}{
		{time.Minute, "1m"},
		{90 * time.Second, "1m30s"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{25 * time.Hour, "25h"},
		{48 * time.Hour, "2d"},
		{500 * time.Millisecond, "500ms"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.give); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestPaths(t *testing.T) {
	tests := []struct{ got, want string }{
		{Join("", "tenants"), "tenants"},
		{Join("tenants", "acme"), "tenants.acme"},
		{Join("tenants", "Ok_1-x"), "tenants.Ok_1-x"},
		{Join("tenants", "a.b"), `tenants["a.b"]`},
		{Join("tenants", ""), `tenants[""]`},
		{Join("", "a b"), `["a b"]`},
		{Index("levels", 2), "levels[2]"},
		{Prefix(""), ""},
		{Prefix("a.b"), "a.b: "},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestDescribeAndShown(t *testing.T) {
	tests := []struct {
		give            string
		describe, shown string
	}{
		{"{a: 1}", "a mapping", "a mapping"},
		{"[1]", "a list", "a list"},
		{"~", "nothing", "nothing"},
		{"''", "an empty string", `""`},
		{"sekrit", "a single value", `"sekrit"`},
	}
	for _, tt := range tests {
		n := value(t, tt.give)
		if got := Describe(n); got != tt.describe {
			t.Errorf("Describe(%s) = %q, want %q", tt.give, got, tt.describe)
		}
		if got := Shown(n); got != tt.shown {
			t.Errorf("Shown(%s) = %q, want %q", tt.give, got, tt.shown)
		}
	}
}

func TestErrSortsByLineAndKeepsOrderWithinALine(t *testing.T) {
	l := &Loader{File: "f.yaml"}
	if l.Err() != nil {
		t.Fatal("Err without problems is not nil")
	}
	l.AddLine(3, "c")
	l.AddLine(1, "a")
	l.AddLine(3, "d")
	l.AddLine(0, "before the first line")
	err := l.Err()
	want := "f.yaml:1: a\nf.yaml:1: before the first line\nf.yaml:3: c\nf.yaml:3: d"
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 4 || err.Error() != want {
		t.Fatalf("Err() = %v; want\n%s", err, want)
	}
	if got := ps[0].String(); got != "f.yaml:1: a" {
		t.Errorf("Problem.String() = %q", got)
	}
}
