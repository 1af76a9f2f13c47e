package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
)

// RateLimits holds each tenant's token bucket of events per second (the tenants file's
// rate_limit). One RateLimits serves both the events API and the webhooks, so a tenant's limit
// is one budget whichever way its events come in.
type RateLimits struct {
	tenants Tenants
	mu      sync.Mutex
	buckets map[string]*tenantLimiter
}

type tenantLimiter struct {
	limit tenants.RateLimit
	l     *rate.Limiter
}

// NewRateLimits returns the limits of the tenants t knows; a tenant t does not know, or one
// without a rate_limit, is not limited.
func NewRateLimits(t Tenants) *RateLimits {
	return &RateLimits{tenants: t, buckets: map[string]*tenantLimiter{}}
}

// admit takes n events from the tenant's bucket, or answers 429 with how long until they
// would fit. A nil RateLimits admits everything.
func (l *RateLimits) admit(tenantID string, n int, now time.Time) *answer {
	if l == nil {
		return nil
	}
	t, ok := l.tenants.Tenant(tenantID)
	if !ok || t.RateLimit.EventsPerSecond <= 0 {
		return nil
	}
	wait, ok := l.take(t, n, now)
	if ok {
		return nil
	}
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	a := rejected(http.StatusTooManyRequests, Rejected{Error: "rate limited",
		Reason: fmt.Sprintf("tenant %s may send %g events/s (bursts of %d); retry after %d s",
			tenantID, t.RateLimit.EventsPerSecond, t.RateLimit.Burst, secs)})
	a.retryAfter = secs
	return a
}

func (l *RateLimits) take(t *tenants.Tenant, n int, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	tl := l.buckets[t.ID]
	if tl == nil || tl.limit != t.RateLimit {
		tl = &tenantLimiter{limit: t.RateLimit, l: rate.NewLimiter(rate.Limit(t.RateLimit.EventsPerSecond), t.RateLimit.Burst)}
		l.buckets[t.ID] = tl
	}
	l.mu.Unlock()
	// A request larger than the burst could never fit: let it through alone rather than refuse
	// it forever.
	n = min(n, t.RateLimit.Burst)
	r := tl.l.ReserveN(now, n)
	if !r.OK() {
		return time.Second, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}
