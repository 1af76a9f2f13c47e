package logrebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

type failing struct{ err error }

func (f failing) Start(context.Context, string, time.Time) (State, bool, error) {
	return State{}, false, f.err
}
func (f failing) State(context.Context, string) (State, error) { return State{}, f.err }

// The store's failures map to codes a client can act on; the messages say what failed.
func TestStartLogRebuildErrors(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{errors.New("start ticket log rebuild of tenant acme: connection refused"), codes.Unavailable,
			"StartLogRebuild: start ticket log rebuild of tenant acme: connection refused"},
		{fmt.Errorf("%w: its first message ...", ErrRetention), codes.FailedPrecondition,
			"StartLogRebuild: tenant acme: TICKETS no longer holds the events to rebuild from: its first message ..."},
		{fmt.Errorf("%w: it started at ...", ErrRunning), codes.FailedPrecondition,
			"StartLogRebuild: tenant acme: a rebuild of the tenant's ticket log is running: it started at ..."},
	}
	for _, tt := range tests {
		s := NewServer(failing{tt.err}, time.Millisecond, quiet)
		_, err := s.StartLogRebuild(context.Background(), &tpv1.StartLogRebuildRequest{Tenant: "acme"})
		if st := status.Convert(err); st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
			t.Errorf("with %v = %v %q, want %v %q", tt.err, st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
		}
	}
}
