package chart

import (
	"encoding/xml"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func hours(vs ...float64) []Point {
	ps := make([]Point, len(vs))
	for i, v := range vs {
		ps[i] = Point{At: t0.Add(time.Duration(i) * time.Hour), Value: v}
	}
	return ps
}

// parse reads svg as XML and returns its element names and all its character data; it fails
// the test when svg is not well-formed.
func parse(t testing.TB, svg string) (elements []string, text string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return elements, b.String()
		}
		if err != nil {
			t.Fatalf("not well-formed SVG: %v\n%s", err, svg)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			elements = append(elements, v.Name.Local)
		case xml.CharData:
			b.Write(v)
		}
	}
}

func count(names []string, name string) int {
	n := 0
	for _, e := range names {
		if e == name {
			n++
		}
	}
	return n
}

func TestLine(t *testing.T) {
	tests := []struct {
		name        string
		give        Line
		wantCircles int
		wantText    []string
	}{
		{name: "empty", give: Line{Title: "First response"}, wantCircles: 0, wantText: []string{"First response", "no data"}},
		{name: "one point", give: Line{Title: "t", Points: hours(5)}, wantCircles: 1, wantText: []string{"2026-03-01 00:00: 5"}},
		{name: "flat", give: Line{Title: "t", Points: hours(3, 3, 3)}, wantCircles: 3},
		{name: "equal timestamps", give: Line{Title: "t", Points: []Point{{t0, 1}, {t0, 2}}}, wantCircles: 2},
		{name: "NaN and Inf are left out", give: Line{Title: "t", Points: hours(1, math.NaN(), math.Inf(1), 4)}, wantCircles: 2},
		{name: "negative", give: Line{Title: "t", Points: hours(-2, 5)}, wantCircles: 2, wantText: []string{"-2", "5"}},
		{name: "markup in labels is text", give: Line{Title: `<script>alert("x")</script>`, Label: `a & b`, Points: hours(1, 2)},
			wantCircles: 2, wantText: []string{`<script>alert("x")</script>`, "a & b"}},
		{name: "custom format", give: Line{Title: "t", Points: hours(90), Format: func(v float64) string { return "<" + time.Duration(v*1e9).String() + ">" }},
			wantCircles: 1, wantText: []string{"<1m30s>"}},
		{name: "thinned", give: Line{Title: "t", Points: hours(make([]float64, 5000)...)}, wantCircles: MaxPoints},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := string(tt.give.SVG())
			names, text := parse(t, svg)
			if names[0] != "svg" || count(names, "script") != 0 {
				t.Fatalf("elements %v", names)
			}
			if got := count(names, "circle"); got != tt.wantCircles {
				t.Errorf("%d points drawn, want %d", got, tt.wantCircles)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(text, w) {
					t.Errorf("text %q lacks %q", text, w)
				}
			}
			if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
				t.Errorf("non-finite coordinate in %s", svg)
			}
			if again := string(tt.give.SVG()); again != svg {
				t.Error("the same points drew different bytes")
			}
		})
	}
}

func TestLineScale(t *testing.T) {
	// Values from 0 to 10 across 400 px of plot: the lowest point sits on the axis, the highest
	// at the top, and the middle hour in the middle.
	svg := string(Line{Title: "t", Points: hours(0, 5, 10), Width: 468, Height: 240}.SVG())
	for _, want := range []string{`cx="56.0" cy="212.0"`, `cx="256.0" cy="112.0"`, `cx="456.0" cy="12.0"`} {
		if !strings.Contains(svg, want) {
			t.Errorf("%s not in %s", want, svg)
		}
	}
}

func TestSparkline(t *testing.T) {
	tests := []struct {
		name      string
		give      []Point
		wantPaths int
	}{
		{"empty", nil, 0},
		{"one", hours(1), 1},
		{"many", hours(1, 5, 2, 8), 1},
		{"only NaN", hours(math.NaN()), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := string(Sparkline(`ana "<b>"`, tt.give, 0, 0))
			names, _ := parse(t, svg)
			if got := count(names, "path"); got != tt.wantPaths {
				t.Errorf("%d paths, want %d: %s", got, tt.wantPaths, svg)
			}
			if !strings.Contains(svg, `aria-label="ana &#34;&lt;b&gt;&#34;"`) {
				t.Errorf("label not escaped into aria-label: %s", svg)
			}
		})
	}
}

func FuzzLine(f *testing.F) {
	f.Add("First response", "seconds", int64(0), 1.5, int64(3600), 2.5, 600, 200)
	f.Add(`<svg onload="x">`, "]]>&", int64(-1), math.NaN(), int64(1), math.Inf(-1), 0, 0)
	f.Add("\xff\xfe", "ü", int64(1<<40), -1e308, int64(1<<40), 1e308, 1, 1)
	f.Fuzz(func(t *testing.T, title, label string, a int64, av float64, b int64, bv float64, w, h int) {
		ps := []Point{{time.Unix(a, 0), av}, {time.Unix(b, 0), bv}}
		svg := string(Line{Title: title, Label: label, Points: ps, Width: w, Height: h}.SVG())
		names, _ := parse(t, svg)
		if count(names, "svg") != 1 || count(names, "script") != 0 || count(names, "foreignObject") != 0 {
			t.Fatalf("elements %v from title %q label %q", names, title, label)
		}
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Fatalf("non-finite coordinate: %s", svg)
		}
		spark := string(Sparkline(title, ps, w, h))
		if names, _ := parse(t, spark); count(names, "svg") != 1 || len(names) > 2 {
			t.Fatalf("sparkline elements %v", names)
		}
	})
}

// A period without data breaks the line: two runs, no point drawn at zero for the gap.
func TestLineBreaksAtGaps(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ps := []Point{{t0, 10}, {t0.Add(time.Hour), 20}, {t0.Add(2 * time.Hour), Gap}, {t0.Add(3 * time.Hour), 30}, {t0.Add(4 * time.Hour), 40}}
	svg := string(Line{Title: "gaps", Points: ps}.SVG())
	d := regexp.MustCompile(`<path d="(M[^"]*)" fill="none" stroke="#0b4fa8"`).FindStringSubmatch(svg)
	if d == nil {
		t.Fatalf("no line in %s", svg)
	}
	if n := strings.Count(d[1], "M"); n != 2 {
		t.Errorf("line %q: %d runs, want 2 (broken at the gap)", d[1], n)
	}
	if n := strings.Count(svg, "<circle"); n != 4 {
		t.Errorf("%d points drawn, want 4 (none for the gap)", n)
	}
	// A lone point between gaps is still drawn, as a dot.
	lone := string(Sparkline("lone", []Point{{t0, Gap}, {t0.Add(time.Hour), 5}, {t0.Add(2 * time.Hour), Gap}}, 0, 0))
	if !strings.Contains(lone, "h0") {
		t.Errorf("lone point not drawn: %s", lone)
	}
	if svg := string(Line{Title: "none", Points: []Point{{t0, Gap}}}.SVG()); !strings.Contains(svg, "no data") {
		t.Errorf("only gaps: %s, want no data", svg)
	}
}
