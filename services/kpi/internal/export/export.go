// Package export serves the KPI exports for BI tools on kpi's HTTP port:
// GET /v1/tenants/{tenant}/exports/{agents|teams|queues|tickets}.{csv|parquet}: one row per
// agent, team or contact-centre queue and period with every KPI, or one row per ticket with its
// own figures, streamed page by page.
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

// Route is the exports' pattern.
const Route = "/v1/tenants/{tenant}/exports/{file}"

// Authorizer lets a request through to next only with a credential that may act on the path's
// {tenant} with need, and answers every other request itself (package auth's Gate).
type Authorizer interface {
	HTTP(need auth.Scope, next http.Handler) http.Handler
}

// Config is the exports' configuration.
type Config struct {
	Auth Authorizer
	// Sources are the exports by name, the file name without its extension ("agents").
	Sources map[string]Source
	// PerTenant bounds the exports of one tenant running at once; more are answered 429.
	PerTenant int
	// Timeout bounds one export.
	Timeout time.Duration
	// WriteWindow is how long the client may take to accept each part of the file; the
	// deadline moves on as the export progresses, the server's write timeout being shorter than
	// a long export.
	WriteWindow time.Duration
}

// Defaults of Config.
const (
	DefaultPerTenant   = 2
	DefaultTimeout     = 10 * time.Minute
	DefaultWriteWindow = time.Minute
)

// Handler serves the exports.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	mu      sync.Mutex
	running map[string]int
}

// New returns the handler.
func New(cfg Config, log *slog.Logger) (*Handler, error) {
	if cfg.Auth == nil {
		return nil, errors.New("exports: no authorizer")
	}
	if cfg.PerTenant <= 0 {
		cfg.PerTenant = DefaultPerTenant
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.WriteWindow <= 0 {
		cfg.WriteWindow = DefaultWriteWindow
	}
	return &Handler{cfg: cfg, log: log, running: map[string]int{}}, nil
}

// Register adds the route to mux, behind the credential check (scope kpis:read on the tenant).
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle(Route, h.cfg.Auth.HTTP(auth.KPIsRead, h))
}

// Refusal is the JSON body of every 4xx and 5xx the exports answer themselves (the credential
// check answers with auth.Rejected, the same shape without field).
type Refusal struct {
	Error  string `json:"error"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

func refuse(w http.ResponseWriter, code int, field, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	// The encoder escapes <, > and &, so a reason quoting the caller's text is inert in a page.
	_ = json.NewEncoder(w).Encode(Refusal{Error: strings.ToLower(http.StatusText(code)), Field: field, Reason: reason})
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		refuse(w, http.StatusMethodNotAllowed, "", r.Method+" is not allowed: exports are read with GET")
		return
	}
	tenant := r.PathValue("tenant")
	file := r.PathValue("file")
	name, format, _ := strings.Cut(file, ".")
	src, ok := h.cfg.Sources[name]
	if _, known := Formats[format]; !ok || !known {
		refuse(w, http.StatusNotFound, "path", fmt.Sprintf("no export %q: want {%s}.{csv|parquet}", limitText(file), strings.Join(h.names(), "|")))
		return
	}
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		refuse(w, http.StatusBadRequest, "query", "malformed query string: "+err.Error())
		return
	}
	for _, p := range slices.Sorted(maps.Keys(values)) {
		if slices.Contains(params, p) && !slices.Contains(src.Params(), p) {
			refuse(w, http.StatusBadRequest, p, fmt.Sprintf("not a parameter of the %s export: want %s", name, strings.Join(src.Params(), ", ")))
			return
		}
	}
	q, err := ParseQuery(tenant, values)
	if err != nil {
		h.refuseErr(w, err)
		return
	}
	if !slices.Contains(src.Params(), "granularity") {
		q.Granularity = ""
	}
	if !h.acquire(tenant) {
		w.Header().Set("Retry-After", "10")
		refuse(w, http.StatusTooManyRequests, "", fmt.Sprintf("at most %d exports of a tenant run at once; retry when one has finished", h.cfg.PerTenant))
		return
	}
	defer h.release(tenant)
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	h.stream(ctx, w, src, q, format, name)
}

// stream writes the export. The response starts with the first row, so an error before it (a
// bad window, an unreachable store) is still answered with its status; an error after it
// aborts the connection, so the client sees a failed download instead of a short file.
func (h *Handler) stream(ctx context.Context, w http.ResponseWriter, src Source, q Query, format, name string) {
	rc := http.NewResponseController(w)
	var enc encoder
	rows := 0
	start := func() {
		hd := w.Header()
		hd.Set("Content-Type", Formats[format])
		file := q.Tenant + "-" + name
		if q.Granularity != "" {
			file += "-" + q.Granularity
		}
		hd.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, file, format))
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		enc = newEncoder(format, w, src.Columns())
	}
	err := src.Rows(ctx, q, func(row []Value) error {
		if enc == nil {
			start()
		}
		if rows%1000 == 0 {
			// A client that stops reading holds a goroutine for one window at most.
			_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteWindow))
		}
		rows++
		return enc.write(row)
	})
	if err == nil && enc == nil {
		start()
	}
	if err == nil {
		err = enc.close()
	}
	if err == nil {
		return
	}
	if enc == nil {
		h.refuseErr(w, err)
		return
	}
	h.log.WarnContext(ctx, "export aborted", "tenant", q.Tenant, "export", name, "format", format, "rows", rows, "err", err)
	panic(http.ErrAbortHandler)
}

// refuseErr answers an error that came before the response started.
func (h *Handler) refuseErr(w http.ResponseWriter, err error) {
	var p *Problem
	if errors.As(err, &p) {
		refuse(w, http.StatusBadRequest, p.Field, p.Reason)
		return
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.InvalidArgument:
		field := ""
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
				field = queryField(br.GetFieldViolations()[0].GetField())
			}
		}
		refuse(w, http.StatusBadRequest, field, st.Message())
	case codes.FailedPrecondition:
		// The tickets export of a kpi that keeps no drill-down index: nothing a retry mends.
		refuse(w, http.StatusConflict, "", st.Message())
	case codes.Unavailable:
		w.Header().Set("Retry-After", strconv.Itoa(5))
		refuse(w, http.StatusServiceUnavailable, "", "the KPI store is unavailable; retry shortly")
	case codes.DeadlineExceeded, codes.Canceled:
		refuse(w, http.StatusGatewayTimeout, "", fmt.Sprintf("the export did not start within %s", h.cfg.Timeout))
	default:
		h.log.Error("export failed", "err", err)
		refuse(w, http.StatusInternalServerError, "", "the export failed; the server's log has the cause")
	}
}

// queryField names the query parameter a ListKpiSeries or ListTicketKpis field came from.
func queryField(f string) string {
	switch f {
	case "window.range.from":
		return "from"
	case "window.range.to", "window":
		return "to"
	case "window.rolling":
		return "rolling"
	case "window.time_zone":
		return "time_zone"
	}
	// ListTicketKpis's filter fields are the tickets export's parameters of the same names.
	f, _ = strings.CutPrefix(f, "filter.")
	return f
}

func (h *Handler) names() []string {
	var out []string
	for n := range h.cfg.Sources {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (h *Handler) acquire(tenant string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running[tenant] >= h.cfg.PerTenant {
		return false
	}
	h.running[tenant]++
	return true
}

func (h *Handler) release(tenant string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running[tenant]--; h.running[tenant] == 0 {
		delete(h.running, tenant)
	}
}
