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

// MetricSum reads the Prometheus text page at url and sums the samples of metric name per value
// of its label (samples without that label count under ""). A failed request or an unreadable
// value fails the test.
func MetricSum(t testing.TB, c *http.Client, url, name, label string) map[string]float64 {
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
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
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
