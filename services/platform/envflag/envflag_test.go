package envflag

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestPrecedence(t *testing.T) {
	env := map[string]string{"TICKETPULSE_ADDR": "127.0.0.1:1", "TICKETPULSE_WAIT": "3s", "TICKETPULSE_N": "7"}
	tests := []struct {
		name     string
		args     []string
		wantAddr string
		wantWait time.Duration
		wantN    int
	}{
		{"env over default", nil, "127.0.0.1:1", 3 * time.Second, 7},
		{"flag over env", []string{"-addr", "127.0.0.1:2", "-n", "9"}, "127.0.0.1:2", 3 * time.Second, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				addr string
				wait time.Duration
				n    int
			)
			s := New("svc", "test", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			s.String(&addr, "addr", "127.0.0.1:0", "Listen address.")
			s.Duration(&wait, "wait", time.Second, "How long to wait.")
			s.Int(&n, "n", 1, "How many.")
			if err := s.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if addr != tt.wantAddr || wait != tt.wantWait || n != tt.wantN {
				t.Fatalf("got %q %v %d, want %q %v %d", addr, wait, n, tt.wantAddr, tt.wantWait, tt.wantN)
			}
		})
	}
}

func TestBadEnvIsAnError(t *testing.T) {
	var d time.Duration
	s := New("svc", "test", func(k string) (string, bool) { return "soon", k == "TICKETPULSE_WAIT" })
	s.Duration(&d, "wait", time.Second, "How long to wait.")
	err := s.Parse(nil)
	if err == nil || !strings.Contains(err.Error(), "TICKETPULSE_WAIT") {
		t.Fatalf("want an error naming TICKETPULSE_WAIT, got %v", err)
	}
}

func TestHelpListsFlagsAndEnv(t *testing.T) {
	var addr string
	var buf bytes.Buffer
	s := New("svc", "Does things.", func(string) (string, bool) { return "", false })
	s.SetOutput(&buf)
	s.String(&addr, "http-addr", "127.0.0.1:8080", "Address of the HTTP server.")
	if err := s.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("want ErrHelp, got %v", err)
	}
	for _, want := range []string{"Does things.", "-http-addr", "TICKETPULSE_HTTP_ADDR", "127.0.0.1:8080", "Address of the HTTP server."} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, buf.String())
		}
	}
}
