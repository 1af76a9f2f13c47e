package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// queryConfig is what every command that reads from or acts on a service shares.
type queryConfig struct {
	endpoint
	Tenant  string
	JSON    bool
	Timeout time.Duration
}

func (q *queryConfig) register(s *envflag.Set, e endpoint, def, scope string) {
	q.endpoint = e
	q.endpoint.keyRequired = "an API key, operator key or ID token"
	s.String(&q.Tenant, "tenant", "", "Tenant to act for ("+idtoken.TenantRule+"). Required.")
	s.Bool(&q.JSON, "json", false, "Print one JSON document (the API's messages in their JSON form, field names in lowerCamelCase) instead of a table, for scripts.")
	s.Duration(&q.Timeout, "timeout", 30*time.Second, "Longest a call (each page of a list) may take.")
	q.endpoint.register(s, def, credentialHelp(scope))
}

func (q *queryConfig) check() []error {
	var errs []error
	switch {
	case q.Tenant == "":
		errs = append(errs, errors.New("-tenant: required"))
	case !idtoken.ValidTenant(q.Tenant):
		errs = append(errs, fmt.Errorf("-tenant %q: %s", q.Tenant, idtoken.TenantRule))
	}
	if q.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout %s: must be positive", q.Timeout))
	}
	return append(errs, q.endpoint.check()...)
}

// parse reads args into s: flag.ErrHelp for -h, a usageError for anything wrong.
func parse(s *envflag.Set, c cmdIO, args []string) error {
	s.SetOutput(c.stderr)
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

// allPages reads a list from its first page until its last, or until -limit (when positive)
// rows are in: page gets each page token and the rows still wanted in one call, each call bounded
// by -timeout. It returns the rows and the token of the first page not read ("" after the last).
func allPages[R any](ctx context.Context, q *queryConfig, what string, limit, size int,
	page func(ctx context.Context, token string, size int32) ([]R, string, error)) ([]R, string, error) {
	var rows []R
	token := ""
	for {
		cctx, cancel := q.callCtx(ctx)
		got, next, err := page(cctx, token, pageSize(limit, size, len(rows)))
		cancel()
		if err != nil {
			return nil, "", rpcFailed(what, err)
		}
		rows = append(rows, got...)
		token = next
		if token == "" || (limit > 0 && len(rows) >= limit) {
			return rows, token, nil
		}
	}
}

// callCtx bounds one call by -timeout.
func (q *queryConfig) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, q.Timeout)
}

// rpcFailed says what the service answered, code and message, without Go's wrapping.
func rpcFailed(what string, err error) error {
	st := status.Convert(err)
	return fmt.Errorf("%s: %s: %s", what, st.Code(), clean(st.Message()))
}

// writeJSON prints m as one JSON document.
func writeJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeJSONLine prints m as one compact JSON object on one line (a stream of them is JSON lines).
func writeJSONLine(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// table writes aligned columns; every cell goes through clean, so an id with a tab, a newline
// or a terminal escape cannot break the alignment or drive the terminal.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		io.WriteString(t.tw, clean(c))
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// clean escapes what is not printable (control characters, invalid UTF-8, format characters
// such as bidi overrides) as Go escapes, and a backslash as \\, so the text shown maps back to
// exactly one id. Empty is shown as "-".
func clean(s string) string {
	if s == "" {
		return "-"
	}
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || r == '\\' || !unicode.IsGraphic(r) || (unicode.IsSpace(r) && r != ' ') {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.IsGraphic(r) && (!unicode.IsSpace(r) || r == ' '):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

func ts(t *timestamppb.Timestamp) string {
	if t == nil || (t.GetSeconds() == 0 && t.GetNanos() == 0) {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

// secs shows a duration in seconds as a short Go duration.
func secs(s float64) string {
	if s == 0 {
		return "-"
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

// enumWord is the lower-case word of an enum value without its prefix: ESCALATION_STATE_OPEN is open.
func enumWord(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

// parseEnum reads a lower-case word into an enum value of values (the generated _value map).
func parseEnum(flagName, word, prefix string, values map[string]int32) (int32, error) {
	if word == "" {
		return 0, nil
	}
	if v, ok := values[prefix+strings.ToUpper(word)]; ok && v != 0 {
		return v, nil
	}
	var words []string
	for name, v := range values {
		if v != 0 {
			words = append(words, enumWord(name, prefix))
		}
	}
	slices.Sort(words)
	return 0, fmt.Errorf("-%s %q: want one of %s", flagName, word, strings.Join(words, ", "))
}

// parseTime reads an RFC 3339 flag; the zero time when empty.
func parseTime(flagName, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("-%s %q: want RFC 3339, e.g. 2026-01-01T00:00:00Z", flagName, v)
	}
	return t, nil
}
