// Package redact hides the passwords in connection URLs before they are logged or printed.
package redact

import (
	"net/url"
	"strings"
)

// URL returns s with the password of each comma-separated URL in it replaced by "xxxxx", as
// NATS server lists are written, and a user without a password (a NATS token) by "xxxxx", as
// well as the value of a password query parameter (go-redis's Sentinel URLs carry the master's
// password there). A part that looks like a URL but does not parse is replaced whole, since
// where its secret sits cannot be told; one without "://" is left as it is.
func URL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if !strings.Contains(p, "://") {
			continue // not a URL, such as a host:port
		}
		u, err := url.Parse(strings.TrimSpace(p))
		if err == nil {
			if q := hideQuery(u.RawQuery); q != u.RawQuery {
				u.RawQuery = q
				parts[i] = u.String()
			}
		}
		switch {
		case err != nil:
			parts[i] = "<unparsable url>"
		case u.User == nil:
		case hasPassword(u):
			parts[i] = u.Redacted()
		default:
			// A user alone is a token to NATS.
			u.User = url.User("xxxxx")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

func hasPassword(u *url.URL) bool {
	_, ok := u.User.Password()
	return ok
}

// hideQuery replaces the value of each password parameter, keeping the others as they are.
func hideQuery(raw string) string {
	if raw == "" {
		return raw
	}
	params := strings.Split(raw, "&")
	for i, kv := range params {
		k, _, _ := strings.Cut(kv, "=")
		if name, err := url.QueryUnescape(k); err == nil && strings.HasSuffix(strings.ToLower(name), "password") {
			params[i] = k + "=xxxxx"
		}
	}
	return strings.Join(params, "&")
}
