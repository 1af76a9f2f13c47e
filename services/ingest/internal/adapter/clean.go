package adapter

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// The helpers below keep every event an adapter builds inside the canonical limits, so a
// delivery is either rejected by the adapter with the source's field name or accepted
// downstream: the webhook handler must never fail on something an adapter let through. They
// live here so that every source cleans text the same way, and they ask package canonical,
// which states each limit and check once.

// HasControl reports whether s holds a control character, which no canonical one-line text may.
func HasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// ValidText reports whether s can stand in a canonical one-line text field of at most max
// bytes: valid UTF-8 without control characters. The empty string is valid.
func ValidText(s string, max int) bool { return canonical.TextProblem(s, max, false) == "" }

// OptionalText returns s when it is ValidText, else "": an optional field that would not fit
// is left out rather than losing the event.
func OptionalText(s string, max int) string {
	if !ValidText(s, max) {
		return ""
	}
	return s
}

// Channel returns a source's channel name in lower case, or "" when it would not fit: the
// channel is context, not a reason to reject the event.
func Channel(s string) string { return OptionalText(Lower(s), canonical.MaxChannelBytes) }

// Tags keeps the tags the canonical form accepts, trimmed, and drops the rest (empty, too long,
// control characters, beyond canonical.MaxTags): tags are context, not a reason to lose the
// event. It returns nil when none is left.
func Tags(tags []string) []string {
	var out []string
	for _, t := range tags {
		if len(out) == canonical.MaxTags {
			break
		}
		if t = strings.TrimSpace(t); t != "" && ValidText(t, canonical.MaxTagBytes) {
			out = append(out, t)
		}
	}
	return out
}

// Comment makes a free-text remark (a rating comment) fit the canonical comment: it trims
// spaces, drops control characters other than line breaks and tabs and the replacement
// character U+FFFD (what is left of bytes that were not UTF-8), and cuts the text to
// canonical.MaxCommentBytes on a character boundary. A long or odd comment is still a rating.
func Comment(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t') {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	return cut(s, canonical.MaxCommentBytes)
}

// Truncate cuts s to at most n bytes on a character boundary and marks the cut with "…", for
// quoting a source's value in a Problem or Skip detail without echoing a huge body.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cut(s, n) + "…"
}

// cut returns the longest prefix of s of at most n bytes that ends on a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// CheckID rejects an identifier the canonical form cannot carry (too long, not UTF-8, control
// characters); "" is absent and passes.
func CheckID(field, id string) error {
	if id != "" && !ValidText(id, canonical.MaxIDBytes) {
		return Malformed(field, "must be at most %d bytes without control characters", canonical.MaxIDBytes)
	}
	return nil
}

// Ident checks an optional identifier against the canonical limits, naming the first problem
// (length or the control character) in the Problem.
func Ident(s, field string) (string, error) {
	if why := canonical.TextProblem(s, canonical.MaxIDBytes, false); why != "" {
		return "", Malformed(field, "%s", why)
	}
	return s, nil
}

// RequiredID checks a required identifier against the canonical limits. present is the
// source's own idea of whether it sent one (an empty string, a placeholder left unfilled).
func RequiredID(field, id string, present bool) (string, error) {
	switch {
	case !present:
		return "", Malformed(field, "required")
	case len(id) > canonical.MaxIDBytes:
		return "", Malformed(field, "longer than %d bytes", canonical.MaxIDBytes)
	case HasControl(id):
		return "", Malformed(field, "contains a control character")
	}
	return id, nil
}

// RequiredIdent is Ident after trimming spaces, rejecting an empty identifier.
func RequiredIdent(s, field string) (string, error) {
	s, err := Ident(strings.TrimSpace(s), field)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", Malformed(field, "required")
	}
	return s, nil
}

// RawID reads an identifier a body template may render quoted (a string) or bare (an integer),
// for sources whose admins write the payload themselves; null and "" are absent. A string is
// trimmed and checked with Ident.
func RawID(raw json.RawMessage, field string) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", Malformed(field, "must be a string or an integer")
		}
		return Ident(strings.TrimSpace(s), field)
	case c == '-' || c >= '0' && c <= '9':
		if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
			return "", Malformed(field, "must be an integer id, not %.40s", raw)
		}
		return string(raw), nil
	}
	return "", Malformed(field, "must be a string or an integer")
}

// ParseTime reads a required source timestamp in the first of layouts that fits, as UTC,
// rejecting what the canonical form cannot hold (years outside 0001 to 9999). want describes
// the expected form for the Problem ("an ISO 8601 timestamp").
func ParseTime(s, field, want string, layouts []string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, Malformed(field, "required")
	}
	for _, layout := range layouts {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			if !canonical.Representable(t) {
				return time.Time{}, Malformed(field, "outside the years 0001 to 9999")
			}
			return t, nil
		}
	}
	return time.Time{}, Malformed(field, "not %s: %q", want, Truncate(s, 40))
}
