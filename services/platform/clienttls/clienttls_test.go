package clienttls

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name          string
		ca, cert, key string
		want          string
	}{
		{name: "ca not found", ca: missing, want: "tls ca: open " + missing + ": no such file or directory"},
		{name: "ca without a certificate", ca: notPEM, want: "tls ca " + notPEM + ": no PEM certificate in it"},
		{name: "client certificate not PEM", cert: notPEM, key: notPEM, want: "tls client certificate: tls: failed to find any PEM data in certificate input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Config(tt.ca, tt.cert, tt.key)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Config = %v, want %q", err, tt.want)
			}
		})
	}
	if tc, err := Config("", "", ""); tc != nil || err != nil {
		t.Errorf("no files: %v, %v; want no TLS", tc, err)
	}
}

func TestReadable(t *testing.T) {
	if err := Readable(""); err != nil {
		t.Errorf("empty path: %v", err)
	}
	dir := t.TempDir()
	if err := Readable(filepath.Join(dir, "x")); err == nil || !strings.HasSuffix(err.Error(), "x: no such file or directory") {
		t.Errorf("missing file: %v", err)
	}
}
