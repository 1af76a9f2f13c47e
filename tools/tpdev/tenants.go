package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

// demoTenants are the tenants the local stack's tenants file defines, each with an all-scope API
// key, so requests for one tenant can be tried with the other's key too.
var demoTenants = []string{"acme", "globex"}

// demoKeyName names the demo keys in the tenants file, hence in logs and as the by of
// acknowledgements ("api-key:acme/dev").
const demoKeyName = "dev"

// devTenantsHeader opens the local tenants file. The demo tenant acme's Freshdesk webhook takes
// a URL token (Freshdesk cannot sign), a file next to the tenants file, never in the repository;
// so are the hashes of the API keys, whose keys only the files in secrets/ hold.
const devTenantsHeader = `# Written by tpdev for the local stack and rewritten at every start (docs/tenants.md). The API
# keys are in secrets/<tenant>-api-key. For more keys (go run ./tools/tpctl apikey new -h), copy
# this file to another name in this directory, add them there, and start tpdev with
# TICKETPULSE_TENANTS_FILE naming the copy.
tenants:
`

// devTenantsYAML renders the tenants file: every demo tenant with its key, acme with its webhook.
func devTenantsYAML() string {
	scopes := make([]string, len(auth.TenantScopes))
	for i, sc := range auth.TenantScopes {
		scopes[i] = string(sc)
	}
	var b strings.Builder
	b.WriteString(devTenantsHeader)
	for _, t := range demoTenants {
		fmt.Fprintf(&b, "  %s:\n    api_keys:\n      - name: %s\n        scopes: [%s]\n        hash: {file: secrets/%s}\n",
			t, demoKeyName, strings.Join(scopes, ", "), filepath.Base(keyHashFile("", t)))
		if t == "acme" {
			b.WriteString("    sources:\n      freshdesk:\n        url_token: {file: secrets/acme-freshdesk-token}\n")
		}
	}
	return b.String()
}

// keyFile is where the demo key of tenant lives; keyHashFile is its hash, which the tenants file
// references.
func keyFile(secrets, tenant string) string { return filepath.Join(secrets, tenant+"-api-key") }
func keyHashFile(secrets, tenant string) string {
	return filepath.Join(secrets, tenant+"-api-key.hash")
}

// devTenants writes the local stack's tenants file under runDir and returns its path, the
// Freshdesk URL token and each demo tenant's key file. Tokens and keys of an earlier run are kept,
// so webhook URLs and scripts reading the key files keep working across restarts.
func devTenants(runDir string) (path, token string, keys map[string]string, err error) {
	secrets := filepath.Join(runDir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return "", "", nil, fmt.Errorf("secrets directory: %w", err)
	}
	if token, err = devWebhookToken(secrets); err != nil {
		return "", "", nil, err
	}
	keys = map[string]string{}
	for _, t := range demoTenants {
		if err := ensureKey(secrets, t); err != nil {
			return "", "", nil, err
		}
		keys[t] = keyFile(secrets, t)
	}
	path = filepath.Join(runDir, "tenants.yaml")
	if err := os.WriteFile(path, []byte(devTenantsYAML()), 0o600); err != nil {
		return "", "", nil, fmt.Errorf("write %s: %w", path, err)
	}
	return path, token, keys, nil
}

func devWebhookToken(secrets string) (string, error) {
	tokenFile := filepath.Join(secrets, "acme-freshdesk-token")
	b, err := os.ReadFile(tokenFile)
	switch {
	case err == nil && strings.TrimSpace(string(b)) != "":
		return strings.TrimSpace(string(b)), nil
	case err == nil || errors.Is(err, os.ErrNotExist):
		raw := make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			return "", err
		}
		token := hex.EncodeToString(raw)
		if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("write %s: %w", tokenFile, err)
		}
		return token, nil
	default:
		return "", fmt.Errorf("read %s: %w", tokenFile, err)
	}
}

// ensureKey keeps tenant's key when its hash file still holds the key's hash. A key that is
// missing or malformed, or whose hash is gone or different (someone removed or replaced it, which
// revokes the key), is replaced by a new one.
func ensureKey(secrets, tenant string) error {
	kf, hf := keyFile(secrets, tenant), keyHashFile(secrets, tenant)
	if keyMatches(kf, hf) {
		// A key file copied in with looser permissions is narrowed: it is a credential.
		if err := os.Chmod(kf, 0o600); err != nil {
			return fmt.Errorf("chmod %s: %w", kf, err)
		}
		return nil
	}
	key, hash, err := auth.NewKey()
	if err != nil {
		return err
	}
	// The hash first: a key file never exists without the hash that makes it valid.
	if err := replaceFile(hf, []byte(hash.String()+"\n"), 0o644); err != nil {
		return err
	}
	return replaceFile(kf, []byte(key+"\n"), 0o600)
}

// keyMatches reports whether the key file holds an API key whose hash the hash file holds.
func keyMatches(keyPath, hashPath string) bool {
	k, err := os.ReadFile(keyPath)
	if err != nil {
		return false
	}
	key := string(bytes.TrimSpace(k))
	if len(key) != auth.KeyLen || !strings.HasPrefix(key, auth.KeyPrefix) {
		return false
	}
	h, err := os.ReadFile(hashPath)
	if err != nil {
		return false
	}
	hash, err := auth.ParseKeyHash(string(h))
	return err == nil && hash.Equal(auth.HashKey(key))
}

// replaceFile writes data to path with mode perm through a new file renamed over it, so the
// mode is perm even when path existed with another, and a reader never sees half a file.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, perm) // the umask may have narrowed or kept bits
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// devSessionKey writes, once, the console's session key under runDir/secrets and returns its
// path; a key already there is kept.
func devSessionKey(runDir string) (string, error) {
	path := filepath.Join(runDir, "secrets", "console-session-key")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("console session key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("console session key: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("console session key: %w", err)
	}
	return path, nil
}
