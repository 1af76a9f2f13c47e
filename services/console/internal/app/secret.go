package app

import (
	"fmt"
	"os"
	"strings"
)

// readSecret reads a one-line secret file, without its surrounding space.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("-oidc-client-secret-file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("-oidc-client-secret-file %s: empty", path)
	}
	return s, nil
}
