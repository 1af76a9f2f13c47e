package contrib

import (
	"math/rand/v2"
	"testing"
)

// The cost of judging the SLA by the rules file's policies on the write path: one ticket of 20
// events computed with the calendar-time targets and with an office-hours policy.
func BenchmarkComputeSLA(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	history := randomHistory(r, 20)
	for i := range history {
		history[i].Team = "office"
	}
	for _, bc := range []struct {
		name string
		sla  SLA
	}{{"calendar-time", DefaultSLA()}, {"policies", rulesSLA(b)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Compute(history, bc.sla)
			}
		})
	}
}
