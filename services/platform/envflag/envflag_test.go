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

// listValue is a flag.Value for TestVar.
type listValue struct{ items *[]string }

func (v listValue) String() string {
	if v.items == nil {
		return ""
	}
	return strings.Join(*v.items, ",")
}

func (v listValue) Set(s string) error {
	if s == "bad" {
		return errors.New("not a list")
	}
	*v.items = strings.Split(s, ",")
	return nil
}

func TestVar(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string
		wantErr string
	}{
		{name: "default", want: "a,b"},
		{name: "env over default", env: map[string]string{"TICKETPULSE_LIST": "c"}, want: "c"},
		{name: "flag over env", env: map[string]string{"TICKETPULSE_LIST": "c"}, args: []string{"-list", "d,e"}, want: "d,e"},
		{name: "bad env", env: map[string]string{"TICKETPULSE_LIST": "bad"}, wantErr: `TICKETPULSE_LIST="bad": not a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := []string{"a", "b"}
			s := New("svc", "test", func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			var help bytes.Buffer
			s.SetOutput(&help)
			s.Var(listValue{&items}, "list", "Items.")
			err := s.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Parse = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(items, ","); got != tt.want {
				t.Errorf("list = %q, want %q", got, tt.want)
			}
			s.PrintUsage(&help)
			if !strings.Contains(help.String(), "default "+tt.want) && tt.env == nil {
				t.Errorf("-h lacks the default:\n%s", help.String())
			}
		})
	}
}
