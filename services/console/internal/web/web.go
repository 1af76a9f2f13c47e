// Package web is the console's HTTP side: sign-in, the session and CSRF checks, the security
// headers, and the pages, each rendered on the server from the services' gRPC answers with the
// signed-in person's own credential.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/console/internal/session"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Authenticator says whose a credential is; the tenants registry is one.
type Authenticator interface {
	Authenticate(ctx context.Context, authorization string) (auth.Principal, error)
}

// Options configure the console's handler.
type Options struct {
	Codec *session.Codec
	Auth  Authenticator
	KPI   tpv1.KpiServiceClient
	Esc   tpv1.EscalationServiceClient
	Notif tpv1.NotificationServiceClient
	Log   *slog.Logger
	// SessionMaxAge is how long a sign-in lasts, of either kind (an ID token's own expiry cuts
	// it shorter); the codec enforces it on every request.
	SessionMaxAge time.Duration
	// CallTimeout bounds each call to a service made for a page.
	CallTimeout time.Duration
	// SimulateTimeout bounds one what-if (SimulateRules), which replays days of events.
	SimulateTimeout time.Duration
	// MaxStreams caps the live (server-sent events) streams one session holds open at once.
	MaxStreams int
	// Refresh is how often the team page refreshes itself in the browser.
	Refresh time.Duration
	// OIDC, when set, offers sign-in with the identity provider.
	OIDC *OIDC
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// AfterPrimary, when set, runs on the team page once the agents' figures have arrived and
	// before the secondary calls (which need the agents): tests stop kpi there to see the page
	// degrade.
	AfterPrimary func(page string)
}

// Handler serves the console.
type Handler struct {
	o     Options
	pages map[string]*template.Template
	mux   *http.ServeMux
	cop   *http.CrossOriginProtection
	// guarded is mux behind the cross-origin check.
	guarded http.Handler

	mu      sync.Mutex
	streams map[string]int // open SSE streams per session id
	// simulating holds the sessions with a what-if running.
	simulating map[string]bool
}

// Limits on what a request may carry.
const (
	maxFormBytes = 16 << 10
	maxNoteBytes = 2048
	maxIDBytes   = 512
)

// New returns the console handler.
func New(o Options) (*Handler, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{o: o, pages: map[string]*template.Template{}, mux: http.NewServeMux(), streams: map[string]int{}, simulating: map[string]bool{},
		cop: http.NewCrossOriginProtection()}
	h.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-origin request refused: forms of the console must be sent from the console itself", http.StatusForbidden)
	}))
	if err := h.parse(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", staticCache(http.FileServerFS(static))))
	h.mux.HandleFunc("GET /{$}", h.home)
	h.mux.HandleFunc("GET /signin", h.signinForm)
	h.mux.HandleFunc("POST /signin", h.signinKey)
	h.mux.HandleFunc("POST /signout", h.signout)
	if o.OIDC != nil {
		h.mux.HandleFunc("GET /oidc/login", h.oidcLogin)
		h.mux.HandleFunc("GET /oidc/callback", h.oidcCallback)
	}
	h.mux.HandleFunc("GET /t/{tenant}/team", h.tenant(h.team))
	h.mux.HandleFunc("GET /t/{tenant}/agent", h.tenant(h.agent))
	h.mux.HandleFunc("GET /t/{tenant}/escalations", h.tenant(h.escalations))
	h.mux.HandleFunc("GET /t/{tenant}/escalations/events", h.tenant(h.escalationEvents))
	h.mux.HandleFunc("GET /t/{tenant}/escalation", h.tenant(h.escalation))
	h.mux.HandleFunc("POST /t/{tenant}/escalation/acknowledge", h.tenant(h.changeEscalation(true)))
	h.mux.HandleFunc("POST /t/{tenant}/escalation/resolve", h.tenant(h.changeEscalation(false)))
	h.mux.HandleFunc("GET /t/{tenant}/deliveries", h.tenant(h.deliveries))
	h.mux.HandleFunc("GET /t/{tenant}/delivery", h.tenant(h.delivery))
	h.mux.HandleFunc("POST /t/{tenant}/receivers/test", h.tenant(h.testReceiver))
	h.mux.HandleFunc("GET /t/{tenant}/tickets", h.tenant(h.tickets))
	h.mux.HandleFunc("GET /t/{tenant}/rules", h.tenant(h.rules))
	h.mux.HandleFunc("POST "+simulatePath, h.tenant(h.simulate))
	h.guarded = h.cop.Handler(h.mux)
	return h, nil
}

func staticCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP adds the security headers to every answer, refuses cross-origin state changes, and
// bounds every body.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// No inline script or style anywhere, so the policy needs no unsafe-inline: data from a
	// ticket that slipped past escaping still could not run.
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		hd.Set("Cache-Control", "no-store")
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, formLimit(r))
	}
	h.guarded.ServeHTTP(w, r)
}

// tenant runs page for a signed-in person on their own tenant: without a session it sends them
// to sign in, and a URL naming another tenant is refused 403.
func (h *Handler) tenant(page func(http.ResponseWriter, *http.Request, *session.Session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := h.o.Codec.Read(r)
		if err != nil {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/events") {
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
			h.fail(w, r, nil, http.StatusUnauthorized, "not signed in (or the session expired): sign in again")
			return
		}
		t := r.PathValue("tenant")
		if !idtoken.ValidTenant(t) || t != s.Tenant {
			h.fail(w, r, s, http.StatusForbidden, "this page belongs to another tenant than the one you signed in to")
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				h.fail(w, r, s, http.StatusBadRequest, "form: "+formError(err, formLimit(r)))
				return
			}
			if !validCSRF(s, r.PostForm.Get("csrf")) {
				h.fail(w, r, s, http.StatusForbidden, "csrf: the form's token does not match your session; reload the page and try again")
				return
			}
		}
		page(w, r, s)
	}
}

// simulatePath is the what-if form's action: the one form that carries a rules file.
const simulatePath = "/t/{tenant}/rules/simulate"

// formLimit is the largest body r may carry.
func formLimit(r *http.Request) int64 {
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/t/") && strings.HasSuffix(r.URL.Path, "/rules/simulate") {
		return maxRulesFormBytes
	}
	return maxFormBytes
}

func formError(err error, limit int64) string {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return fmt.Sprintf("larger than %d KiB", limit>>10)
	}
	return "unreadable"
}

// call is ctx carrying the person's credential for a call to a service, bounded in time.
func (h *Handler) call(ctx context.Context, s *session.Session) (context.Context, context.CancelFunc) {
	return context.WithTimeout(withCredential(ctx, s), h.o.CallTimeout)
}

// withCredential makes the calls made with ctx present the person's own credential, so each
// service's auth gate decides tenant and scope as for any other caller.
func withCredential(ctx context.Context, s *session.Session) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.Credential)
}

// rpcFail answers a page whose call to a service failed, with the status that says why.
func (h *Handler) rpcFail(w http.ResponseWriter, r *http.Request, s *session.Session, what string, err error) {
	st, _ := status.FromError(err)
	code := http.StatusBadGateway
	msg := what + ": the service did not answer"
	switch st.Code() {
	case codes.Unauthenticated:
		// The credential was revoked or the ID token expired: the session is worthless.
		h.o.Codec.Clear(w)
		code, msg = http.StatusUnauthorized, what+": your credential is no longer accepted; sign in again"
	case codes.PermissionDenied:
		code, msg = http.StatusForbidden, what+": "+st.Message()
	case codes.NotFound:
		code, msg = http.StatusNotFound, what+": not found"
	case codes.InvalidArgument, codes.FailedPrecondition:
		code, msg = http.StatusBadRequest, what+": "+st.Message()
	case codes.Unimplemented:
		code, msg = http.StatusNotImplemented, what+": not served by this version of the service"
	case codes.DeadlineExceeded, codes.Unavailable, codes.ResourceExhausted:
		code, msg = http.StatusServiceUnavailable, what+": the service is busy or unavailable; retry shortly"
	}
	if code >= 500 {
		h.o.Log.Warn("page call failed", "what", what, "tenant", s.Tenant, "err", err)
	}
	h.fail(w, r, s, code, msg)
}

// fail renders the error page with the status.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *session.Session, code int, msg string) {
	h.render(w, code, "error", page{Title: http.StatusText(code), Session: s, Data: errorData{Code: code, Message: msg}})
}

type errorData struct {
	Code    int
	Message string
}

// page is what every template gets.
type page struct {
	Title   string
	Session *session.Session
	// Nav names the current section for the navigation's aria-current.
	Nav  string
	Data any
}

func (h *Handler) render(w http.ResponseWriter, code int, name string, p page) {
	t := h.pages[name]
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "base", p); err != nil {
		h.o.Log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	s, err := h.o.Codec.Read(r)
	if err != nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/t/"+s.Tenant+"/team", http.StatusSeeOther)
}

// boundedParam is a query parameter no longer than maxIDBytes; ok is false when it is longer.
func boundedParam(r *http.Request, name string) (string, bool) {
	v := r.URL.Query().Get(name)
	return v, len(v) <= maxIDBytes
}

// degraded is what a page shows in place of a secondary figure whose call failed ("" when err
// is nil): a short reason, logged once with the error. The page itself still renders.
func (h *Handler) degraded(s *session.Session, what string, err error) string {
	if err == nil {
		return ""
	}
	h.o.Log.Warn("page call failed; the page renders without it", "what", what, "tenant", s.Tenant, "err", err)
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.DeadlineExceeded:
		return "unavailable: the service did not answer in time"
	case codes.PermissionDenied, codes.Unauthenticated:
		return "not shown: your credential may not read them"
	case codes.Unavailable:
		return "unavailable: the service cannot be reached"
	case codes.ResourceExhausted:
		return "unavailable: the service is busy"
	case codes.Canceled:
		return "unavailable: the request was cancelled"
	}
	return "unavailable: the service answered " + st.Code().String()
}

// afterPrimary runs the test hook between a page's primary call and its secondary ones.
func (h *Handler) afterPrimary(page string) {
	if h.o.AfterPrimary != nil {
		h.o.AfterPrimary(page)
	}
}
