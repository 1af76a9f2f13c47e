package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

const importSummary = `tpctl events import posts the QA reviews of a quality tool's CSV export of scores (-format
maestroqa or scorebuddy) to ingest's events API as qa_scored events (docs/events.md, "QA
reviews"), in batches, with progress, resumable, exactly like tpctl events replay: its flags,
state file (default FILE.import-state), retries and exit codes are replay's.

The first line is the header. Each later line is one review; columns are found by their header
names (case, spaces and underscores do not matter), with the names each format's exports use
listed in docs/events.md; -columns field=Header,... names others. Required: the ticket, the
reviewed agent, the score (a percentage, 0 to 100, "87.5" or "87.5%") and when it was scored.
The review id is the export's own when it has one, otherwise the ticket, agent, reviewer and
scorecard together (one reviewer's scorecard of one agent on one ticket is one review). Each
event's id is derived from the review and its score and time, so importing a file twice counts
every review once, and an export taken after a re-score replaces the earlier score.

Columns whose header starts with "category:" (or the format's category prefix) are the
scorecard's categories, name -> percentage. A quoted field that spans lines (a comment with a
line break) is not supported: the line is reported as bad.`

// qaFormat is how one vendor's export names its columns: for each field the header names it
// may have (normalised by normHeader), and the prefixes of category columns.
type qaFormat struct {
	columns          map[string][]string
	categoryPrefixes []string
}

// qaFields are the fields an import maps, the required ones first.
var (
	qaRequired = []string{"ticket_id", "agent", "score", "scored_at"}
	qaOptional = []string{"review_id", "reviewer", "team", "scorecard", "auto_fail"}
)

// qaFormats are the known exports. The header names are what the vendors' help pages and
// sample exports show as far as known; docs/events.md says which are uncertain, and -columns
// covers a name that differs.
var qaFormats = map[string]qaFormat{
	"maestroqa": {
		columns: map[string][]string{
			"ticket_id": {"gradable_id", "ticket_id"},
			"agent":     {"agent_email", "agent", "agent_name"},
			"score":     {"score", "total_score", "rubric_score", "score_percent"},
			"scored_at": {"date_graded", "graded_at", "grade_date", "date"},
			"review_id": {"grade_id", "score_id", "review_id"},
			"reviewer":  {"grader_email", "grader", "grader_name"},
			"team":      {"agent_group", "group", "team"},
			"scorecard": {"rubric_name", "rubric", "scorecard"},
			"auto_fail": {"auto_fail", "autofail", "auto_failed", "autofail_triggered"},
		},
		categoryPrefixes: []string{"category:", "section:"},
	},
	"scorebuddy": {
		columns: map[string][]string{
			"ticket_id": {"interaction_id", "ticket_id", "reference", "call_id"},
			"agent":     {"staff", "staff_name", "agent", "agent_name", "staff_email"},
			"score":     {"score_percent", "score_%", "result_percent", "result_%", "score", "result"},
			"scored_at": {"date_scored", "score_date", "scored_on", "date"},
			"review_id": {"score_id", "scorecard_result_id", "evaluation_id"},
			"reviewer":  {"evaluator", "scored_by", "evaluator_name"},
			"team":      {"team", "team_name", "group"},
			"scorecard": {"scorecard", "scorecard_name"},
			"auto_fail": {"auto_fail", "fail_all", "autofail", "critical_fail"},
		},
		categoryPrefixes: []string{"category:", "section:"},
	},
}

// normHeader folds a header name so that "Date Graded", "date_graded" and "DATE-GRADED" match.
func normHeader(h string) string {
	h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
	return strings.NewReplacer(" ", "_", "-", "_").Replace(h)
}

// qaMapping is the columns of one file's header.
type qaMapping struct {
	format     string
	col        map[string]int
	categories []qaCategory
	ncols      int
	loc        *time.Location
}

type qaCategory struct {
	name string
	col  int
}

// parseColumns reads -columns: field=Header pairs separated by commas.
func parseColumns(v string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(v) == "" {
		return out, nil
	}
	known := append(slices.Clone(qaRequired), qaOptional...)
	for _, pair := range strings.Split(v, ",") {
		field, header, ok := strings.Cut(pair, "=")
		field = strings.TrimSpace(field)
		if !ok || strings.TrimSpace(header) == "" {
			return nil, fmt.Errorf("%q: want field=Header", pair)
		}
		if !slices.Contains(known, field) {
			return nil, fmt.Errorf("%q: unknown field %q (want one of %s)", pair, field, strings.Join(known, ", "))
		}
		out[field] = header
	}
	return out, nil
}

// newQAMapping finds the fields in header: -columns first, then the format's names.
func newQAMapping(format string, header []string, overrides map[string]string, loc *time.Location) (*qaMapping, error) {
	f, ok := qaFormats[format]
	if !ok {
		return nil, fmt.Errorf("unknown format %q", format)
	}
	m := &qaMapping{format: format, col: map[string]int{}, ncols: len(header), loc: loc}
	at := map[string]int{}
	for i, h := range header {
		if _, dup := at[normHeader(h)]; !dup {
			at[normHeader(h)] = i
		}
	}
	var missing []string
	for _, field := range append(slices.Clone(qaRequired), qaOptional...) {
		names := f.columns[field]
		if h, ok := overrides[field]; ok {
			names = []string{normHeader(h)}
		}
		found := false
		for _, n := range names {
			if i, ok := at[n]; ok {
				m.col[field], found = i, true
				break
			}
		}
		if !found && slices.Contains(qaRequired, field) {
			missing = append(missing, fmt.Sprintf("%s (a column named %s)", field, strings.Join(names, " or ")))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the header has no column for %s; name it with -columns field=Header", strings.Join(missing, ", "))
	}
	for i, h := range header {
		n := normHeader(h)
		for _, p := range f.categoryPrefixes {
			if strings.HasPrefix(n, p) {
				name := strings.TrimSpace(strings.TrimSpace(h)[len(p):])
				if name != "" {
					m.categories = append(m.categories, qaCategory{name: name, col: i})
				}
				break
			}
		}
	}
	return m, nil
}

// qaEvent is the canonical qa_scored event an import posts.
type qaEvent struct {
	ID         string    `json:"id"`
	Source     string    `json:"source"`
	TicketID   string    `json:"ticket_id"`
	Type       string    `json:"type"`
	OccurredAt string    `json:"occurred_at"`
	Actor      qaActor   `json:"actor"`
	QA         qaPayload `json:"qa"`
}

type qaActor struct {
	ID   string `json:"id,omitempty"`
	Kind string `json:"kind"`
}

type qaPayload struct {
	ReviewID   string             `json:"review_id"`
	ReviewerID string             `json:"reviewer_id,omitempty"`
	AgentID    string             `json:"agent_id"`
	TeamID     string             `json:"team_id,omitempty"`
	Score      float64            `json:"score"`
	AutoFail   bool               `json:"auto_fail,omitempty"`
	Scorecard  string             `json:"scorecard,omitempty"`
	Categories map[string]float64 `json:"categories,omitempty"`
}

// event converts one record. Errors name the column, so a bad line says what to fix.
func (m *qaMapping) event(rec []string) (*qaEvent, error) {
	if len(rec) != m.ncols {
		return nil, fmt.Errorf("%d fields, the header has %d", len(rec), m.ncols)
	}
	get := func(field string) string {
		if i, ok := m.col[field]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for _, field := range []string{"ticket_id", "agent", "score", "scored_at"} {
		if get(field) == "" {
			return nil, fmt.Errorf("%s: empty", field)
		}
	}
	score, err := percentage(get("score"))
	if err != nil {
		return nil, fmt.Errorf("score: %w", err)
	}
	at, err := parseScoredAt(get("scored_at"), m.loc)
	if err != nil {
		return nil, fmt.Errorf("scored_at: %w", err)
	}
	fail, err := parseYesNo(get("auto_fail"))
	if err != nil {
		return nil, fmt.Errorf("auto_fail: %w", err)
	}
	ev := &qaEvent{Source: "generic", TicketID: get("ticket_id"), Type: "qa_scored", OccurredAt: at.UTC().Format(time.RFC3339Nano),
		Actor: qaActor{Kind: "system"},
		QA: qaPayload{ReviewID: get("review_id"), ReviewerID: get("reviewer"), AgentID: get("agent"), TeamID: get("team"),
			Score: score, AutoFail: fail, Scorecard: get("scorecard")}}
	if ev.QA.ReviewerID != "" {
		ev.Actor = qaActor{ID: ev.QA.ReviewerID, Kind: "agent"}
	}
	if ev.QA.ReviewID == "" {
		// One reviewer's scorecard of one agent on one ticket is one review: a later export of it
		// (a re-score) replaces it.
		ev.QA.ReviewID = m.format + ":" + digest(ev.TicketID, ev.QA.AgentID, ev.QA.ReviewerID, ev.QA.Scorecard)
	}
	for _, c := range m.categories {
		v := strings.TrimSpace(rec[c.col])
		if v == "" || strings.EqualFold(v, "n/a") {
			continue // a section the reviewer did not score
		}
		p, err := percentage(v)
		if err != nil {
			return nil, fmt.Errorf("category %q: %w", c.name, err)
		}
		if ev.QA.Categories == nil {
			ev.QA.Categories = map[string]float64{}
		}
		ev.QA.Categories[c.name] = p
	}
	// The same review with the same score and time is the same event (an import run twice);
	// a re-score is a new event of the same review.
	ev.ID = "qa-" + m.format + "-" + digest(ev.QA.ReviewID, strconv.FormatFloat(score, 'f', -1, 64), strconv.FormatBool(fail), ev.OccurredAt)
	return ev, nil
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// percentage reads "87.5", "87.5%" or "87,5" (a decimal comma) as a percentage from 0 to 100.
func percentage(s string) (float64, error) {
	v := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if strings.Count(v, ",") == 1 && !strings.Contains(v, ".") {
		v = strings.Replace(v, ",", ".", 1)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", truncateText(s, 40))
	}
	if f < 0 || f > 100 {
		return 0, fmt.Errorf("%v is not a percentage from 0 to 100", f)
	}
	return f, nil
}

// scoredAtLayouts are the time forms exports use; the ones without a zone are read in -time-zone.
var scoredAtLayouts = []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

func parseScoredAt(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, l := range scoredAtLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 or YYYY-MM-DD[ HH:MM[:SS]] (read in -time-zone)", truncateText(s, 40))
}

func parseYesNo(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "", "0", "false", "no", "n", "pass", "passed":
		return false, nil
	case "1", "true", "yes", "y", "fail", "failed":
		return true, nil
	}
	return false, fmt.Errorf("%q: want yes/no, true/false or 1/0", truncateText(s, 40))
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// convert is the lineConverter of an import: line 1 is the header, read before the replay.
func (m *qaMapping) convert(line []byte, n int) ([]byte, bool, error) {
	if n == 1 || len(bytes.TrimSpace(line)) == 0 {
		return nil, true, nil
	}
	r := csv.NewReader(bytes.NewReader(line))
	r.FieldsPerRecord = -1
	rec, err := r.Read()
	if err != nil {
		if pe, ok := errors.AsType[*csv.ParseError](err); ok && errors.Is(pe.Err, csv.ErrQuote) {
			return nil, false, errors.New("a quoted field is not closed on its line (a field with a line break is not supported)")
		}
		return nil, false, fmt.Errorf("not a CSV record: %v", err)
	}
	if _, err := r.Read(); err == nil {
		return nil, false, errors.New("a quoted field spans lines (a field with a line break is not supported)")
	}
	ev, err := m.event(rec)
	if err != nil {
		return nil, false, err
	}
	b, err := json.Marshal(ev)
	return b, false, err
}

// readHeader reads the first line of file as a CSV header.
func readHeader(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 64<<10).ReadString('\n')
	if err != nil && line == "" {
		return nil, fmt.Errorf("%s: no header line", file)
	}
	rec, err := csv.NewReader(strings.NewReader(line)).Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %v", file, err)
	}
	return rec, nil
}

func eventsImport(args []string, cio cmdIO) error {
	var format, columns, zone string
	var overrides map[string]string
	var loc *time.Location
	return runReplay(args, cio, replayKind{name: "tpctl events import", summary: importSummary, fileWord: "FILE.csv",
		example: "tpctl events import -format maestroqa -tenant acme scores.csv", stateSuffix: ".import-state",
		flags: func(s *envflag.Set) {
			s.String(&format, "format", "", "Whose export the file is: maestroqa or scorebuddy. Required.")
			s.String(&columns, "columns", "", "Header names for fields the format's names miss, as field=Header pairs separated by commas (fields: ticket_id, agent, score, scored_at, review_id, reviewer, team, scorecard, auto_fail).")
			s.String(&zone, "time-zone", "UTC", "IANA zone of scored-at times written without an offset.")
		},
		check: func() []error {
			var errs []error
			if _, ok := qaFormats[format]; !ok {
				errs = append(errs, fmt.Errorf("-format %q: want maestroqa or scorebuddy", format))
			}
			var err error
			if overrides, err = parseColumns(columns); err != nil {
				errs = append(errs, fmt.Errorf("-columns: %w", err))
			}
			if loc, err = time.LoadLocation(zone); err != nil {
				errs = append(errs, fmt.Errorf("-time-zone %q: %v", zone, err))
			}
			return errs
		},
		prepare: func(file string) (lineConverter, error) {
			header, err := readHeader(file)
			if err != nil {
				return nil, err
			}
			m, err := newQAMapping(format, header, overrides, loc)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			return m.convert, nil
		},
	})
}
