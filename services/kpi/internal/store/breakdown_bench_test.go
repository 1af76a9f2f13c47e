package store

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// keyKind names the kind of a key for the memory breakdown: the scope kind (or "t" for tickets)
// and the key's suffix without its numbers, e.g. "a:h", "g:mt", "t".
func keyKind(k string) string {
	open, close := strings.IndexByte(k, '{'), strings.IndexByte(k, '}')
	if open < 0 || close < open {
		return k
	}
	tag := k[open+1 : close]
	parts := strings.SplitN(tag, ":", 3)
	kind := "?"
	if len(parts) >= 2 {
		kind = parts[1]
	}
	rest := strings.TrimPrefix(k[close+1:], ":")
	var b strings.Builder
	for _, r := range rest {
		if r >= '0' && r <= '9' {
			continue
		}
		b.WriteRune(r)
	}
	s := strings.TrimRight(b.String(), ":")
	if kind == "ix" {
		s = strings.SplitN(s, ":", 2)[0]
	}
	if s == "" {
		return kind
	}
	return kind + ":" + s
}

// memoryBreakdown logs the MEMORY USAGE of every key summed per key kind, per event, when
// TICKETPULSE_BENCH_BREAKDOWN is set.
func memoryBreakdown(b *testing.B, rdb redis.UniversalClient, label string, events int) {
	if os.Getenv("TICKETPULSE_BENCH_BREAKDOWN") == "" {
		return
	}
	ctx := context.Background()
	type agg struct {
		keys, bytes int64
		sample      string
	}
	sums := map[string]*agg{}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		n, err := rdb.MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			b.Fatal(err)
		}
		kind := keyKind(k)
		a := sums[kind]
		if a == nil {
			a = &agg{}
			sums[kind] = a
		}
		if a.keys == 0 || n > 0 && a.keys == 5 {
			a.sample = k
		}
		a.keys++
		a.bytes += n
	}
	if err := iter.Err(); err != nil {
		b.Fatal(err)
	}
	kinds := make([]string, 0, len(sums))
	var total int64
	for k, a := range sums {
		kinds = append(kinds, k)
		total += a.bytes
	}
	slices.SortFunc(kinds, func(x, y string) int { return int(sums[y].bytes - sums[x].bytes) })
	var out strings.Builder
	fmt.Fprintf(&out, "%s: MEMORY USAGE total %.1f B/event\n", label, float64(total)/float64(events))
	for _, k := range kinds {
		a := sums[k]
		enc, _ := rdb.ObjectEncoding(ctx, a.sample).Result()
		var size int64
		switch typ, _ := rdb.Type(ctx, a.sample).Result(); typ {
		case "hash":
			size = rdb.HLen(ctx, a.sample).Val()
		case "string":
			size = rdb.StrLen(ctx, a.sample).Val()
		case "set":
			size = rdb.SCard(ctx, a.sample).Val()
		case "zset":
			size = rdb.ZCard(ctx, a.sample).Val()
		}
		fmt.Fprintf(&out, "  %-14s %8d keys %8.1f B/key %7.2f B/event  (e.g. %s: %s, %d long)\n", k, a.keys, float64(a.bytes)/float64(a.keys), float64(a.bytes)/float64(events), a.sample, enc, size)
	}
	fmt.Fprint(os.Stderr, out.String())
}
