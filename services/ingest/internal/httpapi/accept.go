package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/publish"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// answer is how a request ends: a status, its JSON body and the headers that go with it.
type answer struct {
	status     int
	body       any
	allow      bool // Allow: POST, with a 405
	retryAfter int  // seconds; 0 sends no Retry-After
	// raw, when set, is sent as it is with the Content-Type rawType in place of body's JSON.
	raw     []byte
	rawType string
	// header holds headers of the source's own to send (a handshake's echo).
	header http.Header
}

func rejected(status int, body Rejected) *answer { return &answer{status: status, body: body} }

// retryLater is a mapping error that asks the sender to try again (see ContextMapper).
type retryLater interface {
	error
	RetryAfter() time.Duration
}

func invalid(probs []canonical.Problem, more int) *answer {
	return rejected(http.StatusBadRequest, Rejected{Error: "invalid request", Problems: probs, MoreProblems: more})
}

// intake is what a route adds to the accept pipeline for one request; nil steps are skipped.
type intake struct {
	tenant string
	// attrs are the log attributes naming the request (tenant, and the webhook's source).
	attrs   []any
	maxBody int64
	// contentType checks the request's Content-Type, returning the reason to refuse it with;
	// nil accepts application/json only.
	contentType func(string) string
	// acknowledge, when set, may replace a 2xx answer (a source that reads its own).
	acknowledge func(*answer) *answer
	// logRejections logs every 4xx answer.
	logRejections bool
	// route runs after the method and tenant checks: the webhooks find the source and the
	// tenant's settings for it, or answer 404.
	route func() *answer
	// verify checks the delivery's signature, and may answer it already (a repeated delivery).
	verify func(body []byte) *answer
	// mapBody turns the body into valid canonical events (adapter.Map then canonical.Validate,
	// or canonical.Decode), with what was left out on purpose.
	mapBody func(body []byte, opts canonical.Options) ([]canonical.Event, []adapter.Skip, error)
	// admit takes the events from the tenant's rate limit and the global admission control, or
	// answers 429 or 503; done, if not nil, is called once the admitted events' publish is over.
	admit func(ctx context.Context, n int, now time.Time) (a *answer, done func())
	// retrySafe ends the 503 reason, telling the sender what to send again.
	retrySafe string
	// stored records what JetStream acknowledged and returns the 2xx answer.
	stored func(ctx context.Context, ids []string, res publish.Result, skipped []adapter.Skip, took time.Duration) *answer
}

// pipeline is the accept path every route that takes events shares: checks (method, tenant,
// route, content type, size), verify, map and validate, admit, publish, answer. A 2xx is only
// answered after JetStream acknowledged every event.
type pipeline struct {
	pub            Publisher
	log            *slog.Logger
	now            func() time.Time
	publishTimeout time.Duration
	maxFutureSkew  time.Duration
	maxEvents      int
}

// accept runs the pipeline over r and writes the answer; it returns the status code.
func (p *pipeline) accept(ctx context.Context, w http.ResponseWriter, r *http.Request, in *intake) int {
	a := p.run(ctx, w, r, in)
	if in.acknowledge != nil && a.status >= 200 && a.status < 300 {
		a = in.acknowledge(a)
	}
	return p.respond(ctx, w, in, a)
}

// respond writes a with its headers, logging a 4xx when in asks for it; it returns the status.
func (p *pipeline) respond(ctx context.Context, w http.ResponseWriter, in *intake, a *answer) int {
	if a.allow {
		w.Header().Set("Allow", http.MethodPost)
	}
	if a.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(a.retryAfter))
	}
	for k, vs := range a.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if in.logRejections && a.status >= 400 && a.status < 500 {
		problems := 1
		if rej, ok := a.body.(Rejected); ok && len(rej.Problems) > 0 {
			problems = len(rej.Problems)
		}
		p.log.InfoContext(ctx, "rejected request", "tenant", in.tenant, "status", a.status, "problems", problems)
	}
	if a.raw != nil {
		w.Header().Set("Content-Type", a.rawType)
		w.WriteHeader(a.status)
		if _, err := w.Write(a.raw); err != nil {
			p.log.Debug("write response", "status", a.status, "err", err)
		}
		return a.status
	}
	return writeJSON(p.log, w, a.status, a.body)
}

// precheck refuses what is wrong with a request before anything about it is looked up: the
// method, and a tenant id that cannot exist. Neither reads the body nor reveals anything.
func precheck(r *http.Request, tenant string) *answer {
	if r.Method != http.MethodPost {
		a := rejected(http.StatusMethodNotAllowed, Rejected{Error: "method not allowed", Reason: "use POST"})
		a.allow = true
		return a
	}
	if !idtoken.ValidTenant(tenant) {
		return invalid([]canonical.Problem{{Index: 0, Field: "tenant", Reason: idtoken.TenantRule}}, 0)
	}
	return nil
}

func (p *pipeline) run(ctx context.Context, w http.ResponseWriter, r *http.Request, in *intake) *answer {
	if a := precheck(r, in.tenant); a != nil {
		return a
	}
	if in.route != nil {
		if a := in.route(); a != nil {
			return a
		}
	}
	check := in.contentType
	if check == nil {
		check = checkContentType
	}
	body, a := readBody(w, r, in.maxBody, check)
	if a != nil {
		return a
	}
	if in.verify != nil {
		if a := in.verify(body); a != nil {
			return a
		}
	}

	now := p.now()
	opts := canonical.Options{Tenant: in.tenant, Now: now, MaxFutureSkew: p.maxFutureSkew, MaxEvents: p.maxEvents}
	events, skipped, err := in.mapBody(body, opts)
	if err != nil {
		if errors.Is(err, canonical.ErrTooManyEvents) {
			return rejected(http.StatusRequestEntityTooLarge, Rejected{Error: "request too large", Reason: err.Error()})
		}
		var probs canonical.Problems
		if errors.As(err, &probs) {
			return invalid(probs.List, probs.More)
		}
		if rl, ok := errors.AsType[retryLater](err); ok {
			a := rejected(http.StatusServiceUnavailable, Rejected{Error: "source unavailable",
				Reason: err.Error() + "; nothing was stored; " + in.retrySafe})
			a.retryAfter = max(1, int((rl.RetryAfter()+time.Second-1)/time.Second))
			return a
		}
		p.log.ErrorContext(ctx, "map events", append(in.attrs, "err", err)...)
		return internalError()
	}
	if len(events) == 0 {
		return &answer{status: http.StatusOK, body: WebhookAccepted{Accepted: []string{}, Skipped: skipped}}
	}
	if in.admit != nil {
		a, done := in.admit(ctx, len(events), now)
		if a != nil {
			return a
		}
		if done != nil {
			defer done()
		}
	}

	msgs := canonical.Proto(events, in.tenant, now)
	pctx, cancel := context.WithTimeout(ctx, p.publishTimeout)
	defer cancel()
	start := time.Now()
	res, err := p.pub.Publish(pctx, msgs)
	if err != nil {
		attrs := append(in.attrs, "events", len(events), "first_event_id", events[0].ID, "err", err)
		if errors.Is(err, publish.ErrUnavailable) {
			p.log.WarnContext(ctx, "events not acknowledged", attrs...)
			a := rejected(http.StatusServiceUnavailable, Rejected{Error: "events not stored",
				Reason: "the event stream did not acknowledge every event; " + in.retrySafe})
			a.retryAfter = RetryAfter
			return a
		}
		p.log.ErrorContext(ctx, "publish events", attrs...)
		return internalError()
	}
	ids := make([]string, len(events))
	for i := range events {
		ids[i] = events[i].ID
	}
	return in.stored(ctx, ids, res, skipped, time.Since(start))
}

func internalError() *answer {
	return rejected(http.StatusInternalServerError, Rejected{Error: "internal error"})
}

// readBody checks the content type with check and reads the body, refusing more than max bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int64, check func(string) string) ([]byte, *answer) {
	if reason := check(r.Header.Get("Content-Type")); reason != "" {
		return nil, rejected(http.StatusUnsupportedMediaType, Rejected{Error: "unsupported media type", Reason: reason})
	}
	tooLarge := rejected(http.StatusRequestEntityTooLarge, Rejected{Error: "request too large", Reason: fmt.Sprintf("body exceeds %d bytes", max)})
	if r.ContentLength > max {
		return nil, tooLarge
	}
	var body bytes.Buffer
	if r.ContentLength > 0 {
		body.Grow(int(r.ContentLength) + bytes.MinRead) // read in one piece, not by doubling
	}
	if _, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, max)); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge
		}
		return nil, invalid([]canonical.Problem{{Index: 0, Field: "", Reason: "reading body: " + err.Error()}}, 0)
	}
	return body.Bytes(), nil
}
