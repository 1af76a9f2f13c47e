package canonical

import (
	"bytes"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// batch writes a realistic array of n canonical events.
func batch(n int) []byte {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for j := 0; j < n; j++ {
		if j > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"id":"evt-`)
		buf.WriteString(strconv.Itoa(j))
		buf.WriteString(`","ticket_id":"T-`)
		buf.WriteString(strconv.Itoa(j / 4))
		buf.WriteString(`","type":"agent_message","occurred_at":"2026-03-02T09:14:05Z","actor":{"id":"ana@example.com","kind":"agent"},"assignee_id":"ana@example.com","team_id":"billing","priority":"high","public":true,"channel":"email","tags":["vip","invoice"]}`)
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// cpuTime is the CPU time the process has used, user and system: on a machine shared with
// other work it says more than the wall time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecode is the normal path of a request: decode, validate and convert a valid batch
// into TicketEvent messages.
func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			body := batch(n)
			o := Options{Tenant: "acme", Now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), MaxFutureSkew: time.Minute, MaxEvents: 1000}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			start := cpuTime(b)
			for b.Loop() {
				evs, err := Decode(body, o)
				if err != nil || len(Proto(evs, o.Tenant, o.Now)) != n {
					b.Fatalf("%d events, %v", len(evs), err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
