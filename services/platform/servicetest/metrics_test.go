package servicetest

import (
	"net/http"
	"net/http/httptest"
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
