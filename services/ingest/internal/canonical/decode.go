package canonical

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Decode parses data (one event object or an array of them) into events. It applies the rules
// Validate applies, to each member as it reads it, so the problems are listed in the order of
// the body. It returns the events, or an error that is Problems for bad input or wraps
// ErrTooManyEvents. Its time is linear in len(data), whatever the body.
func Decode(data []byte, o Options) ([]Event, error) {
	if !json.Valid(data) {
		var raw json.RawMessage
		err := json.Unmarshal(data, &raw)
		reason := "malformed JSON"
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			reason = fmt.Sprintf("malformed JSON at byte offset %d: %s", se.Offset, se.Error())
		}
		return nil, Reject(0, "", reason)
	}
	start := skipWS(data, 0)
	// The body is valid JSON, so its value ends at its last byte that is not white space.
	end := len(bytes.TrimRight(data, " \t\r\n"))
	d := decoder{c: newChecker(o)}
	switch data[start] {
	case '{':
		d.element(data[start:end])
	case '[':
		// One walk over the array: it keeps the events a request may hold and counts the rest.
		var raws [][]byte
		n := 0
		eachElement(data[start:end], func(raw []byte) {
			if n++; o.MaxEvents <= 0 || n <= o.MaxEvents {
				raws = append(raws, raw)
			}
		})
		if n == 0 {
			return nil, Reject(0, "", "empty array: send at least one event")
		}
		if o.MaxEvents > 0 && n > o.MaxEvents {
			return nil, tooMany(n, o.MaxEvents)
		}
		d.events = make([]Event, 0, n)
		for _, raw := range raws {
			d.element(raw)
		}
	default:
		return nil, Reject(0, "", "must be a JSON object or an array of JSON objects")
	}
	if err := d.c.err(); err != nil {
		return nil, err
	}
	return d.events, nil
}

type decoder struct {
	c      *checker
	events []Event
}

// element decodes the next event of the request. Once a problem is found no event is kept: the
// request is rejected, and only its problems are still of interest.
func (d *decoder) element(raw []byte) {
	if raw[0] != '{' {
		d.c.add(field(""), "must be a JSON object")
	} else if ev, ok := d.event(raw); ok && d.c.count() == 0 {
		d.events = append(d.events, ev)
	}
	d.c.index++
}

// The members of each object, in the order of their bits in a keySet.
var (
	eventKeys = []string{"id", "ticket_id", "source", "type", "occurred_at", "actor", "assignee_id",
		"team_id", "priority", "status", "public", "satisfaction", "channel", "tags", "sequence", "qa", "call"}
	actorKeys        = []string{"id", "kind"}
	satisfactionKeys = []string{"score", "scale", "comment"}
	qaKeys           = []string{"review_id", "reviewer_id", "agent_id", "team_id", "score", "auto_fail", "scorecard", "categories"}
)

// event decodes one object; ok is false when it had problems.
func (d *decoder) event(obj []byte) (ev Event, ok bool) {
	before := d.c.count()
	ev.Source = DefaultSource
	var f fields
	var cs callStates
	var seen keySet
	members(obj, func(rawKey, val []byte) {
		key, ok := d.key(rawKey, "", eventKeys, &seen)
		if !ok {
			return
		}
		switch key {
		case "id":
			ev.ID, f.id = d.ident(field("id"), val)
		case "ticket_id":
			ev.TicketID, f.ticket = d.ident(field("ticket_id"), val)
		case "source":
			var st state
			if ev.Source, st = d.word(field("source"), val, sourceWords); st != present {
				ev.Source = DefaultSource
			}
		case "type":
			ev.Type, f.typ = d.word(field("type"), val, typeWords)
		case "occurred_at":
			ev.OccurredAt, f.occurred = d.time(field("occurred_at"), val)
		case "sequence":
			ev.Sequence, _ = d.sequence(field("sequence"), val)
		case "actor":
			ev.Actor, f.actor = d.actor(val)
		case "assignee_id":
			ev.AssigneeID, f.assignee = d.text(field("assignee_id"), val, MaxIDBytes, false)
		case "team_id":
			ev.TeamID, f.team = d.text(field("team_id"), val, MaxIDBytes, false)
		case "priority":
			ev.Priority, f.priority = d.word(field("priority"), val, priorityWords)
		case "status":
			ev.Status, f.status = d.word(field("status"), val, statusWords)
		case "public":
			ev.Public, f.public = d.bool(field("public"), val)
		case "satisfaction":
			ev.Satisfaction, f.sat = d.satisfaction(val)
		case "channel":
			ev.Channel, f.channel = d.text(field("channel"), val, MaxChannelBytes, false)
		case "tags":
			if ev.Tags, f.tags = d.tags(val); len(ev.Tags) == 0 && f.tags == present {
				f.tags = absent // [] is no tags
			}
		case "qa":
			ev.QA, f.qa = d.qa(val)
		case "call":
			ev.Call, cs, f.call = d.call(val)
		default:
			d.c.add(path{name: key, elem: -1}, "unknown field")
		}
	})
	if ev.Call != nil && isCall(ev.Type) {
		n := d.c.count()
		if d.c.callDone(ev.Type, cs); d.c.count() > n {
			f.call = invalid
		}
	}
	d.c.eventDone(ev.Type, &f)
	d.c.callEvent(ev.Type, &f, cs, ev.TicketID, ev.Call)
	return ev, d.c.count() == before
}

// keySet remembers an object's member names, to find duplicates: the known ones as bits, and
// others only while problems are still listed. An unknown name is one problem either way
// ("unknown field" or "duplicate field"), so once the list is full counting it needs no
// memory, and an object of any number of distinct names is read in linear time.
type keySet struct {
	bits  uint32
	other map[string]struct{}
}

// add records key (known[i] when i >= 0) and reports whether it was there already.
func (s *keySet) add(key string, i int, remember bool) (dup bool) {
	if i >= 0 {
		bit := uint32(1) << i
		dup = s.bits&bit != 0
		s.bits |= bit
		return dup
	}
	if _, dup = s.other[key]; dup || !remember {
		return dup
	}
	if s.other == nil {
		s.other = map[string]struct{}{}
	}
	s.other[key] = struct{}{}
	return false
}

// key unquotes a member name, rejecting duplicates and names that are not UTF-8.
func (d *decoder) key(raw []byte, prefix string, known []string, seen *keySet) (string, bool) {
	key, i := knownKey(raw, known)
	valid := true
	if i < 0 {
		if d.c.full() && bytes.IndexByte(raw, '\\') < 0 {
			// Not a known name (an escape could spell one), so exactly one problem whatever
			// else it is: count it without reading it.
			d.c.more++
			return "", false
		}
		key, valid = unquote(raw)
		i = slices.Index(known, key)
	}
	if !valid {
		d.c.add(path{prefix: prefix, name: key, elem: -1}, "field name is not valid UTF-8")
		return "", false
	}
	if seen.add(key, i, !d.c.full()) {
		d.c.add(path{prefix: prefix, name: key, elem: -1}, "duplicate field")
		return "", false
	}
	return key, true
}

// knownKey returns the known name, and its index, that the literal raw spells without escapes,
// without allocating; -1 when there is none.
func knownKey(raw []byte, known []string) (string, int) {
	body := raw[1 : len(raw)-1]
	for i, k := range known {
		if string(body) == k {
			return k, i
		}
	}
	return "", -1
}

func isNull(raw []byte) bool { return raw[0] == 'n' }

func (d *decoder) str(p path, raw []byte) (string, state) {
	if isNull(raw) {
		return "", absent
	}
	if raw[0] != '"' {
		d.c.add(p, "must be a string")
		return "", invalid
	}
	s, ok := unquote(raw)
	if !ok {
		d.c.add(p, "not valid UTF-8")
		return "", invalid
	}
	return s, present
}

// checked reads a string member and applies rule to its value; the string is "" unless it is
// present and valid.
func (d *decoder) checked(p path, raw []byte, rule func(path, string) state) (string, state) {
	s, st := d.str(p, raw)
	if st == present {
		st = rule(p, s)
	}
	if st != present {
		return "", st
	}
	return s, present
}

// text reads a free-form string; the empty string counts as absent.
func (d *decoder) text(p path, raw []byte, max int, multiline bool) (string, state) {
	return d.checked(p, raw, func(p path, s string) state { return d.c.text(p, s, max, multiline) })
}

// ident reads a required identifier.
func (d *decoder) ident(p path, raw []byte) (string, state) { return d.checked(p, raw, d.c.ident) }

func (d *decoder) word(p path, raw []byte, words wordSet) (string, state) {
	return d.checked(p, raw, func(p path, s string) state { return d.c.word(p, s, words) })
}

func (d *decoder) bool(p path, raw []byte) (*bool, state) {
	switch raw[0] {
	case 'n':
		return nil, absent
	case 't', 'f':
		b := raw[0] == 't'
		return &b, present
	}
	d.c.add(p, "must be a boolean")
	return nil, invalid
}

// int reads a JSON integer literal; fractions and exponents are not integers here. A literal
// beyond int's range reads as 0, which every rule on integers rejects as out of range.
func (d *decoder) int(p path, raw []byte) (int, state) {
	if isNull(raw) {
		return 0, absent
	}
	if !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') || bytes.ContainsAny(raw, ".eE") {
		d.c.add(p, "must be an integer")
		return 0, invalid
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil {
		n = 0
	}
	return n, present
}

// sequence reads a non-negative JSON integer of at most MaxSequence; null is absent. Each way a
// value can miss is named, so a client sees which rule its value broke.
func (d *decoder) sequence(p path, raw []byte) (uint64, state) {
	switch {
	case isNull(raw):
		return 0, absent
	case raw[0] == '-':
		d.c.add(p, "must not be negative")
		return 0, invalid
	case raw[0] < '0' || raw[0] > '9':
		if d.c.listed() {
			d.c.put(p, "must be a JSON integer, not "+jsonKind(raw))
		}
		return 0, invalid
	case bytes.ContainsAny(raw, ".eE"):
		d.c.add(p, "must be a whole number, without a fraction or exponent")
		return 0, invalid
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		n = MaxSequence + 1 // only too many digits fail: a JSON integer is otherwise read
	}
	return n, d.c.sequence(p, n)
}

// jsonKind names the kind of a JSON value that is not a number.
func jsonKind(raw []byte) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a boolean"
}

func (d *decoder) time(p path, raw []byte) (time.Time, state) {
	s, st := d.str(p, raw)
	if st != present {
		return time.Time{}, st
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		if d.c.listed() {
			d.c.put(p, fmt.Sprintf("not an RFC 3339 timestamp (e.g. 2026-03-02T09:14:05Z): %q", truncate(s, 40)))
		}
		return time.Time{}, invalid
	}
	if st = d.c.time(p, t); st != present {
		return time.Time{}, st
	}
	return t, present
}

func (d *decoder) object(p path, raw []byte) state {
	if isNull(raw) {
		return absent
	}
	if raw[0] != '{' {
		d.c.add(p, "must be an object")
		return invalid
	}
	return present
}

func (d *decoder) actor(raw []byte) (Actor, state) {
	var a Actor
	st := d.object(field("actor"), raw)
	if st != present {
		return a, st
	}
	before := d.c.count()
	var kind, id state
	var seen keySet
	members(raw, func(rawKey, val []byte) {
		key, ok := d.key(rawKey, "actor.", actorKeys, &seen)
		if !ok {
			return
		}
		switch key {
		case "id":
			a.ID, id = d.text(field("actor.id"), val, MaxIDBytes, false)
		case "kind":
			a.Kind, kind = d.word(field("actor.kind"), val, actorWords)
		default:
			d.c.add(path{prefix: "actor.", name: key, elem: -1}, "unknown field")
		}
	})
	d.c.actorDone(kind, id, a.Kind)
	if d.c.count() > before {
		st = invalid
	}
	return a, st
}

func (d *decoder) satisfaction(raw []byte) (*Satisfaction, state) {
	st := d.object(field("satisfaction"), raw)
	if st != present {
		return nil, st
	}
	before := d.c.count()
	var score, scale state
	s := &Satisfaction{}
	var seen keySet
	members(raw, func(rawKey, val []byte) {
		key, ok := d.key(rawKey, "satisfaction.", satisfactionKeys, &seen)
		if !ok {
			return
		}
		switch key {
		case "score":
			p := field("satisfaction.score")
			if s.Score, score = d.int(p, val); score == present {
				score = d.c.score(p, s.Score)
			}
		case "scale":
			p := field("satisfaction.scale")
			if s.Scale, scale = d.int(p, val); scale == present {
				scale = d.c.scale(p, s.Scale)
			}
			if scale != present {
				s.Scale = 0
			}
		case "comment":
			s.Comment, _ = d.text(field("satisfaction.comment"), val, MaxCommentBytes, true)
		default:
			d.c.add(path{prefix: "satisfaction.", name: key, elem: -1}, "unknown field")
		}
	})
	d.c.satisfactionDone(score, scale, s)
	if d.c.count() > before {
		st = invalid
	}
	return s, st
}

func (d *decoder) tags(raw []byte) ([]string, state) {
	if isNull(raw) {
		return nil, absent
	}
	if raw[0] != '[' {
		d.c.add(field("tags"), "must be an array of strings")
		return nil, invalid
	}
	st := d.c.tagCount(countElements(raw, MaxTags+1))
	var tags []string
	i := 0
	eachElement(raw, func(item []byte) {
		p := path{name: "tags", elem: i}
		i++
		if isNull(item) {
			d.c.add(p, "must be a string")
			st = invalid
			return
		}
		s, ts := d.str(p, item)
		if ts == present {
			ts = d.c.tag(p, s)
		}
		if ts == invalid {
			st = invalid
		}
		if st != invalid { // a rejected event keeps nothing
			tags = append(tags, s)
		}
	})
	return tags, st
}

// number reads a JSON number that is a QA percentage; null is absent.
func (d *decoder) number(p path, raw []byte) (float64, state) {
	v, st := d.float(p, raw)
	if st != present {
		return 0, st
	}
	return v, d.c.qaScore(p, v)
}

// float reads a JSON number, for the checks of what it measures; null is absent.
func (d *decoder) float(p path, raw []byte) (float64, state) {
	if isNull(raw) {
		return 0, absent
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		if d.c.listed() {
			d.c.put(p, "must be a JSON number, not "+jsonKind(raw))
		}
		return 0, invalid
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		v = math.Inf(1) // only a literal beyond float64's range fails: out of range either way
	}
	return v, present
}

func (d *decoder) qa(raw []byte) (*QA, state) {
	st := d.object(field("qa"), raw)
	if st != present {
		return nil, st
	}
	before := d.c.count()
	var review, agent, score state
	q := &QA{}
	var seen keySet
	members(raw, func(rawKey, val []byte) {
		key, ok := d.key(rawKey, "qa.", qaKeys, &seen)
		if !ok {
			return
		}
		switch key {
		case "review_id":
			q.ReviewID, review = d.ident(field("qa.review_id"), val)
		case "reviewer_id":
			q.ReviewerID, _ = d.text(field("qa.reviewer_id"), val, MaxIDBytes, false)
		case "agent_id":
			q.AgentID, agent = d.ident(field("qa.agent_id"), val)
		case "team_id":
			q.TeamID, _ = d.text(field("qa.team_id"), val, MaxIDBytes, false)
		case "score":
			q.Score, score = d.number(field("qa.score"), val)
		case "auto_fail":
			b, _ := d.bool(field("qa.auto_fail"), val)
			q.AutoFail = b != nil && *b
		case "scorecard":
			q.Scorecard, _ = d.text(field("qa.scorecard"), val, MaxIDBytes, false)
		case "categories":
			q.Categories, _ = d.categories(val)
		default:
			d.c.add(path{prefix: "qa.", name: key, elem: -1}, "unknown field")
		}
	})
	d.c.qaDone(review, agent, score)
	if d.c.count() > before {
		st = invalid
	}
	return q, st
}

// categories reads a review's categories, an object of names and percentages. The members are
// counted first, so an object of any size costs two linear walks and at most MaxCategories
// entries.
func (d *decoder) categories(raw []byte) (map[string]float64, state) {
	st := d.object(field("qa.categories"), raw)
	if st != present {
		return nil, st
	}
	n := 0
	members(raw, func(_, _ []byte) { n++ })
	if d.c.categoryCount(n) != present {
		return nil, invalid
	}
	out := make(map[string]float64, n)
	seen := make(map[string]struct{}, n)
	members(raw, func(rawKey, val []byte) {
		name, ok := unquote(rawKey)
		if !ok {
			d.c.add(field("qa.categories"), "category name is not valid UTF-8")
			st = invalid
			return
		}
		if d.c.categoryName(name) != present {
			st = invalid
			return
		}
		if _, dup := seen[name]; dup {
			d.c.add(categoryField(name), "duplicate category")
			st = invalid
			return
		}
		seen[name] = struct{}{}
		v, vs := d.number(categoryField(name), val)
		switch vs {
		case absent:
			d.c.add(categoryField(name), "must be a JSON number, not null")
			st = invalid
		case invalid:
			st = invalid
		default:
			out[name] = v
		}
	})
	if st != present || len(out) == 0 {
		return nil, st
	}
	return out, st
}
