package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// inboxAddr is where the local stack's demo receiver listens: notify's signed webhooks arrive
// there and are printed, so escalations can be seen reaching a supervisor without any account.
const inboxAddr = "127.0.0.1:9393"

// devRoutingYAML sends every escalation change of the demo to the inbox, grouped per tenant and
// rule, with a short wait so the demo shows grouping without a long pause.
const devRoutingYAML = `# Written by tpdev for the local stack; TICKETPULSE_ROUTING_FILE points notify elsewhere.
receivers:
  - name: inbox
    webhook:
      url: "http://` + inboxAddr + `/hook"
      secrets: [{file: secrets/inbox-webhook-secret}]
    limits: {timeout: 5s, deadline: 10m}
route:
  receiver: inbox
  group_by: [tenant, rule]
  group_wait: 5s
  group_interval: 30s
  repeat_interval: 1h
`

// devRouting writes the routing file and the inbox's signing secret under runDir.
func devRouting(runDir string) (path string, key []byte, err error) {
	secrets := filepath.Join(runDir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return "", nil, fmt.Errorf("secrets directory: %w", err)
	}
	secretFile := filepath.Join(secrets, "inbox-webhook-secret")
	key = make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(secretFile, []byte("whsec_"+base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return "", nil, fmt.Errorf("write %s: %w", secretFile, err)
	}
	path = filepath.Join(runDir, "routing.yaml")
	if err := os.WriteFile(path, []byte(devRoutingYAML), 0o600); err != nil {
		return "", nil, fmt.Errorf("write %s: %w", path, err)
	}
	return path, key, nil
}

// inbox receives the demo's signed webhooks, checks each signature and prints a line per change.
type inbox struct {
	key []byte
	out *prefixWriter
	srv *http.Server
}

func startInbox(key []byte, out *prefixWriter) (*inbox, error) {
	l, err := net.Listen("tcp", inboxAddr)
	if err != nil {
		return nil, fmt.Errorf("demo inbox: %w (set TICKETPULSE_ROUTING_FILE to route notifications elsewhere)", err)
	}
	in := &inbox{key: key, out: out}
	in.srv = &http.Server{Handler: in, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := in.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			out.Printf("inbox stopped: %v", err)
		}
	}()
	return in, nil
}

func (in *inbox) close() { _ = in.srv.Close() }

func (in *inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	mac := hmac.New(sha256.New, in.key)
	mac.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	signed := false
	for _, sig := range strings.Fields(r.Header.Get("webhook-signature")) {
		signed = signed || hmac.Equal([]byte(sig), []byte(want))
	}
	if !signed {
		in.out.Printf("rejected a webhook with a bad signature (id %s)", r.Header.Get("webhook-id"))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var msg struct {
		Changes []struct {
			Kind       string `json:"kind"`
			Escalation struct {
				ID      string `json:"id"`
				Summary string `json:"summary"`
			} `json:"escalation"`
		} `json:"changes"`
	}
	_ = json.Unmarshal(body, &msg)
	in.out.Printf("notification %s (signature ok), %d change(s):", r.Header.Get("webhook-id"), len(msg.Changes))
	for _, c := range msg.Changes {
		in.out.Printf("  %s %s: %s", strings.TrimPrefix(c.Kind, "CHANGE_KIND_"), c.Escalation.ID, c.Escalation.Summary)
	}
	w.WriteHeader(http.StatusNoContent)
}
