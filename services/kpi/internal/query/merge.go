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

// finish moves the dense bins into the histograms and returns the totals.
func (m *merger) finish() *bucket.Totals {
	for d := range m.dense {
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

// add adds a plain field with its stored decimal value.
func (m *merger) add(field, value string) error {
	v, err := parseValue(field, value)
	if err != nil {
		return err
	}
	if len(field) == 2 && field[0] < 128 && field[1] < 128 {
		if c := counterAt[field[0]][field[1]]; c >= 0 {
			m.t.C[c] += v
			return nil
		}
	}
	if len(field) >= 2 && field[0] < 128 {
		if d := durationAt[field[0]]; d >= 0 {
			if b, ok := atoi64(field[1:]); ok && b >= denseLo && b < denseLo+denseN {
				i := int(b - denseLo)
				m.dense[d][i] += v
				m.lo[d], m.hi[d] = min(m.lo[d], i), max(m.hi[d], i)
				return nil
			}
		}
	}
	return m.t.AddField(field, v)
}

// addHourly adds an hourly detail field if its hour of the day is in [from, to).
func (m *merger) addHourly(field, value string, from, to int) error {
	if field == bucket.PackedHoursField {
		return bucket.EachPackedHours(value, func(hh int, f, v string) error {
			if hh < from || hh >= to {
				return nil
			}
			return m.add(f, v)
		})
	}
	if len(field) >= 4 && field[2] == '|' && isDigit(field[0]) && isDigit(field[1]) {
		if hh := int(field[0]-'0')*10 + int(field[1]-'0'); hh < 24 {
			if hh < from || hh >= to {
				return nil
			}
			return m.add(field[3:], value)
		}
	}
	hh, f, err := bucket.SplitHourField(field)
	if err != nil {
		return err
	}
	if hh < from || hh >= to {
		return nil
	}
	return m.add(f, value)
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
