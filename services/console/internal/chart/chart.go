// Package chart draws small server-side SVG charts (a line chart with axes and a sparkline)
// from points. The functions are pure: the same points give the same bytes. Every label is
// escaped, no point can add markup, and non-finite values (periods without data) are gaps in the line.
package chart

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// Point is one value at one time.
type Point struct {
	At    time.Time
	Value float64
}

// Line is what a line chart shows.
type Line struct {
	// Title names the chart for screen readers (<title>) and Label the values' axis.
	Title, Label string
	Points       []Point
	// Width and Height are in pixels; zero takes 600 by 200.
	Width, Height int
	// Format writes a value for the axis and the points' tooltips; %.4g when nil.
	Format func(float64) string
	// Location is the time zone the times are written in; UTC when nil.
	Location *time.Location
}

// MaxPoints bounds what one chart draws; a longer series is thinned to it, first and last kept,
// so rendering stays linear and the SVG small whatever a series holds.
const MaxPoints = 2000

// Gap is the value of a period without data (a mean of no samples): the line breaks there
// instead of dropping to zero.
var Gap = math.NaN()

// finite keeps the points in order with every value that cannot be drawn (NaN, ±Inf) as a gap,
// and thins them to MaxPoints.
func finite(ps []Point) []Point {
	out := make([]Point, 0, min(len(ps), MaxPoints))
	for _, p := range ps {
		if math.IsInf(p.Value, 0) {
			p.Value = Gap
		}
		out = append(out, p)
	}
	if len(out) <= MaxPoints {
		return out
	}
	thin := make([]Point, 0, MaxPoints)
	for i := range MaxPoints {
		thin = append(thin, out[i*(len(out)-1)/(MaxPoints-1)])
	}
	return thin
}

// drawn says whether any point has a value to draw.
func drawn(ps []Point) bool {
	for _, p := range ps {
		if !math.IsNaN(p.Value) {
			return true
		}
	}
	return false
}

// bounds are the time range of points (non-empty) and the range of their values (at least one
// not a gap); a flat range is widened so the scale never divides by zero.
func bounds(ps []Point) (t0, t1 time.Time, v0, v1 float64) {
	t0, t1 = ps[0].At, ps[0].At
	v0, v1 = math.Inf(1), math.Inf(-1)
	for _, p := range ps {
		if p.At.Before(t0) {
			t0 = p.At
		}
		if p.At.After(t1) {
			t1 = p.At
		}
		if !math.IsNaN(p.Value) {
			v0, v1 = math.Min(v0, p.Value), math.Max(v1, p.Value)
		}
	}
	if v0 > 0 && v0 < v1 {
		v0 = 0 // figures read best from zero
	}
	if v1 == v0 {
		v1 = v0 + math.Max(1, math.Abs(v0)*1e-9)
	}
	return t0, t1, v0, v1
}

type scale struct {
	t0        time.Time
	span      float64
	v0, vspan float64
	x0, y0    float64
	w, h      float64
}

func (s scale) x(t time.Time) float64 {
	if s.span == 0 {
		return s.x0 + s.w/2
	}
	return s.x0 + s.w*float64(t.Sub(s.t0))/s.span
}

// y halves values and span before dividing, so values near ±MaxFloat64 cannot overflow into
// an infinite span and a NaN coordinate.
func (s scale) y(v float64) float64 { return s.y0 + s.h - s.h*((v/2-s.v0/2)/s.vspan) }

// path is an SVG path through the points in time order as given, broken at every gap; a point
// alone between gaps is a dot (a zero-length segment with round caps).
func path(ps []Point, s scale) string {
	var b strings.Builder
	pen := false
	for i, p := range ps {
		if math.IsNaN(p.Value) {
			pen = false
			continue
		}
		x, y := s.x(p.At), s.y(p.Value)
		if pen {
			fmt.Fprintf(&b, "L%.1f %.1f", x, y)
			continue
		}
		fmt.Fprintf(&b, "M%.1f %.1f", x, y)
		if i+1 >= len(ps) || math.IsNaN(ps[i+1].Value) {
			fmt.Fprintf(&b, "h0")
		}
		pen = true
	}
	return b.String()
}

// esc escapes s for SVG text and attributes. Invalid UTF-8 and the characters XML 1.0 cannot
// carry (controls other than tab and newlines, surrogates, U+FFFE/U+FFFF) become U+FFFD.
func esc(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return template.HTMLEscapeString(s)
}

// SVG renders the line chart; with no drawable point it says so in the chart.
func (l Line) SVG() template.HTML {
	w, h := l.Width, l.Height
	if w <= 0 || h <= 0 {
		w, h = 600, 200
	}
	// Room for the axes' labels at least; no more than a page can use.
	w, h = min(max(w, 160), 4000), min(max(h, 80), 2000)
	format := l.Format
	if format == nil {
		format = func(v float64) string { return fmt.Sprintf("%.4g", v) }
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img"><title>%s</title>`,
		w, h, w, h, esc(l.Title))
	ps := finite(l.Points)
	if !drawn(ps) {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">no data</text></svg>`, w/2, h/2)
		return template.HTML(b.String()) //nolint:gosec // every value in it is escaped or numeric
	}
	loc := l.Location
	if loc == nil {
		loc = time.UTC
	}
	const left, right, top, bottom = 56, 12, 12, 28
	t0, t1, v0, v1 := bounds(ps)
	s := scale{t0: t0, span: float64(t1.Sub(t0)), v0: v0, vspan: v1/2 - v0/2, x0: left, y0: top, w: float64(w - left - right), h: float64(h - top - bottom)}
	// Axes and their end labels.
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" fill="none" stroke="#4a4a4a"/>`, left, top, h-bottom, w-right)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-4, top+10, esc(format(v1)))
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-4, h-bottom, esc(format(v0)))
	fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, left, h-8, esc(t0.In(loc).Format("2006-01-02 15:04")))
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, w-right, h-8, esc(t1.In(loc).Format("2006-01-02 15:04")))
	if l.Label != "" {
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, left+4, top+10, esc(l.Label))
	}
	fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#0b4fa8" stroke-width="2" stroke-linecap="round"/>`, path(ps, s))
	for _, p := range ps {
		if math.IsNaN(p.Value) {
			continue
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="#0b4fa8"><title>%s: %s</title></circle>`,
			s.x(p.At), s.y(p.Value), esc(p.At.In(loc).Format("2006-01-02 15:04")), esc(format(p.Value)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every value in it is escaped or numeric
}

// Sparkline renders a small line without axes, labelled for screen readers by label.
func Sparkline(label string, points []Point, width, height int) template.HTML {
	if width <= 0 || height <= 0 {
		width, height = 100, 24
	}
	width, height = min(max(width, 8), 1000), min(max(height, 4), 200)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		width, height, width, height, esc(label))
	ps := finite(points)
	if drawn(ps) {
		t0, t1, v0, v1 := bounds(ps)
		s := scale{t0: t0, span: float64(t1.Sub(t0)), v0: v0, vspan: v1/2 - v0/2, x0: 1, y0: 1, w: float64(width - 2), h: float64(height - 2)}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#0b4fa8" stroke-width="1.5" stroke-linecap="round"/>`, path(ps, s))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every value in it is escaped or numeric
}
