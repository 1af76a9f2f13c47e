package servicetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

// Tenants is a tenants file a test wrote, and the API keys it holds. acme and globex exist;
// every other tenant is unknown.
type Tenants struct {
	// File is the tenants file's path, for service.Common.TenantsFile.
	File string
	// Operator is an operator key: every scope, every tenant.
	Operator string
	// Acme holds every tenant scope of acme; AcmeEvents only events:write, so it lacks every
	// read scope; AcmeRevoked held every scope and is revoked.
	Acme, AcmeEvents, AcmeRevoked string
	// Globex holds every tenant scope of globex: the wrong tenant for acme's requests.
	Globex string
}

// WriteTenants writes a tenants file with tenants acme and globex, and their keys, into a
// directory the test removes. extra is appended under each tenant (e.g. ingest's sources:),
// indented by the caller to the tenant's level.
func WriteTenants(t testing.TB, extra map[string]string) *Tenants {
	t.Helper()
	dir := t.TempDir()
	ts := &Tenants{File: filepath.Join(dir, "tenants.yaml")}
	key := func(name string) (string, string) {
		k, h, err := auth.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		file := name + ".hash"
		if err := os.WriteFile(filepath.Join(dir, file), []byte(h.String()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return k, file
	}
	scopes := make([]string, len(auth.TenantScopes))
	for i, s := range auth.TenantScopes {
		scopes[i] = string(s)
	}
	all := "[" + strings.Join(scopes, ", ") + "]"
	var b strings.Builder
	var ref string
	ts.Operator, ref = key("operator")
	fmt.Fprintf(&b, "operators:\n  api_keys:\n    - {name: ops, hash: {file: %s}}\ntenants:\n", ref)
	ts.Acme, ref = key("acme-all")
	fmt.Fprintf(&b, "  acme:\n    api_keys:\n      - {name: all, scopes: %s, hash: {file: %s}}\n", all, ref)
	ts.AcmeEvents, ref = key("acme-events")
	fmt.Fprintf(&b, "      - {name: events, scopes: [events:write], hash: {file: %s}}\n", ref)
	ts.AcmeRevoked, ref = key("acme-revoked")
	fmt.Fprintf(&b, "      - {name: old, scopes: %s, hash: {file: %s}, revoked: true}\n", all, ref)
	b.WriteString(extra["acme"])
	ts.Globex, ref = key("globex-all")
	fmt.Fprintf(&b, "  globex:\n    api_keys:\n      - {name: all, scopes: %s, hash: {file: %s}}\n", all, ref)
	b.WriteString(extra["globex"])
	if err := os.WriteFile(ts.File, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return ts
}

// bearer sends an API key with every call; tests speak plain text to loopback, so it does not
// insist on TLS as a real client would.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// DialAs returns a gRPC client connection to the service that sends key on every call (none
// when key is empty), closed when the test ends.
func (r *Running) DialAs(key string) *grpc.ClientConn {
	r.t.Helper()
	creds := insecure.NewCredentials()
	if r.tls != nil {
		creds = credentials.NewTLS(r.tls)
	}
	conn, err := grpc.NewClient(r.GRPC, grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(bearer(key)))
	if err != nil {
		r.t.Fatalf("grpc client of %s: %v", r.GRPC, err)
	}
	r.t.Cleanup(func() { conn.Close() })
	return conn
}
