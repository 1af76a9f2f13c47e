package redisconn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestACLUser(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real redis-server; skipped in -short mode")
	}
	rs, err := testenv.StartRedis(t.TempDir(), "--user", "default", "off",
		"--user", "kpi", "on", ">s3cret-pw", "~tp:*", "+@all")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Kill)
	ctx := context.Background()
	c, err := Open(ctx, "redis://kpi:s3cret-pw@"+rs.Addr+"/0")
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := c.Set(ctx, "tp:x", "1", 0).Err(); err != nil {
		t.Errorf("own key: %v", err)
	}
	if err := c.Set(ctx, "other", "1", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Errorf("key outside the user's pattern: %v, want NOPERM", err)
	}
	c.Close()

	_, err = Open(ctx, "redis://kpi:wrong-pw@"+rs.Addr+"/0")
	want := "ping redis redis://kpi:xxxxx@" + rs.Addr + "/0: WRONGPASS invalid username-password pair or user is disabled."
	if err == nil || err.Error() != want {
		t.Fatalf("wrong password: %v, want %q", err, want)
	}
	if _, err := Open(ctx, "redis://"+rs.Addr+"/0"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("no credentials with the default user off: %v, want NOAUTH", err)
	}
}

func TestBadURLHidesPassword(t *testing.T) {
	_, err := Open(context.Background(), "redis://kpi:s3cret-pw@[::1/0")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "redis url") {
		t.Fatalf("bad url: %v", err)
	}
}

func TestTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real redis-server; skipped in -short mode")
	}
	certs := testenv.NewCerts(t)
	rs, err := testenv.StartRedisTLS(t.TempDir(), certs, true, "--requirepass", "s3cret-pw")
	if err != nil {
		// Debian's and Homebrew's redis-server are built with TLS; a build without it cannot run this.
		if strings.Contains(err.Error(), "tls-port") {
			t.Skipf("redis-server built without TLS: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(rs.Kill)
	ctx := context.Background()
	full := TLS{CA: certs.CA, Cert: certs.ClientCert, Key: certs.ClientKey}
	for _, url := range []string{"rediss://:s3cret-pw@" + rs.Addr + "/0", "redis://:s3cret-pw@" + rs.Addr + "/0"} {
		c, err := Dial(ctx, url, full)
		if err != nil {
			t.Fatalf("%s with a client certificate: %v", url, err)
		}
		c.Close()
	}
	if _, err := Dial(ctx, "rediss://:s3cret-pw@"+rs.Addr+"/0", TLS{CA: certs.CA}); err == nil {
		t.Fatal("connected without the client certificate the server requires")
	}
	if _, err := Dial(ctx, "redis://:s3cret-pw@"+rs.Addr+"/0", TLS{}); err == nil {
		t.Fatal("a plain connection to a TLS-only port worked")
	}
}

// A CA alone is enough for a server that does not ask for client certificates.
func TestTLSServerOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real redis-server; skipped in -short mode")
	}
	certs := testenv.NewCerts(t)
	rs, err := testenv.StartRedisTLS(t.TempDir(), certs, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Kill)
	c, err := Dial(context.Background(), "rediss://"+rs.Addr+"/0", TLS{CA: certs.CA})
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	c.Close()
	if _, err := Dial(context.Background(), "rediss://"+rs.Addr+"/0", TLS{}); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("without the CA: %v, want the server's certificate refused", err)
	}
}

func TestTLSCheck(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		give TLS
		want []string
	}{
		{name: "nothing", give: TLS{}},
		{name: "all", give: TLS{CA: file, Cert: file, Key: file}},
		{name: "cert without key", give: TLS{Cert: file}, want: []string{"-redis-tls-cert and -redis-tls-key: give both or neither"}},
		{name: "unreadable ca", give: TLS{CA: missing}, want: []string{"-redis-tls-ca: " + missing + ": no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, err := range tt.give.Check("redis-") {
				got = append(got, err.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Check = %q, want %q", got, tt.want)
			}
		})
	}
}
