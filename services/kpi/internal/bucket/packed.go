package bucket

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Day and week totals are stored packed: "v1" and then " <field>=<value>" for every non-zero
// field, e.g. "v1 as=3 fc=2 fs=5400 F412=2". One string per key instead of a hash, because a
// listing reads thousands of totals, and one bulk string is far cheaper for Redis to send and for
// Go to parse than hundreds of hash fields. Text, because the rollup builds it in Lua.
const packedVersion = "v1"

// Pack returns the packed form of fields (plain field names). Zero values are left out; the
// fields are sorted so equal totals pack equally.
func Pack(fields map[string]int64) string {
	names := make([]string, 0, len(fields))
	for f, v := range fields {
		if v != 0 {
			names = append(names, f)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(packedVersion)
	for _, f := range names {
		b.WriteByte(' ')
		b.WriteString(f)
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(fields[f], 10))
	}
	return b.String()
}

// EachPacked calls f with every field and value of packed totals; the strings share s's memory.
func EachPacked(s string, f func(field, value string) error) error {
	rest, ok := strings.CutPrefix(s, packedVersion)
	if !ok {
		return fmt.Errorf("packed totals %.20q: not %s", s, packedVersion)
	}
	for rest != "" {
		if rest[0] != ' ' {
			return fmt.Errorf("packed totals: want a space before %.20q", rest)
		}
		rest = rest[1:]
		item := rest
		if i := strings.IndexByte(rest, ' '); i >= 0 {
			item, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		eq := strings.IndexByte(item, '=')
		if eq <= 0 || eq == len(item)-1 {
			return fmt.Errorf("packed totals: item %q: want field=value", item)
		}
		if err := f(item[:eq], item[eq+1:]); err != nil {
			return err
		}
	}
	return nil
}

// packedHoursVersion marks packed hours (PackedHoursField) that name each hour once: an item
// "hh|field=value" starts hour hh, and the items after it without an hour ("field=value") are of
// the same hour, e.g. "v2 07|fc=2 F412=1 08|as=1". Packed hours of version v1 name the hour in
// every item; both are read.
const packedHoursVersion = "v2"

// EachPackedHours calls f with the hour of the day, field and value of every item of packed hours
// (PackedHoursField) of either version; the strings share s's memory.
func EachPackedHours(s string, f func(hourOfDay int, field, value string) error) error {
	v2 := strings.HasPrefix(s, packedHoursVersion)
	if v2 {
		s = packedVersion + s[len(packedHoursVersion):]
	}
	hour := -1
	return EachPacked(s, func(field, value string) error {
		if len(field) >= 4 && field[2] == '|' {
			hh, plain, err := SplitHourField(field)
			if err != nil {
				return err
			}
			hour, field = hh, plain
		} else if !v2 || hour < 0 {
			return fmt.Errorf("packed hours: item %q has no hour", field)
		}
		return f(hour, field, value)
	})
}

// AddPacked adds packed totals.
func (t *Totals) AddPacked(s string) error {
	return EachPacked(s, func(field, value string) error {
		v, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("bucket field %q: value %q: %w", field, value, err)
		}
		return t.AddField(field, v)
	})
}
