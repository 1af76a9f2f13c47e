package query

import (
	"fmt"
	"strconv"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
)

// A listing merges hundreds of thousands of fields per call, so merging skips the general
// bucket.Totals.AddField (a map lookup per counter, a map update per bin, strconv per value):
// counters are found by a table over their two-letter names, bins are summed into dense arrays
// and moved into the histograms once per scope. Anything off the fast path (an unusual bin, a
// field this table does not know) goes through AddField, so the result and the errors are the
// same as bucket's own.

// Dense bins cover durations from below hist.MinValue up to centuries.
const (
	denseLo = -512
	denseN  = 2048
)

var (
	// counterAt maps the two bytes of a counter's field name to the counter, -1 for none.
	counterAt [128][128]int8
	// durationAt maps the first byte of a bin field to its duration, -1 for none.
	durationAt [128]int8
)

func init() {
	for i := range counterAt {
		for j := range counterAt[i] {
			counterAt[i][j] = -1
		}
	}
	for i := range durationAt {
		durationAt[i] = -1
	}
	for c := range bucket.NumCounters {
		if f := c.Field(); len(f) == 2 && f[0] < 128 && f[1] < 128 {
			counterAt[f[0]][f[1]] = int8(c)
		}
	}
	for d := range bucket.NumDurations {
		if f := bucket.BinField(d, 1); len(f) == 2 && f[1] == '1' && f[0] < 128 {
			durationAt[f[0]] = int8(d)
		}
	}
}

// merger sums the fields of one scope at a time.
type merger struct {
	t      *bucket.Totals
	dense  [bucket.NumDurations][denseN]int64
	lo, hi [bucket.NumDurations]int // touched part of dense, empty when lo > hi
}

func newMerger() *merger {
	m := &merger{}
	m.reset()
	return m
}

func (m *merger) reset() {
	m.t = bucket.NewTotals()
	for d := range m.lo {
		m.lo[d], m.hi[d] = denseN, -1
	}
}

// finish moves the dense bins of the histograms wanted into them, clears the others, and returns
// the totals.
func (m *merger) finish(want [bucket.NumDurations]bool) *bucket.Totals {
	for d := range m.dense {
		if !want[d] {
			if m.lo[d] <= m.hi[d] {
				clear(m.dense[d][m.lo[d] : m.hi[d]+1])
			}
			// A bin off the fast path went into the histogram itself.
			clear(m.t.H[d])
			continue
		}
		if len(m.t.H[d]) == 0 && m.lo[d] <= m.hi[d] {
			n := 0
			for _, c := range m.dense[d][m.lo[d] : m.hi[d]+1] {
				if c != 0 {
					n++
				}
			}
			m.t.H[d] = make(hist.Hist, n) // sized once instead of grown bin by bin
		}
		for i := m.lo[d]; i <= m.hi[d]; i++ {
			if n := m.dense[d][i]; n != 0 {
				m.t.H[d].Add(int32(i+denseLo), n)
				m.dense[d][i] = 0
			}
		}
	}
	t := m.t
	m.reset()
	return t
}

// parseValue reads a stored decimal value: the fast path for plain digits, strconv for the rest
// (a sign), and an error naming the field for anything else.
func parseValue(field, value string) (int64, error) {
	if v, ok := atoi64(value); ok {
		return v, nil
	}
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bucket field %q: value %q: %w", field, value, err)
	}
	return v, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// atoi64 parses an optionally negative decimal of at most 18 digits; anything else is left to
// strconv.
func atoi64(s string) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
