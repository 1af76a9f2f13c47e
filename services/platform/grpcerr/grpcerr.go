// Package grpcerr builds gRPC errors that name every bad field of a request, in the message and in
// a google.rpc.BadRequest detail, so clients can show the exact field and reason.
package grpcerr

import (
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// MaxIDBytes bounds helpdesk ids (agent, team, ticket) in requests.
const MaxIDBytes = 256

// Violations collects what is wrong with a request, so one answer names every bad field.
type Violations []*errdetails.BadRequest_FieldViolation

// Add records one bad field.
func (v *Violations) Add(field, desc string) {
	*v = append(*v, &errdetails.BadRequest_FieldViolation{Field: field, Description: desc})
}

// Tenant checks a tenant id.
func (v *Violations) Tenant(t string) {
	if !idtoken.ValidTenant(t) {
		v.Add("tenant", fmt.Sprintf("%q %s", t, idtoken.TenantRule))
	}
}

// ID checks a helpdesk id: any characters (they are escaped), bounded length.
func (v *Violations) ID(field, id string, required bool) {
	switch {
	case id == "" && required:
		v.Add(field, "required")
	case len(id) > MaxIDBytes:
		v.Add(field, fmt.Sprintf("%d bytes, at most %d allowed", len(id), MaxIDBytes))
	}
}

// Err is nil when nothing was wrong, else InvalidArgument naming the fields.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	msgs := make([]string, len(v))
	for i, fv := range v {
		msgs[i] = fv.GetField() + ": " + fv.GetDescription()
	}
	st := status.New(codes.InvalidArgument, strings.Join(msgs, "; "))
	if withDetails, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: v}); err == nil {
		st = withDetails
	}
	return st.Err()
}
