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

// BenchmarkEncodeTickets writes 200,000 ticket rows per op, a third of them with absent figures
// (empty cells, Parquet nulls), and reports as BenchmarkEncode does.
func BenchmarkEncodeTickets(b *testing.B) {
	const rows = 200_000
	row := make([]Value, len(TicketColumns))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, format := range []string{"csv", "parquet"} {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			var maxHeap uint64
			var ms runtime.MemStats
			for b.Loop() {
				enc := newEncoder(format, io.Discard, TicketColumns)
				for i := range rows {
					at := start.Add(time.Duration(i) * time.Minute)
					row[0].S, row[1].S, row[2].S, row[3].S = "acme", "T-"+strconv.Itoa(i), "agent."+strconv.Itoa(i%23)+"@example.com", "billing"
					row[4].S, row[5].S = "solved", "high"
					row[6].T, row[8].T, row[10].T, row[16].T = at, at.Add(time.Minute), at.Add(time.Hour), at.Add(2*time.Hour)
					row[7].F, row[9].F, row[11].I, row[12].I = 60.5, 3600, int64(i%3), int64(1+i%5)
					for _, j := range []int{7, 8, 9, 10, 12} {
						row[j].Null = i%3 == 0
					}
					row[13].B, row[14].B, row[15].B = i%2 == 0, i%5 == 0, i%7 == 0
					if err := enc.write(row); err != nil {
						b.Fatal(err)
					}
					if i%50_000 == 49_999 {
						b.StopTimer()
						runtime.GC()
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
