package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
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
	set  atomic.Pointer[slapolicy.Set]
	log  *slog.Logger
	last []byte
}

func (w *rulesWatcher) load() error {
	if w.path == "" {
		w.log.Info("no rules file (-rules-file): the first-response SLA is judged against -sla-first-response in calendar time")
		return nil
	}
	data, err := os.ReadFile(w.path)
	if err != nil {
		return fmt.Errorf("rules file: %w", err)
	}
	set, err := slapolicy.Parse(w.path, data)
	if err != nil {
		return fmt.Errorf("rules file %s:\n%w", w.path, err)
	}
	w.set.Store(set)
	w.last = data
	w.log.Info("SLA policies loaded", "file", w.path, "tenants", len(set.Tenants))
	return nil
}

func (w *rulesWatcher) run(ctx context.Context, every time.Duration) error {
	if w.path == "" {
		return nil
	}
	return filewatch.Poll(ctx, w.path, every, w.last, w.log, func(data []byte) error {
		set, err := slapolicy.Parse(w.path, data)
		if err != nil {
			return err
		}
		w.set.Store(set)
		return nil
	})
}

// sla returns what judges a tenant's SLA figures: the tenant's policies in the rules file in
// force, or, without a rules file, the calendar-time first-response targets.
func (w *rulesWatcher) sla(fallback contrib.SLA) func(tenant string) contrib.SLA {
	return func(tenant string) contrib.SLA {
		set := w.set.Load()
		if set == nil {
			return fallback
		}
		return contrib.SLA{Rules: true, Policies: set.Tenants[tenant]}
	}
}
