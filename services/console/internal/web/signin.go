package web

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/console/internal/session"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

func validCSRF(s *session.Session, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}

type signinData struct {
	Error string
	OIDC  bool
}

func (h *Handler) signinForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "signin", page{Title: "Sign in", Data: signinData{OIDC: h.o.OIDC != nil}})
}

// signinKey signs in with a tenant's API key: the registry authenticates it, and the key is
// then kept only inside the sealed session cookie.
func (h *Handler) signinKey(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.render(w, http.StatusBadRequest, "signin", page{Title: "Sign in", Data: signinData{Error: "form: " + formError(err, formLimit(r)), OIDC: h.o.OIDC != nil}})
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("api_key"))
	refuse := func(code int, msg string) {
		h.render(w, code, "signin", page{Title: "Sign in", Data: signinData{Error: msg, OIDC: h.o.OIDC != nil}})
	}
	if key == "" {
		refuse(http.StatusBadRequest, "api_key: enter the tenant's API key")
		return
	}
	if len(key) > auth.MaxCredentialBytes {
		refuse(http.StatusBadRequest, "api_key: too long to be an API key")
		return
	}
	p, err := h.o.Auth.Authenticate(r.Context(), "Bearer "+key)
	if err != nil || p.Kind != auth.KindAPIKey {
		// Which check failed stays in the log: the form only says the key was not accepted.
		h.o.Log.Info("console sign-in refused", "kind", "api-key", "err", err)
		refuse(http.StatusUnauthorized, "api_key: this key is not accepted (unknown, revoked, or not an API key)")
		return
	}
	if p.IsOperator() || p.Tenant == "" {
		refuse(http.StatusForbidden, "api_key: an operator key spans every tenant; sign in with a key of your tenant")
		return
	}
	now := h.o.Now()
	h.startSession(w, r, p, key, now, now.Add(h.o.SessionMaxAge))
}

func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, p auth.Principal, credential string, issued, expires time.Time) {
	scopes := make([]string, len(p.Scopes))
	for i, s := range p.Scopes {
		scopes[i] = string(s)
	}
	s, err := session.New(p.Tenant, p.Kind, p.Name, scopes, credential, issued, expires)
	if err == nil {
		err = h.o.Codec.Write(w, s)
	}
	if err != nil {
		h.o.Log.Error("start session", "tenant", p.Tenant, "err", err)
		h.fail(w, r, nil, http.StatusInternalServerError, "the session could not be started")
		return
	}
	h.o.Log.Info("console sign-in", "tenant", p.Tenant, "principal", p.ID())
	http.Redirect(w, r, "/t/"+p.Tenant+"/team", http.StatusSeeOther)
}

// signout ends the session; it needs the session's CSRF token, so no other site can sign a
// person out.
func (h *Handler) signout(w http.ResponseWriter, r *http.Request) {
	s, err := h.o.Codec.Read(r)
	if err == nil {
		if err := r.ParseForm(); err != nil || !validCSRF(s, r.PostForm.Get("csrf")) {
			h.fail(w, r, s, http.StatusForbidden, "csrf: the form's token does not match your session")
			return
		}
	}
	h.o.Codec.Clear(w)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
