package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// registry is the tenants registry reduced to what the Gate asks of it, backed by a real
// Authenticator.
type registry struct {
	a       *auth.Authenticator
	tenants map[string]bool
}

func (r registry) Known(t string) bool { return r.tenants[t] }
func (r registry) Authenticate(ctx context.Context, authorization string) (auth.Principal, error) {
	return r.a.Authenticate(ctx, authorization)
}

// gateKeys holds the keys of the fixture: acme's all-scope "ci", acme's KPI-only "reader",
// acme's revoked "old", globex's "ci" and the operators' "ops".
type gateKeys struct {
	acme, reader, old, globex, ops string
}

func newGateRegistry(t testing.TB) (registry, gateKeys) {
	t.Helper()
	var ks gateKeys
	mk := func(dst *string, name, tenant string, revoked bool, scopes ...auth.Scope) auth.Key {
		key, hash, err := auth.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		*dst = key
		return auth.Key{Name: name, Tenant: tenant, Scopes: scopes, Hash: hash, Revoked: revoked}
	}
	keys := []auth.Key{
		mk(&ks.acme, "ci", "acme", false, auth.TenantScopes...),
		mk(&ks.reader, "reader", "acme", false, auth.KPIsRead),
		mk(&ks.old, "old", "acme", true, auth.TenantScopes...),
		mk(&ks.globex, "ci", "globex", false, auth.TenantScopes...),
		mk(&ks.ops, "ops", "", false, auth.Operator),
	}
	a, err := auth.NewAuthenticator(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	return registry{a: a, tenants: map[string]bool{"acme": true, "globex": true}}, ks
}

// gateCase is one request and how each transport must answer it.
type gateCase struct {
	name          string
	authorization string
	tenant        string
	// wantStatus/wantCode/wantReason are the HTTP answer; wantGRPC the gRPC code, whose
	// message is wantReason too.
	wantStatus    int
	wantCode      string
	wantReason    string
	wantChallenge string
	wantGRPC      codes.Code
	// wantPrincipal is the principal the handler sees when the request passes.
	wantPrincipal string
}

func gateCases(t *testing.T, ks gateKeys) []gateCase {
	unknown, _, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	const (
		plain   = `Bearer realm="ticketpulse"`
		invalid = `Bearer realm="ticketpulse", error="invalid_token"`
	)
	return []gateCase{
		{name: "no credential", tenant: "acme",
			wantStatus: 401, wantCode: "no_credential", wantReason: "no credential: send Authorization: Bearer <key or ID token>",
			wantChallenge: plain, wantGRPC: codes.Unauthenticated},
		{name: "malformed scheme", authorization: "Basic " + ks.acme, tenant: "acme",
			wantStatus: 401, wantCode: "malformed_credential", wantReason: "malformed credential: want the Bearer scheme",
			wantChallenge: invalid, wantGRPC: codes.Unauthenticated},
		{name: "malformed key", authorization: "Bearer " + ks.acme[:20], tenant: "acme",
			wantStatus: 401, wantCode: "malformed_credential", wantReason: "malformed credential: not a Ticketpulse API key (tpk_ and 43 base64url characters)",
			wantChallenge: invalid, wantGRPC: codes.Unauthenticated},
		{name: "unknown key", authorization: "Bearer " + unknown, tenant: "acme",
			wantStatus: 401, wantCode: "invalid_credential", wantReason: "invalid credential",
			wantChallenge: invalid, wantGRPC: codes.Unauthenticated},
		{name: "revoked key", authorization: "Bearer " + ks.old, tenant: "acme",
			wantStatus: 401, wantCode: "revoked_credential", wantReason: "revoked credential",
			wantChallenge: invalid, wantGRPC: codes.Unauthenticated},
		{name: "wrong tenant", authorization: "Bearer " + ks.acme, tenant: "globex",
			wantStatus: 403, wantCode: "wrong_tenant", wantReason: "the credential is not for this tenant",
			wantGRPC: codes.PermissionDenied},
		{name: "wrong tenant that does not exist", authorization: "Bearer " + ks.acme, tenant: "initech",
			wantStatus: 403, wantCode: "wrong_tenant", wantReason: "the credential is not for this tenant",
			wantGRPC: codes.PermissionDenied},
		{name: "unknown tenant (operator)", authorization: "Bearer " + ks.ops, tenant: "initech",
			wantStatus: 404, wantCode: "unknown_tenant", wantReason: "unknown tenant",
			wantGRPC: codes.NotFound},
		{name: "missing scope", authorization: "Bearer " + ks.reader, tenant: "acme",
			wantStatus: 403, wantCode: "missing_scope", wantReason: "the credential lacks the scope escalations:read",
			wantChallenge: `Bearer realm="ticketpulse", error="insufficient_scope"`, wantGRPC: codes.PermissionDenied},
		{name: "valid tenant key", authorization: "Bearer " + ks.acme, tenant: "acme",
			wantStatus: 200, wantGRPC: codes.OK, wantPrincipal: "api-key:acme/ci"},
		{name: "valid tenant key, lower-case scheme", authorization: "bearer " + ks.globex, tenant: "globex",
			wantStatus: 200, wantGRPC: codes.OK, wantPrincipal: "api-key:globex/ci"},
		{name: "valid operator", authorization: "Bearer " + ks.ops, tenant: "globex",
			wantStatus: 200, wantGRPC: codes.OK, wantPrincipal: "api-key:*/ops"},
	}
}

func TestGateHTTP(t *testing.T) {
	reg, ks := newGateRegistry(t)
	gate := auth.NewGate(reg, slog.New(slog.DiscardHandler))
	var calls atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("GET /v1/tenants/{tenant}/escalations", gate.HTTP(auth.EscalationsRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		p, ok := auth.FromContext(r.Context())
		if !ok {
			t.Error("no principal in the request context")
		}
		io.WriteString(w, p.ID())
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tc := range gateCases(t, ks) {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Load()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/tenants/"+tc.tenant+"/escalations", nil)
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tc.wantStatus, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.wantChallenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.wantChallenge)
			}
			if tc.wantStatus == 200 {
				if string(body) != tc.wantPrincipal {
					t.Errorf("handler saw %q, want %q", body, tc.wantPrincipal)
				}
				if calls.Load() != before+1 {
					t.Errorf("handler ran %d times, want once", calls.Load()-before)
				}
				return
			}
			if calls.Load() != before {
				t.Errorf("handler ran on a refused request")
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var rej auth.Rejected
			if err := json.Unmarshal(body, &rej); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			wantErr := map[int]string{401: "unauthenticated", 403: "forbidden", 404: "unknown tenant"}[tc.wantStatus]
			if rej != (auth.Rejected{Error: wantErr, Code: tc.wantCode, Reason: tc.wantReason}) {
				t.Errorf("body %+v, want error %q code %q reason %q", rej, wantErr, tc.wantCode, tc.wantReason)
			}
			if tc.authorization != "" && strings.Contains(string(body), strings.Fields(tc.authorization)[1]) {
				t.Errorf("body repeats the credential: %s", body)
			}
		})
	}

	t.Run("two authorization headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/tenants/acme/escalations", nil)
		req.Header.Add("Authorization", "Bearer "+ks.acme)
		req.Header.Add("Authorization", "Bearer "+ks.globex)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(body), `"reason":"malformed credential: more than one authorization value"`) {
			t.Errorf("got %d %s, want 401 naming two values", resp.StatusCode, body)
		}
	})
}

// escalations answers GetEscalation and WatchEscalations with the caller's principal in the
// "principal" header, counting the calls that reach it.
type escalations struct {
	tpv1.UnimplementedEscalationServiceServer
	calls atomic.Int64
}

func (s *escalations) GetEscalation(ctx context.Context, _ *tpv1.GetEscalationRequest) (*tpv1.GetEscalationResponse, error) {
	s.calls.Add(1)
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no principal")
	}
	grpc.SetHeader(ctx, metadata.Pairs("principal", p.ID()))
	return &tpv1.GetEscalationResponse{}, nil
}

func (s *escalations) WatchEscalations(_ *tpv1.WatchEscalationsRequest, stream grpc.ServerStreamingServer[tpv1.WatchEscalationsResponse]) error {
	s.calls.Add(1)
	p, ok := auth.FromContext(stream.Context())
	if !ok {
		return status.Error(codes.Internal, "no principal")
	}
	stream.SetHeader(metadata.Pairs("principal", p.ID()))
	return stream.Send(&tpv1.WatchEscalationsResponse{})
}

var gateMethods = map[string]auth.Scope{
	tpv1.EscalationService_GetEscalation_FullMethodName:    auth.EscalationsRead,
	tpv1.EscalationService_WatchEscalations_FullMethodName: auth.EscalationsRead,
	// ListEscalations is left out on purpose: it must be refused.
}

func startGRPC(t *testing.T, gate *auth.Gate) (*escalations, *grpc.ClientConn) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(gate.UnaryInterceptor(gateMethods)), grpc.StreamInterceptor(gate.StreamInterceptor(gateMethods)))
	esc := &escalations{}
	tpv1.RegisterEscalationServiceServer(srv, esc)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return esc, conn
}

func withAuthorization(ctx context.Context, authorization string) context.Context {
	if authorization == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", authorization)
}

func TestGateGRPC(t *testing.T) {
	reg, ks := newGateRegistry(t)
	esc, conn := startGRPC(t, auth.NewGate(reg, slog.New(slog.DiscardHandler)))
	client := tpv1.NewEscalationServiceClient(conn)

	calls := []struct {
		name string
		call func(ctx context.Context, tenant string) (metadata.MD, error)
	}{
		{"unary", func(ctx context.Context, tenant string) (metadata.MD, error) {
			var md metadata.MD
			_, err := client.GetEscalation(ctx, &tpv1.GetEscalationRequest{Tenant: tenant, Id: "e1"}, grpc.Header(&md))
			return md, err
		}},
		{"stream", func(ctx context.Context, tenant string) (metadata.MD, error) {
			stream, err := client.WatchEscalations(ctx, &tpv1.WatchEscalationsRequest{Tenant: tenant})
			if err != nil {
				return nil, err
			}
			if _, err := stream.Recv(); err != nil {
				return nil, err
			}
			return stream.Header()
		}},
	}
	for _, c := range calls {
		for _, tc := range gateCases(t, ks) {
			t.Run(c.name+"/"+tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				before := esc.calls.Load()
				md, err := c.call(withAuthorization(ctx, tc.authorization), tc.tenant)
				st := status.Convert(err)
				if st.Code() != tc.wantGRPC || st.Message() != tc.wantReason {
					t.Fatalf("got %s %q, want %s %q", st.Code(), st.Message(), tc.wantGRPC, tc.wantReason)
				}
				if tc.wantGRPC != codes.OK {
					if esc.calls.Load() != before {
						t.Errorf("handler ran on a refused call")
					}
					return
				}
				if got := md.Get("principal"); len(got) != 1 || got[0] != tc.wantPrincipal {
					t.Errorf("handler saw %q, want %q", got, tc.wantPrincipal)
				}
				if esc.calls.Load() != before+1 {
					t.Errorf("handler ran %d times, want once", esc.calls.Load()-before)
				}
			})
		}
	}

	t.Run("method without access rule", func(t *testing.T) {
		ctx := withAuthorization(context.Background(), "Bearer "+ks.ops)
		_, err := client.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "acme"})
		if st := status.Convert(err); st.Code() != codes.PermissionDenied || st.Message() != "method has no access rule" {
			t.Errorf("got %s %q, want PermissionDenied %q", st.Code(), st.Message(), "method has no access rule")
		}
	})
	t.Run("health without credential", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health: %v %v", resp, err)
		}
	})
	t.Run("two authorization values", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+ks.acme, "authorization", "Bearer "+ks.ops)
		_, err := client.GetEscalation(ctx, &tpv1.GetEscalationRequest{Tenant: "acme", Id: "e1"})
		want := "malformed credential: more than one authorization value"
		if st := status.Convert(err); st.Code() != codes.Unauthenticated || st.Message() != want {
			t.Errorf("got %s %q, want Unauthenticated %q", st.Code(), st.Message(), want)
		}
	})
}

func TestGateLogsRefusalsWithoutCredentials(t *testing.T) {
	reg, ks := newGateRegistry(t)
	var buf testenv.LogBuffer
	gate := auth.NewGate(reg, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := context.Background()

	if _, err := gate.Check(ctx, "Bearer "+ks.old, "acme", auth.EscalationsRead); err == nil {
		t.Fatal("revoked key passed")
	}
	if _, err := gate.Check(ctx, "Bearer "+ks.acme, "globex", auth.EscalationsRead); err == nil {
		t.Fatal("wrong tenant passed")
	}
	if _, err := gate.Check(ctx, "Bearer "+ks.reader, "acme", auth.EscalationsWrite); err == nil {
		t.Fatal("missing scope passed")
	}
	logs := buf.String()
	for _, want := range []string{
		`level=WARN msg="refused a revoked api key" tenant=acme key_tenant=acme key=old`,
		`level=WARN msg="refused a request for another tenant" principal=api-key:acme/ci tenant=globex scope=escalations:read reason="the credential is not for this tenant"`,
		`level=INFO msg="refused a request" principal=api-key:acme/reader tenant=acme scope=escalations:write reason="the credential lacks the scope escalations:write"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s\n%s", want, logs)
		}
	}
	for _, key := range []string{ks.old, ks.acme, ks.reader} {
		if strings.Contains(logs, key) || strings.Contains(logs, key[len(auth.KeyPrefix):]) {
			t.Errorf("logs carry a key:\n%s", logs)
		}
	}
}

func TestGateStreamRefusesSendBeforeAllowedReceive(t *testing.T) {
	// The tenant is only known from a received request, so a handler that sends first (no
	// generated handler does) must be refused rather than answer for an unchecked tenant.
	reg, ks := newGateRegistry(t)
	gate := auth.NewGate(reg, nil)
	var sendErr error
	handler := func(srv any, ss grpc.ServerStream) error {
		sendErr = ss.SendMsg(&tpv1.WatchEscalationsResponse{})
		return nil
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+ks.acme))
	err := gate.StreamInterceptor(gateMethods)(nil, fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: tpv1.EscalationService_WatchEscalations_FullMethodName, IsServerStream: true}, handler)
	if err != nil {
		t.Fatal(err)
	}
	if st := status.Convert(sendErr); st.Code() != codes.PermissionDenied || st.Message() != "no request has been allowed on this stream yet" {
		t.Errorf("send before receive: %s %q", st.Code(), st.Message())
	}
}

// fakeStream is a server stream with nothing to receive, for the one path no client can reach.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeStream) Context() context.Context { return f.ctx }
func (f fakeStream) SendMsg(any) error        { return nil }

// brokenRegistry fails in a way the registry never should.
type brokenRegistry struct{}

func (brokenRegistry) Known(string) bool { return true }
func (brokenRegistry) Authenticate(context.Context, string) (auth.Principal, error) {
	return auth.Principal{}, errors.New("tenants file /etc/secret/path unreadable")
}

func TestGateRegistryFailureStaysClosed(t *testing.T) {
	var buf testenv.LogBuffer
	gate := auth.NewGate(brokenRegistry{}, slog.New(slog.NewTextHandler(&buf, nil)))
	_, err := gate.Check(context.Background(), "Bearer x.y.z", "acme", auth.KPIsRead)
	if err == nil || err.Error() != "invalid credential" || !auth.Unauthenticated(err) {
		t.Fatalf("got %v, want invalid credential", err)
	}
	if st := auth.GRPCStatus(err); status.Code(st) != codes.Unauthenticated || status.Convert(st).Message() != "invalid credential" {
		t.Errorf("gRPC status %v", st)
	}
	if !strings.Contains(buf.String(), `level=ERROR msg="authentication failed unexpectedly" tenant=acme err="tenants file /etc/secret/path unreadable"`) {
		t.Errorf("log:\n%s", buf.String())
	}
}
