package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/platform/filewatch"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
)

// rulesWatcher loads the SLA policies of the escalation service's rules file and reloads them when
// the file's content changes. A file that fails validation at start stops the service; on reload
// it is logged with every problem and the policies in force stay.
type rulesWatcher struct {
	path string
	log  *slog.Logger
	file *filewatch.Value[slapolicy.Set] // nil without a rules file
}

func (w *rulesWatcher) load() error {
	if w.path == "" {
		w.log.Info("no rules file (-rules-file): the first-response SLA is judged against -sla-first-response in calendar time")
		return nil
	}
	f, err := filewatch.Load(w.path, func(data []byte) (*slapolicy.Set, error) { return slapolicy.Parse(w.path, data) })
	if err != nil {
		return fmt.Errorf("rules file: %w", err)
	}
	w.file = f
	w.log.Info("SLA policies loaded", "file", w.path, "tenants", len(f.Load().Tenants))
	return nil
}

func (w *rulesWatcher) run(ctx context.Context, every time.Duration) error {
	if w.file == nil {
		return nil
	}
	return w.file.Watch(ctx, every, w.log)
}

// sla returns what judges a tenant's SLA figures: the tenant's policies in the rules file in
// force, or, without a rules file, the calendar-time first-response targets.
func (w *rulesWatcher) sla(fallback contrib.SLA) func(tenant string) contrib.SLA {
	return func(tenant string) contrib.SLA {
		if w.file == nil {
			return fallback
		}
		set := w.file.Load()
		return contrib.SLA{Rules: true, Policies: set.Tenants[tenant], CallServiceLevel: set.CallServiceLevel[tenant]}
	}
}
