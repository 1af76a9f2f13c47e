package servicetest

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// labelPair is one name="value" of a sample's label set.
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// metricLines reads the Prometheus text page at url, line by line.
func metricLines(t testing.TB, c *http.Client, url string) []string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(body), "\n")
}

// MetricSum reads the Prometheus text page at url and sums the samples of metric name per value
// of its label (samples without that label count under ""). A failed request or an unreadable
// value fails the test.
func MetricSum(t testing.TB, c *http.Client, url, name, label string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range metricLines(t, c, url) {
		// A label value may hold spaces; the value is the last field (no timestamps are written).
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		series, value := line[:i], line[i+1:]
		metric, labels, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			t.Fatalf("metric %s: value %q: %v", name, value, err)
		}
		key := ""
		for _, m := range labelPair.FindAllStringSubmatch(labels, -1) {
			if m[1] == label {
				key = m[2]
			}
		}
		out[key] += v
	}
	return out
}

// MetricBuckets reads the Prometheus text page at url and returns the upper bounds (le) of the
// buckets of histogram name, in the order of the page, each once ("+Inf" last). A histogram
// with no series gives none.
func MetricBuckets(t testing.TB, c *http.Client, url, name string) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, line := range metricLines(t, c, url) {
		series, _, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(series, name+"_bucket{") {
			continue
		}
		for _, m := range labelPair.FindAllStringSubmatch(series, -1) {
			if m[1] == "le" && !seen[m[2]] {
				seen[m[2]] = true
				out = append(out, m[2])
			}
		}
	}
	return out
}
