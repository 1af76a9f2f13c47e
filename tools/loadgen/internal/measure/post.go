package measure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/traffic"
)

// StatusError is an answer from ingest that retrying cannot fix (a 4xx other than 429): the load
// itself is wrong, so the measurement stops.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("ingest answered %d: %s", e.Code, e.Body)
}

// poster sends batches to ingest's event API, retrying what ingest says may be retried.
type poster struct {
	client  *http.Client
	url     string
	headers http.Header
	// auth is the Authorization value, "" for none.
	auth string
}

func newPoster(base, tenant, apiKey string, headers http.Header, conns int) *poster {
	var authz string
	if apiKey != "" {
		authz = "Bearer " + apiKey
	}
	tr := &http.Transport{
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &poster{
		client:  &http.Client{Transport: tr, Timeout: 30 * time.Second},
		url:     base + "/v1/tenants/" + url.PathEscape(tenant) + "/events",
		headers: headers,
		auth:    authz,
	}
}

func (p *poster) close() { p.client.CloseIdleConnections() }

// post sends one batch until ingest accepts it. 5xx and 429 mean the events may not be stored
// (ingest answers 503 when JetStream did not acknowledge), and resending the same ids is safe, so
// they are retried with backoff until ctx ends. It returns how many retries it took.
func (p *poster) post(ctx context.Context, body []byte) (int, error) {
	backoff := 20 * time.Millisecond
	for retries := 0; ; retries++ {
		code, msg, err := p.once(ctx, body)
		switch {
		case err == nil && code >= 200 && code < 300:
			return retries, nil
		case err == nil && code != http.StatusTooManyRequests && code < 500:
			return retries, &StatusError{Code: code, Body: msg}
		case ctx.Err() != nil:
			return retries, fmt.Errorf("post batch: %w (last answer %d %s %v)", ctx.Err(), code, msg, err)
		}
		select {
		case <-ctx.Done():
			return retries, fmt.Errorf("post batch: %w", ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

func (p *poster) once(ctx context.Context, body []byte) (int, string, error) {
	code, msg, _, err := p.try(ctx, body)
	return code, msg, err
}

// try sends body once and returns the status, the start of the body and the Retry-After
// seconds (0 when absent or not a number).
func (p *poster) try(ctx context.Context, body []byte) (int, string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, "", 0, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range p.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if p.auth != "" {
		req.Header.Set("Authorization", p.auth)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", 0, fmt.Errorf("post %s: %w", p.url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body) // drained bodies let the connection be reused
	retryAfter, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, string(bytes.TrimSpace(msg)), retryAfter, nil
}

// encodedBatch is a request body ready to send, with the number of events in it.
type encodedBatch struct {
	body   []byte
	events int
}

// encodeAll draws the generator dry in batches of size and encodes them up front, so encoding
// costs nothing while the clock runs.
func encodeAll(g *traffic.Generator, size int) ([]encodedBatch, int, error) {
	var out []encodedBatch
	var buf []traffic.Event
	total := 0
	for {
		buf = g.Batch(buf, size)
		if len(buf) == 0 {
			return out, total, nil
		}
		body, err := json.Marshal(buf)
		if err != nil {
			return nil, 0, fmt.Errorf("encode batch: %w", err)
		}
		out = append(out, encodedBatch{body: body, events: len(buf)})
		total += len(buf)
	}
}

// permanent reports whether err means the load is rejected rather than the system being slow.
func permanent(err error) bool {
	var se *StatusError
	return errors.As(err, &se)
}
