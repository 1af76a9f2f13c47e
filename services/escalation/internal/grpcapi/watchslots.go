package grpcapi

import "sync"

// watchSlots bounds the live WatchEscalations streams of each tenant, so one tenant's clients
// cannot hold every consumer and goroutine of a replica. The bound is per replica.
type watchSlots struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

func newWatchSlots(max int) *watchSlots { return &watchSlots{max: max, open: map[string]int{}} }

// take reserves a stream for tenant; false when the tenant has max open already.
func (w *watchSlots) take(tenant string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open[tenant] >= w.max {
		return false
	}
	w.open[tenant]++
	return true
}

// give back a stream take reserved.
func (w *watchSlots) give(tenant string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open[tenant]--; w.open[tenant] <= 0 {
		delete(w.open, tenant)
	}
}
