package replayjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/grpcerr"
)

// Progress phases every service uses: a watch ends at any but PhaseBuilding.
const (
	PhaseBuilding = "building"
	PhaseDone     = "done"
	PhaseFailed   = "failed"
)

// ProgressOf is tenant's job j in phase as the admin APIs send it.
func ProgressOf(tenant string, j Job, phase string) *tpv1.RebuildProgress {
	return &tpv1.RebuildProgress{
		Tenant: tenant, Phase: phase, EventsDone: j.Done, EventsTotal: j.Total, EndSequence: j.End, Checkpoint: j.Checkpoint, Error: j.Err,
		From: Timestamp(j.From), StartedAt: Timestamp(j.Started),
	}
}

// Timestamp is t, nil for the zero time (not recorded).
func Timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// StartRequest checks a start request's tenant and from (optional: the whole stream) and returns
// from at the millisecond precision a job records, so that a repeated request compares equal.
func StartRequest(tenant string, from *timestamppb.Timestamp, now time.Time) (time.Time, error) {
	var v grpcerr.Violations
	v.Tenant(tenant)
	var t time.Time
	if from != nil {
		if err := from.CheckValid(); err != nil {
			v.Add("from", err.Error())
		} else if t = from.AsTime(); t.After(now) {
			v.Add("from", fmt.Sprintf("%s is in the future", t.Format(time.RFC3339)))
		} else if t.UnixMilli() <= 0 {
			v.Add("from", "must be after 1970-01-01T00:00:00Z")
		}
	}
	if err := v.Err(); err != nil {
		return time.Time{}, err
	}
	if !t.IsZero() {
		t = time.UnixMilli(t.UnixMilli()).UTC()
	}
	return t, nil
}

// Status is the gRPC status of a job store's failure in rpc: the caller's own end as it is,
// a refusal (err is one of refused) FailedPrecondition, anything else Unavailable (logged as
// "<what> request failed").
func Status(ctx context.Context, log *slog.Logger, what, rpc, tenant string, err error, refused ...error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return status.FromContextError(ctxErr).Err()
	}
	for _, r := range refused {
		if errors.Is(err, r) {
			return status.Errorf(codes.FailedPrecondition, "%s: tenant %s: %v", rpc, tenant, err)
		}
	}
	log.Warn(what+" request failed", "rpc", rpc, "tenant", tenant, "err", err)
	return status.Errorf(codes.Unavailable, "%s: %v", rpc, err)
}

// Watch checks tenant, then sends the progress next reads, every interval, until its phase is
// no longer building; next's and send's errors end it as they are.
func Watch(ctx context.Context, tenant string, every time.Duration, next func(ctx context.Context) (*tpv1.RebuildProgress, error), send func(*tpv1.RebuildProgress) error) error {
	var v grpcerr.Violations
	v.Tenant(tenant)
	if err := v.Err(); err != nil {
		return err
	}
	for {
		p, err := next(ctx)
		if err != nil {
			return err
		}
		if err := send(p); err != nil {
			return err
		}
		if p.GetPhase() != PhaseBuilding {
			return nil
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-time.After(every):
		}
	}
}
