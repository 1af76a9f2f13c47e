// Package grpcapi serves ticketpulse.v1.NotificationService: the delivery log (what was sent to
// whom, every attempt, and why something was not sent) and a test send to a receiver.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/dispatch"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/grpcerr"
)

// Page sizes of ListDeliveries.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Log reads the delivery log.
type Log interface {
	Get(ctx context.Context, tenant, id string) (*deliveries.Record, error)
	List(ctx context.Context, tenant string, f deliveries.Filter, size int, pageToken string) ([]*deliveries.Record, string, error)
}

// Tester sends a sample to a receiver; with routedOnly, only to one the tenant's escalations
// can be routed to.
type Tester interface {
	Test(ctx context.Context, receiver, tenant string, routedOnly bool) (*tpv1.Attempt, bool, error)
}

var (
	_ Log    = (*deliveries.Store)(nil)
	_ Tester = (*dispatch.Dispatcher)(nil)
)

// Server implements tpv1.NotificationServiceServer.
type Server struct {
	tpv1.UnimplementedNotificationServiceServer
	log    Log
	tester Tester
	slog   *slog.Logger
}

// NewServer returns a server.
func NewServer(l Log, t Tester, log *slog.Logger) *Server {
	return &Server{log: l, tester: t, slog: log}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { tpv1.RegisterNotificationServiceServer(g, s) }

// ListDeliveries lists a tenant's deliveries, newest first.
func (s *Server) ListDeliveries(ctx context.Context, req *tpv1.ListDeliveriesRequest) (*tpv1.ListDeliveriesResponse, error) {
	var v grpcerr.Violations
	v.Tenant(req.GetTenant())
	v.ID("escalation_id", req.GetEscalationId(), false)
	v.ID("receiver", req.GetReceiver(), false)
	if _, ok := tpv1.DeliveryStatus_name[int32(req.GetStatus())]; !ok {
		v.Add("status", fmt.Sprintf("unknown status %d", req.GetStatus()))
	}
	f := deliveries.Filter{EscalationID: req.GetEscalationId(), Receiver: req.GetReceiver(), Status: req.GetStatus()}
	f.From, f.To = v.Range("created", req.GetCreated())
	size := v.PageSize(req.GetPageSize(), DefaultPageSize, MaxPageSize)
	if err := v.Err(); err != nil {
		return nil, err
	}
	recs, next, err := s.log.List(ctx, req.GetTenant(), f, size, req.GetPageToken())
	if errors.Is(err, deliveries.ErrBadPageToken) {
		v.Add("page_token", "not a token this service handed out")
		return nil, v.Err()
	}
	if err != nil {
		return nil, s.storeErr(ctx, "ListDeliveries", err)
	}
	resp := &tpv1.ListDeliveriesResponse{NextPageToken: next}
	for _, r := range recs {
		resp.Deliveries = append(resp.Deliveries, r.Proto(false))
	}
	return resp, nil
}

// GetDelivery returns one delivery with its attempts.
func (s *Server) GetDelivery(ctx context.Context, req *tpv1.GetDeliveryRequest) (*tpv1.GetDeliveryResponse, error) {
	var v grpcerr.Violations
	v.Tenant(req.GetTenant())
	v.ID("id", req.GetId(), true)
	if err := v.Err(); err != nil {
		return nil, err
	}
	r, err := s.log.Get(ctx, req.GetTenant(), req.GetId())
	if err != nil {
		return nil, s.storeErr(ctx, "GetDelivery", err)
	}
	return &tpv1.GetDeliveryResponse{Delivery: r.Proto(true)}, nil
}

// TestReceiver sends a sample notification now, within the receiver's rate limit and
// concurrency: beyond them it answers ResourceExhausted. Receivers come from one routing file
// for every tenant, so a tenant's credential may only test those its escalations can be routed
// to; any other answers as an unknown one does. Operators may test every receiver.
func (s *Server) TestReceiver(ctx context.Context, req *tpv1.TestReceiverRequest) (*tpv1.TestReceiverResponse, error) {
	var v grpcerr.Violations
	v.Tenant(req.GetTenant())
	v.ID("receiver", req.GetReceiver(), true)
	if err := v.Err(); err != nil {
		return nil, err
	}
	// A call without a principal (no gate in front) is held to the tenant's receivers too.
	p, _ := auth.FromContext(ctx)
	a, ok, err := s.tester.Test(ctx, req.GetReceiver(), req.GetTenant(), !p.IsOperator())
	if errors.Is(err, dispatch.ErrUnknownReceiver) {
		return nil, status.Errorf(codes.NotFound, "TestReceiver: %v", err)
	}
	if errors.Is(err, dispatch.ErrLimited) {
		return nil, status.Errorf(codes.ResourceExhausted, "TestReceiver: %v", err)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "TestReceiver: %v", err)
	}
	return &tpv1.TestReceiverResponse{Attempt: a, Delivered: ok}, nil
}

func (s *Server) storeErr(ctx context.Context, rpc string, err error) error {
	if errors.Is(err, deliveries.ErrNotFound) {
		return status.Errorf(codes.NotFound, "%s: %v", rpc, err)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return status.FromContextError(ctxErr).Err()
	}
	s.slog.Warn("delivery log failed", "rpc", rpc, "err", err)
	return status.Errorf(codes.Unavailable, "%s: delivery log: %v", rpc, err)
}
