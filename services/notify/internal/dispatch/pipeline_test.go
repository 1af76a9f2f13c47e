package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
)

// stageFunc makes a stage of a function, for tests of the composition.
type stageFunc[T any] func(items []T) ([]T, error)

func (f stageFunc[T]) exec(_ context.Context, _ *slog.Logger, items []T) ([]T, error) {
	return f(items)
}

// An item a stage cannot handle stops there with its error; the others go on, an item passed
// on with an error goes on too, and every error is reported.
func TestStagesJoinErrorsAndCarryOnWithTheRest(t *testing.T) {
	errOdd, errFour := errors.New("odd"), errors.New("four")
	var seen []int
	ss := stages[int]{
		stageFunc[int](func(xs []int) ([]int, error) {
			return each(xs, func(x int) (bool, error) {
				if x%2 == 1 {
					return false, errOdd
				}
				return true, nil
			})
		}),
		stageFunc[int](func(xs []int) ([]int, error) {
			return each(xs, func(x int) (bool, error) {
				if x == 4 {
					return true, errFour
				}
				return true, nil
			})
		}),
		stageFunc[int](func(xs []int) ([]int, error) { seen = append(seen, xs...); return xs, nil }),
	}
	out, err := ss.exec(context.Background(), quiet, []int{1, 2, 3, 4})
	if !slices.Equal(out, []int{2, 4}) || !slices.Equal(seen, []int{2, 4}) {
		t.Errorf("passed on %v, last stage saw %v; want [2 4]", out, seen)
	}
	if !errors.Is(err, errOdd) || !errors.Is(err, errFour) {
		t.Errorf("err = %v, want both stages' errors", err)
	}
}

// Once no item is left, the stages after are not run.
func TestStagesStopWhenNothingIsLeft(t *testing.T) {
	ran := false
	ss := stages[int]{
		stageFunc[int](func([]int) ([]int, error) { return nil, nil }),
		stageFunc[int](func(xs []int) ([]int, error) { ran = true; return xs, nil }),
	}
	if out, err := ss.exec(context.Background(), quiet, []int{1}); len(out) != 0 || err != nil || ran {
		t.Errorf("exec = %v, %v; the second stage ran: %v", out, err, ran)
	}
}

// A branch passes its own items on whatever its stages kept, and nothing when they failed.
func TestBranch(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		give    stage[int]
		want    []int
		wantErr error
	}{
		{"side path keeps nothing", stageFunc[int](func([]int) ([]int, error) { return nil, nil }), []int{7}, nil},
		{"side path keeps it", stageFunc[int](func(xs []int) ([]int, error) { return xs, nil }), []int{7}, nil},
		{"side path fails", stageFunc[int](func([]int) ([]int, error) { return nil, boom }), nil, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := branch[int]{stages[int]{tt.give}}.exec(context.Background(), quiet, []int{7})
			if !slices.Equal(out, tt.want) || !errors.Is(err, tt.wantErr) {
				t.Errorf("exec = %v, %v; want %v, %v", out, err, tt.want, tt.wantErr)
			}
		})
	}
}
