package canonical

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// stdEvent is the canonical form as encoding/json reads it, the reference for the hand-written
// scanner: whatever Decode accepts must read the same way here.
type stdEvent struct {
	ID           string          `json:"id"`
	Source       *string         `json:"source"`
	TicketID     string          `json:"ticket_id"`
	Type         string          `json:"type"`
	OccurredAt   string          `json:"occurred_at"`
	Sequence     uint64          `json:"sequence"`
	Actor        json.RawMessage `json:"actor"`
	AssigneeID   *string         `json:"assignee_id"`
	TeamID       *string         `json:"team_id"`
	Priority     *string         `json:"priority"`
	Status       *string         `json:"status"`
	Public       *bool           `json:"public"`
	Satisfaction *struct {
		Score   int    `json:"score"`
		Scale   *int   `json:"scale"`
		Comment string `json:"comment"`
	} `json:"satisfaction"`
	Channel *string  `json:"channel"`
	Tags    []string `json:"tags"`
	QA      *struct {
		ReviewID   string             `json:"review_id"`
		ReviewerID string             `json:"reviewer_id"`
		AgentID    string             `json:"agent_id"`
		TeamID     *string            `json:"team_id"`
		Score      float64            `json:"score"`
		AutoFail   *bool              `json:"auto_fail"`
		Scorecard  *string            `json:"scorecard"`
		Categories map[string]float64 `json:"categories"`
	} `json:"qa"`
	Call *struct {
		CallID        string  `json:"call_id"`
		TicketID      *string `json:"ticket_id"`
		QueueID       *string `json:"queue_id"`
		AgentID       *string `json:"agent_id"`
		TeamID        *string `json:"team_id"`
		Direction     string  `json:"direction"`
		WaitSeconds   float64 `json:"wait_seconds"`
		TalkSeconds   float64 `json:"talk_seconds"`
		HoldSeconds   float64 `json:"hold_seconds"`
		WrapUpSeconds float64 `json:"wrap_up_seconds"`
	} `json:"call"`
}

func FuzzDecode(f *testing.F) {
	seeds := []string{
		agentMsg,
		"[" + agentMsg + "," + created(`"source":"zendesk","tags":["a","b"],"channel":"web"`) + "]",
		created(`"satisfaction":{"score":5,"scale":2,"comment":"thanks \u00e9\ud83d\ude00"}`),
		`{"id":"e","ticket_id":"t","type":"customer_message","occurred_at":"2026-03-02T09:00:00+01:00","actor":{"kind":"customer","id":"c"}}`,
		`{"id":"st","ticket_id":"t","type":"status_changed","occurred_at":"2026-03-02T10:04:59.5Z","actor":{"kind":"bot"},"status":"solved","assignee_id":null}`,
		`{"id":"p","ticket_id":"t","type":"priority_changed","occurred_at":"2020-02-29T23:59:59Z","actor":{"kind":"system"},"priority":"low","team_id":"ünï"}`,
		created(`"sequence":9007199254740991`),
		`[{"id":"q","ticket_id":"t","type":"status_changed","occurred_at":"2026-03-02T10:04:59Z","actor":{"kind":"agent","id":"a"},"status":"solved","sequence":4},{"id":"r","sequence":-1.5e3}]`,
		`{"id":"a\u0007","ticket_id":"\ud800","type":"x"}`,
		qaScored(validQA),
		qaScored(`"qa":{"review_id":"r","agent_id":"a","score":0,"auto_fail":true,"categories":{"T\u00f6ne":12.345,"B":1e2}}`),
		qaScored(`"qa":{"review_id":"r","agent_id":"a","score":-0,"categories":{}}`),
		qaScored(`"team_id":"x","qa":{"review_id":"r","agent_id":"a","score":"5","categories":{"a":1,"a":2}}`),
		callEv("call_offered", "CA-9", "", `"call_id":"CA-9","queue_id":"sales","team_id":"phones","direction":"inbound"`),
		callEv("call_answered", "T-77", "", `"call_id":"CA-9","ticket_id":"T-77","agent_id":"ana","direction":"inbound","wait_seconds":12.3456`),
		callEv("call_ended", "CA-10", "", `"call_id":"CA-10","agent_id":"\u00e5sa","direction":"outbound","talk_seconds":3e2,"hold_seconds":0,"wrap_up_seconds":45.5`),
		callEv("call_abandoned", "CA-9", `"team_id":"x"`, `"call_id":"CA-9","direction":"in","wait_seconds":-0,"call_id":"y"`),
		`[{"id":1},2,"3",[4],null]`,
		`{"id":"x",}`,
		`[]`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		decoded, err := Decode(data, testOptions())
		if err != nil {
			var probs Problems
			switch {
			case errors.As(err, &probs):
				if len(probs.List) == 0 || len(probs.List) > MaxProblems || probs.More > 0 && len(probs.List) != MaxProblems {
					t.Fatalf("Problems of %d listed and %d more", len(probs.List), probs.More)
				}
			case errors.Is(err, ErrTooManyEvents):
			default:
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if decoded != nil {
				t.Fatal("events returned together with an error")
			}
			return
		}
		if err := Validate(decoded, testOptions()); err != nil {
			t.Fatalf("Validate rejects what Decode accepted: %v", err)
		}
		evs := Proto(decoded, "acme", testNow)
		if len(evs) == 0 {
			t.Fatal("no events and no error")
		}
		refs := reference(t, data)
		if len(refs) != len(evs) {
			t.Fatalf("Decode returned %d events, encoding/json sees %d", len(evs), len(refs))
		}
		for i, ev := range evs {
			checkInvariants(t, i, ev)
			checkAgainstReference(t, i, ev, refs[i])
		}
	})
}

func reference(t *testing.T, data []byte) []stdEvent {
	t.Helper()
	trimmed := bytes.TrimSpace(data)
	var raws []json.RawMessage
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			t.Fatalf("accepted but encoding/json fails: %v", err)
		}
	} else {
		raws = []json.RawMessage{trimmed}
	}
	out := make([]stdEvent, len(raws))
	for i, raw := range raws {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out[i]); err != nil {
			t.Fatalf("event %d accepted but encoding/json rejects it: %v", i, err)
		}
	}
	return out
}

func checkText(t *testing.T, i int, field, s string, max int, required bool) {
	t.Helper()
	if required && s == "" {
		t.Errorf("event %d: empty %s accepted", i, field)
	}
	if len(s) > max {
		t.Errorf("event %d: %s of %d bytes accepted", i, field, len(s))
	}
	if !utf8.ValidString(s) {
		t.Errorf("event %d: %s is not valid UTF-8", i, field)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		t.Errorf("event %d: %s %q holds a control character", i, field, s)
	}
}

func checkInvariants(t *testing.T, i int, ev *ticketpulsev1.TicketEvent) {
	t.Helper()
	checkText(t, i, "id", ev.GetId(), MaxIDBytes, true)
	checkText(t, i, "ticket_id", ev.GetTicketId(), MaxIDBytes, true)
	checkText(t, i, "assignee_id", ev.GetAssigneeId(), MaxIDBytes, false)
	checkText(t, i, "team_id", ev.GetTeamId(), MaxIDBytes, false)
	checkText(t, i, "actor.id", ev.GetActor().GetId(), MaxIDBytes, false)
	checkText(t, i, "channel", ev.GetChannel(), MaxChannelBytes, false)
	if ev.GetTenant() != "acme" {
		t.Errorf("event %d: tenant %q", i, ev.GetTenant())
	}
	if !slices.Contains(Sources, ev.GetSource()) {
		t.Errorf("event %d: source %q", i, ev.GetSource())
	}
	if TypeWord(ev.GetType()) == "" {
		t.Errorf("event %d: type %v", i, ev.GetType())
	}
	if err := ev.GetOccurredAt().CheckValid(); err != nil {
		t.Errorf("event %d: occurred_at: %v", i, err)
	} else if ev.GetOccurredAt().AsTime().After(testNow.Add(testOptions().MaxFutureSkew)) {
		t.Errorf("event %d: occurred_at %v beyond the allowed skew", i, ev.GetOccurredAt().AsTime())
	}
	if !ev.GetReceivedAt().AsTime().Equal(testNow) {
		t.Errorf("event %d: received_at %v", i, ev.GetReceivedAt().AsTime())
	}
	kind := ev.GetActor().GetKind()
	if ActorWord(kind) == "" {
		t.Errorf("event %d: actor kind %v", i, kind)
	}
	if (kind == ticketpulsev1.ActorKind_ACTOR_KIND_AGENT || kind == ticketpulsev1.ActorKind_ACTOR_KIND_CUSTOMER) && ev.GetActor().GetId() == "" {
		t.Errorf("event %d: %v actor without id", i, kind)
	}
	switch ev.GetType() {
	case ticketpulsev1.EventType_EVENT_TYPE_AGENT_MESSAGE, ticketpulsev1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE:
		if ev.Public == nil {
			t.Errorf("event %d: message without public", i)
		}
	case ticketpulsev1.EventType_EVENT_TYPE_STATUS_CHANGED:
		if StatusWord(ev.GetStatus()) == "" {
			t.Errorf("event %d: status_changed without status", i)
		}
	case ticketpulsev1.EventType_EVENT_TYPE_PRIORITY_CHANGED:
		if PriorityWord(ev.GetPriority()) == "" {
			t.Errorf("event %d: priority_changed without priority", i)
		}
	case ticketpulsev1.EventType_EVENT_TYPE_SATISFACTION_RATED:
		if ev.GetSatisfaction() == nil {
			t.Errorf("event %d: satisfaction_rated without satisfaction", i)
		}
	}
	if s := ev.GetSatisfaction(); s != nil {
		if s.Score < 1 || s.Score > 5 || (s.Scale != 2 && s.Scale != 3 && s.Scale != 5) || len(s.Comment) > MaxCommentBytes {
			t.Errorf("event %d: satisfaction %v", i, s)
		}
	}
	if (ev.GetType() == ticketpulsev1.EventType_EVENT_TYPE_QA_SCORED) != (ev.GetQa() != nil) {
		t.Errorf("event %d: type %v with qa %v", i, ev.GetType(), ev.GetQa())
	}
	if q := ev.GetQa(); q != nil {
		checkText(t, i, "qa.review_id", q.GetReviewId(), MaxIDBytes, true)
		checkText(t, i, "qa.agent_id", q.GetAgentId(), MaxIDBytes, true)
		checkText(t, i, "qa.reviewer_id", q.GetReviewerId(), MaxIDBytes, false)
		checkText(t, i, "qa.team_id", q.GetTeamId(), MaxIDBytes, false)
		checkText(t, i, "qa.scorecard", q.GetScorecard(), MaxIDBytes, false)
		checkPercent(t, i, "qa.score", q.GetScore())
		if len(q.GetCategories()) > MaxCategories {
			t.Errorf("event %d: %d categories", i, len(q.GetCategories()))
		}
		for name, v := range q.GetCategories() {
			checkText(t, i, "category", name, MaxCategoryBytes, true)
			checkPercent(t, i, "category "+name, v)
		}
		if ev.GetAssigneeId() != "" || ev.GetTeamId() != "" || ev.GetStatus() != 0 || ev.GetPriority() != 0 ||
			ev.Public != nil || ev.GetSatisfaction() != nil || ev.GetChannel() != "" || len(ev.GetTags()) > 0 {
			t.Errorf("event %d: qa_scored with ticket attributes: %v", i, ev)
		}
	}
	if isCall(TypeWord(ev.GetType())) != (ev.GetCall() != nil) {
		t.Errorf("event %d: type %v with call %v", i, ev.GetType(), ev.GetCall())
	}
	if k := ev.GetCall(); k != nil {
		checkText(t, i, "call.call_id", k.GetCallId(), MaxIDBytes, true)
		for _, s := range []string{k.GetTicketId(), k.GetQueueId(), k.GetAgentId(), k.GetTeamId()} {
			checkText(t, i, "call id", s, MaxIDBytes, false)
		}
		if want := cmpOr(k.GetTicketId(), k.GetCallId()); ev.GetTicketId() != want {
			t.Errorf("event %d: ticket_id %q for call %v", i, ev.GetTicketId(), k)
		}
		if k.GetDirection() == ticketpulsev1.CallDirection_CALL_DIRECTION_UNSPECIFIED {
			t.Errorf("event %d: call without direction", i)
		}
		for _, v := range []float64{k.GetWaitSeconds(), k.GetTalkSeconds(), k.GetHoldSeconds(), k.GetWrapUpSeconds()} {
			if !(v >= 0 && v <= MaxCallSeconds) || RoundSeconds(v) != v {
				t.Errorf("event %d: call duration %v", i, v)
			}
		}
		if ev.GetType() == ticketpulsev1.EventType_EVENT_TYPE_CALL_ANSWERED && k.GetAgentId() == "" {
			t.Errorf("event %d: answered without agent", i)
		}
		if ev.GetAssigneeId() != "" || ev.GetTeamId() != "" || ev.GetStatus() != 0 || ev.GetPriority() != 0 ||
			ev.Public != nil || ev.GetSatisfaction() != nil || ev.GetChannel() != "" || len(ev.GetTags()) > 0 {
			t.Errorf("event %d: call event with ticket attributes: %v", i, ev)
		}
	}
	if len(ev.GetTags()) > MaxTags {
		t.Errorf("event %d: %d tags", i, len(ev.GetTags()))
	}
	for _, tag := range ev.GetTags() {
		checkText(t, i, "tag", tag, MaxTagBytes, false)
	}
}

func checkAgainstReference(t *testing.T, i int, ev *ticketpulsev1.TicketEvent, ref stdEvent) {
	t.Helper()
	var refActor struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(ref.Actor, &refActor); err != nil {
		t.Fatalf("event %d: actor accepted but encoding/json fails: %v", i, err)
	}
	pairs := []struct{ field, got, want string }{
		{"id", ev.GetId(), ref.ID},
		{"ticket_id", ev.GetTicketId(), ref.TicketID},
		{"type", TypeWord(ev.GetType()), ref.Type},
		{"actor.id", ev.GetActor().GetId(), refActor.ID},
		{"actor.kind", ActorWord(ev.GetActor().GetKind()), refActor.Kind},
		{"assignee_id", ev.GetAssigneeId(), deref(ref.AssigneeID)},
		{"team_id", ev.GetTeamId(), deref(ref.TeamID)},
		{"channel", ev.GetChannel(), deref(ref.Channel)},
		{"tags", strings.Join(ev.GetTags(), "\x00"), strings.Join(ref.Tags, "\x00")},
	}
	for _, p := range pairs {
		if p.got != p.want {
			t.Errorf("event %d: %s = %q, encoding/json reads %q", i, p.field, p.got, p.want)
		}
	}
	if ev.GetSequence() != ref.Sequence || ev.GetSequence() > MaxSequence {
		t.Errorf("event %d: sequence %d, encoding/json reads %d", i, ev.GetSequence(), ref.Sequence)
	}
	if q := ref.QA; q != nil {
		got := ev.GetQa()
		if got.GetReviewId() != q.ReviewID || got.GetAgentId() != q.AgentID || got.GetReviewerId() != q.ReviewerID ||
			got.GetTeamId() != deref(q.TeamID) || got.GetScorecard() != deref(q.Scorecard) ||
			got.GetScore() != RoundScore(q.Score) || got.GetAutoFail() != (q.AutoFail != nil && *q.AutoFail) ||
			len(got.GetCategories()) != len(q.Categories) {
			t.Errorf("event %d: qa %v, encoding/json reads %+v", i, got, q)
		}
		for name, v := range q.Categories {
			if got.GetCategories()[name] != RoundScore(v) {
				t.Errorf("event %d: category %q = %v, encoding/json reads %v", i, name, got.GetCategories()[name], v)
			}
		}
	}
	if ref.Satisfaction != nil && ev.GetSatisfaction().GetComment() != ref.Satisfaction.Comment {
		t.Errorf("event %d: comment %q, encoding/json reads %q", i, ev.GetSatisfaction().GetComment(), ref.Satisfaction.Comment)
	}
	if k := ref.Call; k != nil {
		got := ev.GetCall()
		if got.GetCallId() != k.CallID || got.GetTicketId() != deref(k.TicketID) || got.GetQueueId() != deref(k.QueueID) ||
			got.GetAgentId() != deref(k.AgentID) || got.GetTeamId() != deref(k.TeamID) ||
			strings.ToLower(strings.TrimPrefix(got.GetDirection().String(), "CALL_DIRECTION_")) != k.Direction ||
			got.GetWaitSeconds() != RoundSeconds(k.WaitSeconds) || got.GetTalkSeconds() != RoundSeconds(k.TalkSeconds) ||
			got.GetHoldSeconds() != RoundSeconds(k.HoldSeconds) || got.GetWrapUpSeconds() != RoundSeconds(k.WrapUpSeconds) {
			t.Errorf("event %d: call %v, encoding/json reads %+v", i, got, k)
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkPercent checks a kept QA percentage: 0 to 100, in hundredths.
func checkPercent(t *testing.T, i int, field string, v float64) {
	t.Helper()
	if !(v >= 0 && v <= 100) || RoundScore(v) != v {
		t.Errorf("event %d: %s = %v", i, field, v)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
