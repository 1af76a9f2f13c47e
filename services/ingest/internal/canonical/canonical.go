// Package canonical decodes and validates the canonical JSON form of ticket events (DESIGN.md §2)
// into TicketEvent messages. A request is all or nothing: Decode returns either every event or
// every problem it found, each naming the event's position and the dotted JSON field.
package canonical

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Limits of the canonical form, in bytes unless named otherwise.
const (
	MaxIDBytes      = 256
	MaxChannelBytes = 64
	MaxTags         = 50
	MaxTagBytes     = 128
	MaxCommentBytes = 4000
	DefaultSource   = "generic"
)

// Sources are the accepted values of the source field.
var Sources = []string{"zendesk", "chatwoot", "freshdesk", "helpscout", "zammad", "intercom", DefaultSource}

// Problem is one reason a request was rejected. Index is the event's position in the array (0 for
// a single object); Field is the dotted JSON name ("actor.kind", "tags[3]"), empty for the body.
type Problem struct {
	Index  int    `json:"index"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Problems is every problem found in a request; it is the error Decode returns for bad input.
type Problems []Problem

func (p Problems) Error() string {
	if len(p) == 0 {
		return "no problems"
	}
	first := p[0]
	msg := fmt.Sprintf("event %d: %s: %s", first.Index, first.Field, first.Reason)
	if first.Field == "" {
		msg = fmt.Sprintf("event %d: %s", first.Index, first.Reason)
	}
	if len(p) > 1 {
		msg += fmt.Sprintf(" (and %d more problems)", len(p)-1)
	}
	return msg
}

// ErrTooManyEvents is wrapped by the error Decode returns when the array exceeds Options.MaxEvents.
var ErrTooManyEvents = errors.New("too many events")

// Options are the request's context and the limits to enforce.
type Options struct {
	// Tenant is stored in every event; it comes from the request path, never the body.
	Tenant string
	// Now is the receive time: it becomes received_at and the reference for MaxFutureSkew.
	Now time.Time
	// MaxFutureSkew is how far in the future occurred_at may be (clock skew at the source).
	MaxFutureSkew time.Duration
	// MaxEvents caps the array length; 0 means no cap.
	MaxEvents int
}

// Decode parses data (one event object or an array of them). It returns the events, or an error
// that is Problems for bad input or wraps ErrTooManyEvents.
func Decode(data []byte, o Options) ([]*ticketpulsev1.TicketEvent, error) {
	if !json.Valid(data) {
		var raw json.RawMessage
		err := json.Unmarshal(data, &raw)
		reason := "malformed JSON"
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			reason = fmt.Sprintf("malformed JSON at byte offset %d: %s", se.Offset, se.Error())
		}
		return nil, Problems{{Index: 0, Field: "", Reason: reason}}
	}
	start := skipWS(data, 0)
	var raws [][]byte
	switch data[start] {
	case '{':
		raws = [][]byte{data[start:valueEnd(data, start)]}
	case '[':
		raws = elements(data[start:])
		if len(raws) == 0 {
			return nil, Problems{{Index: 0, Field: "", Reason: "empty array: send at least one event"}}
		}
		if o.MaxEvents > 0 && len(raws) > o.MaxEvents {
			return nil, fmt.Errorf("%w: %d events, at most %d per request", ErrTooManyEvents, len(raws), o.MaxEvents)
		}
	default:
		return nil, Problems{{Index: 0, Field: "", Reason: "must be a JSON object or an array of JSON objects"}}
	}
	d := decoder{opts: o, received: timestamppb.New(o.Now)}
	events := make([]*ticketpulsev1.TicketEvent, 0, len(raws))
	for i, raw := range raws {
		d.index = i
		if raw[0] != '{' {
			d.add("", "must be a JSON object")
			continue
		}
		if ev := d.event(raw); ev != nil {
			events = append(events, ev)
		}
	}
	if len(d.problems) > 0 {
		return nil, d.problems
	}
	return events, nil
}

// state of one field after its member was read.
type state uint8

const (
	absent  state = iota // not in the object, or null
	invalid              // present but rejected (a problem was recorded)
	present              // present and valid
)

type decoder struct {
	opts     Options
	received *timestamppb.Timestamp
	index    int
	problems Problems
}

func (d *decoder) add(field, reason string) {
	d.problems = append(d.problems, Problem{Index: d.index, Field: field, Reason: reason})
}

// event decodes one object; it returns nil when the event had problems.
func (d *decoder) event(obj []byte) *ticketpulsev1.TicketEvent {
	before := len(d.problems)
	ev := &ticketpulsev1.TicketEvent{Tenant: d.opts.Tenant, Source: DefaultSource, ReceivedAt: d.received}
	var id, ticket, typ, occurred, actor, status, priority, public, sat, source state
	var seenBuf [16]string
	seen := seenKeys(seenBuf[:0])
	members(obj, func(rawKey, val []byte) {
		key, field, ok := d.key(rawKey, "", &seen)
		if !ok {
			return
		}
		switch key {
		case "id":
			ev.Id, id = d.ident(field, val, MaxIDBytes)
		case "ticket_id":
			ev.TicketId, ticket = d.ident(field, val, MaxIDBytes)
		case "source":
			ev.Source, source = d.word(field, val, sourceWords)
			if source != present {
				ev.Source = DefaultSource
			}
		case "type":
			var v string
			if v, typ = d.word(field, val, typeWords); typ == present {
				ev.Type = typeByWord[v]
			}
		case "occurred_at":
			ev.OccurredAt, occurred = d.time(field, val)
		case "actor":
			ev.Actor, actor = d.actor(field, val)
		case "assignee_id":
			ev.AssigneeId, _ = d.text(field, val, MaxIDBytes, false)
		case "team_id":
			ev.TeamId, _ = d.text(field, val, MaxIDBytes, false)
		case "priority":
			var v string
			if v, priority = d.word(field, val, priorityWords); priority == present {
				ev.Priority = priorityByWord[v]
			}
		case "status":
			var v string
			if v, status = d.word(field, val, statusWords); status == present {
				ev.Status = statusByWord[v]
			}
		case "public":
			var b bool
			if b, public = d.bool(field, val); public == present {
				ev.Public = &b
			}
		case "satisfaction":
			ev.Satisfaction, sat = d.satisfaction(field, val)
		case "channel":
			ev.Channel, _ = d.text(field, val, MaxChannelBytes, false)
		case "tags":
			ev.Tags, _ = d.tags(field, val)
		default:
			d.add(field, "unknown field")
		}
	})
	d.required("id", id)
	d.required("ticket_id", ticket)
	d.required("type", typ)
	d.required("occurred_at", occurred)
	d.required("actor", actor)
	if typ == present {
		switch ev.Type {
		case ticketpulsev1.EventType_EVENT_TYPE_STATUS_CHANGED:
			if status == absent {
				d.add("status", "required for status_changed")
			}
		case ticketpulsev1.EventType_EVENT_TYPE_PRIORITY_CHANGED:
			if priority == absent {
				d.add("priority", "required for priority_changed")
			}
		case ticketpulsev1.EventType_EVENT_TYPE_SATISFACTION_RATED:
			if sat == absent {
				d.add("satisfaction", "required for satisfaction_rated")
			}
		case ticketpulsev1.EventType_EVENT_TYPE_AGENT_MESSAGE:
			if public == absent {
				d.add("public", "required for agent_message (false marks a private note)")
			}
		case ticketpulsev1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE:
			if public == absent {
				t := true
				ev.Public = &t
			}
		}
	}
	if len(d.problems) > before {
		return nil
	}
	return ev
}

// seenKeys remembers an object's member names. Objects have a dozen members at most, so a
// linear scan beats a map and allocates nothing per event.
type seenKeys []string

func (s *seenKeys) add(k string) (dup bool) {
	for _, x := range *s {
		if x == k {
			return true
		}
	}
	*s = append(*s, k)
	return false
}

// key unquotes a member name, rejecting duplicates; field is its dotted path under prefix.
func (d *decoder) key(raw []byte, prefix string, seen *seenKeys) (key, field string, ok bool) {
	key, valid := unquote(raw)
	field = prefix + key
	if len(field) > 80 {
		field = truncate(field, 80)
	}
	if !valid {
		d.add(field, "field name is not valid UTF-8")
		return "", "", false
	}
	if seen.add(key) {
		d.add(field, "duplicate field")
		return "", "", false
	}
	return key, field, true
}

func (d *decoder) required(field string, s state) {
	if s == absent {
		d.add(field, "required")
	}
}

func isNull(raw []byte) bool { return raw[0] == 'n' }

func (d *decoder) str(field string, raw []byte) (string, state) {
	if isNull(raw) {
		return "", absent
	}
	if raw[0] != '"' {
		d.add(field, "must be a string")
		return "", invalid
	}
	s, ok := unquote(raw)
	if !ok {
		d.add(field, "not valid UTF-8")
		return "", invalid
	}
	return s, present
}

// text reads a free-form string of at most max bytes without control characters (newlines and
// tabs allowed when multiline). The empty string counts as absent.
func (d *decoder) text(field string, raw []byte, max int, multiline bool) (string, state) {
	s, st := d.str(field, raw)
	if st != present {
		return "", st
	}
	if len(s) > max {
		d.add(field, fmt.Sprintf("longer than %d bytes", max))
		return "", invalid
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			d.add(field, fmt.Sprintf("contains the control character %U", r))
			return "", invalid
		}
	}
	if s == "" {
		return "", absent
	}
	return s, present
}

// ident reads a required identifier: present, non-empty text.
func (d *decoder) ident(field string, raw []byte, max int) (string, state) {
	if raw[0] == '"' && len(raw) == 2 {
		d.add(field, "must not be empty")
		return "", invalid
	}
	return d.text(field, raw, max, false)
}

func (d *decoder) word(field string, raw []byte, words wordSet) (string, state) {
	s, st := d.str(field, raw)
	if st != present {
		return "", st
	}
	if !words.has(s) {
		d.add(field, fmt.Sprintf("unknown value %q; want one of %s", truncate(s, 40), words.list))
		return "", invalid
	}
	return s, present
}

func (d *decoder) bool(field string, raw []byte) (bool, state) {
	switch raw[0] {
	case 'n':
		return false, absent
	case 't':
		return true, present
	case 'f':
		return false, present
	}
	d.add(field, "must be a boolean")
	return false, invalid
}

// int reads a JSON integer literal; fractions and exponents are not integers here. ok reports
// whether the value is one of allowed; reason describes the allowed values.
func (d *decoder) int(field string, raw []byte, allowed func(int) bool, reason string) (int, state) {
	if isNull(raw) {
		return 0, absent
	}
	if !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') || strings.ContainsAny(string(raw), ".eE") {
		d.add(field, "must be an integer")
		return 0, invalid
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || !allowed(n) {
		d.add(field, reason)
		return 0, invalid
	}
	return n, present
}

func (d *decoder) time(field string, raw []byte) (*timestamppb.Timestamp, state) {
	s, st := d.str(field, raw)
	if st != present {
		return nil, st
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		d.add(field, fmt.Sprintf("not an RFC 3339 timestamp (e.g. 2026-03-02T09:14:05Z): %q", truncate(s, 40)))
		return nil, invalid
	}
	ts := timestamppb.New(t)
	if err := ts.CheckValid(); err != nil {
		d.add(field, "out of the representable range (years 0001 to 9999)")
		return nil, invalid
	}
	if t.After(d.opts.Now.Add(d.opts.MaxFutureSkew)) {
		d.add(field, fmt.Sprintf("more than %s in the future", d.opts.MaxFutureSkew))
		return nil, invalid
	}
	return ts, present
}

func (d *decoder) object(field string, raw []byte) state {
	if isNull(raw) {
		return absent
	}
	if raw[0] != '{' {
		d.add(field, "must be an object")
		return invalid
	}
	return present
}

func (d *decoder) actor(field string, raw []byte) (*ticketpulsev1.Actor, state) {
	st := d.object(field, raw)
	if st != present {
		return nil, st
	}
	var kind, id state
	a := &ticketpulsev1.Actor{}
	before := len(d.problems)
	var seenBuf [16]string
	seen := seenKeys(seenBuf[:0])
	members(raw, func(rawKey, val []byte) {
		key, f, ok := d.key(rawKey, field+".", &seen)
		if !ok {
			return
		}
		switch key {
		case "id":
			a.Id, id = d.text(f, val, MaxIDBytes, false)
		case "kind":
			var v string
			if v, kind = d.word(f, val, actorWords); kind == present {
				a.Kind = actorByWord[v]
			}
		default:
			d.add(f, "unknown field")
		}
	})
	d.required(field+".kind", kind)
	if kind == present && id == absent &&
		(a.Kind == ticketpulsev1.ActorKind_ACTOR_KIND_AGENT || a.Kind == ticketpulsev1.ActorKind_ACTOR_KIND_CUSTOMER) {
		d.add(field+".id", "required for agent and customer actors")
	}
	if len(d.problems) > before {
		st = invalid
	}
	return a, st
}

func (d *decoder) satisfaction(field string, raw []byte) (*ticketpulsev1.Satisfaction, state) {
	st := d.object(field, raw)
	if st != present {
		return nil, st
	}
	var score, scale state
	s := &ticketpulsev1.Satisfaction{Scale: 5}
	before := len(d.problems)
	var seenBuf [16]string
	seen := seenKeys(seenBuf[:0])
	members(raw, func(rawKey, val []byte) {
		key, f, ok := d.key(rawKey, field+".", &seen)
		if !ok {
			return
		}
		switch key {
		case "score":
			var n int
			if n, score = d.int(f, val, func(n int) bool { return n >= 1 && n <= 5 }, "must be between 1 and 5"); score == present {
				s.Score = int32(n)
			}
		case "scale":
			var n int
			if n, scale = d.int(f, val, func(n int) bool { return n == 2 || n == 3 || n == 5 }, "must be 2, 3 or 5"); scale == present {
				s.Scale = int32(n)
			}
		case "comment":
			s.Comment, _ = d.text(f, val, MaxCommentBytes, true)
		default:
			d.add(f, "unknown field")
		}
	})
	d.required(field+".score", score)
	// Two- and three-point scales are normalised onto 1..5 (DESIGN.md §2), so other scores
	// on them mean the sender did not normalise.
	if score == present && scale != invalid {
		switch {
		case s.Scale == 2 && s.Score != 1 && s.Score != 5:
			d.add(field+".score", "on a 2-point scale must be 1 (bad) or 5 (good)")
		case s.Scale == 3 && s.Score != 1 && s.Score != 3 && s.Score != 5:
			d.add(field+".score", "on a 3-point scale must be 1, 3 or 5")
		}
	}
	if len(d.problems) > before {
		st = invalid
	}
	return s, st
}

func (d *decoder) tags(field string, raw []byte) ([]string, state) {
	if isNull(raw) {
		return nil, absent
	}
	if raw[0] != '[' {
		d.add(field, "must be an array of strings")
		return nil, invalid
	}
	items := elements(raw)
	st := present
	if len(items) > MaxTags {
		d.add(field, fmt.Sprintf("more than %d tags", MaxTags))
		st = invalid
	}
	tags := make([]string, 0, len(items))
	for i, item := range items {
		f := field + "[" + strconv.Itoa(i) + "]"
		if isNull(item) {
			d.add(f, "must be a string")
			st = invalid
			continue
		}
		// An empty tag is odd but harmless; it is kept as the source sent it.
		t, ts := d.text(f, item, MaxTagBytes, false)
		if ts == invalid {
			st = invalid
			continue
		}
		tags = append(tags, t)
	}
	if len(tags) == 0 {
		tags = nil
	}
	return tags, st
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// wordSet is a closed set of lower-case enum words.
type wordSet struct {
	words map[string]bool
	list  string // for error messages, in proto order
}

func (w wordSet) has(s string) bool { return w.words[s] }

func newWordSet(words []string) wordSet {
	w := wordSet{words: map[string]bool{}, list: strings.Join(words, ", ")}
	for _, s := range words {
		w.words[s] = true
	}
	return w
}

// enumWords maps the lower-case JSON words of a proto enum (prefix dropped) to its values.
func enumWords[E ~int32](names map[int32]string, prefix string) (map[string]E, map[E]string, wordSet) {
	byWord := map[string]E{}
	byValue := map[E]string{}
	nums := make([]int32, 0, len(names))
	for n := range names {
		if n != 0 {
			nums = append(nums, n)
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	words := make([]string, 0, len(nums))
	for _, n := range nums {
		w := strings.ToLower(strings.TrimPrefix(names[n], prefix))
		byWord[w] = E(n)
		byValue[E(n)] = w
		words = append(words, w)
	}
	return byWord, byValue, newWordSet(words)
}

var (
	typeByWord, typeWord, typeWords             = enumWords[ticketpulsev1.EventType](ticketpulsev1.EventType_name, "EVENT_TYPE_")
	actorByWord, actorWord, actorWords          = enumWords[ticketpulsev1.ActorKind](ticketpulsev1.ActorKind_name, "ACTOR_KIND_")
	priorityByWord, priorityWord, priorityWords = enumWords[ticketpulsev1.Priority](ticketpulsev1.Priority_name, "PRIORITY_")
	statusByWord, statusWord, statusWords       = enumWords[ticketpulsev1.TicketStatus](ticketpulsev1.TicketStatus_name, "TICKET_STATUS_")
	sourceWords                                 = newWordSet(Sources)
)

// TypeWord is the canonical JSON word of an event type ("agent_message"), as used in subjects;
// it is empty for EVENT_TYPE_UNSPECIFIED and unknown values.
func TypeWord(t ticketpulsev1.EventType) string { return typeWord[t] }

// ActorWord, PriorityWord and StatusWord are the canonical JSON words of the other enums.
func ActorWord(k ticketpulsev1.ActorKind) string     { return actorWord[k] }
func PriorityWord(p ticketpulsev1.Priority) string   { return priorityWord[p] }
func StatusWord(s ticketpulsev1.TicketStatus) string { return statusWord[s] }
