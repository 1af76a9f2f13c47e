// Package filewatch reloads a configuration file when its content changes. It polls rather than
// watching inodes, so a file replaced by rename (as deployment tools and Kubernetes ConfigMaps
// do) is picked up the same way as one edited in place.
package filewatch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
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

// Value is a configuration file parsed into a T. The last valid content is in force: Load
// refuses a file that cannot be read or parsed (a service should not start on it), and Watch
// swaps in each valid change while an invalid one is logged and ignored.
type Value[T any] struct {
	path  string
	parse func(data []byte) (*T, error)
	cur   atomic.Pointer[T]
	last  []byte
}

// Load reads path and parses it with parse, which names every problem in its error.
func Load[T any](path string, parse func(data []byte) (*T, error)) (*Value[T], error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s:\n%w", path, err)
	}
	v := &Value[T]{path: path, parse: parse, last: data}
	v.cur.Store(t)
	return v, nil
}

// Load returns the content in force (as atomic.Pointer.Load does, so either serves a reader).
func (v *Value[T]) Load() *T { return v.cur.Load() }

// Watch reads the file every `every` until ctx ends and applies each valid change (see Poll).
func (v *Value[T]) Watch(ctx context.Context, every time.Duration, log *slog.Logger) error {
	return Poll(ctx, v.path, every, v.last, log, func(data []byte) error {
		t, err := v.parse(data)
		if err != nil {
			return err
		}
		v.cur.Store(t)
		return nil
	})
}
