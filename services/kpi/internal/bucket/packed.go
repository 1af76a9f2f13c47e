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
