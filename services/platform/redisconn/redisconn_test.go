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
		c, err := Dial(ctx, url, Options{TLS: full})
		if err != nil {
			t.Fatalf("%s with a client certificate: %v", url, err)
		}
		c.Close()
	}
	if _, err := Dial(ctx, "rediss://:s3cret-pw@"+rs.Addr+"/0", Options{TLS: TLS{CA: certs.CA}}); err == nil {
		t.Fatal("connected without the client certificate the server requires")
	}
	if _, err := Dial(ctx, "redis://:s3cret-pw@"+rs.Addr+"/0", Options{}); err == nil {
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
	c, err := Dial(context.Background(), "rediss://"+rs.Addr+"/0", Options{TLS: TLS{CA: certs.CA}})
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	c.Close()
	if _, err := Dial(context.Background(), "rediss://"+rs.Addr+"/0", Options{}); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
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

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		url  string
		give Options
		want string // Target.String, or the error
	}{
		{name: "single", url: "redis://127.0.0.1:6379/0", want: "single 127.0.0.1:6379"},
		{name: "single by default", url: "redis://u:pw@10.0.0.1:6380/2", want: "single 10.0.0.1:6380"},
		{name: "cluster from seeds", url: "redis://h1:7000?addr=h2:7001", want: "cluster h1:7000,h2:7001"},
		{name: "sentinel from master_name", url: "redis://s1:26379?addr=s2:26379&master_name=tp", want: "sentinel s1:26379,s2:26379 master tp"},
		{name: "sentinel from the flag", url: "redis://s1:26379", give: Options{MasterName: "tp"}, want: "sentinel s1:26379 master tp"},
		{name: "single with seeds", url: "redis://:s3cret-pw@h1:7000?addr=h2:7001", give: Options{Mode: Single},
			want: `redis url "redis://:xxxxx@h1:7000?addr=h2:7001": several addresses (addr=) need -redis-mode cluster or sentinel`},
		{name: "cluster", url: "redis://u:s3cret-pw@h1:7000?addr=h2:7001&addr=h3:7002", give: Options{Mode: Cluster}, want: "cluster h1:7000,h2:7001,h3:7002"},
		{name: "cluster database 0", url: "rediss://h1:7000/0", give: Options{Mode: Cluster}, want: "cluster h1:7000"},
		{name: "cluster other database", url: "redis://:s3cret-pw@h1:7000/3", give: Options{Mode: Cluster},
			want: `redis url "redis://:xxxxx@h1:7000/3": database "3": a Redis Cluster has database 0 only`},
		{name: "cluster bad seed", url: "redis://:s3cret-pw@h1:7000?addr=h2", give: Options{Mode: Cluster},
			want: `redis url "redis://:xxxxx@h1:7000?addr=h2": redis: unable to parse addr param: h2`},
		{name: "sentinel flag", url: "redis://s1:26379?addr=s2:26379", give: Options{Mode: Sentinel, MasterName: "tp"}, want: "sentinel s1:26379,s2:26379 master tp"},
		{name: "sentinel url", url: "redis://s1:26379/0?master_name=tp", give: Options{Mode: Sentinel}, want: "sentinel s1:26379 master tp"},
		{name: "sentinel no master", url: "redis://:s3cret-pw@s1:26379", give: Options{Mode: Sentinel},
			want: `redis url "redis://:xxxxx@s1:26379": -redis-master-name: required with -redis-mode sentinel`},
		{name: "sentinel names disagree", url: "redis://s1:26379?master_name=a&password=s3cret-pw", give: Options{Mode: Sentinel, MasterName: "b"},
			want: `redis url "redis://s1:26379?master_name=a&password=xxxxx": master_name="a" and -redis-master-name "b" disagree`},
		{name: "unknown mode", url: "redis://h:1", give: Options{Mode: "ring"}, want: `-redis-mode "ring": want single, cluster or sentinel`},
		{name: "unknown parameter", url: "redis://:s3cret-pw@h1:7000?colour=red", give: Options{Mode: Cluster},
			want: `redis url "redis://:xxxxx@h1:7000?colour=red": redis: unexpected option: colour`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.url, tt.give)
			s := ""
			if err != nil {
				s = err.Error()
			} else {
				s = got.String()
			}
			if s != tt.want {
				t.Errorf("Parse = %q, want %q", s, tt.want)
			}
		})
	}
}

// The sentinels' user and password log in to the master too unless the URL gives the master's.
func TestParseSentinelCredentials(t *testing.T) {
	tg, err := Parse("redis://sent:pw1@s1:26379?master_name=tp", Options{Mode: Sentinel})
	if err != nil {
		t.Fatal(err)
	}
	if f := tg.failover; f.SentinelUsername != "sent" || f.SentinelPassword != "pw1" || f.Username != "sent" || f.Password != "pw1" {
		t.Errorf("shared credentials: sentinel %s/%s, master %s/%s", f.SentinelUsername, f.SentinelPassword, f.Username, f.Password)
	}
	tg, err = Parse("redis://sent:pw1@s1:26379?master_name=tp&username=kpi&password=pw2", Options{Mode: Sentinel})
	if err != nil {
		t.Fatal(err)
	}
	if f := tg.failover; f.SentinelPassword != "pw1" || f.Username != "kpi" || f.Password != "pw2" {
		t.Errorf("own credentials: sentinel %s/%s, master %s/%s", f.SentinelUsername, f.SentinelPassword, f.Username, f.Password)
	}
}

// FuzzParse: no URL makes Parse panic or repeat a password in an error.
func FuzzParse(f *testing.F) {
	f.Add("redis://u:s3cret-pw@h1:7000?addr=h2:7001", "cluster")
	f.Add("redis://:s3cret-pw@s1:26379/0?master_name=tp&password=s3cret-pw", "sentinel")
	f.Add("rediss://:s3cret-pw@[::1]:6379/0", "single")
	f.Add("redis://:s3cret-pw@h:1/0?addr=%zz", "cluster")
	f.Fuzz(func(t *testing.T, url, mode string) {
		_, err := Parse(url, Options{Mode: Mode(mode)})
		if err != nil && strings.Contains(url, "s3cret-pw") && strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("error repeats the password: %v", err)
		}
	})
}
