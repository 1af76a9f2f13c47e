// Package filewatch reloads a configuration file when its content changes. It polls rather than
// watching inodes, so a file replaced by rename (as deployment tools and Kubernetes ConfigMaps
// do) is picked up the same way as one edited in place.
package filewatch

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/tick"
)

// Poll reads path every `every` until ctx ends. When the content differs from the last content
// seen (initially last), apply gets it; an error from apply means the file is invalid, which is
// logged while what is in force stays. An unreadable file is logged the same way.
func Poll(ctx context.Context, path string, every time.Duration, last []byte, log *slog.Logger, apply func(data []byte) error) error {
	return tick.Every(ctx, every, func(context.Context) {
		data, err := os.ReadFile(path)
		if err != nil {
			log.Error("file unreadable; keeping what is in force", "file", path, "err", err)
			return
		}
		if bytes.Equal(data, last) {
			return
		}
		last = data
		if err := apply(data); err != nil {
			log.Error("file invalid; keeping what is in force", "file", path, "problems", err.Error())
			return
		}
		log.Info("reloaded", "file", path)
	})
}
