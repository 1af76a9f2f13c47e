package tenants

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// newKey returns a fresh API key and writes its hash to dir/name, as an operator would.
func newKey(t *testing.T, dir, name string) (string, auth.KeyHash) {
	t.Helper()
	key, hash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(hash.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return key, hash
}

// replace swaps the file's content by rename, as deployment tools do, so a poll never reads
// half a file.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const registryYAML = `operators:
  api_keys: [{name: ops, hash: {file: ops.hash}}]
tenants:
  acme:
    api_keys:
      - {name: ci-2026-12, scopes: [events:write, kpis:read], hash: {file: ci.hash}}
      - {name: ci-2026-06, scopes: [events:write], hash: {file: old.hash}, revoked: true}
  globex: {}
`

func TestRegistryAuthenticate(t *testing.T) {
	path := writeTenants(t, registryYAML, nil)
	dir := filepath.Dir(path)
	ci, _ := newKey(t, dir, "ci.hash")
	old, _ := newKey(t, dir, "old.hash")
	ops, _ := newKey(t, dir, "ops.hash")
	stranger, _, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		give  string
		want  auth.Principal
		err   error
		errIs string // the error's text, when err is set
	}{
		{name: "tenant key", give: "Bearer " + ci,
			want: auth.Principal{Kind: auth.KindAPIKey, Tenant: "acme", Name: "ci-2026-12", Scopes: []auth.Scope{auth.EventsWrite, auth.KPIsRead}}},
		{name: "scheme in any case", give: "bearer " + ci,
			want: auth.Principal{Kind: auth.KindAPIKey, Tenant: "acme", Name: "ci-2026-12", Scopes: []auth.Scope{auth.EventsWrite, auth.KPIsRead}}},
		{name: "operator key", give: "Bearer " + ops,
			want: auth.Principal{Kind: auth.KindAPIKey, Name: "ops", Scopes: []auth.Scope{auth.Operator}}},
		{name: "revoked key", give: "Bearer " + old, err: auth.ErrRevoked, errIs: `revoked credential "ci-2026-06"`},
		{name: "unknown key", give: "Bearer " + stranger, err: auth.ErrInvalid, errIs: "invalid credential"},
		{name: "no credential", give: "", err: auth.ErrNoCredential, errIs: auth.ErrNoCredential.Error()},
		{name: "malformed", give: "Basic " + ci, err: auth.ErrMalformed, errIs: "malformed credential: want the Bearer scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := r.Authenticate(context.Background(), tt.give)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || err.Error() != tt.errIs || !reflect.DeepEqual(p, auth.Principal{}) {
					t.Fatalf("Authenticate = %+v, %v; want %q", p, err, tt.errIs)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(p, tt.want) {
				t.Fatalf("Authenticate = %+v, %v; want %+v", p, err, tt.want)
			}
		})
	}
	known := map[string]bool{"acme": true, "globex": true, "nobody": false, "": false, "Acme": false}
	for id, want := range known {
		if got := r.Known(id); got != want {
			t.Errorf("Known(%q) = %v, want %v", id, got, want)
		}
		if tn, ok := r.Tenant(id); ok != want || (ok && tn.ID != id) {
			t.Errorf("Tenant(%q) = %+v, %v", id, tn, ok)
		}
	}
}

func TestRegistryWithoutFile(t *testing.T) {
	var logs testenv.LogBuffer
	r, err := Open(context.Background(), "", Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := auth.NewKey()
	if _, err := r.Authenticate(context.Background(), "Bearer "+key); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("Authenticate = %v, want ErrInvalid", err)
	}
	if r.Known("acme") || len(r.Config().Tenants) != 0 {
		t.Error("a registry without a file knows a tenant")
	}
	done := make(chan error, 1)
	go func() { done <- r.Watch(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Watch = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch without a file did not return")
	}
	if !strings.Contains(logs.String(), "no tenants file: every tenant is unknown and no credential is accepted") {
		t.Errorf("log lacks the warning:\n%s", logs.String())
	}
}

func TestOpenRefuses(t *testing.T) {
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "nope.yaml"), Options{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "read tenants file: ") {
		t.Errorf("missing file: %v", err)
	}
	path := writeTenants(t, "tenants:\n  acme:\n    api_keys: [{name: a, scopes: [kpis:read], hash: {env: UNSET_HASH}}]\n", nil)
	_, err = Open(context.Background(), path, Options{Getenv: getenv(nil)})
	var probs Problems
	if !errors.As(err, &probs) || err.Error() != path+":3: tenants.acme.api_keys[0].hash.env: environment variable UNSET_HASH is unset or empty" {
		t.Errorf("invalid file: %v", err)
	}
}

// The file is reloaded on change: a new tenant and key work, a removed key stops working, a
// broken file leaves the last good one in force, and an unchanged file is not reloaded.
func TestRegistryReload(t *testing.T) {
	path := writeTenants(t, registryYAML, nil)
	dir := filepath.Dir(path)
	ci, _ := newKey(t, dir, "ci.hash")
	newKey(t, dir, "old.hash")
	newKey(t, dir, "ops.hash")
	var logs testenv.LogBuffer
	r, err := Open(context.Background(), path, Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	if err := r.Instrument(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch = %v", err)
		}
	}()
	authenticates := func(key string) error { _, err := r.Authenticate(context.Background(), "Bearer "+key); return err }
	// Requests keep coming while the file changes under them (go test -race checks the swap).
	readers := make(chan struct{})
	go func() {
		defer close(readers)
		for ctx.Err() == nil {
			r.Known("acme")
			_, _ = r.Authenticate(ctx, "Bearer "+ci)
			_, _ = r.Tenant("initech")
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { cancel(); <-readers }()

	// Unchanged: polls come and go, nothing is reloaded.
	first := r.Config()
	time.Sleep(60 * time.Millisecond)
	if r.Config() != first || r.applied.Load() != 0 || r.invalid.Load() != 0 {
		t.Fatal("an unchanged file was reloaded")
	}
	if got := gauges(t, reader); got != "api_keys{state=active}=2 api_keys{state=revoked}=1 count=2 reloads{result=applied}=0 reloads{result=invalid}=0" {
		t.Errorf("metrics %s", got)
	}

	// A new tenant with a new key; acme's ci key removed.
	initech, _ := newKey(t, dir, "initech.hash")
	replace(t, path, strings.Replace(registryYAML, "      - {name: ci-2026-12, scopes: [events:write, kpis:read], hash: {file: ci.hash}}\n", "", 1)+
		"  initech:\n    api_keys: [{name: ci, scopes: [kpis:read], hash: {file: initech.hash}}]\n")
	eventually(t, "initech is known", func() bool { return r.Known("initech") })
	if err := authenticates(ci); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("the removed key: %v, want ErrInvalid", err)
	}
	p, err := r.Authenticate(context.Background(), "Bearer "+initech)
	if err != nil || p.Tenant != "initech" || p.Name != "ci" {
		t.Errorf("the new key: %+v, %v", p, err)
	}
	if got := gauges(t, reader); got != "api_keys{state=active}=2 api_keys{state=revoked}=1 count=3 reloads{result=applied}=1 reloads{result=invalid}=0" {
		t.Errorf("metrics %s", got)
	}

	// A broken file: every problem is logged, no hash is, and the last good file stays.
	replace(t, path, "tenants:\n  acme:\n    api_keys: [{name: x, scopes: [kpis:read], hash: {file: initech.hash}}]\n  initech:\n    api_keys: [{name: y, scopes: [kpis:read], hash: {file: initech.hash}}]\n    colour: blue\n")
	eventually(t, "the broken file is refused", func() bool { return r.invalid.Load() == 1 })
	if !r.Known("globex") {
		t.Error("the broken file replaced the one in force")
	}
	if err := authenticates(initech); err != nil {
		t.Errorf("a key of the file in force: %v", err)
	}
	log := logs.String()
	for _, want := range []string{
		"tenants.yaml:5: tenants.initech.api_keys[0].hash: file " + dir + "/initech.hash holds the same hash as tenants.acme.api_keys[0].hash (line 3); every key must be its own",
		"tenants.yaml:6: tenants.initech: unknown key \\\"colour\\\"",
		"file invalid; keeping what is in force",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	for _, name := range []string{"ci.hash", "old.hash", "ops.hash", "initech.hash"} {
		h, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if hex := strings.TrimPrefix(strings.TrimSpace(string(h)), "sha256:"); strings.Contains(log, hex) {
			t.Fatalf("the hash in %s was logged:\n%s", name, log)
		}
	}
	if strings.Contains(log, ci) || strings.Contains(log, initech) {
		t.Fatalf("a key was logged:\n%s", log)
	}

	// Fixed again: applied.
	replace(t, path, "tenants:\n  acme: {}\n")
	eventually(t, "the fixed file is applied", func() bool { return !r.Known("globex") })
	if err := authenticates(initech); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("a key of the old file: %v, want ErrInvalid", err)
	}
	if !strings.Contains(logs.String(), `msg="tenants file reloaded"`) ||
		!strings.Contains(logs.String(), "tenants.tenants=1 tenants.api_keys=0 tenants.revoked_keys=0 tenants.oidc=0") {
		t.Errorf("the reload was not logged with its counts:\n%s", logs.String())
	}
	if got := gauges(t, reader); got != "api_keys{state=active}=0 api_keys{state=revoked}=0 count=1 reloads{result=applied}=2 reloads{result=invalid}=1" {
		t.Errorf("metrics %s", got)
	}
}

// gauges renders the registry's metrics as "name{attr=value}=n", sorted.
func gauges(t *testing.T, reader *sdkmetric.ManualReader) string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			name := strings.TrimPrefix(m.Name, "tenants.")
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			case metricdata.Sum[int64]:
				points = d.DataPoints
			}
			for _, p := range points {
				label := ""
				for _, kv := range p.Attributes.ToSlice() {
					label = "{" + string(kv.Key) + "=" + kv.Value.Emit() + "}"
				}
				out = append(out, name+label+"="+strconv.FormatInt(p.Value, 10))
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
