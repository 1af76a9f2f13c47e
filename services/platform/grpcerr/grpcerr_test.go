package grpcerr

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type rng struct{ from, to *timestamppb.Timestamp }

func (r *rng) GetFrom() *timestamppb.Timestamp { return r.from }
func (r *rng) GetTo() *timestamppb.Timestamp   { return r.to }

func TestViolations(t *testing.T) {
	t1, t2 := time.Unix(100, 0).UTC(), time.Unix(200, 0).UTC()
	tests := []struct {
		name  string
		check func(v *Violations)
		want  []string // field: description, in order
	}{
		{"nothing wrong", func(v *Violations) {
			v.Tenant("acme")
			v.ID("agent_id", "ana@example.com", true)
			if f, to := v.Range("created", &rng{timestamppb.New(t1), timestamppb.New(t2)}); !f.Equal(t1) || !to.Equal(t2) {
				v.Add("test", "range bounds lost")
			}
			if n := v.PageSize(0, 50, 500); n != 50 {
				v.Add("test", "default page size lost")
			}
			var none *rng
			if f, to := v.Range("created", none); !f.IsZero() || !to.IsZero() {
				v.Add("test", "a nil range has bounds")
			}
		}, nil},
		{"bad tenant and ids", func(v *Violations) {
			v.Tenant("Acme")
			v.ID("agent_id", "", true)
			v.ID("team_id", strings.Repeat("x", MaxIDBytes+1), false)
		}, []string{`tenant: "Acme" must match [a-z0-9][a-z0-9_-]{0,62}`, "agent_id: required", "team_id: 257 bytes, at most 256 allowed"}},
		{"reversed range", func(v *Violations) { v.Range("created", &rng{timestamppb.New(t2), timestamppb.New(t1)}) },
			[]string{"created.to: must be after created.from"}},
		{"invalid timestamp", func(v *Violations) { v.Range("triggered", &rng{from: &timestamppb.Timestamp{Nanos: -1}}) },
			// protobuf varies its error texts on purpose (a space or a no-break space after
			// "proto:", the spacing of messages), so only our own start is fixed.
			[]string{"triggered.from: invalid timestamp: *"}},
		{"page size", func(v *Violations) { v.PageSize(501, 50, 500); v.PageSize(-1, 50, 500) },
			[]string{"page_size: 501: want 0 (default 50) to 500", "page_size: -1: want 0 (default 50) to 500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Violations
			tt.check(&v)
			err := v.Err()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Err() = %v", err)
				}
				return
			}
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument || !matches(st.Message(), strings.Join(tt.want, "; ")) {
				t.Errorf("status %s %q, want %q", st.Code(), st.Message(), strings.Join(tt.want, "; "))
			}
			var got []string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, fv := range br.GetFieldViolations() {
						got = append(got, fv.GetField()+": "+fv.GetDescription())
					}
				}
			}
			if !matches(strings.Join(got, "; "), strings.Join(tt.want, "; ")) {
				t.Errorf("details %q", got)
			}
		})
	}
}

// matches compares exactly, or by prefix when want ends in "*".
func matches(got, want string) bool {
	if p, ok := strings.CutSuffix(want, "*"); ok {
		return strings.HasPrefix(got, p)
	}
	return got == want
}
