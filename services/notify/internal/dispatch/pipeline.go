package dispatch

import (
	"context"
	"errors"
	"log/slog"
)

// stage does one job to the items in hand and returns those the next stage should see. An
// item it cannot handle is left out and its error returned; an item it passes on with an
// error (a side effect that failed without stopping the item) goes on, and the error is
// reported with the rest.
type stage[T any] interface {
	exec(ctx context.Context, log *slog.Logger, items []T) ([]T, error)
}

// stages run in order, each on what the previous passed on, until no item is left; the errors
// of all of them are joined.
type stages[T any] []stage[T]

func (ss stages[T]) exec(ctx context.Context, log *slog.Logger, items []T) ([]T, error) {
	var errs []error
	for _, s := range ss {
		if len(items) == 0 {
			break
		}
		var err error
		if items, err = s.exec(ctx, log, items); err != nil {
			errs = append(errs, err)
		}
	}
	return items, errors.Join(errs...)
}

// branch runs its stages as a side path and passes its own items on, whatever the side path
// kept, unless it failed: the side path has taken the items as far as it could.
type branch[T any] struct{ stages stages[T] }

func (b branch[T]) exec(ctx context.Context, log *slog.Logger, items []T) ([]T, error) {
	if _, err := b.stages.exec(ctx, log, items); err != nil {
		return nil, err
	}
	return items, nil
}

// each runs f on every item and keeps those it says to keep. An item's error does not stop
// the others.
func each[T any](items []T, f func(T) (keep bool, err error)) ([]T, error) {
	kept := items[:0:0]
	var errs []error
	for _, it := range items {
		keep, err := f(it)
		if err != nil {
			errs = append(errs, err)
		}
		if keep {
			kept = append(kept, it)
		}
	}
	return kept, errors.Join(errs...)
}
