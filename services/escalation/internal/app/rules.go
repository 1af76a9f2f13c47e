package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rules"
)

// rulesWatcher loads the rules file and reloads it when its content changes. A file that fails
// validation at start stops the service; on reload it is logged with every problem and the
// rules in force stay, so a typo never switches escalations off.
type rulesWatcher struct {
	path string
	cfg  *atomic.Pointer[rules.Config]
	log  *slog.Logger
	last []byte
}

func (w *rulesWatcher) load() error {
	if w.path == "" {
		w.cfg.Store(&rules.Config{Tenants: map[string]*rules.Tenant{}})
		w.log.Warn("no rules file (-rules-file): nothing will escalate")
		return nil
	}
	data, err := os.ReadFile(w.path)
	if err != nil {
		return fmt.Errorf("rules file: %w", err)
	}
	cfg, err := rules.Parse(w.path, data)
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
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		w.reload()
	}
}

// reload swaps in the file's rules if its content changed and is valid.
func (w *rulesWatcher) reload() {
	data, err := os.ReadFile(w.path)
	if err != nil {
		w.log.Error("rules file unreadable; keeping the rules in force", "file", w.path, "err", err)
		return
	}
	if bytes.Equal(data, w.last) {
		return
	}
	w.last = data
	cfg, err := rules.Parse(w.path, data)
	if err != nil {
		w.log.Error("rules file invalid; keeping the rules in force", "file", w.path, "problems", err.Error())
		return
	}
	w.cfg.Store(cfg)
	w.log.Info("rules reloaded", "file", w.path, "tenants", len(cfg.Tenants))
}
