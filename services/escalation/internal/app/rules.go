package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/engine"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/filewatch"
)

// rulesWatcher loads the rules file and reloads it when its content changes. A file that fails
// validation at start stops the service; on reload it is logged with every problem and the
// rules in force stay, so a typo never switches escalations off.
type rulesWatcher struct {
	path string
	log  *slog.Logger
	now  func() time.Time
	file *filewatch.Value[rulesfile.Config] // nil without a rules file
	none atomic.Pointer[rulesfile.Config]
}

func (w *rulesWatcher) load() error {
	if w.path == "" {
		w.none.Store(&rulesfile.Config{Tenants: map[string]*rulesfile.Tenant{}, LoadedAt: w.now()})
		w.log.Warn("no rules file (-rules-file): nothing will escalate")
		return nil
	}
	f, err := filewatch.Load(w.path, func(data []byte) (*rulesfile.Config, error) {
		cfg, err := rulesfile.Parse(w.path, data)
		if err == nil {
			cfg.LoadedAt = w.now()
		}
		return cfg, err
	})
	if err != nil {
		return fmt.Errorf("rules file: %w", err)
	}
	w.file = f
	w.log.Info("rules loaded", "file", w.path, "tenants", len(f.Load().Tenants))
	return nil
}

// rules is what the engine reads: the file in force, or no rules without a file.
func (w *rulesWatcher) rules() engine.Rules {
	if w.file == nil {
		return &w.none
	}
	return w.file
}

func (w *rulesWatcher) run(ctx context.Context, every time.Duration) error {
	if w.file == nil {
		return nil
	}
	return w.file.Watch(ctx, every, w.log)
}
