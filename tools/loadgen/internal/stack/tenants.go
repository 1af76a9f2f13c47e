package stack

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

// Tenants the stack's tenants file names: the default tenant of "loadgen all" and the tenant of
// its overload step, which keeps that step's events apart from the others.
const (
	Tenant         = "bench"
	OverloadTenant = "bench-overload"
)

// benchRate is the tenants' rate limit: far above what one machine posts, so the figures measure
// the pipeline, not a tenant's budget. Under pressure ingest still scales it down (429).
const benchRate = 1_000_000

const tenantsYAML = `# Written by loadgen stack for a benchmark run: every tenant may post far faster than one machine
# can, and one operator key (api-key, its hash in api-key.hash) reads and writes all of them.
operators:
  api_keys:
    - {name: loadgen, hash: {file: api-key.hash}}
tenants:
  %[1]s:
    rate_limit: {events_per_second: %[3]d, burst: %[3]d}
  %[2]s:
    rate_limit: {events_per_second: %[3]d, burst: %[3]d}
`

// writeTenants writes the stack's tenants file and a new operator key (mode 0600) into dir and
// returns their paths. A fresh key each run: nothing outlives the stack that needs it.
func writeTenants(dir string) (tenantsFile, keyFile string, err error) {
	key, hash, err := auth.NewKey()
	if err != nil {
		return "", "", err
	}
	tenantsFile = filepath.Join(dir, "tenants.yaml")
	keyFile = filepath.Join(dir, "api-key")
	hashFile := filepath.Join(dir, "api-key.hash")
	for _, f := range []struct {
		path string
		data string
		perm os.FileMode
	}{
		{hashFile, hash.String() + "\n", 0o644},
		{keyFile, key + "\n", 0o600},
		{tenantsFile, fmt.Sprintf(tenantsYAML, Tenant, OverloadTenant, benchRate), 0o644},
	} {
		// Removed first: WriteFile keeps the mode of a file that exists.
		if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
			return "", "", fmt.Errorf("remove %s: %w", f.path, err)
		}
		if err := os.WriteFile(f.path, []byte(f.data), f.perm); err != nil {
			return "", "", fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return tenantsFile, keyFile, nil
}
