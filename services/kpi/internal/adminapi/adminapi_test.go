package adminapi

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
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/generation"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/rebuild"
)

// failing is a Runner whose store fails as given.
type failing struct{ err error }

func (f failing) Start(context.Context, string, time.Time) (generation.State, bool, error) {
	return generation.State{}, false, f.err
}

func (f failing) State(context.Context, string) (generation.State, error) {
	return generation.State{}, f.err
}

// The store's failures map to codes a client can act on; the messages say what failed.
func TestStartRebuildErrors(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{fmt.Errorf("start rebuild of tenant acme: %w", errors.New("dial tcp 127.0.0.1:6379: connection refused")), codes.Unavailable,
			"StartRebuild: start rebuild of tenant acme: dial tcp 127.0.0.1:6379: connection refused"},
		{fmt.Errorf("%w: its first message ...", rebuild.ErrRetention), codes.FailedPrecondition,
			"StartRebuild: tenant acme: TICKETS no longer holds the events to rebuild from: its first message ..."},
		{fmt.Errorf("%w: it started at ...", generation.ErrRunning), codes.FailedPrecondition,
			"StartRebuild: tenant acme: a rebuild of the tenant is running: it started at ..."},
	}
	for _, tt := range tests {
		s := NewServer(failing{tt.err}, time.Millisecond, quiet)
		_, err := s.StartRebuild(context.Background(), &tpv1.StartRebuildRequest{Tenant: "acme"})
		if st := status.Convert(err); st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
			t.Errorf("StartRebuild with %v = %v %q, want %v %q", tt.err, st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
		}
	}
	s := NewServer(failing{errors.New("read key generation of tenant acme: i/o timeout")}, time.Millisecond, quiet)
	_, err := s.StartRebuild(context.Background(), &tpv1.StartRebuildRequest{Tenant: "Bad Tenant"})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != `tenant: "Bad Tenant" must match [a-z0-9][a-z0-9_-]{0,62}` {
		t.Errorf("bad tenant = %v %q", st.Code(), st.Message())
	}
}
