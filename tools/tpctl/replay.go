package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

const replaySummary = `tpctl events replay posts the canonical events of a JSON-lines file (one event per line, the
form POST /v1/tenants/{tenant}/events takes, see docs/events.md) to ingest's events API, in
batches of -batch events at up to -rate events/s, with a progress bar (events/s and ETA) on
standard error, or a line every -progress-every when standard error is not a terminal.

Resumable: after each batch ingest acknowledged (202: JetStream stored every event), tpctl
records the byte offset and line number reached in a state file (-state; default FILE.replay-state
next to the input), written to a new file, fsync'd and renamed over the old one. A second run
resumes after the last acknowledged batch; -restart starts over. A batch resent after a crash
counts once, because ingest drops an event whose id it already has: every line must have an
"id" (a line without one is refused, with its line number). The state also holds a hash of the
input up to the offset, so a changed file is refused instead of resumed at the wrong place.

Bad lines (not one JSON object, no id, or refused by ingest's validation, which names the field)
stop the replay with their line number and reason after the good lines before them are stored;
-skip-invalid reports each on standard error and goes on. Blank lines are skipped. 429 and 503
are retried after their Retry-After, other 5xx and network errors with backoff, for up to
-retry-for per batch; any other 4xx stops with ingest's error.

Needs the tenant's events:write scope (or an operator key). Exit 0 when the whole file is stored,
1 when it stopped (the reason, and the line to resume from), 2 on bad flags. -json prints a
summary object on standard output at the end.`

// maxBatch is ingest's -max-events default: the most events one request may carry.
const maxBatch = 1000

type replayConfig struct {
	endpoint
	Tenant, State              string
	Batch, Rate                int
	MaxBodyBytes               int
	Restart, SkipInvalid, JSON bool
	Every, RetryFor, Timeout   time.Duration
}

func eventsReplay(args []string, cio cmdIO) error {
	return runReplay(args, cio, replayKind{name: "tpctl events replay", summary: replaySummary, fileWord: "FILE.jsonl",
		example: "tpctl events replay -tenant acme events.jsonl", stateSuffix: ".replay-state"})
}

// replayKind is what a command that posts a file's lines as events adds to the replay: events
// replay posts canonical JSON lines as they are, events import converts each line of a vendor's
// export (convert) first.
type replayKind struct {
	name, summary, fileWord, example, stateSuffix string
	// flags registers the command's own flags, check judges them after parsing.
	flags func(s *envflag.Set)
	check func() []error
	// prepare returns the conversion of the file's lines; nil posts them as they are.
	prepare func(file string) (lineConverter, error)
}

// lineConverter turns line n of the input into one canonical event (JSON); blank is a line
// that holds none (a header, an empty line), err a line that is not one the format knows.
type lineConverter func(line []byte, n int) (event []byte, blank bool, err error)

func runReplay(args []string, cio cmdIO, k replayKind) error {
	c := replayConfig{endpoint: endpoint{addrFlag: "ingest-url", service: "ingest", http: true, keyRequired: "an API key, operator key or ID token"}}
	s := envflag.New(k.name, k.summary, cio.lookup)
	s.String(&c.Tenant, "tenant", "", "Tenant the events belong to ("+idtoken.TenantRule+"); the file's events carry no tenant. Required.")
	c.endpoint.register(s, "http://127.0.0.1:8080", credentialHelp("events:write"))
	s.Int(&c.Batch, "batch", 100, fmt.Sprintf("Events per request, 1 to %d (ingest's -max-events).", maxBatch))
	s.Int(&c.Rate, "rate", 0, "Most events posted per second; 0 posts as fast as ingest accepts them.")
	s.Int(&c.MaxBodyBytes, "max-body-bytes", 4<<20, "Largest request body; a batch is cut short before it would exceed it. Keep it at or under ingest's -max-body-bytes.")
	s.String(&c.State, "state", "", "State file recording the last acknowledged batch; default FILE.replay-state next to the input.")
	s.Bool(&c.Restart, "restart", false, "Ignore the state file and post from the first line (events ingest already has count once).")
	s.Bool(&c.SkipInvalid, "skip-invalid", false, "Report bad lines on standard error and go on, instead of stopping at the first.")
	s.Bool(&c.JSON, "json", false, "Print a JSON summary object on standard output at the end.")
	s.Duration(&c.Every, "progress-every", 5*time.Second, "When standard error is not a terminal, how often a progress line is printed.")
	s.Duration(&c.RetryFor, "retry-for", 10*time.Minute, "How long one batch is retried (429, 503, other 5xx, network errors) before giving up.")
	s.Duration(&c.Timeout, "timeout", 60*time.Second, "Longest one request may take.")
	if k.flags != nil {
		k.flags(s)
	}

	// The file is the first argument or the last; flags go on the other side of it.
	var file string
	switch {
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		file, args = args[0], args[1:]
	case len(args) > 0 && !strings.HasPrefix(args[len(args)-1], "-") && !helpAsked(args):
		file, args = args[len(args)-1], args[:len(args)-1]
	}
	if err := parse(s, cio, args); err != nil {
		return err
	}
	var errs []error
	if file == "" {
		errs = append(errs, fmt.Errorf("%s: required, e.g. %s", k.fileWord, k.example))
	}
	switch {
	case c.Tenant == "":
		errs = append(errs, errors.New("-tenant: required"))
	case !idtoken.ValidTenant(c.Tenant):
		errs = append(errs, fmt.Errorf("-tenant %q: %s", c.Tenant, idtoken.TenantRule))
	}
	errs = append(errs, c.endpoint.check()...)
	if c.Batch < 1 || c.Batch > maxBatch {
		errs = append(errs, fmt.Errorf("-batch %d: must be between 1 and %d", c.Batch, maxBatch))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("-rate %d: must not be negative", c.Rate))
	}
	if c.MaxBodyBytes < 2*maxLine {
		errs = append(errs, fmt.Errorf("-max-body-bytes %d: must be at least %d (two lines of the longest kind)", c.MaxBodyBytes, 2*maxLine))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"progress-every", c.Every}, {"retry-for", c.RetryFor}, {"timeout", c.Timeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("-%s %s: must be positive", d.name, d.v))
		}
	}
	if k.check != nil {
		errs = append(errs, k.check()...)
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	if c.State == "" {
		c.State = file + k.stateSuffix
	}
	var convert lineConverter
	if k.prepare != nil {
		var err error
		if convert, err = k.prepare(file); err != nil {
			return err
		}
	}
	client, key, err := c.httpClient(c.Timeout)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &replayer{cfg: c, file: file, client: client, key: key, stderr: cio.stderr, convert: convert,
		url: strings.TrimSuffix(c.Addr, "/") + "/v1/tenants/" + url.PathEscape(c.Tenant) + "/events"}
	sum, err := r.run(ctx)
	if c.JSON && sum != nil {
		if werr := json.NewEncoder(cio.stdout).Encode(sum); werr != nil && err == nil {
			err = werr
		}
	} else if sum != nil && err == nil {
		fmt.Fprintf(cio.stdout, "%s: lines %d to %d done: %d events sent, %d stored, %d duplicates, %d lines skipped\n",
			file, sum.FromLine+1, sum.Lines, sum.Sent, sum.Accepted, sum.Duplicates, len(sum.Skipped))
	}
	return err
}

// tailBytes is how much of the input before the offset the state's hash covers.
const tailBytes = 4096

func tailHash(f *os.File, offset int64) (string, error) {
	from := max(0, offset-tailBytes)
	b := make([]byte, offset-from)
	if _, err := f.ReadAt(b, from); err != nil {
		return "", fmt.Errorf("read input before byte %d: %w", offset, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func helpAsked(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// replayState is the state file: how far the input is stored.
type replayState struct {
	Version int    `json:"version"`
	Tenant  string `json:"tenant"`
	Input   string `json:"input"`
	// Offset is the byte after the last line of the last acknowledged batch; Line its number.
	Offset int64 `json:"offset"`
	Line   int   `json:"line"`
	// TailSHA256 is the hash of the (up to) tailBytes bytes before Offset: a resumed run checks
	// that the input still has them there, so an edited or replaced file is not resumed at a
	// place that no longer is a line's start. Lines before it are stored already.
	TailSHA256 string `json:"tail_sha256"`
	// Totals over every run since the state began.
	Sent       int64  `json:"sent"`
	Accepted   int64  `json:"accepted"`
	Duplicates int64  `json:"duplicates"`
	Skipped    int64  `json:"skipped"`
	UpdatedAt  string `json:"updated_at"`
}

// badLine is a line that was not stored.
type badLine struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// replayResult is what -json prints: this run's figures.
type replayResult struct {
	File       string    `json:"file"`
	Tenant     string    `json:"tenant"`
	FromLine   int       `json:"resumed_after_line"`
	Lines      int       `json:"lines"`
	Offset     int64     `json:"offset"`
	Batches    int       `json:"batches"`
	Sent       int64     `json:"sent"`
	Accepted   int64     `json:"accepted"`
	Duplicates int64     `json:"duplicates"`
	Skipped    []badLine `json:"skipped"`
	Complete   bool      `json:"complete"`
	Error      string    `json:"error,omitempty"`
}

type replayer struct {
	cfg    replayConfig
	file   string
	url    string
	key    string
	client *http.Client
	stderr io.Writer
	// convert, when set, turns each line into the event posted (events import).
	convert lineConverter

	state replayState
	sum   *replayResult
}

// pending is one line waiting in the batch.
type pending struct {
	line int
	raw  []byte
}

func (r *replayer) run(ctx context.Context) (*replayResult, error) {
	f, err := os.Open(r.file)
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat input: %w", err)
	}
	if err := r.loadState(f); err != nil {
		return nil, err
	}
	r.sum = &replayResult{File: r.file, Tenant: r.cfg.Tenant, FromLine: r.state.Line, Lines: r.state.Line, Offset: r.state.Offset, Skipped: []badLine{}}
	if r.state.Line > 0 {
		fmt.Fprintf(r.stderr, "resuming after line %d (byte %d) of %s, as %s records\n", r.state.Line, r.state.Offset, r.file, r.cfg.State)
	}
	err = r.replay(ctx, f, st.Size())
	if err != nil {
		r.sum.Error = err.Error()
	}
	return r.sum, err
}

// loadState reads the state file unless -restart, checks it belongs to this input and tenant,
// and leaves f and h just after the recorded offset.
func (r *replayer) loadState(f *os.File) error {
	r.state = replayState{Version: 1, Tenant: r.cfg.Tenant, Input: filepath.Base(r.file)}
	if r.cfg.Restart {
		return nil
	}
	b, err := os.ReadFile(r.cfg.State)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	var s replayState
	if err := json.Unmarshal(b, &s); err != nil || s.Version != 1 {
		return fmt.Errorf("state file %s is not a replay state (-restart to start over, or -state for another file)", r.cfg.State)
	}
	if s.Tenant != r.cfg.Tenant {
		return fmt.Errorf("state file %s is of tenant %s, not %s: -state for another file, or -restart", r.cfg.State, s.Tenant, r.cfg.Tenant)
	}
	tail, err := tailHash(f, s.Offset)
	if err != nil || tail != s.TailSHA256 {
		return fmt.Errorf("%s changed since %s was written (the bytes before offset %d, line %d, differ); -restart to post it from the start (events ingest already has count once)", r.file, r.cfg.State, s.Offset, s.Line)
	}
	if _, err := f.Seek(s.Offset, io.SeekStart); err != nil {
		return fmt.Errorf("seek input: %w", err)
	}
	r.state = s
	return nil
}

// saveState writes the state durably: a new file, fsync'd, renamed over the old one, and the
// directory fsync'd, so a crash leaves the old state or the new one, never a torn one.
func (r *replayer) saveState(f *os.File, offset int64, line int) error {
	tail, err := tailHash(f, offset)
	if err != nil {
		return err
	}
	r.state.Offset, r.state.Line, r.state.TailSHA256 = offset, line, tail
	r.state.UpdatedAt = time.Now().UTC().Format(time.RFC3339)
	b, err := json.MarshalIndent(r.state, "", "  ")
	if err != nil {
		return err
	}
	tmp := r.cfg.State + ".tmp"
	sf, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if _, err := sf.Write(append(b, '\n')); err != nil {
		sf.Close()
		return fmt.Errorf("write state %s: %w", tmp, err)
	}
	if err := sf.Sync(); err != nil {
		sf.Close()
		return fmt.Errorf("sync state %s: %w", tmp, err)
	}
	if err := sf.Close(); err != nil {
		return fmt.Errorf("write state %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, r.cfg.State); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if d, err := os.Open(filepath.Dir(r.cfg.State)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync state directory: %w", err)
		}
	}
	r.sum.Lines, r.sum.Offset = line, offset
	return nil
}

func (r *replayer) replay(ctx context.Context, f *os.File, size int64) error {
	lr := newLineReader(f, r.state.Offset, r.state.Line)
	pr := newReplayProgress(r.stderr, r.cfg.Every, r.state.Offset, size)
	defer pr.finish()
	start := time.Now()
	var (
		batch     []pending
		bodyBytes int
		sentRun   int64
	)
	// flush sends the batch and records that the input up to offset (line) is stored.
	flush := func(offset int64, line int) error {
		if len(batch) > 0 {
			if r.cfg.Rate > 0 {
				due := start.Add(time.Duration(float64(sentRun) / float64(r.cfg.Rate) * float64(time.Second)))
				select {
				case <-ctx.Done():
					return r.interrupted()
				case <-time.After(time.Until(due)):
				}
			}
			if err := r.send(ctx, batch); err != nil {
				return err
			}
			sentRun += int64(len(batch))
			batch, bodyBytes = batch[:0], 0
			r.sum.Batches++
		}
		if err := r.saveState(f, offset, line); err != nil {
			return err
		}
		pr.update(r.sum.Sent, offset)
		return nil
	}
	buf := make([]byte, 0, 64<<10)
	for {
		if ctx.Err() != nil {
			return r.interrupted()
		}
		line, raw, tooLong, err := lr.next(buf)
		if errors.Is(err, io.EOF) {
			if err := flush(lr.offset, lr.number); err != nil {
				return err
			}
			r.sum.Complete = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s after line %d: %w", r.file, lr.number, err)
		}
		// before is where the input stands without this line.
		before, beforeLine := lr.offset-int64(raw), lr.number-1
		var bad error
		if tooLong {
			bad = fmt.Errorf("longer than %d bytes", maxLine)
		} else {
			var blank bool
			if r.convert != nil {
				var ev []byte
				if ev, blank, bad = r.convert(line, lr.number); bad == nil && !blank {
					line = ev
				}
			} else {
				_, blank, bad = parseLine(line)
			}
			if blank {
				continue
			}
		}
		if bad != nil {
			if !r.cfg.SkipInvalid {
				if err := flush(before, beforeLine); err != nil {
					return err
				}
				return fmt.Errorf("line %d: %v (fix or remove it and run again to resume there, or -skip-invalid)", lr.number, bad)
			}
			r.skip(lr.number, bad.Error())
			continue
		}
		if len(batch) > 0 && bodyBytes+len(line)+2 > r.cfg.MaxBodyBytes {
			// Cut before this line: the state must not cover it yet.
			if err := flush(before, beforeLine); err != nil {
				return err
			}
		}
		batch = append(batch, pending{line: lr.number, raw: append([]byte(nil), bytes.TrimSpace(line)...)})
		bodyBytes += len(line) + 1
		if len(batch) >= r.cfg.Batch {
			if err := flush(lr.offset, lr.number); err != nil {
				return err
			}
		}
	}
}

func (r *replayer) skip(line int, reason string) {
	r.sum.Skipped = append(r.sum.Skipped, badLine{Line: line, Reason: reason})
	r.state.Skipped++
	fmt.Fprintf(r.stderr, "line %d skipped: %s\n", line, clean(reason))
}

func (r *replayer) interrupted() error {
	return fmt.Errorf("interrupted: lines up to %d are stored; run the same command again to resume after it", r.state.Line)
}

// ingestAnswer is the body of a 202 or of a refusal.
type ingestAnswer struct {
	Accepted   []string `json:"accepted"`
	Duplicates int64    `json:"duplicates"`
	Error      string   `json:"error"`
	Code       string   `json:"code"`
	Reason     string   `json:"reason"`
	Problems   []struct {
		Index  int    `json:"index"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"problems"`
	MoreProblems int `json:"more_problems"`
}

// maxAnswer bounds what is read of ingest's answer; a 202 lists at most 1,000 ids.
const maxAnswer = 1 << 20

// send posts one batch until ingest stored it. Lines ingest refuses are dropped and the rest
// resent under -skip-invalid; otherwise the refusal ends the replay.
func (r *replayer) send(ctx context.Context, batch []pending) error {
	for len(batch) > 0 {
		status, ans, err := r.post(ctx, batch)
		if err != nil {
			return err
		}
		switch {
		case status == http.StatusAccepted:
			n := int64(len(batch))
			r.sum.Sent += n
			r.sum.Accepted += int64(len(ans.Accepted)) - ans.Duplicates
			r.sum.Duplicates += ans.Duplicates
			r.state.Sent += n
			r.state.Accepted += int64(len(ans.Accepted)) - ans.Duplicates
			r.state.Duplicates += ans.Duplicates
			return nil
		case status == http.StatusBadRequest && len(ans.Problems) > 0:
			bad := map[int][]string{}
			for _, p := range ans.Problems {
				if p.Index >= 0 && p.Index < len(batch) {
					bad[p.Index] = append(bad[p.Index], p.Field+": "+p.Reason)
				}
			}
			if len(bad) == 0 {
				return fmt.Errorf("ingest refused the batch of lines %d to %d: %s", batch[0].line, batch[len(batch)-1].line, clean(ans.Error))
			}
			if !r.cfg.SkipInvalid {
				var lines []string
				for i, p := range batch {
					if reasons, ok := bad[i]; ok {
						lines = append(lines, fmt.Sprintf("line %d: %s", p.line, clean(strings.Join(reasons, "; "))))
					}
				}
				more := ""
				if ans.MoreProblems > 0 {
					more = fmt.Sprintf(" (and %d more problems)", ans.MoreProblems)
				}
				return fmt.Errorf("ingest refused the batch of lines %d to %d, nothing of it stored:\n%s%s\n(fix the lines and run again to resume at line %d, or -skip-invalid)",
					batch[0].line, batch[len(batch)-1].line, strings.Join(lines, "\n"), more, batch[0].line)
			}
			keep := batch[:0:0]
			for i, p := range batch {
				if reasons, ok := bad[i]; ok {
					r.skip(p.line, strings.Join(reasons, "; "))
					continue
				}
				keep = append(keep, p)
			}
			batch = keep
		default:
			msg := ans.Reason
			if msg == "" {
				msg = ans.Error
			}
			if ans.Code != "" {
				msg = ans.Code + ": " + msg
			}
			return fmt.Errorf("ingest answered %d %s: %s (lines %d to %d not stored; run again to resume there)",
				status, http.StatusText(status), clean(msg), batch[0].line, batch[len(batch)-1].line)
		}
	}
	return nil
}

// post sends the batch, retrying what may succeed later (429, 503 after Retry-After; other 5xx
// and network errors with backoff) for up to -retry-for; it returns any other answer.
func (r *replayer) post(ctx context.Context, batch []pending) (int, *ingestAnswer, error) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i, p := range batch {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(p.raw)
	}
	body.WriteByte(']')
	giveUp := time.Now().Add(r.cfg.RetryFor)
	wait := 500 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body.Bytes()))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+r.key)
		resp, err := r.client.Do(req)
		var why string
		var delay time.Duration
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, r.interrupted()
			}
			why, delay = "no answer: "+clean(err.Error()), wait
		} else {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
			resp.Body.Close()
			ans := &ingestAnswer{}
			if rerr == nil {
				json.Unmarshal(b, ans) // a body that is not ours leaves the fields empty
			}
			if ans.Error == "" && ans.Reason == "" && resp.StatusCode != http.StatusAccepted {
				ans.Reason = strings.TrimSpace(string(b[:min(len(b), 500)]))
			}
			switch {
			case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
				why, delay = fmt.Sprintf("%d %s", resp.StatusCode, clean(ans.Reason)), retryAfter(resp.Header.Get("Retry-After"), wait)
			case resp.StatusCode >= 500:
				why, delay = fmt.Sprintf("%d %s", resp.StatusCode, clean(ans.Reason)), wait
			case resp.StatusCode == http.StatusAccepted && rerr != nil:
				why, delay = "reading the answer: "+clean(rerr.Error()), wait
			default:
				return resp.StatusCode, ans, nil
			}
		}
		if time.Now().Add(delay).After(giveUp) {
			return 0, nil, fmt.Errorf("lines %d to %d not stored after retrying for %s (last: %s); run again to resume there", batch[0].line, batch[len(batch)-1].line, r.cfg.RetryFor, why)
		}
		fmt.Fprintf(r.stderr, "lines %d to %d: %s; retrying in %s\n", batch[0].line, batch[len(batch)-1].line, why, delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return 0, nil, r.interrupted()
		case <-time.After(delay):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), bounded to five minutes;
// def when absent or unreadable.
func retryAfter(v string, def time.Duration) time.Duration {
	if v == "" {
		return def
	}
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return def
	}
	return max(min(d, 5*time.Minute), 100*time.Millisecond)
}
