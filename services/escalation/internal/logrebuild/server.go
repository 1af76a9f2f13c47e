package logrebuild

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
)

// Jobs is what the server needs of the runner.
type Jobs interface {
	Start(ctx context.Context, tenant string, from time.Time) (State, bool, error)
	State(ctx context.Context, tenant string) (State, error)
}

var _ Jobs = (*Runner)(nil)

// Server implements EscalationAdminServiceServer.
type Server struct {
	tpv1.UnimplementedEscalationAdminServiceServer
	jobs  Jobs
	every time.Duration
	now   func() time.Time
	log   *slog.Logger
}

// NewServer returns a server; WatchLogRebuild sends progress every interval.
func NewServer(jobs Jobs, every time.Duration, log *slog.Logger) *Server {
	return &Server{jobs: jobs, every: every, now: time.Now, log: log}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { tpv1.RegisterEscalationAdminServiceServer(g, s) }

// ProgressOf converts a state: phase "building", "done" or "failed"; generations are always 0.
func ProgressOf(tenant string, st State) *tpv1.RebuildProgress {
	phase := replayjob.PhaseDone
	switch {
	case st.Building:
		phase = replayjob.PhaseBuilding
	case st.Result == "failed":
		phase = replayjob.PhaseFailed
	}
	return replayjob.ProgressOf(tenant, st.Job, phase)
}

func (s *Server) storeErr(ctx context.Context, rpc, tenant string, err error) error {
	return replayjob.Status(ctx, s.log, "ticket log rebuild", rpc, tenant, err, ErrRunning, ErrRetention)
}

// StartLogRebuild starts a rebuild or attaches to the same one running.
func (s *Server) StartLogRebuild(ctx context.Context, req *tpv1.StartLogRebuildRequest) (*tpv1.StartLogRebuildResponse, error) {
	from, err := replayjob.StartRequest(req.GetTenant(), req.GetFrom(), s.now())
	if err != nil {
		return nil, err
	}
	st, attached, err := s.jobs.Start(ctx, req.GetTenant(), from)
	if err != nil {
		return nil, s.storeErr(ctx, "StartLogRebuild", req.GetTenant(), err)
	}
	s.log.Info("ticket log rebuild requested", "tenant", req.GetTenant(), "from", from, "attached", attached)
	return &tpv1.StartLogRebuildResponse{Progress: ProgressOf(req.GetTenant(), st), Attached: attached}, nil
}

// WatchLogRebuild streams progress until the rebuild is done or failed.
func (s *Server) WatchLogRebuild(req *tpv1.WatchLogRebuildRequest, srv grpc.ServerStreamingServer[tpv1.WatchLogRebuildResponse]) error {
	return replayjob.Watch(srv.Context(), req.GetTenant(), s.every, func(ctx context.Context) (*tpv1.RebuildProgress, error) {
		st, err := s.jobs.State(ctx, req.GetTenant())
		if err != nil {
			return nil, s.storeErr(ctx, "WatchLogRebuild", req.GetTenant(), err)
		}
		if st.Started.IsZero() {
			return nil, status.Errorf(codes.NotFound, "WatchLogRebuild: tenant %s's ticket log has never been rebuilt; start a rebuild first", req.GetTenant())
		}
		return ProgressOf(req.GetTenant(), st), nil
	}, func(p *tpv1.RebuildProgress) error {
		return srv.Send(&tpv1.WatchLogRebuildResponse{Progress: p})
	})
}
