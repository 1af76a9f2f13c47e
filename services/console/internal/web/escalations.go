package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/console/internal/session"
)

type escalationsData struct {
	Tenant                      string
	Rule, Team, Severity, State string
	Escalations                 []*tpv1.Escalation
	Next, Events                string
	CanWrite                    bool
	Severities, States          []string
}

var severities = map[string]tpv1.Severity{"": tpv1.Severity_SEVERITY_UNSPECIFIED, "info": tpv1.Severity_SEVERITY_INFO,
	"warning": tpv1.Severity_SEVERITY_WARNING, "critical": tpv1.Severity_SEVERITY_CRITICAL}

var states = map[string]tpv1.EscalationState{"open": tpv1.EscalationState_ESCALATION_STATE_OPEN,
	"acknowledged": tpv1.EscalationState_ESCALATION_STATE_ACKNOWLEDGED, "resolved": tpv1.EscalationState_ESCALATION_STATE_RESOLVED,
	"all": tpv1.EscalationState_ESCALATION_STATE_UNSPECIFIED}

// escalationPage is how many escalations one page lists.
const escalationPage = 100

func (h *Handler) escalations(w http.ResponseWriter, r *http.Request, s *session.Session) {
	q := r.URL.Query()
	d := escalationsData{Tenant: s.Tenant, Rule: q.Get("rule"), Team: q.Get("team"), Severity: q.Get("severity"), State: q.Get("state"),
		CanWrite: s.Has("escalations:write"), Severities: []string{"info", "warning", "critical"}, States: []string{"open", "acknowledged", "resolved", "all"}}
	if d.State == "" {
		d.State = "open"
	}
	sev, ok := severities[d.Severity]
	if !ok {
		h.fail(w, r, s, http.StatusBadRequest, "severity: want info, warning or critical")
		return
	}
	st, ok := states[d.State]
	if !ok {
		h.fail(w, r, s, http.StatusBadRequest, "state: want open, acknowledged, resolved or all")
		return
	}
	for name, v := range map[string]string{"rule": d.Rule, "team": d.Team, "page": q.Get("page")} {
		if len(v) > maxIDBytes {
			h.fail(w, r, s, http.StatusBadRequest, name+": longer than 512 bytes")
			return
		}
	}
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	resp, err := h.o.Esc.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: s.Tenant, State: st, Rule: d.Rule, TeamId: d.Team,
		Severity: sev, PageSize: escalationPage, PageToken: q.Get("page")})
	if err != nil {
		h.rpcFail(w, r, s, "escalations", err)
		return
	}
	d.Escalations = resp.GetEscalations()
	if t := resp.GetNextPageToken(); t != "" {
		d.Next = link("/t/"+s.Tenant+"/escalations", "rule", d.Rule, "team", d.Team, "severity", d.Severity, "state", d.State, "page", t)
	}
	d.Events = link("/t/"+s.Tenant+"/escalations/events", "rule", d.Rule)
	h.render(w, http.StatusOK, "escalations", page{Title: "Escalations", Session: s, Nav: "escalations", Data: d})
}

type escalationData struct {
	Tenant   string
	E        *tpv1.Escalation
	CanWrite bool
	Events   string
}

func (h *Handler) escalation(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id, ok := boundedParam(r, "id")
	if !ok || id == "" {
		h.fail(w, r, s, http.StatusBadRequest, "id: the escalation id is missing or longer than 512 bytes")
		return
	}
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	resp, err := h.o.Esc.GetEscalation(ctx, &tpv1.GetEscalationRequest{Tenant: s.Tenant, Id: id})
	if err != nil {
		h.rpcFail(w, r, s, "escalation", err)
		return
	}
	h.render(w, http.StatusOK, "escalation", page{Title: "Escalation", Session: s, Nav: "escalations",
		Data: escalationData{Tenant: s.Tenant, E: resp.GetEscalation(), CanWrite: s.Has("escalations:write"),
			Events: link("/t/"+s.Tenant+"/escalations/events", "rule", resp.GetEscalation().GetRule())}})
}

// changeEscalation acknowledges (ack) or resolves an escalation with an optional note; the
// escalation service records the signed-in principal as who did it.
func (h *Handler) changeEscalation(ack bool) func(http.ResponseWriter, *http.Request, *session.Session) {
	return func(w http.ResponseWriter, r *http.Request, s *session.Session) {
		id, note := r.PostForm.Get("id"), strings.TrimSpace(r.PostForm.Get("note"))
		switch {
		case id == "" || len(id) > maxIDBytes:
			h.fail(w, r, s, http.StatusBadRequest, "id: the escalation id is missing or longer than 512 bytes")
			return
		case len(note) > maxNoteBytes:
			h.fail(w, r, s, http.StatusBadRequest, fmt.Sprintf("note: %d bytes, at most %d", len(note), maxNoteBytes))
			return
		}
		ctx, cancel := h.call(r.Context(), s)
		defer cancel()
		var err error
		what := "acknowledge"
		if ack {
			_, err = h.o.Esc.AcknowledgeEscalation(ctx, &tpv1.AcknowledgeEscalationRequest{Tenant: s.Tenant, Id: id, Note: note})
		} else {
			what = "resolve"
			_, err = h.o.Esc.ResolveEscalation(ctx, &tpv1.ResolveEscalationRequest{Tenant: s.Tenant, Id: id, Note: note})
		}
		if err != nil {
			h.rpcFail(w, r, s, what, err)
			return
		}
		http.Redirect(w, r, link("/t/"+s.Tenant+"/escalation", "id", id), http.StatusSeeOther)
	}
}

// sseChange is what one server-sent event carries: text the page puts into the DOM as text.
type sseChange struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Severity string `json:"severity"`
	Level    int32  `json:"level"`
	Rule     string `json:"rule"`
	Subject  string `json:"subject"`
	Summary  string `json:"summary"`
	URL      string `json:"url"`
}

// heartbeat keeps idle streams (and the proxies between) open, and lets a gone browser be
// noticed when the write fails.
const heartbeat = 15 * time.Second

// escalationEvents streams the tenant's escalation changes to the browser: one WatchEscalations
// stream per connection, closed when the browser goes (the request's context ends).
func (h *Handler) escalationEvents(w http.ResponseWriter, r *http.Request, s *session.Session) {
	rule, ok := boundedParam(r, "rule")
	if !ok {
		h.fail(w, r, s, http.StatusBadRequest, "rule: longer than 512 bytes")
		return
	}
	if !h.acquireStream(s.ID) {
		w.Header().Set("Retry-After", "30")
		http.Error(w, fmt.Sprintf("too many live streams for this session (at most %d): close other console tabs", h.o.MaxStreams), http.StatusTooManyRequests)
		return
	}
	defer h.releaseStream(s.ID)
	// The stream lives as long as the browser stays, not a page call's timeout.
	ctx, stop := context.WithCancel(withCredential(r.Context(), s))
	defer stop()
	stream, err := h.o.Esc.WatchEscalations(ctx, &tpv1.WatchEscalationsRequest{Tenant: s.Tenant, Rule: rule})
	if err != nil {
		h.rpcFail(w, r, s, "watch escalations", err)
		return
	}
	rc := http.NewResponseController(w)
	// The server's read timeout would otherwise end the stream (its context) a minute in; the
	// browser is still there, and a gone one fails the next heartbeat write.
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) error {
		// The server's write timeout is for pages; a stream extends it write by write.
		_ = rc.SetWriteDeadline(time.Now().Add(heartbeat + 10*time.Second))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if write([]byte(": connected\nretry: 3000\n\n")) != nil {
		return
	}
	changes := make(chan *tpv1.EscalationChange)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case changes <- m.GetChange():
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-errc:
			if ctx.Err() == nil {
				h.o.Log.Info("escalation stream ended", "tenant", s.Tenant, "err", err)
			}
			return
		case <-tick.C:
			if write([]byte(": keep-alive\n\n")) != nil {
				return
			}
		case c := <-changes:
			e := c.GetEscalation()
			b, _ := json.Marshal(sseChange{ID: e.GetId(), Kind: enumWord(c.GetKind().String(), "CHANGE_KIND_"),
				State: enumWord(e.GetState().String(), "ESCALATION_STATE_"), Severity: enumWord(e.GetSeverity().String(), "SEVERITY_"),
				Level: e.GetLevel(), Rule: e.GetRule(), Subject: e.GetSubjectKind() + " " + e.GetSubjectId(), Summary: e.GetSummary(),
				URL: link("/t/"+s.Tenant+"/escalation", "id", e.GetId())})
			// JSON has no raw newline, so one data line carries the event.
			if write([]byte("event: change\ndata: "+string(b)+"\n\n")) != nil {
				return
			}
		}
	}
}

func (h *Handler) acquireStream(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams[id] >= h.o.MaxStreams {
		return false
	}
	h.streams[id]++
	return true
}

func (h *Handler) releaseStream(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams[id]--; h.streams[id] <= 0 {
		delete(h.streams, id)
	}
}
