package hist

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func TestBinValueWithinError(t *testing.T) {
	for _, v := range []float64{0.0011, 0.5, 1, 1.5, 59, 60, 61, 3600, 86400 * 30, 3e8} {
		got := Value(Bin(v))
		if rel := math.Abs(got-v) / v; rel > RelativeError {
			t.Errorf("value %g -> bin %d -> %g: relative error %.4f > %.2f", v, Bin(v), got, rel, RelativeError)
		}
	}
	if Bin(0) != ZeroBin || Value(ZeroBin) != 0 {
		t.Fatal("zero must map to the zero bin and back to 0")
	}
}

func exactQuantile(sorted []float64, q float64) float64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func TestQuantilesOfMergedHistogramsWithinOnePercent(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		var all []float64
		merged := Hist{}
		for part := 0; part < 5; part++ {
			h := Hist{}
			for i := 0; i < 1+r.IntN(400); i++ {
				v := math.Exp(r.NormFloat64()*2 + 6) // log-normal around minutes
				all = append(all, v)
				h.Add(Bin(v), 1)
			}
			merged.Merge(h)
		}
		sort.Float64s(all)
		qs := []float64{0.5, 0.9, 0.99}
		got := merged.Quantiles(qs...)
		for i, q := range qs {
			want := exactQuantile(all, q)
			if rel := math.Abs(got[i]-want) / want; rel > RelativeError {
				t.Fatalf("trial %d q%.2f: got %g want %g (rel %.4f)", trial, q, got[i], want, rel)
			}
		}
	}
}

func TestAddRemovesEmptyBins(t *testing.T) {
	h := Hist{}
	h.Add(5, 2)
	h.Add(5, -2)
	if len(h) != 0 {
		t.Fatalf("bin left at zero: %v", h)
	}
	if q := h.Quantiles(0.5); q[0] != 0 {
		t.Fatalf("empty histogram quantile = %v", q)
	}
}

// nearestRank is the nearest-rank quantile of sorted values, with the rank ⌈q·n⌉ computed in
// integers (q in hundredths), so no floating-point product decides it.
func nearestRank(sorted []float64, hundredths int) float64 {
	n := len(sorted)
	rank := max((hundredths*n+99)/100, 1)
	return sorted[rank-1]
}

// Property: p50, p90 and p99 are within 1 % (relative) of the nearest-rank quantile of the
// samples, for tiny samples (every n from 1 to 10) and large ones (10⁵), drawn from several
// distributions: uniform, log-normal, durations at whole-minute precision (zeros and many equal
// values, as exports with minute timestamps give), and a few values repeated many times.
func TestQuantilesWithinOnePercentOfNearestRank(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	dists := []struct {
		name string
		draw func() float64
	}{
		{"uniform", func() float64 { return 0.002 + r.Float64()*7200 }},
		{"log-normal", func() float64 { return math.Exp(r.NormFloat64()*2 + 6) }},
		{"whole minutes", func() float64 { return float64(60 * r.IntN(30)) }},
		{"many equal", func() float64 { return []float64{0, 1, 59.5, 60, 60, 60, 60, 3600, 86400}[r.IntN(9)] }},
		{"one value", func() float64 { return 42.7 }},
		{"heavy tail", func() float64 { return 1 / (0.0001 + r.Float64()) }},
	}
	qs := []float64{0.5, 0.9, 0.99}
	hundredths := []int{50, 90, 99}
	check := func(dist string, vals []float64) {
		t.Helper()
		h := Hist{}
		for _, v := range vals {
			h.Add(Bin(v), 1)
		}
		sorted := slices.Clone(vals)
		slices.Sort(sorted)
		got := h.Quantiles(qs...)
		for i := range qs {
			want := nearestRank(sorted, hundredths[i])
			if want == 0 {
				if got[i] != 0 {
					t.Fatalf("%s n=%d p%d: got %g, want 0", dist, len(vals), hundredths[i], got[i])
				}
				continue
			}
			if rel := math.Abs(got[i]-want) / want; rel > RelativeError {
				t.Fatalf("%s n=%d p%d: got %g, nearest rank %g (relative error %.5f > %.2f)", dist, len(vals), hundredths[i], got[i], want, rel, RelativeError)
			}
		}
	}
	for _, d := range dists {
		for n := 1; n <= 10; n++ {
			for range 300 {
				vals := make([]float64, n)
				for i := range vals {
					vals[i] = d.draw()
				}
				check(d.name, vals)
			}
		}
		for range 3 {
			vals := make([]float64, 100_000)
			for i := range vals {
				vals[i] = d.draw()
			}
			check(d.name, vals)
		}
	}
}

// The rank is ⌈q·n⌉ exactly: where q·n is a whole number in exact arithmetic, a floating-point
// product a hair above it must not move the answer to the next value. For every n up to 10⁵, the
// first ⌈q·n⌉ samples are 100 and the rest 200, so the quantile is 100 and an off-by-one rank 200.
func TestQuantileRankIsExact(t *testing.T) {
	lo, hi := Bin(100), Bin(200)
	for n := 1; n <= 100_000; n++ {
		for i, q := range []float64{0.5, 0.9, 0.99} {
			rank := int64(max((([]int{50, 90, 99}[i])*n+99)/100, 1))
			h := Hist{lo: rank}
			if rest := int64(n) - rank; rest > 0 {
				h[hi] = rest
			}
			if got := h.Quantiles(q)[0]; got != Value(lo) {
				t.Fatalf("n=%d q%.2f: got %g, want the %d-th value %g", n, q, got, rank, Value(lo))
			}
		}
	}
}

// Every quantile in whole percent, for every n up to 1000 (0.07·100 is 7.000000000000001 in
// floating point: its rank is still 7).
func TestQuantileRankOfEveryPercent(t *testing.T) {
	lo, hi := Bin(100), Bin(200)
	for n := 1; n <= 1000; n++ {
		for pct := 1; pct <= 100; pct++ {
			rank := int64(max((pct*n+99)/100, 1))
			h := Hist{lo: rank}
			if rest := int64(n) - rank; rest > 0 {
				h[hi] = rest
			}
			if got := h.Quantiles(float64(pct) / 100)[0]; got != Value(lo) {
				t.Fatalf("n=%d q%d%%: got %g, want the %d-th value %g", n, pct, got, rank, Value(lo))
			}
		}
	}
	// Out of range and unusual histograms: q 0 is the smallest value, q 1 the largest, the zero
	// bin counts as 0, and bins spread wider than the dense walk are sorted.
	h := Hist{ZeroBin: 2, 5: 1, 1 << 20: 1, -(1 << 20): 1}
	if got := h.Quantiles(0, 0.4, 0.6, 0.8, 1); got[0] != 0 || got[1] != 0 || got[2] != Value(-(1<<20)) || got[3] != Value(5) || got[4] != Value(1<<20) {
		t.Fatalf("wide histogram quantiles = %v", got)
	}
}
