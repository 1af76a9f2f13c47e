package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDC signs people in with an OpenID Connect provider: the authorization-code flow with PKCE
// (S256), a state bound to the browser and a nonce bound to the ID token. The ID token is then
// mapped to a tenant and scopes by the tenants file, exactly as the services map it when the
// console calls them with it.
type OIDC struct {
	Issuer, ClientID, ClientSecret string
	// RedirectURL is the console's /oidc/callback as the provider sees it.
	RedirectURL string
	// Scopes asked for besides openid.
	Scopes []string
	// HTTPClient talks to the provider (bounded by its Timeout); http.DefaultClient when nil.
	HTTPClient *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

// loginTTL bounds how long a person may take at the provider.
const loginTTL = 10 * time.Minute

type oidcLogin struct {
	State, Nonce, Verifier string
}

// discover fetches the provider's metadata once; a failure is retried on the next sign-in.
func (o *OIDC) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	ctx, cancel := context.WithTimeout(o.clientContext(ctx), 5*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", o.Issuer, err)
	}
	o.provider = p
	return p, nil
}

func (o *OIDC) clientContext(ctx context.Context) context.Context {
	c := o.HTTPClient
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	return oidc.ClientContext(ctx, c)
}

func (o *OIDC) config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, o.Scopes...)}
}

func random() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (h *Handler) oidcLogin(w http.ResponseWriter, r *http.Request) {
	p, err := h.o.OIDC.discover(r.Context())
	if err != nil {
		h.o.Log.Warn("oidc discovery", "err", err)
		h.fail(w, r, nil, http.StatusServiceUnavailable, "the identity provider is unavailable; retry shortly")
		return
	}
	var l oidcLogin
	if l.State, err = random(); err == nil {
		if l.Nonce, err = random(); err == nil {
			l.Verifier = oauth2.GenerateVerifier()
			err = h.o.Codec.WriteTemp(w, "oidc", l, loginTTL)
		}
	}
	if err != nil {
		h.o.Log.Error("oidc login", "err", err)
		h.fail(w, r, nil, http.StatusInternalServerError, "the sign-in could not be started")
		return
	}
	url := h.o.OIDC.config(p).AuthCodeURL(l.State, oidc.Nonce(l.Nonce), oauth2.S256ChallengeOption(l.Verifier))
	http.Redirect(w, r, url, http.StatusFound)
}

func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	var l oidcLogin
	refuse := func(code int, msg string) {
		h.render(w, code, "signin", page{Title: "Sign in", Data: signinData{Error: msg, OIDC: true}})
	}
	if err := h.o.Codec.ReadTemp(w, r, "oidc", &l); err != nil {
		refuse(http.StatusBadRequest, "sign-in: no sign-in was started in this browser, or it took longer than 10 minutes; start again")
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		refuse(http.StatusUnauthorized, "sign-in: the identity provider refused it")
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.State)) != 1 {
		refuse(http.StatusBadRequest, "state: does not match the sign-in this browser started")
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > maxFormBytes {
		refuse(http.StatusBadRequest, "code: missing")
		return
	}
	p, err := h.o.OIDC.discover(r.Context())
	if err != nil {
		refuse(http.StatusServiceUnavailable, "the identity provider is unavailable; retry shortly")
		return
	}
	ctx, cancel := context.WithTimeout(h.o.OIDC.clientContext(r.Context()), 10*time.Second)
	defer cancel()
	tok, err := h.o.OIDC.config(p).Exchange(ctx, code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		h.o.Log.Info("oidc code exchange", "err", err)
		refuse(http.StatusUnauthorized, "sign-in: the identity provider did not accept the code")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		refuse(http.StatusUnauthorized, "sign-in: the identity provider sent no ID token")
		return
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: h.o.OIDC.ClientID}).Verify(ctx, raw)
	if err != nil || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(l.Nonce)) != 1 {
		h.o.Log.Info("oidc id token refused", "err", err)
		refuse(http.StatusUnauthorized, "sign-in: the ID token failed verification")
		return
	}
	// The tenants file decides the tenant and scopes, as it does for the services.
	pr, err := h.o.Auth.Authenticate(r.Context(), "Bearer "+raw)
	if err != nil {
		h.o.Log.Info("console sign-in refused", "kind", "oidc", "err", err)
		refuse(http.StatusForbidden, "sign-in: your account is not mapped to a tenant of this Ticketpulse")
		return
	}
	if pr.IsOperator() || pr.Tenant == "" {
		refuse(http.StatusForbidden, "sign-in: operators sign in to tenants' consoles with a tenant account")
		return
	}
	now := h.o.Now()
	expires := now.Add(h.o.SessionMaxAge)
	if idt.Expiry.Before(expires) {
		// The services refuse the token after its expiry, so the session ends with it; a token
		// that lives longer is still cut at the console's maximum age.
		expires = idt.Expiry
	}
	h.startSession(w, r, pr, raw, now, expires)
}
