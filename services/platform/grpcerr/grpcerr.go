// Package grpcerr builds gRPC errors that name every bad field of a request, in the message and in
// a google.rpc.BadRequest detail, so clients can show the exact field and reason.
package grpcerr

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

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

// TimeRange is a request's optional [from, to) range (ticketpulse.v1.TimeRange).
type TimeRange interface {
	GetFrom() *timestamppb.Timestamp
	GetTo() *timestamppb.Timestamp
}

// Range checks an optional range named field and returns its bounds, zero where unset.
func (v *Violations) Range(field string, tr TimeRange) (from, to time.Time) {
	if tr == nil || reflect.ValueOf(tr).IsNil() {
		return from, to
	}
	if f := tr.GetFrom(); f != nil {
		if err := f.CheckValid(); err != nil {
			v.Add(field+".from", "invalid timestamp: "+err.Error())
		}
		from = f.AsTime()
	}
	if t := tr.GetTo(); t != nil {
		if err := t.CheckValid(); err != nil {
			v.Add(field+".to", "invalid timestamp: "+err.Error())
		}
		to = t.AsTime()
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		v.Add(field+".to", "must be after "+field+".from")
	}
	return from, to
}

// PageSize checks a requested page size: 0 takes def, at most most are allowed.
func (v *Violations) PageSize(size int32, def, most int) int {
	switch {
	case size < 0 || int(size) > most:
		v.Add("page_size", fmt.Sprintf("%d: want 0 (default %d) to %d", size, def, most))
		return 0
	case size == 0:
		return def
	}
	return int(size)
}
