package hist

import (
	"math"
	"math/rand/v2"
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
