package rulesfile

import (
	"maps"
	"slices"
	"testing"
)

// The metrics table describes exactly the metrics a rule may name.
func TestMetricsTable(t *testing.T) {
	if names := slices.Sorted(maps.Keys(metrics)); !slices.Equal(names, slices.Sorted(slices.Values(Metrics))) {
		t.Errorf("metrics table %v does not match Metrics %v", names, Metrics)
	}
}
