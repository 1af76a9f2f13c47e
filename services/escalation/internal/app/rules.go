package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/filewatch"
)

// rulesWatcher loads the rules file and reloads it when its content changes. A file that fails
// validation at start stops the service; on reload it is logged with every problem and the
// rules in force stay, so a typo never switches escalations off.
type rulesWatcher struct {
	path string
	cfg  *atomic.Pointer[rulesfile.Config]
	log  *slog.Logger
	last []byte
}

func (w *rulesWatcher) load() error {
	if w.path == "" {
		w.cfg.Store(&rulesfile.Config{Tenants: map[string]*rulesfile.Tenant{}})
		w.log.Warn("no rules file (-rules-file): nothing will escalate")
		return nil
	}
	data, err := os.ReadFile(w.path)
	if err != nil {
		return fmt.Errorf("rules file: %w", err)
	}
	cfg, err := rulesfile.Parse(w.path, data)
	if err != nil {
		return fmt.Errorf("rules file %s:\n%w", w.path, err)
	}
	w.cfg.Store(cfg)
	w.last = data
	w.log.Info("rules loaded", "file", w.path, "tenants", len(cfg.Tenants))
	return nil
}

func (w *rulesWatcher) run(ctx context.Context, every time.Duration) error {
	if w.path == "" {
		return nil
	}
	return filewatch.Poll(ctx, w.path, every, w.last, w.log, func(data []byte) error {
		cfg, err := rulesfile.Parse(w.path, data)
		if err != nil {
			return err
		}
		w.cfg.Store(cfg)
		return nil
	})
}
