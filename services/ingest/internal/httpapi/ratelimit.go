package httpapi

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/admission"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
)

// Gate is the global admission control (package admission): it refuses events for everyone when
// the pipeline is full, and says how far every tenant's rate is scaled down before that.
type Gate interface {
	Admit(n int) admission.Decision
	Done(n int)
	Rejected(ctx context.Context, r admission.Reason)
}

// RateLimits holds each tenant's token bucket of events per second (the tenants file's
// rate_limit) and the global admission gate. One RateLimits serves both the events API and the
// webhooks, so a tenant's limit is one budget whichever way its events come in, and pressure
// on the pipeline shrinks that one budget.
type RateLimits struct {
	tenants Tenants
	gate    Gate
	mu      sync.Mutex
	// buckets hold only tenants the file names (the others are refused before they get here),
	// so the map is bounded by the tenants file.
	buckets map[string]*tenantLimiter
}

type tenantLimiter struct {
	limit tenants.RateLimit
	// factor is the scale the limiter's refill rate was last set to.
	factor float64
	l      *rate.Limiter
}

// NewRateLimits returns the limits of the tenants t knows; a tenant t does not know, or one
// without a rate_limit, is not limited.
func NewRateLimits(t Tenants) *RateLimits {
	return &RateLimits{tenants: t, buckets: map[string]*tenantLimiter{}}
}

// WithGate adds global admission control: gate may refuse events for everyone (503), and while
// it reports pressure every tenant's refill rate is scaled by its factor.
func (l *RateLimits) WithGate(gate Gate) *RateLimits {
	l.gate = gate
	return l
}

// admit lets n events of a tenant in, or answers 503 (the pipeline is full) or 429 (the tenant
// is over its share) with how long to wait. Admitted events must be followed by a call of the
// returned done once their publish is over. A nil RateLimits admits everything.
func (l *RateLimits) admit(ctx context.Context, tenantID string, n int, now time.Time) (*answer, func()) {
	if l == nil {
		return nil, nil
	}
	factor := 1.0
	done := func() {}
	if l.gate != nil {
		d := l.gate.Admit(n)
		if d.Refused != "" {
			l.gate.Rejected(ctx, d.Refused)
			return overloaded(d), nil
		}
		factor = d.Factor
		done = func() { l.gate.Done(n) }
	}
	t, ok := l.tenants.Tenant(tenantID)
	if !ok || t.RateLimit.EventsPerSecond <= 0 {
		return nil, done
	}
	limit := t.RateLimit
	wait, ok := l.take(tenantID, limit, factor, n, now)
	if ok {
		return nil, done
	}
	done()
	if l.gate != nil {
		l.gate.Rejected(ctx, admission.TenantShare)
	}
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	reason := fmt.Sprintf("tenant %s may send %g events/s (bursts of %d); retry after %d s",
		tenantID, limit.EventsPerSecond, limit.Burst, secs)
	if factor < 1 {
		// Under pressure the wait is a guess at a moving rate: ask again soon, never past the cap.
		secs = min(secs, admission.MaxRetryAfter)
		reason = fmt.Sprintf("the pipeline is busy, so tenant %s may send %.0f%% of its %g events/s now; retry after %d s",
			tenantID, 100*factor, limit.EventsPerSecond, secs)
	}
	a := rejected(http.StatusTooManyRequests, Rejected{Error: "rate limited", Reason: reason})
	a.retryAfter = secs
	return a, nil
}

func (l *RateLimits) take(tenantID string, limit tenants.RateLimit, factor float64, n int, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	key := tenantID
	tl := l.buckets[key]
	if tl == nil || tl.limit != limit {
		tl = &tenantLimiter{limit: limit, factor: factor, l: rate.NewLimiter(scaled(limit, factor), limit.Burst)}
		l.buckets[key] = tl
	} else if tl.factor != factor {
		// Tokens already in the bucket stay; only the refill changes.
		tl.factor = factor
		tl.l.SetLimitAt(now, scaled(limit, factor))
	}
	l.mu.Unlock()
	// A request larger than the burst could never fit: let it through alone rather than refuse
	// it forever.
	n = min(n, limit.Burst)
	r := tl.l.ReserveN(now, n)
	if !r.OK() {
		return time.Second, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		if d == rate.InfDuration {
			d = admission.MaxRetryAfter * time.Second
		}
		return d, false
	}
	return 0, true
}

// scaled is the limit's refill rate times factor, never zero: a zero-rate limiter spends its
// burst for good (and at factor 0 the gate refuses everyone before any bucket is asked).
func scaled(limit tenants.RateLimit, factor float64) rate.Limit {
	return rate.Limit(limit.EventsPerSecond * math.Max(factor, 0.001))
}

// overloaded is the 503 of a global refusal.
func overloaded(d admission.Decision) *answer {
	reason := "backlog: more events wait to be processed than ingest takes on; nothing was stored, send again after Retry-After"
	if d.Refused == admission.StreamFull {
		reason = "stream_full: the event log is at its size limit; nothing was stored, send again after Retry-After"
	}
	a := rejected(http.StatusServiceUnavailable, Rejected{Error: "overloaded", Code: "overloaded", Reason: reason})
	a.retryAfter = max(d.RetryAfter, 1)
	return a
}
