// Package adminapi serves ticketpulse.v1.KpiAdminService: starting and watching a tenant's KPI
// rebuild from TICKETS (package rebuild). Operator keys only (the service's access table).
package adminapi

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/generation"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/rebuild"
	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
)

// Runner is what the server needs of the rebuild jobs.
type Runner interface {
	Start(ctx context.Context, tenant string, from time.Time) (generation.State, bool, error)
	State(ctx context.Context, tenant string) (generation.State, error)
}

var _ Runner = (*rebuild.Runner)(nil)

// Server implements KpiAdminServiceServer.
type Server struct {
	tpv1.UnimplementedKpiAdminServiceServer
	r     Runner
	every time.Duration
	now   func() time.Time
	log   *slog.Logger
}

// NewServer returns a server; WatchRebuild sends progress every interval.
func NewServer(r Runner, every time.Duration, log *slog.Logger) *Server {
	return &Server{r: r, every: every, now: time.Now, log: log}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { tpv1.RegisterKpiAdminServiceServer(g, s) }

// Phases as the API names them.
const (
	PhaseBuilding = replayjob.PhaseBuilding
	PhaseSwitched = "switched"
	PhaseDone     = replayjob.PhaseDone
	PhaseFailed   = replayjob.PhaseFailed
)

// Progress converts a generation state.
func Progress(tenant string, st generation.State) *tpv1.RebuildProgress {
	phase := PhaseDone
	switch {
	case st.Phase == generation.PhaseBuild:
		phase = PhaseBuilding
	case st.Result == "failed":
		phase = PhaseFailed
	case st.Phase == generation.PhaseDrop:
		phase = PhaseSwitched
	}
	p := replayjob.ProgressOf(tenant, st.Job, phase)
	p.Current, p.Target, p.SwitchedAt = st.Current, st.Target, replayjob.Timestamp(st.Switched)
	return p
}

func (s *Server) storeErr(ctx context.Context, rpc, tenant string, err error) error {
	return replayjob.Status(ctx, s.log, "kpi rebuild", rpc, tenant, err, generation.ErrRunning, rebuild.ErrRetention)
}

// StartRebuild starts a rebuild or attaches to the same one running.
func (s *Server) StartRebuild(ctx context.Context, req *tpv1.StartRebuildRequest) (*tpv1.StartRebuildResponse, error) {
	from, err := replayjob.StartRequest(req.GetTenant(), req.GetFrom(), s.now())
	if err != nil {
		return nil, err
	}
	st, attached, err := s.r.Start(ctx, req.GetTenant(), from)
	if err != nil {
		return nil, s.storeErr(ctx, "StartRebuild", req.GetTenant(), err)
	}
	s.log.Info("kpi rebuild requested", "tenant", req.GetTenant(), "from", from, "attached", attached, "target", st.Target)
	return &tpv1.StartRebuildResponse{Progress: Progress(req.GetTenant(), st), Attached: attached}, nil
}

// WatchRebuild streams progress until the rebuild switched or failed.
func (s *Server) WatchRebuild(req *tpv1.WatchRebuildRequest, srv grpc.ServerStreamingServer[tpv1.WatchRebuildResponse]) error {
	return replayjob.Watch(srv.Context(), req.GetTenant(), s.every, func(ctx context.Context) (*tpv1.RebuildProgress, error) {
		st, err := s.r.State(ctx, req.GetTenant())
		if err != nil {
			return nil, s.storeErr(ctx, "WatchRebuild", req.GetTenant(), err)
		}
		if st.Target == 0 {
			return nil, status.Errorf(codes.NotFound, "WatchRebuild: tenant %s has never been rebuilt; start a rebuild first", req.GetTenant())
		}
		return Progress(req.GetTenant(), st), nil
	}, func(p *tpv1.RebuildProgress) error {
		return srv.Send(&tpv1.WatchRebuildResponse{Progress: p})
	})
}
