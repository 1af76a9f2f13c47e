package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
)

// globexRules give globex a bad-rating rule of its own, so it has escalations a test can tell
// apart from acme's.
const globexRules = `  globex:
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
    quality_rules:
      - name: bad-rating
        kind: bad_rating
        max_score: 2
        severity: critical
        escalation: leads
`

func badRating(ticket string, at time.Time) *tpv1.TicketEvent {
	return &tpv1.TicketEvent{
		TicketId: ticket, Type: tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, OccurredAt: timestamppb.New(at),
		Actor: &tpv1.Actor{Id: "cust", Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER}, AssigneeId: "bo",
		Satisfaction: &tpv1.Satisfaction{Score: 1, Comment: "nobody answered"},
	}
}

// credCase is one credential a caller may present, and what the gate answers it for a method
// requiring a scope.
type credCase struct {
	name, key, tenant string
	// by is what a change made with the credential records.
	by   string
	want func(scope auth.Scope) (codes.Code, string)
}

func answer(code codes.Code, msg string) func(auth.Scope) (codes.Code, string) {
	return func(auth.Scope) (codes.Code, string) { return code, msg }
}

// lastSeq is the sequence of the last message of the ESCALATIONS stream.
func (s *stack) lastSeq(t *testing.T) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, stream.EscalationsName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// lastChange is the last change published on the ESCALATIONS stream.
func (s *stack) lastChange(t *testing.T) *tpv1.EscalationChange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, stream.EscalationsName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, s.lastSeq(t))
	if err != nil {
		t.Fatal(err)
	}
	c := &tpv1.EscalationChange{}
	if err := proto.Unmarshal(m.Data, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// forgeBy adds field 3, the by that requests carried before it came from the credential, as an
// old client would still send it.
func forgeBy(m proto.Message) {
	m.ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 3, protowire.BytesType), "mallory"))
}

// Every RPC of EscalationService through the running service, with every kind of credential:
// the exact code and message of each refusal, nothing changed or published when a change is
// refused, a change recorded in the caller's name when it is allowed, and a tenant's key never
// seeing another tenant's escalations.
func TestAuthEveryRPC(t *testing.T) {
	s := newStack(t, "")
	if err := os.WriteFile(s.rules, []byte(rulesYAML+globexRules), 0o600); err != nil {
		t.Fatal(err)
	}
	// A key that may read acme's escalations and not change them.
	reader, hash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	hashFile := filepath.Join(t.TempDir(), "reader.hash")
	if err := os.WriteFile(hashFile, []byte(hash.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.tenants = servicetest.WriteTenants(t, map[string]string{
		"acme": fmt.Sprintf("      - {name: reader, scopes: [escalations:read], hash: {file: %s}}\n", hashFile)})
	unknown, _, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	r := s.run(t, s.config())
	ts := s.tenants
	ok := answer(codes.OK, "")
	creds := []credCase{
		{name: "no credential", tenant: "acme", want: answer(codes.Unauthenticated, "no credential: send Authorization: Bearer <key or ID token>")},
		{name: "malformed", key: "x", tenant: "acme", want: answer(codes.Unauthenticated, "malformed credential: neither an API key nor an ID token")},
		{name: "unknown key", key: unknown, tenant: "acme", want: answer(codes.Unauthenticated, "invalid credential")},
		{name: "revoked key", key: ts.AcmeRevoked, tenant: "acme", want: answer(codes.Unauthenticated, "revoked credential")},
		{name: "wrong tenant", key: ts.Globex, tenant: "acme", want: answer(codes.PermissionDenied, "the credential is not for this tenant")},
		{name: "missing scope", key: ts.AcmeEvents, tenant: "acme", want: func(scope auth.Scope) (codes.Code, string) {
			return codes.PermissionDenied, "the credential lacks the scope " + string(scope)
		}},
		{name: "read scope only", key: reader, tenant: "acme", by: "api-key:acme/reader", want: func(scope auth.Scope) (codes.Code, string) {
			if scope == auth.EscalationsRead {
				return codes.OK, ""
			}
			return codes.PermissionDenied, "the credential lacks the scope " + string(scope)
		}},
		{name: "unknown tenant", key: ts.Operator, tenant: "initech", want: answer(codes.NotFound, "unknown tenant")},
		{name: "valid tenant key", key: ts.Acme, tenant: "acme", by: "api-key:acme/all", want: ok},
		{name: "valid operator", key: ts.Operator, tenant: "acme", by: "api-key:*/ops", want: ok},
	}
	clients := map[string]tpv1.EscalationServiceClient{}
	client := func(key string) tpv1.EscalationServiceClient {
		if clients[key] == nil {
			clients[key] = tpv1.NewEscalationServiceClient(r.DialAs(key))
		}
		return clients[key]
	}
	ops := client(ts.Operator)
	ctx := context.Background()

	// One open escalation of acme for each row that acknowledges or resolves, so each row's
	// outcome is read back on its own.
	now := s.clock.now()
	for i := range creds {
		s.publish(t, badRating(fmt.Sprintf("ACK-%d", i), now), badRating(fmt.Sprintf("RES-%d", i), now))
	}
	s.publishFor(t, "globex", badRating("G-1", now))
	ids := map[string]string{}
	waitFor(t, "every escalation", func() bool {
		resp, err := ops.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "acme", PageSize: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetEscalations() {
			ids[e.GetSubjectId()] = e.GetId()
		}
		return len(ids) == 2*len(creds)
	})
	waitFor(t, "globex's escalation", func() bool {
		resp, err := ops.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "globex"})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetEscalations()) == 1
	})
	anyAcme := ids["ACK-0"]

	// check compares a call's outcome with the row's.
	check := func(t *testing.T, err error, code codes.Code, msg string) bool {
		t.Helper()
		if st := status.Convert(err); st.Code() != code || st.Message() != msg {
			t.Errorf("got %v, want %s %q", err, code, msg)
			return false
		}
		return true
	}
	// readBack is the escalation as stored now.
	readBack := func(t *testing.T, id string) *tpv1.Escalation {
		t.Helper()
		resp, err := ops.GetEscalation(ctx, &tpv1.GetEscalationRequest{Tenant: "acme", Id: id})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetEscalation()
	}
	// change runs an acknowledgement or resolution and checks it against the row: refused, the
	// escalation is as it was and nothing is published; allowed, it is changed, in the caller's
	// name and not the forged one, and the change is published once.
	change := func(t *testing.T, c credCase, scope auth.Scope, id string, kind tpv1.ChangeKind, state tpv1.EscalationState,
		call func(tpv1.EscalationServiceClient) (*tpv1.Escalation, error)) {
		t.Helper()
		code, msg := c.want(scope)
		before := s.lastSeq(t)
		got, err := call(client(c.key))
		if !check(t, err, code, msg) {
			return
		}
		after := readBack(t, id)
		if code != codes.OK {
			if after.GetState() != tpv1.EscalationState_ESCALATION_STATE_OPEN || len(after.GetTimeline()) != 1 {
				t.Errorf("refused, yet the escalation is now %s with timeline %v", after.GetState(), after.GetTimeline())
			}
			if seq := s.lastSeq(t); seq != before {
				t.Errorf("refused, yet the ESCALATIONS stream went from %d to %d", before, seq)
			}
			return
		}
		for _, e := range []*tpv1.Escalation{got, after} {
			tl := e.GetTimeline()
			if e.GetState() != state || len(tl) != 2 || tl[1].GetKind() != kind || tl[1].GetActor() != c.by || tl[1].GetNote() != "on it" {
				t.Errorf("escalation %s with timeline %v; want %s by %q", e.GetState(), tl, kind, c.by)
			}
		}
		if seq := s.lastSeq(t); seq != before+1 {
			t.Errorf("the ESCALATIONS stream went from %d to %d, want one change", before, seq)
		}
		if last := s.lastChange(t); last.GetKind() != kind || last.GetEscalation().GetId() != id {
			t.Errorf("published %s of %s, want %s of %s", last.GetKind(), last.GetEscalation().GetId(), kind, id)
		}
	}

	for i, c := range creds {
		t.Run("ListEscalations/"+c.name, func(t *testing.T) {
			code, msg := c.want(auth.EscalationsRead)
			resp, err := client(c.key).ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: c.tenant, PageSize: 500})
			if !check(t, err, code, msg) || code != codes.OK {
				return
			}
			listed := map[string]bool{}
			for _, e := range resp.GetEscalations() {
				listed[e.GetId()] = true
				if e.GetTenant() != "acme" {
					t.Errorf("listed %s of tenant %s", e.GetId(), e.GetTenant())
				}
			}
			for subject, id := range ids {
				if !listed[id] {
					t.Errorf("%s (of %s) not listed", id, subject)
				}
			}
		})
		t.Run("GetEscalation/"+c.name, func(t *testing.T) {
			code, msg := c.want(auth.EscalationsRead)
			resp, err := client(c.key).GetEscalation(ctx, &tpv1.GetEscalationRequest{Tenant: c.tenant, Id: anyAcme})
			if !check(t, err, code, msg) || code != codes.OK {
				return
			}
			if e := resp.GetEscalation(); e.GetId() != anyAcme || e.GetTenant() != "acme" || len(e.GetTimeline()) == 0 {
				t.Errorf("got %v, want %s with its timeline", e, anyAcme)
			}
		})
		t.Run("AcknowledgeEscalation/"+c.name, func(t *testing.T) {
			id := ids[fmt.Sprintf("ACK-%d", i)]
			change(t, c, auth.EscalationsWrite, id, tpv1.ChangeKind_CHANGE_KIND_ACKNOWLEDGED, tpv1.EscalationState_ESCALATION_STATE_ACKNOWLEDGED,
				func(cl tpv1.EscalationServiceClient) (*tpv1.Escalation, error) {
					req := &tpv1.AcknowledgeEscalationRequest{Tenant: c.tenant, Id: id, Note: "on it"}
					forgeBy(req)
					resp, err := cl.AcknowledgeEscalation(ctx, req)
					return resp.GetEscalation(), err
				})
		})
		t.Run("ResolveEscalation/"+c.name, func(t *testing.T) {
			id := ids[fmt.Sprintf("RES-%d", i)]
			change(t, c, auth.EscalationsWrite, id, tpv1.ChangeKind_CHANGE_KIND_RESOLVED, tpv1.EscalationState_ESCALATION_STATE_RESOLVED,
				func(cl tpv1.EscalationServiceClient) (*tpv1.Escalation, error) {
					req := &tpv1.ResolveEscalationRequest{Tenant: c.tenant, Id: id, Note: "on it"}
					forgeBy(req)
					resp, err := cl.ResolveEscalation(ctx, req)
					return resp.GetEscalation(), err
				})
		})
		t.Run("GetRules/"+c.name, func(t *testing.T) {
			code, msg := c.want(auth.EscalationsRead)
			resp, err := client(c.key).GetRules(ctx, &tpv1.GetRulesRequest{Tenant: c.tenant})
			if !check(t, err, code, msg) || code != codes.OK {
				return
			}
			if y := resp.GetRulesYaml(); !strings.HasPrefix(y, "tenants:\n  acme:\n") || strings.Contains(y, "globex") {
				t.Errorf("rules %q, want acme's alone", y)
			}
		})
		t.Run("SimulateRules/"+c.name, func(t *testing.T) {
			code, msg := c.want(auth.EscalationsRead)
			before := s.lastSeq(t)
			resp, err := client(c.key).SimulateRules(ctx, &tpv1.SimulateRulesRequest{Tenant: c.tenant,
				Range: &tpv1.TimeRange{From: timestamppb.New(now.Add(-time.Hour)), To: timestamppb.New(s.clock.now())}})
			if seq := s.lastSeq(t); seq != before {
				t.Errorf("the ESCALATIONS stream went from %d to %d", before, seq)
			}
			if !check(t, err, code, msg) || code != codes.OK {
				return
			}
			if len(resp.GetEscalations()) == 0 {
				t.Error("simulated nothing of acme's ratings")
			}
			for _, e := range resp.GetEscalations() {
				id := e.GetSubjectId()
				if !strings.HasPrefix(id, "ACK-") && !strings.HasPrefix(id, "RES-") && !strings.HasPrefix(id, "W-") && !strings.HasPrefix(id, "X-") {
					t.Errorf("simulated %s, not acme's", e.GetSubjectId())
				}
			}
		})
		t.Run("WatchEscalations/"+c.name, func(t *testing.T) {
			code, msg := c.want(auth.EscalationsRead)
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			w, err := client(c.key).WatchEscalations(wctx, &tpv1.WatchEscalationsRequest{Tenant: c.tenant})
			if err != nil {
				t.Fatal(err)
			}
			if code != codes.OK {
				// A refused stream ends with its status on the first Recv, having sent nothing.
				_, err := w.Recv()
				check(t, err, code, msg)
				return
			}
			if _, err := w.Header(); err != nil {
				t.Fatal(err)
			}
			ticket := fmt.Sprintf("W-%d", i)
			s.publish(t, badRating(ticket, s.clock.now()))
			for {
				got, err := w.Recv()
				if err != nil {
					t.Fatalf("watching for %s: %v", ticket, err)
				}
				if e := got.GetChange().GetEscalation(); e.GetTenant() != "acme" {
					t.Errorf("watched a change of tenant %s", e.GetTenant())
				} else if e.GetSubjectId() == ticket {
					break
				}
			}
		})
	}

	// globex's key reads globex's escalations only: acme's are neither listed, nor found by id,
	// nor watched.
	globex := client(ts.Globex)
	t.Run("globex lists its own", func(t *testing.T) {
		resp, err := globex.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "globex", PageSize: 500})
		if err != nil {
			t.Fatal(err)
		}
		if es := resp.GetEscalations(); len(es) != 1 || es[0].GetTenant() != "globex" || es[0].GetSubjectId() != "G-1" {
			t.Errorf("globex listed %v, want its one escalation", es)
		}
	})
	t.Run("globex cannot get acme's by id", func(t *testing.T) {
		_, err := globex.GetEscalation(ctx, &tpv1.GetEscalationRequest{Tenant: "globex", Id: anyAcme})
		check(t, err, codes.NotFound, "GetEscalation: escalation not found")
	})
	t.Run("globex watches its own", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		w, err := globex.WatchEscalations(wctx, &tpv1.WatchEscalationsRequest{Tenant: "globex"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Header(); err != nil {
			t.Fatal(err)
		}
		// acme's change is on the stream before globex's, so a watch leaking it would see it first.
		before := s.lastSeq(t)
		s.publish(t, badRating("X-1", s.clock.now()))
		waitFor(t, "acme's change", func() bool { return s.lastSeq(t) > before })
		s.publishFor(t, "globex", badRating("G-2", s.clock.now()))
		got, err := w.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := got.GetChange().GetEscalation(); e.GetTenant() != "globex" || e.GetSubjectId() != "G-2" {
			t.Errorf("globex watched %s of tenant %s, want its own G-2", e.GetSubjectId(), e.GetTenant())
		}
	})
}
