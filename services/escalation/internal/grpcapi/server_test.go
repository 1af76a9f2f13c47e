package grpcapi

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

// changes records the changes a server asked for. The running service's tests cover the real
// engine; here only what the handler passes on matters.
type changes struct{ calls []string }

func (c *changes) Acknowledge(_ context.Context, tenant, id, by, note string) (*escalationstore.Record, error) {
	c.calls = append(c.calls, "ack "+tenant+" "+id+" by "+by+": "+note)
	return &escalationstore.Record{ID: id, Tenant: tenant}, nil
}

func (c *changes) Resolve(_ context.Context, tenant, id, by, note string) (*escalationstore.Record, error) {
	c.calls = append(c.calls, "resolve "+tenant+" "+id+" by "+by+": "+note)
	return &escalationstore.Record{ID: id, Tenant: tenant}, nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// A change is recorded in the name of the authenticated principal; without one (the gate always
// puts one there) it is refused, never recorded with an empty by.
func TestChangesAreByThePrincipal(t *testing.T) {
	const id = "bad-rating.t.T-1.1"
	ana := auth.Principal{Kind: auth.KindOIDC, Tenant: "acme", Name: "ana@example.com", Scopes: []auth.Scope{auth.EscalationsWrite}}
	ops := auth.Principal{Kind: auth.KindAPIKey, Name: "ops", Scopes: []auth.Scope{auth.Operator}}
	tests := []struct {
		name     string
		ctx      context.Context
		rpc      string
		wantCode codes.Code
		wantMsg  string
		wantCall string
	}{
		{"ack by a person", auth.NewContext(context.Background(), ana), "ack", codes.OK, "", "ack acme " + id + " by oidc:acme/ana@example.com: on it"},
		{"resolve by an operator", auth.NewContext(context.Background(), ops), "resolve", codes.OK, "", "resolve acme " + id + " by api-key:*/ops: on it"},
		{"ack without principal", context.Background(), "ack", codes.Internal, "AcknowledgeEscalation: no authenticated caller to record as by", ""},
		{"resolve without principal", context.Background(), "resolve", codes.Internal, "ResolveEscalation: no authenticated caller to record as by", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &changes{}
			s := NewServer(nil, c, nil, Options{}, quiet)
			var err error
			if tt.rpc == "ack" {
				_, err = s.AcknowledgeEscalation(tt.ctx, &tpv1.AcknowledgeEscalationRequest{Tenant: "acme", Id: id, Note: "on it"})
			} else {
				_, err = s.ResolveEscalation(tt.ctx, &tpv1.ResolveEscalationRequest{Tenant: "acme", Id: id, Note: "on it"})
			}
			if st := status.Convert(err); st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
				t.Errorf("got %v, want %s %q", err, tt.wantCode, tt.wantMsg)
			}
			var want []string
			if tt.wantCall != "" {
				want = []string{tt.wantCall}
			}
			if strings.Join(c.calls, "\n") != strings.Join(want, "\n") || len(c.calls) != len(want) {
				t.Errorf("changes %q, want %q", c.calls, want)
			}
		})
	}
}

// The handlers still check the tenant themselves: behind the gate no credential reaches them
// with a malformed one, but the check does not rely on that.
func TestBadTenant(t *testing.T) {
	s := NewServer(nil, &changes{}, nil, Options{}, quiet)
	ctx := auth.NewContext(context.Background(), auth.Principal{Kind: auth.KindAPIKey, Name: "ops", Scopes: []auth.Scope{auth.Operator}})
	_, err := s.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "Acme"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), `tenant: "Acme"`) {
		t.Errorf("got %v, want InvalidArgument naming the tenant", err)
	}
}
