package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
)

// authRouting sends every change to hook at once; probe is the receiver test sends go to, with
// a burst of 2 and a rate that gives no new token within the test.
func authRouting(hookURL, probeURL string) string {
	return fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: TP_TEST_HOOK_SECRET}]}
  - name: probe
    webhook: {url: %q, secrets: [{env: TP_TEST_HOOK_SECRET}]}
    limits: {timeout: 5s, deadline: 10s, rate_per_second: 0.01, burst: 2, concurrency: 5}
route:
  receiver: hook
  group_by: ["..."]
  group_wait: 0s
`, hookURL, probeURL)
}

// forTenant moves a change to tenant.
func forTenant(c *tpv1.EscalationChange, tenant string) *tpv1.EscalationChange {
	c.Escalation.Tenant = tenant
	c.Escalation.Labels["tenant"] = tenant
	return c
}

// Every NotificationService RPC under every kind of credential: the exact code and message of
// each refusal; a refused test send reaches no receiver, records no delivery and takes none of
// the receiver's rate; an accepted one still obeys that rate.
func TestEveryRPCIsAuthenticatedAndTenantScoped(t *testing.T) {
	h, probe := newHook(t), newHook(t)
	s := newStack(t, authRouting(h.srv.URL, probe.srv.URL))
	// A key that reads acme's log but may not send: the two notification scopes are apart.
	reader, readerHash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TP_TEST_READER_KEY_HASH", readerHash.String())
	s.tenants = servicetest.WriteTenants(t, map[string]string{
		"acme": "      - {name: reader, scopes: [notifications:read], hash: {env: TP_TEST_READER_KEY_HASH}}\n"})
	run := s.run(t)
	ctx := context.Background()
	client := func(key string) tpv1.NotificationServiceClient {
		return tpv1.NewNotificationServiceClient(run.DialAs(key))
	}
	operator := client(s.tenants.Operator)

	// One delivery for each tenant, read back with the operator key.
	s.publish(t, change("T-1", "bad-rating", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1),
		forTenant(change("G-1", "bad-rating", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1), "globex"))
	logOf := func(tenant string) []*tpv1.Delivery {
		t.Helper()
		list, err := operator.ListDeliveries(ctx, &tpv1.ListDeliveriesRequest{Tenant: tenant})
		if err != nil {
			t.Fatalf("deliveries of %s: %v", tenant, err)
		}
		return list.GetDeliveries()
	}
	waitFor(t, "a delivery for each tenant", func() bool { return len(logOf("acme")) == 1 && len(logOf("globex")) == 1 })
	acmeID, globexID := logOf("acme")[0].GetId(), logOf("globex")[0].GetId()

	unknownKey, _, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	creds := []struct {
		name, key, tenant string
		code              codes.Code
		// msg is the refusal's message; "%s" stands for the scope the RPC needs.
		msg string
		// reads: the key holds notifications:read alone, so only TestReceiver is refused.
		reads bool
	}{
		{"no credential", "", "acme", codes.Unauthenticated, "no credential: send Authorization: Bearer <key or ID token>", false},
		{"malformed", "x", "acme", codes.Unauthenticated, "malformed credential: neither an API key nor an ID token", false},
		{"unknown key", unknownKey, "acme", codes.Unauthenticated, "invalid credential", false},
		{"revoked key", s.tenants.AcmeRevoked, "acme", codes.Unauthenticated, "revoked credential", false},
		{"wrong tenant", s.tenants.Globex, "acme", codes.PermissionDenied, "the credential is not for this tenant", false},
		{"missing scope", s.tenants.AcmeEvents, "acme", codes.PermissionDenied, "the credential lacks the scope %s", false},
		{"read-only key", reader, "acme", codes.PermissionDenied, "the credential lacks the scope %s", true},
		{"unknown tenant", s.tenants.Operator, "initech", codes.NotFound, "unknown tenant", false},
		{"valid tenant key", s.tenants.Acme, "acme", codes.OK, "", false},
		{"valid operator", s.tenants.Operator, "acme", codes.OK, "", false},
	}
	rpcs := []struct {
		name  string
		scope auth.Scope
		// call makes the RPC on tenant and checks what an accepted call answers.
		call func(t *testing.T, c tpv1.NotificationServiceClient, tenant string) error
	}{
		{"ListDeliveries", auth.NotificationsRead, func(t *testing.T, c tpv1.NotificationServiceClient, tenant string) error {
			resp, err := c.ListDeliveries(ctx, &tpv1.ListDeliveriesRequest{Tenant: tenant})
			if err == nil && (len(resp.GetDeliveries()) != 1 || resp.GetDeliveries()[0].GetId() != acmeID) {
				t.Errorf("deliveries %v, want only %s", resp.GetDeliveries(), acmeID)
			}
			return err
		}},
		{"GetDelivery", auth.NotificationsRead, func(t *testing.T, c tpv1.NotificationServiceClient, tenant string) error {
			resp, err := c.GetDelivery(ctx, &tpv1.GetDeliveryRequest{Tenant: tenant, Id: acmeID})
			if err == nil && (resp.GetDelivery().GetId() != acmeID || len(resp.GetDelivery().GetAttempts()) == 0) {
				t.Errorf("delivery %v, want %s with its attempts", resp.GetDelivery(), acmeID)
			}
			return err
		}},
		{"TestReceiver", auth.NotificationsTest, func(t *testing.T, c tpv1.NotificationServiceClient, tenant string) error {
			before := len(probe.got())
			resp, err := c.TestReceiver(ctx, &tpv1.TestReceiverRequest{Receiver: "probe", Tenant: tenant})
			if err == nil {
				got := probe.got()
				if !resp.GetDelivered() || len(got) != before+1 || !verify(got[len(got)-1]) ||
					!slices.Equal(changeRefs(t, got[len(got)-1].body), []string{"test.t.T-TEST.1#1"}) {
					t.Errorf("test send %v; the receiver has %d requests, had %d", resp, len(got), before)
				}
			}
			return err
		}},
	}
	for _, rpc := range rpcs {
		t.Run(rpc.name, func(t *testing.T) {
			for _, cr := range creds {
				t.Run(cr.name, func(t *testing.T) {
					err := rpc.call(t, client(cr.key), cr.tenant)
					code, msg := cr.code, cr.msg
					if strings.Contains(msg, "%s") {
						msg = fmt.Sprintf(msg, rpc.scope)
					}
					if cr.reads && rpc.scope == auth.NotificationsRead {
						code, msg = codes.OK, ""
					}
					if st := status.Convert(err); st.Code() != code || st.Message() != msg {
						t.Fatalf("%s: %v, want %s %q", rpc.name, err, code, msg)
					}
					if code == codes.OK {
						return
					}
					// Nothing happened on a refusal: no test send reached a receiver (the
					// valid cases come last) and the delivery log holds only the two deliveries.
					if n := len(probe.got()); n != 0 {
						t.Errorf("the test receiver got %d requests after a refusal", n)
					}
					if n := len(h.got()); n != 2 {
						t.Errorf("the routed receiver got %d requests, want the 2 deliveries", n)
					}
					if a, g := logOf("acme"), logOf("globex"); len(a) != 1 || len(g) != 1 {
						t.Errorf("delivery log after a refusal: acme %v, globex %v", a, g)
					}
				})
			}
		})
	}

	// The two accepted test sends used the receiver's burst; refusals took none of it, and an
	// accepted call is still held to the rate.
	_, err = client(s.tenants.Acme).TestReceiver(ctx, &tpv1.TestReceiverRequest{Receiver: "probe", Tenant: "acme"})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), `receiver "probe" is at its rate limit (0.01 per second, burst 2); try again in`) {
		t.Errorf("third test send: %v, want ResourceExhausted naming the rate limit", err)
	}
	if n := len(probe.got()); n != 2 {
		t.Errorf("the test receiver got %d requests, want the 2 accepted test sends", n)
	}
	if a, g := logOf("acme"), logOf("globex"); len(a) != 1 || len(g) != 1 {
		t.Errorf("test sends were recorded as deliveries: acme %v, globex %v", a, g)
	}

	// globex's key reads globex's log and nothing of acme's, not even by id.
	globex := client(s.tenants.Globex)
	list, err := globex.ListDeliveries(ctx, &tpv1.ListDeliveriesRequest{Tenant: "globex"})
	if err != nil || len(list.GetDeliveries()) != 1 || list.GetDeliveries()[0].GetId() != globexID ||
		!slices.Equal(list.GetDeliveries()[0].GetEscalationIds(), []string{"bad-rating.t.G-1.1"}) {
		t.Errorf("globex's deliveries: %v %v, want only %s", err, list.GetDeliveries(), globexID)
	}
	if _, err := globex.GetDelivery(ctx, &tpv1.GetDeliveryRequest{Tenant: "globex", Id: acmeID}); status.Code(err) != codes.NotFound ||
		status.Convert(err).Message() != "GetDelivery: "+"delivery not found" {
		t.Errorf("acme's delivery read as globex's: %v, want NotFound", err)
	}
}
