package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// devTenantsYAML configures the demo tenant's Freshdesk webhook: Freshdesk cannot sign, so a URL
// token is all a curl needs. The token is a file next to it, never in the repository.
const devTenantsYAML = `# Written by tpdev for the local stack; TICKETPULSE_TENANTS_FILE points ingest elsewhere.
tenants:
  acme:
    sources:
      freshdesk:
        url_token: {file: secrets/acme-freshdesk-token}
`

// devTenants writes the local stack's tenants file under runDir (keeping the token of an earlier
// run, so webhook URLs stay valid) and returns its path and the token.
func devTenants(runDir string) (path, token string, err error) {
	secrets := filepath.Join(runDir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return "", "", fmt.Errorf("secrets directory: %w", err)
	}
	tokenFile := filepath.Join(secrets, "acme-freshdesk-token")
	b, err := os.ReadFile(tokenFile)
	switch {
	case err == nil && strings.TrimSpace(string(b)) != "":
		token = strings.TrimSpace(string(b))
	case err == nil || errors.Is(err, os.ErrNotExist):
		raw := make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			return "", "", err
		}
		token = hex.EncodeToString(raw)
		if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
			return "", "", fmt.Errorf("write %s: %w", tokenFile, err)
		}
	default:
		return "", "", fmt.Errorf("read %s: %w", tokenFile, err)
	}
	path = filepath.Join(runDir, "tenants.yaml")
	if err := os.WriteFile(path, []byte(devTenantsYAML), 0o600); err != nil {
		return "", "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, token, nil
}
