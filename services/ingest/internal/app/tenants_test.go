package app

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// metricsLine returns the /metrics line that starts with prefix, or "".
func (r *running) metricsLine(t *testing.T, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(do(t, http.MethodGet, r.AdminURL("/metrics"), "", "", nil).body, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The tenants file is reloaded while ingest runs: a source added to a tenant and a new tenant
// take webhooks without a restart, and a broken file leaves the one in force.
func TestTenantsFileReloads(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, func(c *Config, d *Deps) { d.TenantsPoll = 20 * time.Millisecond })
	path := r.keys.File
	initial, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	write := func(content string) {
		t.Helper()
		// By rename, as deployment tools do: a poll never reads half a file.
		if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	stream := tickets(t, url)
	n, accepted := 0, uint64(0)
	deliver := func(tenant string) response {
		n++
		body := "[" + event(fmt.Sprintf("reload-%d", n), "customer_message", "") + "]"
		got := r.hook(t, tenant, "generic", body, signed(fmt.Sprintf("reload-d-%d", n), time.Now(), body))
		if got.status == http.StatusAccepted {
			accepted++
		}
		return got
	}
	notConfigured := `{"error":"not configured","reason":"this tenant has no webhook configured for this source"}`
	for _, tenant := range []string{"globex", "initech"} {
		wantJSON(t, deliver(tenant), http.StatusNotFound, notConfigured)
	}

	if !strings.Contains(string(initial), globexSources) {
		t.Fatalf("the tenants file has no room for globex's sources:\n%s", initial)
	}
	write(strings.Replace(string(initial), globexSources, "    sources:\n      generic:\n        secrets: [{env: ACME_GENERIC_SECRET}]\n", 1) +
		"  initech:\n    sources:\n      generic: {secrets: [{env: ACME_GENERIC_SECRET}]}\n")
	var got response
	waitUntil(t, "initech's webhook works", func() bool { got = deliver("initech"); return got.status != http.StatusNotFound })
	if got.status != http.StatusAccepted {
		t.Fatalf("initech after the reload: %d %s, want 202", got.status, got.body)
	}
	if got := deliver("globex"); got.status != http.StatusAccepted {
		t.Fatalf("globex after the reload: %d %s, want 202", got.status, got.body)
	}
	if line := r.metricsLine(t, `tenants_reloads_total{result="applied"}`); !strings.HasSuffix(line, " 1") {
		t.Errorf("metric %q, want 1 reload applied", line)
	}
	// acme, globex, slow, busy, flood, quiet and initech.
	if line := r.metricsLine(t, "tenants_count "); line != "tenants_count 7" {
		t.Errorf("metric %q, want tenants_count 7", line)
	}

	// Broken: initech's secret is unset and a key is misspelt. Everything stays as it was.
	write("tenants:\n  initech:\n    sources:\n      generic: {secrets: [{env: INITECH_SECRET}]}\n    colour: blue\n")
	waitUntil(t, "the broken file is refused", func() bool {
		return strings.HasSuffix(r.metricsLine(t, `tenants_reloads_total{result="invalid"}`), " 1")
	})
	for _, tenant := range []string{"acme", "globex", "initech"} {
		if got := deliver(tenant); got.status != http.StatusAccepted {
			t.Errorf("%s after a broken file: %d %s, want 202", tenant, got.status, got.body)
		}
	}
	// Every accepted delivery was stored, and none of the refused ones.
	if got := msgCount(t, stream); got != accepted || accepted != 5 {
		t.Errorf("stream holds %d events, %d accepted; want 5", got, accepted)
	}
}
