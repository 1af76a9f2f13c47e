package app

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/platform/tenants"
	"github.com/ticketpulse/ticketpulse/services/platform/tick"
)

// OpenName is the gauge of open (triggered or acknowledged, not resolved) escalations by rule
// and level; escalation_open on /metrics. Every replica reads the same store and reports the
// same figures: aggregate replicas with max, not sum.
const OpenName = "escalation.open"

// Bounds of one reading of the open escalations: how often, how many escalations of a tenant
// are read at most (newest first; past it the figures are a lower bound and a warning is
// logged), and how long one reading may take.
var openEvery = 30 * time.Second // a variable for tests

const (
	openScanMax = 10_000
	openTimeout = 10 * time.Second
	openPage    = 500
)

type openKey struct {
	rule  string
	level int32
}

// openGauge reports the open escalations by rule and level.
type openGauge struct {
	gauge metric.Int64Gauge
	store *escalationstore.Store
	// tenants lists the tenant ids in force.
	tenants func() []string
	log     *slog.Logger
	// seen are the series reported before, set to 0 once they have nothing open.
	seen map[openKey]bool
}

func newOpenGauge(meter metric.Meter, store *escalationstore.Store, tenants func() []string, log *slog.Logger) (*openGauge, error) {
	g, err := meter.Int64Gauge(OpenName, metric.WithUnit("{escalation}"),
		metric.WithDescription("Escalations triggered or acknowledged and not resolved, by rule and level, read from the store every 30 s; every replica reports the same figures."))
	if err != nil {
		return nil, err
	}
	return &openGauge{gauge: g, store: store, tenants: tenants, log: log, seen: map[openKey]bool{}}, nil
}

// run reads the open escalations now and every openEvery until ctx ends.
func (o *openGauge) run(ctx context.Context) error {
	return tick.NowAndEvery(ctx, openEvery, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, openTimeout)
		defer cancel()
		counts, err := o.count(ctx)
		if err != nil {
			if ctx.Err() == nil || errors.Is(err, context.DeadlineExceeded) {
				o.log.Warn("open escalations not counted", "err", err)
			}
			return
		}
		o.record(ctx, counts)
	})
}

// count reads every tenant's escalations, newest first, up to openScanMax each.
func (o *openGauge) count(ctx context.Context) (map[openKey]int64, error) {
	counts := map[openKey]int64{}
	for _, tenant := range o.tenants() {
		read, token := 0, ""
		for {
			recs, next, err := o.store.List(ctx, tenant, escalationstore.Filter{}, openPage, token)
			if err != nil {
				return nil, err
			}
			for _, r := range recs {
				if r.Open() {
					counts[openKey{r.Rule, r.Level}]++
				}
			}
			read += len(recs)
			if next == "" {
				break
			}
			if read >= openScanMax {
				o.log.Warn("open escalations counted from the newest only", "tenant", tenant, "read", read)
				break
			}
			token = next
		}
	}
	return counts, nil
}

func (o *openGauge) record(ctx context.Context, counts map[openKey]int64) {
	for k := range o.seen {
		if _, ok := counts[k]; !ok {
			counts[k] = 0
		}
	}
	for _, k := range slices.Collect(maps.Keys(counts)) {
		o.seen[k] = true
		o.gauge.Record(ctx, counts[k], metric.WithAttributes(attribute.String("rule", k.rule), attribute.Int("level", int(k.level))))
	}
}

// tenantIDs lists the tenants of the file in force, sorted.
func tenantIDs(r *tenants.Registry[tenants.NoSources]) func() []string {
	return func() []string { return slices.Sorted(maps.Keys(r.Config().Tenants)) }
}
