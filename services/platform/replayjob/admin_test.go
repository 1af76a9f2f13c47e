package replayjob_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
)

func TestStartRequest(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	from, err := replayjob.StartRequest("acme", timestamppb.New(time.Date(2026, 2, 1, 0, 0, 0, 123456789, time.FixedZone("x", 3600))), now)
	if want := time.Date(2026, 1, 31, 23, 0, 0, 123000000, time.UTC); err != nil || !from.Equal(want) || from.Location() != time.UTC {
		t.Errorf("StartRequest = %v, %v; want %v", from, err, want)
	}
	if from, err := replayjob.StartRequest("acme", nil, now); err != nil || !from.IsZero() {
		t.Errorf("without from = %v, %v; want the zero time", from, err)
	}
	bad := &timestamppb.Timestamp{Nanos: -1}
	tests := []struct {
		tenant string
		from   *timestamppb.Timestamp
		want   string
	}{
		{"Bad Tenant", nil, `tenant: "Bad Tenant" must match [a-z0-9][a-z0-9_-]{0,62}`},
		{"acme", timestamppb.New(now.Add(time.Hour)), "from: 2026-03-01T13:00:00Z is in the future"},
		{"acme", timestamppb.New(time.Unix(0, 0)), "from: must be after 1970-01-01T00:00:00Z"},
		// protobuf's own text, which it varies on purpose
		{"acme", bad, "from: " + bad.CheckValid().Error()},
	}
	for _, tt := range tests {
		_, err := replayjob.StartRequest(tt.tenant, tt.from, now)
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != tt.want {
			t.Errorf("StartRequest(%q, %v) = %v %q, want InvalidArgument %q", tt.tenant, tt.from, st.Code(), st.Message(), tt.want)
		}
	}
}

func TestStatus(t *testing.T) {
	refused := errors.New("a rebuild of the tenant is running")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	err := replayjob.Status(context.Background(), log, "test rebuild", "StartX", "acme", fmt.Errorf("%w: it started at ...", refused), refused)
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || st.Message() != "StartX: tenant acme: a rebuild of the tenant is running: it started at ..." {
		t.Errorf("refused = %v %q", st.Code(), st.Message())
	}
	err = replayjob.Status(context.Background(), log, "test rebuild", "StartX", "acme", errors.New("read state: i/o timeout"), refused)
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "StartX: read state: i/o timeout" {
		t.Errorf("failed = %v %q", st.Code(), st.Message())
	}
	if !strings.Contains(logs.String(), `msg="test rebuild request failed" rpc=StartX tenant=acme err="read state: i/o timeout"`) {
		t.Errorf("logs = %s", logs.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = replayjob.Status(ctx, log, "test rebuild", "StartX", "acme", errors.New("read state: context canceled"), refused)
	if st := status.Convert(err); st.Code() != codes.Canceled || st.Message() != "context canceled" {
		t.Errorf("canceled = %v %q", st.Code(), st.Message())
	}
}

// Watch sends until the phase is no longer building; next's and send's errors and the caller's
// end stop it.
func TestWatch(t *testing.T) {
	phases := []string{"building", "building", "switched", "building"}
	i := 0
	next := func(context.Context) (*tpv1.RebuildProgress, error) {
		p := &tpv1.RebuildProgress{Phase: phases[i]}
		i++
		return p, nil
	}
	var sent []string
	send := func(p *tpv1.RebuildProgress) error { sent = append(sent, p.GetPhase()); return nil }
	if err := replayjob.Watch(context.Background(), "acme", time.Millisecond, next, send); err != nil || strings.Join(sent, ",") != "building,building,switched" {
		t.Errorf("Watch = %v, sent %v", err, sent)
	}
	notFound := status.Error(codes.NotFound, "never rebuilt")
	if err := replayjob.Watch(context.Background(), "acme", time.Millisecond, func(context.Context) (*tpv1.RebuildProgress, error) { return nil, notFound }, send); err != notFound {
		t.Errorf("next failing: %v", err)
	}
	gone := errors.New("transport is closing")
	building := func(context.Context) (*tpv1.RebuildProgress, error) {
		return &tpv1.RebuildProgress{Phase: "building"}, nil
	}
	if err := replayjob.Watch(context.Background(), "acme", time.Millisecond, building, func(*tpv1.RebuildProgress) error { return gone }); err != gone {
		t.Errorf("send failing: %v", err)
	}
	err := replayjob.Watch(context.Background(), "Bad Tenant", time.Millisecond, building, send)
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != `tenant: "Bad Tenant" must match [a-z0-9][a-z0-9_-]{0,62}` || len(sent) != 3 {
		t.Errorf("bad tenant = %v %q, sent %v", st.Code(), st.Message(), sent)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err = replayjob.Watch(ctx, "acme", time.Hour, building, func(*tpv1.RebuildProgress) error { return nil })
	if st := status.Convert(err); st.Code() != codes.DeadlineExceeded || st.Message() != "context deadline exceeded" {
		t.Errorf("caller's deadline = %v %q", st.Code(), st.Message())
	}
}

func TestProgressOf(t *testing.T) {
	started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	j := replayjob.Job{End: 9, Checkpoint: 4, Done: 3, Total: 7, Started: started, Err: "why"}
	p := replayjob.ProgressOf("acme", j, replayjob.PhaseFailed)
	if p.GetTenant() != "acme" || p.GetPhase() != "failed" || p.GetEventsDone() != 3 || p.GetEventsTotal() != 7 || p.GetEndSequence() != 9 ||
		p.GetCheckpoint() != 4 || p.GetError() != "why" || p.From != nil || !p.GetStartedAt().AsTime().Equal(started) {
		t.Errorf("ProgressOf = %v", p)
	}
	j.From = started.Add(-time.Hour)
	if p := replayjob.ProgressOf("acme", j, replayjob.PhaseBuilding); !p.GetFrom().AsTime().Equal(j.From) || p.GetPhase() != "building" {
		t.Errorf("ProgressOf with from = %v", p)
	}
}
