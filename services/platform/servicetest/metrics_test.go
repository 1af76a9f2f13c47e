package servicetest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestMetricSum(t *testing.T) {
	page := `# HELP x_total Things.
# TYPE x_total counter
x_total{kind="a",otel_scope_name="s1"} 2
x_total{kind="a",otel_scope_name="s2"} 3
x_total{otel_scope_name="s1",kind="b \"quoted\""} 1.5
x_total 4
x_total_other{kind="a"} 100
y_total{kind="a"} 7
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(page)) }))
	defer srv.Close()
	got := MetricSum(t, srv.Client(), srv.URL, "x_total", "kind")
	want := map[string]float64{"a": 5, `b \"quoted\"`: 1.5, "": 4}
	if len(got) != len(want) {
		t.Fatalf("MetricSum = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("MetricSum[%q] = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

func TestMetricBuckets(t *testing.T) {
	page := `# TYPE w_seconds histogram
w_seconds_bucket{rule="a",le="0.001"} 0
w_seconds_bucket{rule="a",le="0.5"} 1
w_seconds_bucket{rule="a",le="+Inf"} 2
w_seconds_bucket{le="0.001",rule="b"} 0
w_seconds_bucket{le="0.5",rule="b"} 0
w_seconds_bucket{le="+Inf",rule="b"} 1
w_seconds_sum{rule="a"} 3
w_seconds_count{rule="a"} 2
w_seconds_other_bucket{le="7"} 1
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(page)) }))
	defer srv.Close()
	if got, want := MetricBuckets(t, srv.Client(), srv.URL, "w_seconds"), []string{"0.001", "0.5", "+Inf"}; !slices.Equal(got, want) {
		t.Errorf("MetricBuckets = %v, want %v", got, want)
	}
	if got := MetricBuckets(t, srv.Client(), srv.URL, "none"); len(got) != 0 {
		t.Errorf("MetricBuckets of a missing histogram = %v, want none", got)
	}
}
