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
// (the smallest value with at least q·n values at or below it, rank ⌈q·n⌉). Empty histograms
// give zeros.
func (h Hist) Quantiles(qs ...float64) []float64 { return h.QuantilesOf(Value, qs...) }

// QuantilesOf is Quantiles for a histogram whose bins are not the log-scale bins of durations
// (QA scores are binned linearly): value gives the representative of a bin.
func (h Hist) QuantilesOf(value func(int32) float64, qs ...float64) []float64 {
	out := make([]float64, len(qs))
	// One pass over the map finds the count and the range of the bins.
	var n, zeros int64
	lo, hi := int32(math.MaxInt32), int32(math.MinInt32)
	for b, c := range h {
		if c <= 0 {
			continue
		}
		n += c
		if b == ZeroBin {
			zeros += c
			continue
		}
		lo, hi = min(lo, b), max(hi, b)
	}
	if n <= 0 {
		return out
	}
	ranks := make([]int64, len(qs))
	for i, q := range qs {
		ranks[i] = rank(q, n)
	}
	// Durations span a few hundred bins, so the bins are walked in order through a dense array
	// indexed by bin: no sort, which a listing of hundreds of agents would pay for every quantile.
	// A histogram spread wider than that (not one of durations) is sorted instead.
	if int64(hi)-int64(lo) < denseLimit {
		counts := make([]int64, max(int(hi-lo+1), 0))
		for b, c := range h {
			if c > 0 && b != ZeroBin {
				counts[b-lo] += c
			}
		}
		for i, r := range ranks {
			seen := zeros
			if seen >= r {
				continue // the zero bin: 0
			}
			for j, c := range counts {
				if seen += c; seen >= r {
					out[i] = value(lo + int32(j))
					break
				}
			}
		}
		return out
	}
	type binCount struct {
		bin int32
		n   int64
	}
	bins := make([]binCount, 0, len(h))
	for b, c := range h {
		if c > 0 {
			bins = append(bins, binCount{b, c})
		}
	}
	slices.SortFunc(bins, func(a, b binCount) int { return cmp.Compare(a.bin, b.bin) })
	for i, r := range ranks {
		var seen int64
		for _, b := range bins {
			seen += b.n
			if seen >= r {
				out[i] = value(b.bin)
				break
			}
		}
	}
	return out
}

// denseLimit bounds the range of bins Quantiles walks through a dense array.
const denseLimit = 1 << 14

// rank is the nearest rank ⌈q·n⌉, at least 1 and at most n. A product within a few hundred ulps
// of a whole number is taken as that number: 0.07·100 is 7.000000000000001 in floating point,
// and its rank is 7, not 8.
func rank(q float64, n int64) int64 {
	x := q * float64(n)
	if r := math.Round(x); math.Abs(x-r) <= 1e-13*max(1, math.Abs(x)) {
		x = r
	}
	return min(max(int64(math.Ceil(x)), 1), n)
}
