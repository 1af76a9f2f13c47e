package helpscout

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Legacy v1 payloads (strings for numbers and booleans, tags as one string, owner, mailbox,
// top-level threads) are read like v2 ones.
func TestLegacyV1Accepted(t *testing.T) {
	tests := []struct {
		give       string
		wantType   string
		wantActor  canonical.Actor
		wantPublic any
		wantTags   []string
	}{
		{"v1_convo_created", "ticket_created", canonical.Actor{ID: "77342119", Kind: "customer"}, nil, []string{"returns", "eu"}},
		{"v1_convo_agent_reply", "agent_message", canonical.Actor{ID: "5002", Kind: "agent"}, true, []string{"returns", "eu"}},
		{"v1_convo_customer_reply_flag_only", "customer_message", canonical.Actor{ID: "77342119", Kind: "customer"}, true, []string{"returns", "eu"}},
		{"v1_convo_workflow_reply", "agent_message", canonical.Actor{Kind: "automation"}, true, []string{"returns"}},
		{"v1_convo_status_closed", "status_changed", canonical.Actor{ID: "5002", Kind: "agent"}, nil, []string{"returns", "eu"}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			ev := adaptertest.One(t, New(), adaptertest.Delivery(t, "testdata", tt.give))
			if ev.Type != tt.wantType || ev.Actor != tt.wantActor || adaptertest.Public(ev.Public) != tt.wantPublic || !slices.Equal(ev.Tags, tt.wantTags) || ev.TeamID != "86" {
				t.Errorf("got %s by %+v public %v tags %v team %q, want %s by %+v public %v tags %v team 86",
					ev.Type, ev.Actor, adaptertest.Public(ev.Public), ev.Tags, ev.TeamID, tt.wantType, tt.wantActor, tt.wantPublic, tt.wantTags)
			}
		})
	}
	res := adaptertest.Map(t, New(), adaptertest.Delivery(t, "testdata", "v1_convo_draft"))
	if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != ReasonDraft {
		t.Errorf("draft (isDraft \"true\"): got %+v, want one %s skip", res, ReasonDraft)
	}
}

// What a v1 payload cannot be read for is answered with the v1 field and advice to switch.
func TestLegacyV1Problems(t *testing.T) {
	tests := []struct {
		give      string
		wantField string
	}{
		{"malformed_v1_owner_string", "owner"},
		{"malformed_v1_tags_number", "tags"},
		{"malformed_v1_is_draft_word", "isDraft"},
		{"malformed_v1_reply_without_message_thread", "threads"},
		{"malformed_v1_thread_time", "threads[0].createdAt"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := New().Map(adaptertest.Delivery(t, "testdata", tt.give))
			var ps canonical.Problems
			if !errors.As(err, &ps) || len(ps.List) != 1 {
				t.Fatalf("error %v, want one problem", err)
			}
			if p := ps.List[0]; p.Field != tt.wantField || !strings.HasPrefix(p.Reason, LegacyAdvice) {
				t.Errorf("problem %+v, want field %q and a reason starting %q", p, tt.wantField, LegacyAdvice)
			}
		})
	}
}

// A v1 delivery and its v2 twin describe the same conversation: the same event ids, so an
// account that switches versions mid-conversation counts nothing twice.
func TestLegacyIDsMatchV2(t *testing.T) {
	v2 := mapOne(t, "convo.agent.reply.created", fixture(t, "convo_agent_reply", func(map[string]any) {}))
	body := fixture(t, "convo_agent_reply", func(m map[string]any) {
		th := m["_embedded"].(map[string]any)["threads"]
		delete(m, "_embedded")
		delete(m, "mailboxId")
		m["threads"] = th
		m["mailbox"] = map[string]any{"id": "85"}
		m["owner"] = m["assignee"]
		delete(m, "assignee")
		m["tags"] = ""
	})
	v1 := mapOne(t, "convo.agent.reply.created", body)
	if v1.ID != v2.ID || v1.Actor != v2.Actor || v1.TeamID != v2.TeamID || v1.AssigneeID != v2.AssigneeID {
		t.Errorf("v1 %+v\nv2 %+v", v1, v2)
	}
}

func TestLegacyShapeDetection(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{`{"id":1,"mailboxId":85,"threads":4,"_embedded":{"threads":[]}}`, false},
		{`{"id":1,"threads":4}`, false},
		{`{"id":1,"mailbox":{"id":85}}`, true},
		{`{"id":1,"owner":null}`, true},
		{`{"id":1,"threads":[]}`, true},
		{`[]`, false},
	}
	for _, tt := range tests {
		if got := isLegacy([]byte(tt.give)); got != tt.want {
			t.Errorf("isLegacy(%s) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestLegacyValues(t *testing.T) {
	bools := []struct {
		give    string
		want    bool
		wantErr bool
	}{
		{`true`, true, false}, {`false`, false, false}, {`"true"`, true, false}, {`"FALSE"`, false, false},
		{`"1"`, true, false}, {`0`, false, false}, {`null`, false, false}, {`""`, false, false},
		{`"maybe"`, false, true}, {`{}`, false, true}, {`2`, false, true},
	}
	for _, tt := range bools {
		var b legacyBool
		err := json.Unmarshal([]byte(tt.give), &b)
		if bool(b) != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("legacyBool %s = %v, %v; want %v, error %v", tt.give, b, err, tt.want, tt.wantErr)
		}
	}
	tags := []struct {
		give    string
		want    []string
		wantErr bool
	}{
		{`["a","b"]`, []string{"a", "b"}, false},
		{`[{"tag":"a"},{"tag":"b"}]`, []string{"a", "b"}, false},
		{`"a, b,,c "`, []string{"a", "b", "c"}, false},
		{`""`, nil, false},
		{`null`, nil, false},
		{`5`, nil, true},
		{`[5]`, nil, true},
		{`{"tag":"a"}`, nil, true},
	}
	for _, tt := range tags {
		var got legacyTags
		err := json.Unmarshal([]byte(tt.give), &got)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !slices.Equal(got, tt.want)) {
			t.Errorf("legacyTags %s = %v, %v; want %v, error %v", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
	ids := []struct{ give, want string }{{`{"id":"5002","type":"user"}`, "5002"}, {`5002`, "5002"}, {`"5002"`, "5002"}, {`null`, ""}}
	for _, tt := range ids {
		var got legacyPersonID
		if err := json.Unmarshal([]byte(tt.give), &got); err != nil || string(got) != tt.want {
			t.Errorf("closedBy %s = %q, %v; want %q", tt.give, got, err, tt.want)
		}
	}
}

// TestLegacyConversation replays a conversation delivered with payload version V1: the same
// KPI figures as a v2 conversation must come out of it.
func TestLegacyConversation(t *testing.T) {
	adaptertest.CheckConversation(t, New(), filepath.Join("testdata", "conversation-v1"), map[string][]string{
		"01-convo-created":      {"ticket_created"},
		"02-assigned":           {"ticket_assigned"},
		"03-note":               {"agent_message"},
		"04-agent-first-reply":  {"agent_message"},
		"05-customer-reply":     {"customer_message"},
		"06-agent-second-reply": {"agent_message"},
		"07-closed":             {"status_changed"},
	})
}

// A v1 delivery retried later maps to the same events.
func TestLegacyRetries(t *testing.T) {
	for _, dir := range []string{"testdata", filepath.Join("testdata", "conversation-v1")} {
		for _, name := range adaptertest.Cases(t, dir) {
			if !strings.Contains(dir, "v1") && !strings.Contains(name, "v1") {
				continue
			}
			t.Run(filepath.Join(dir, name), func(t *testing.T) {
				adaptertest.Retry(t, New(), adaptertest.Delivery(t, dir, name), nil)
			})
		}
	}
	// Not a v1 problem: a v2 payload keeps its own reasons.
	_, err := New().Map(delivery("convo.created", []byte(`{"id":1,"mailboxId":"x","status":"active","createdAt":"soon"}`)))
	var ps canonical.Problems
	if !errors.As(err, &ps) || len(ps.List) == 0 || ps.List[0].Field != "createdAt" || strings.HasPrefix(ps.List[0].Reason, LegacyAdvice) {
		t.Errorf("v2 problem %v: want createdAt without the v1 advice", err)
	}
}
