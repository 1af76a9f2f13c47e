package helpscout

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// LegacyAdvice starts the reason of every problem found in a legacy v1 payload: what the
// admin can do about it, whatever the field.
const LegacyAdvice = "legacy v1 payload: switch the webhook to v2"

// legacyConversation is the conversation of a webhook still set to payload version V1 (the
// Legacy Mailbox API 1.0 object, developer.helpscout.com/webhooks/objects/conversation):
// owner instead of assignee, mailbox{id} instead of mailboxId, threads at the top level,
// modifiedAt/userModifiedAt, closedBy a person, tags strings. Recorded deliveries also send
// numbers and booleans as strings and tags as one comma-separated string; those are read too.
type legacyConversation struct {
	ID      adapter.ID    `json:"id"`
	Number  adapter.ID    `json:"number"`
	Type    string        `json:"type"`
	IsDraft legacyBool    `json:"isDraft"`
	Status  string        `json:"status"`
	Owner   *legacyPerson `json:"owner"`
	Mailbox *struct {
		ID adapter.ID `json:"id"`
	} `json:"mailbox"`
	CreatedBy      *legacyPerson  `json:"createdBy"`
	CreatedAt      string         `json:"createdAt"`
	ModifiedAt     string         `json:"modifiedAt"`
	UserModifiedAt string         `json:"userModifiedAt"`
	ClosedAt       string         `json:"closedAt"`
	ClosedBy       legacyPersonID `json:"closedBy"`
	Tags           legacyTags     `json:"tags"`
	Threads        []legacyThread `json:"threads"`
}

type legacyPerson struct {
	ID   adapter.ID `json:"id"`
	Type string     `json:"type"`
}

type legacyThread struct {
	ID         adapter.ID `json:"id"`
	Type       string     `json:"type"`
	State      string     `json:"state"`
	ActionType string     `json:"actionType"`
	Source     *struct {
		Type string `json:"type"`
		Via  string `json:"via"`
	} `json:"source"`
	CreatedBy         *legacyPerson `json:"createdBy"`
	CreatedByCustomer legacyBool    `json:"createdByCustomer"`
	Customer          *legacyPerson `json:"customer"`
	CreatedAt         string        `json:"createdAt"`
}

// isLegacy tells a v1 conversation from a v2 one by its shape: v2 always has mailboxId and
// _embedded (its top-level "threads" is a count), v1 has neither but a mailbox object, an
// owner or a list of threads.
func isLegacy(body []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	if _, ok := top["_embedded"]; ok {
		return false
	}
	if _, ok := top["mailboxId"]; ok {
		return false
	}
	_, mailbox := top["mailbox"]
	_, owner := top["owner"]
	threads := bytes.HasPrefix(bytes.TrimSpace(top["threads"]), []byte("["))
	return mailbox || owner || threads
}

// mapLegacy reads a v1 conversation into the v2 one and maps that. Every problem names the v1
// field and starts with LegacyAdvice.
func mapLegacy(event string, body []byte) (adapter.Result, error) {
	var l legacyConversation
	if err := adapter.DecodeJSON(body, &l); err != nil {
		return adapter.Result{}, legacyProblem(err)
	}
	if l.IsDraft {
		return adapter.Skipped(ReasonDraft, "conversation %s is a draft", adapter.Truncate(string(l.ID), 60)), nil
	}
	c := conversation{
		ID: l.ID, Number: l.Number, Type: l.Type, Status: l.Status,
		CreatedAt: l.CreatedAt, ClosedAt: l.ClosedAt, ClosedBy: adapter.ID(l.ClosedBy),
		UserUpdatedAt: l.UserModifiedAt,
	}
	if c.UserUpdatedAt == "" {
		c.UserUpdatedAt = l.ModifiedAt
	}
	if l.Mailbox != nil {
		c.MailboxID = l.Mailbox.ID
	}
	c.Assignee = l.Owner.person()
	c.CreatedBy = l.CreatedBy.person()
	for _, t := range l.Tags {
		c.Tags = append(c.Tags, struct {
			Tag string `json:"tag"`
		}{Tag: t})
	}
	for _, lt := range l.Threads {
		t := thread{ID: lt.ID, Type: lt.Type, State: lt.State, Source: lt.Source, CreatedAt: lt.CreatedAt,
			CreatedBy: lt.CreatedBy.person(), Customer: lt.Customer.person()}
		if t.CreatedBy == nil && lt.CreatedByCustomer {
			t.CreatedBy = &person{Type: "customer"}
		} else if t.CreatedBy != nil && t.CreatedBy.Type == "" && lt.CreatedByCustomer {
			t.CreatedBy.Type = "customer"
		}
		// v1 names a workflow's thread by its actionType.
		if adapter.Lower(lt.ActionType) == "workflow" {
			t.Action = &struct {
				Type string `json:"type"`
			}{Type: "automatic-workflow"}
		}
		c.Embedded.Threads = append(c.Embedded.Threads, t)
	}
	res, err := mapConversation(event, &c)
	if err != nil {
		return adapter.Result{}, legacyProblem(err)
	}
	return res, nil
}

func (p *legacyPerson) person() *person {
	if p == nil {
		return nil
	}
	return &person{ID: p.ID, Type: p.Type}
}

// legacyFields renames the v2 fields the shared mapping reports to where a v1 payload has
// them, longest first.
var legacyFields = []struct{ v2, v1 string }{
	{"_embedded.threads", "threads"},
	{"assignee.id", "owner.id"},
	{"mailboxId", "mailbox.id"},
	{"userUpdatedAt", "userModifiedAt"},
	{"closedBy", "closedBy.id"},
}

// legacyProblem puts the v1 field names and LegacyAdvice into the problems of err.
func legacyProblem(err error) error {
	var ps canonical.Problems
	if !errors.As(err, &ps) {
		return err
	}
	for i := range ps.List {
		p := &ps.List[i]
		for _, f := range legacyFields {
			if p.Field == f.v2 || strings.HasPrefix(p.Field, f.v2+".") || strings.HasPrefix(p.Field, f.v2+"[") {
				p.Field = f.v1 + strings.TrimPrefix(p.Field, f.v2)
				break
			}
		}
		p.Reason = LegacyAdvice + " (" + p.Reason + ")"
	}
	return ps
}

// legacyBool is a boolean that v1 captures send as true/false or as "true"/"false"/"1"/"0".
type legacyBool bool

// UnmarshalJSON implements json.Unmarshaler.
func (b *legacyBool) UnmarshalJSON(raw []byte) error {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 0 && s[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		s = adapter.Lower(s)
	}
	switch s {
	case "true", "1":
		*b = true
		return nil
	case "false", "0", "", "null":
		*b = false
		return nil
	}
	return &json.UnmarshalTypeError{Value: adapter.JSONKind(raw) + " " + strconv.Quote(adapter.Truncate(s, 20)), Type: reflect.TypeFor[bool]()}
}

// legacyTags are a v1 conversation's tags: a list of strings (as documented), a list of
// {"tag": ...} objects (as v2), or one comma-separated string.
type legacyTags []string

// UnmarshalJSON implements json.Unmarshaler.
func (t *legacyTags) UnmarshalJSON(raw []byte) error {
	raw = bytes.TrimSpace(raw)
	*t = nil
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		for _, tag := range strings.Split(s, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				*t = append(*t, tag)
			}
		}
		return nil
	case raw[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return err
		}
		for _, it := range items {
			var s string
			var o struct {
				Tag string `json:"tag"`
			}
			switch {
			case json.Unmarshal(it, &s) == nil:
				*t = append(*t, s)
			case json.Unmarshal(it, &o) == nil:
				*t = append(*t, o.Tag)
			default:
				return &json.UnmarshalTypeError{Value: adapter.JSONKind(it), Type: reflect.TypeFor[string]()}
			}
		}
		return nil
	}
	return &json.UnmarshalTypeError{Value: adapter.JSONKind(raw), Type: reflect.TypeFor[[]string]()}
}

// legacyPersonID is v1's closedBy: a person object, or its id alone.
type legacyPersonID string

// UnmarshalJSON implements json.Unmarshaler.
func (p *legacyPersonID) UnmarshalJSON(raw []byte) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var lp legacyPerson
		if err := json.Unmarshal(raw, &lp); err != nil {
			return err
		}
		*p = legacyPersonID(lp.ID)
		return nil
	}
	var id adapter.ID
	if err := id.UnmarshalJSON(raw); err != nil {
		return err
	}
	*p = legacyPersonID(id)
	return nil
}
