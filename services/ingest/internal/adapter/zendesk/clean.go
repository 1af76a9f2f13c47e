package zendesk

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// The helpers below keep every event the adapter builds inside the canonical limits, so a
// delivery is either rejected here with the source's field name or accepted downstream: the
// webhook handler must never fail on something the adapter let through.

// rawID reads an identifier that Zendesk sends as a JSON string in event payloads and as a
// number in older shapes; null and "" are absent.
func rawID(raw json.RawMessage, field string) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", adapter.Malformed(field, "must be a string or an integer")
		}
		return ident(strings.TrimSpace(s), field)
	case c == '-' || c >= '0' && c <= '9':
		if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
			return "", adapter.Malformed(field, "must be an integer id, not %.40s", raw)
		}
		return string(raw), nil
	}
	return "", adapter.Malformed(field, "must be a string or an integer")
}

// ident checks an optional identifier against the canonical limits.
func ident(s, field string) (string, error) {
	if len(s) > canonical.MaxIDBytes {
		return "", adapter.Malformed(field, "longer than %d bytes", canonical.MaxIDBytes)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", adapter.Malformed(field, "contains the control character %U", r)
		}
	}
	return s, nil
}

// required checks a required identifier.
func required(s, field string) (string, error) {
	s, err := ident(strings.TrimSpace(s), field)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", adapter.Malformed(field, "required")
	}
	return s, nil
}

// Layouts Zendesk renders timestamps in: RFC 3339 in event payloads, and the minute-precision
// ISO 8601 form ("2013-12-12T05:35Z") the *_with_timestamp placeholders are documented with.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"}

// parseTime reads a source timestamp as UTC, rejecting what the canonical form cannot hold.
func parseTime(s, field string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, adapter.Malformed(field, "required")
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			if t.Year() < 1 || t.Year() > 9999 {
				return time.Time{}, adapter.Malformed(field, "outside the years 0001 to 9999")
			}
			return t, nil
		}
	}
	return time.Time{}, adapter.Malformed(field, "not an ISO 8601 timestamp: %q", truncate(s, 40))
}

// cleanTags keeps the tags the canonical form accepts and drops the rest: tags are context,
// not a reason to lose the event.
func cleanTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" || len(t) > canonical.MaxTagBytes || hasControl(t) {
			continue
		}
		out = append(out, t)
		if len(out) == canonical.MaxTags {
			break
		}
	}
	return out
}

// cleanChannel returns the channel in lower case, or "" when it would not fit.
func cleanChannel(s string) string {
	s = adapter.Lower(s)
	if len(s) > canonical.MaxChannelBytes || hasControl(s) {
		return ""
	}
	return s
}

// cleanComment drops control characters other than line breaks and tabs and cuts the text to
// the canonical maximum on a rune boundary: a long rating comment is still a rating.
func cleanComment(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	return truncateBytes(s, canonical.MaxCommentBytes)
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return truncateBytes(s, n) + "…"
}
