package query

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
)

// randomHash makes a hash of the kind the write path stores, salted with fields and values it
// never stores, so the fast merge is compared with bucket's own parsing on both.
func randomHash(rng *rand.Rand, hourly, salt bool) map[string]string {
	h := make(map[string]string)
	for range 1 + rng.IntN(40) {
		var f string
		switch rng.IntN(4) {
		case 0:
			f = bucket.Counter(rng.IntN(int(bucket.NumCounters))).Field()
		case 1:
			f = bucket.BinField(bucket.Duration(rng.IntN(int(bucket.NumDurations))), int32(rng.IntN(1200)-400))
		case 2:
			f = bucket.BinField(bucket.Duration(rng.IntN(int(bucket.NumDurations))), hist.ZeroBin)
		default:
			// Bins far outside the dense range still count.
			f = bucket.BinField(bucket.Duration(rng.IntN(int(bucket.NumDurations))), int32(rng.IntN(1<<20)-1<<19))
		}
		v := strconv.FormatInt(rng.Int64N(2000)-500, 10)
		if salt && rng.IntN(25) == 0 {
			f = []string{"zz", "F", "Fx", "F+5", "F05", "F-0", "a", "", "F99999999999", "R2147483648"}[rng.IntN(10)]
		}
		if salt && rng.IntN(25) == 0 {
			v = []string{"", "-", "+5", "007", "12a", "9223372036854775807", "99999999999999999999", "-9223372036854775808"}[rng.IntN(8)]
		}
		if hourly {
			hh := fmt.Sprintf("%02d", rng.IntN(24))
			if salt && rng.IntN(25) == 0 {
				hh = []string{"24", "-1", "+1", "x1", "7"}[rng.IntN(5)]
			}
			f = hh + "|" + f
			if salt && rng.IntN(40) == 0 {
				f = "12:" + f[3:]
			}
		}
		h[f] = v
	}
	return h
}

// packHash is a hash's fields in the packed form of totals, in the hash's order, left unchecked
// (a salted field or value makes a packed form that does not parse).
func packHash(h map[string]string) string {
	s := "v1"
	for f, v := range h {
		s += " " + f + "=" + v
	}
	return s
}

func TestMergerMatchesBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 4000 {
		salt := i%3 == 0
		hashes := []map[string]string{randomHash(rng, false, salt), randomHash(rng, false, salt)}
		want := bucket.NewTotals()
		var wantErr error
		m := newMerger()
		var gotErr error
		for _, h := range hashes {
			wantErr = errorsJoin(wantErr, want.AddHash(h))
			d, err := decode(packHash(h))
			if err == nil {
				err = m.addDecoded(d)
			}
			gotErr = errorsJoin(gotErr, err)
		}
		got := m.finish(AllFields.histograms())
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("case %d %v: merger error %v, bucket error %v", i, hashes, gotErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d %v:\n merger %v\n bucket %v", i, hashes, got, want)
		}
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// A merger is reused across scopes: nothing of one scope may leak into the next.
func TestMergerResets(t *testing.T) {
	m := newMerger()
	d, err := decode("v1 as=3 " + bucket.BinField(bucket.FirstResponse, 12) + "=3 " + bucket.BinField(bucket.Resolution, 5000) + "=3")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.addDecoded(d); err != nil {
		t.Fatal(err)
	}
	all := AllFields.histograms()
	if first := m.finish(all); first.C[bucket.Assigned] != 3 || first.H[bucket.FirstResponse][12] != 3 || first.H[bucket.Resolution][5000] != 3 {
		t.Fatalf("first scope: %v", first)
	}
	if second := m.finish(all); !reflect.DeepEqual(second, bucket.NewTotals()) {
		t.Fatalf("second scope not empty: %v", second)
	}
	// The histograms not wanted are left empty, their counters kept, and their bins do not
	// reach the next scope either.
	if err := m.addDecoded(d); err != nil {
		t.Fatal(err)
	}
	resolution, _ := FieldNamed("resolution")
	if third := m.finish(resolution.histograms()); third.C[bucket.Assigned] != 3 || len(third.H[bucket.FirstResponse]) != 0 || third.H[bucket.Resolution][5000] != 3 {
		t.Fatalf("third scope, resolution alone: %v", third)
	}
	if fourth := m.finish(all); !reflect.DeepEqual(fourth, bucket.NewTotals()) {
		t.Fatalf("fourth scope not empty: %v", fourth)
	}
}

func BenchmarkMergerAddDecoded(b *testing.B) {
	m := newMerger()
	d, err := decode("v1 as=17 cs=17 F412=17 N77=17 R-12=17")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := m.addDecoded(d); err != nil {
			b.Fatal(err)
		}
	}
}
