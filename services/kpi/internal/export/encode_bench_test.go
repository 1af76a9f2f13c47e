package export

import (
	"io"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkEncode writes 200,000 rows of the series columns per op (a year of hourly rows for
// 23 agents) and reports the time and allocations per row, and the largest live heap seen while
// writing (after a collection), which stays flat however many rows are written (row groups of parquetRowGroup rows).
func BenchmarkEncode(b *testing.B) {
	const rows = 200_000
	row := make([]Value, len(SeriesColumns))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, format := range []string{"csv", "parquet"} {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			var maxHeap uint64
			var ms runtime.MemStats
			for b.Loop() {
				enc := newEncoder(format, io.Discard, SeriesColumns)
				for i := range rows {
					row[0].S, row[1].S, row[2].S, row[5].S = "acme", "agent", "agent."+strconv.Itoa(i%23)+"@example.com", "UTC"
					row[3].T, row[4].T = start.Add(time.Duration(i)*time.Hour), start.Add(time.Duration(i+1)*time.Hour)
					for j := 6; j < len(row); j++ {
						row[j].I, row[j].F = int64(i%97+j), float64(i%1013)/7
					}
					if err := enc.write(row); err != nil {
						b.Fatal(err)
					}
					if i%50_000 == 49_999 {
						b.StopTimer()
						runtime.GC() // live memory, not garbage awaiting collection
						runtime.ReadMemStats(&ms)
						maxHeap = max(maxHeap, ms.HeapAlloc)
						b.StartTimer()
					}
				}
				if err := enc.close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
			b.ReportMetric(float64(maxHeap)/(1<<20), "max-heap-MB")
		})
	}
}
