// Package hist is a mergeable log-scale histogram of durations with bounded relative error,
// in the manner of DDSketch: bin i holds values in (γ^(i-1), γ^i], so merging two histograms is
// adding their bins, and any quantile is read back within RelativeError of the true value.
package hist

import (
	"cmp"
	"math"
	"slices"
)

// RelativeError is the largest relative error of a quantile read from the bins.
const RelativeError = 0.01

var (
	gamma    = (1 + RelativeError) / (1 - RelativeError)
	logGamma = math.Log(gamma)
)

// MinValue is the smallest duration (seconds) that gets its own bin; anything at or below it,
// zero included, falls into ZeroBin.
const MinValue = 0.001

// ZeroBin is the bin for durations of at most MinValue.
const ZeroBin int32 = math.MinInt32

// Bin returns the bin of a duration in seconds.
func Bin(seconds float64) int32 {
	if seconds <= MinValue || math.IsNaN(seconds) {
		return ZeroBin
	}
	return int32(math.Ceil(math.Log(seconds) / logGamma))
}

// Value is the representative of a bin: within RelativeError of every value the bin holds.
func Value(bin int32) float64 {
	if bin == ZeroBin {
		return 0
	}
	return 2 * math.Pow(gamma, float64(bin)) / (gamma + 1)
}

// Hist maps bins to counts.
type Hist map[int32]int64

// Add counts n values in bin.
func (h Hist) Add(bin int32, n int64) {
	if v := h[bin] + n; v == 0 {
		delete(h, bin)
	} else {
		h[bin] = v
	}
}

// Merge adds o into h.
func (h Hist) Merge(o Hist) {
	for b, n := range o {
		h.Add(b, n)
	}
}

// Count is the number of values.
func (h Hist) Count() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantiles returns the values at each q in qs (0..1), using the nearest-rank definition
// (the smallest value with at least q·n values at or below it). Empty histograms give zeros.
func (h Hist) Quantiles(qs ...float64) []float64 {
	out := make([]float64, len(qs))
	// One pass over the map collects the bins with their counts; the rank walk then needs no lookups.
	type binCount struct {
		bin int32
		n   int64
	}
	bins := make([]binCount, 0, len(h))
	var n int64
	for b, c := range h {
		if c > 0 {
			bins = append(bins, binCount{b, c})
			n += c
		}
	}
	if n <= 0 {
		return out
	}
	slices.SortFunc(bins, func(a, b binCount) int { return cmp.Compare(a.bin, b.bin) })
	for i, q := range qs {
		rank := max(int64(math.Ceil(q*float64(n))), 1)
		var seen int64
		for _, b := range bins {
			seen += b.n
			if seen >= rank {
				out[i] = Value(b.bin)
				break
			}
		}
	}
	return out
}
