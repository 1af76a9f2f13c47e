package canonical

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// Validate checks events an adapter built against the rules of the canonical form, the same
// rules Decode applies to a JSON body, and returns Problems naming the canonical JSON fields, in
// the order encoding/json writes them, or an error wrapping ErrTooManyEvents. o.Tenant is not
// used.
func Validate(events []Event, o Options) error {
	if o.MaxEvents > 0 && len(events) > o.MaxEvents {
		return tooMany(len(events), o.MaxEvents)
	}
	c := newChecker(o)
	for i := range events {
		c.index = i
		c.event(&events[i])
	}
	return c.err()
}

// state of one field after its value was checked.
type state uint8

const (
	absent  state = iota // not in the object, or null
	invalid              // present but rejected (a problem was recorded)
	present              // present and valid
)

// fields is what the rules across fields of one event need to know.
type fields struct {
	id, ticket, typ, occurred, actor, status, priority, public, sat state
	assignee, team, channel, tags, qa, call                         state
}

// path names the field of a Problem: prefix+name, or name[elem] when elem >= 0. It is only
// spelled out for a problem that is listed, so counting the problems of a hostile body
// allocates nothing per problem.
type path struct {
	prefix, name string
	elem         int
}

func field(name string) path { return path{name: name, elem: -1} }

func (p path) String() string {
	s := p.prefix + p.name
	if p.elem >= 0 {
		s += "[" + strconv.Itoa(p.elem) + "]"
	}
	return truncate(s, 80)
}

// checker holds the rules of the canonical form and the problems they found: the first
// MaxProblems in order, and a count of the rest.
type checker struct {
	now   time.Time
	skew  time.Duration
	index int
	list  []Problem
	more  int
}

func newChecker(o Options) *checker { return &checker{now: o.Now, skew: o.MaxFutureSkew} }

// listed reports whether the next problem is to be listed; once MaxProblems are, it only counts
// the problem, and the caller skips formatting its reason.
func (c *checker) listed() bool {
	if c.full() {
		c.more++
		return false
	}
	return true
}

// full reports whether MaxProblems problems are listed.
func (c *checker) full() bool { return len(c.list) >= MaxProblems }

func (c *checker) add(p path, reason string) {
	if c.listed() {
		c.put(p, reason)
	}
}

// put lists a problem; callers that format its reason check listed first.
func (c *checker) put(p path, reason string) {
	c.list = append(c.list, Problem{Index: c.index, Field: p.String(), Reason: reason})
}

// count is the number of problems found so far, listed or not.
func (c *checker) count() int { return len(c.list) + c.more }

func (c *checker) err() error {
	if c.count() == 0 {
		return nil
	}
	return Problems{List: c.list, More: c.more}
}

// The rules below are stated once; Validate runs them over a typed event and Decode over each
// member as it reads it.

// TextProblem returns why s cannot stand in a canonical text field of at most max bytes (not
// UTF-8, too long, a control character; newlines and tabs are allowed when multiline), or "".
func TextProblem(s string, max int, multiline bool) string {
	return inspectText(s, max, multiline).String()
}

// textIssue is what is wrong with a text, formatted only when it is listed.
type textIssue struct {
	kind uint8 // 0 none, then the values below
	max  int
	r    rune
}

const (
	notUTF8 uint8 = iota + 1
	tooLong
	controlChar
)

func inspectText(s string, max int, multiline bool) textIssue {
	if !utf8.ValidString(s) {
		return textIssue{kind: notUTF8}
	}
	if len(s) > max {
		return textIssue{kind: tooLong, max: max}
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return textIssue{kind: controlChar, r: r}
		}
	}
	return textIssue{}
}

func (t textIssue) String() string {
	switch t.kind {
	case notUTF8:
		return "not valid UTF-8"
	case tooLong:
		return fmt.Sprintf("longer than %d bytes", t.max)
	case controlChar:
		return fmt.Sprintf("contains the control character %U", t.r)
	}
	return ""
}

// text checks a free-form string of at most max bytes; the empty string counts as absent.
func (c *checker) text(p path, s string, max int, multiline bool) state {
	if is := inspectText(s, max, multiline); is.kind != 0 {
		if c.listed() {
			c.put(p, is.String())
		}
		return invalid
	}
	if s == "" {
		return absent
	}
	return present
}

// ident checks a required identifier: present, non-empty text.
func (c *checker) ident(p path, s string) state {
	if s == "" {
		c.add(p, "must not be empty")
		return invalid
	}
	return c.text(p, s, MaxIDBytes, false)
}

func (c *checker) word(p path, s string, words wordSet) state {
	if !words.has(s) {
		if c.listed() {
			c.put(p, fmt.Sprintf("unknown value %q; want one of %s", truncate(s, 40), words.list))
		}
		return invalid
	}
	return present
}

// Representable reports whether t is within the years 0001 to 9999, which a TicketEvent holds.
func Representable(t time.Time) bool { return timestamppb.New(t).CheckValid() == nil }

func (c *checker) time(p path, t time.Time) state {
	if !Representable(t) {
		c.add(p, "out of the representable range (years 0001 to 9999)")
		return invalid
	}
	if t.After(c.now.Add(c.skew)) {
		if c.listed() {
			c.put(p, fmt.Sprintf("more than %s in the future", c.skew))
		}
		return invalid
	}
	return present
}

func (c *checker) sequence(p path, n uint64) state {
	if n > MaxSequence {
		if c.listed() {
			c.put(p, fmt.Sprintf("greater than %d (2^53-1), the largest integer every JSON client reads exactly", uint64(MaxSequence)))
		}
		return invalid
	}
	if n == 0 {
		return absent
	}
	return present
}

func (c *checker) score(p path, n int) state {
	if n < 1 || n > 5 {
		c.add(p, "must be between 1 and 5")
		return invalid
	}
	return present
}

func (c *checker) scale(p path, n int) state {
	if n != 2 && n != 3 && n != 5 {
		c.add(p, "must be 2, 3 or 5")
		return invalid
	}
	return present
}

// qaScore checks a QA percentage (the score or a category's).
func (c *checker) qaScore(p path, v float64) state {
	if math.IsNaN(v) || v < 0 || v > 100 {
		c.add(p, "must be a percentage between 0 and 100")
		return invalid
	}
	return present
}

// categoryCount checks the number of a review's categories, before the categories themselves.
func (c *checker) categoryCount(n int) state {
	if n > MaxCategories {
		if c.listed() {
			c.put(field("qa.categories"), fmt.Sprintf("more than %d categories", MaxCategories))
		}
		return invalid
	}
	return present
}

// categoryName checks a category's name; its problems name the field qa.categories, as a name
// that is not text cannot stand in a field path.
func (c *checker) categoryName(name string) state {
	if name == "" {
		c.add(field("qa.categories"), "category name must not be empty")
		return invalid
	}
	if is := inspectText(name, MaxCategoryBytes, false); is.kind != 0 {
		if c.listed() {
			c.put(field("qa.categories"), "category name "+is.String())
		}
		return invalid
	}
	return present
}

// categoryField is the field of a category's value, e.g. qa.categories.Empathy.
func categoryField(name string) path { return path{prefix: "qa.categories.", name: name, elem: -1} }

// qaDone applies the rules across a review's fields.
func (c *checker) qaDone(review, agent, score state) {
	c.required(field("qa.review_id"), review)
	c.required(field("qa.agent_id"), agent)
	c.required(field("qa.score"), score)
}

// qaForbidden are the fields a qa_scored event must not carry: a review changes nothing of the
// ticket, and a team or assignee on it would move the ticket's own figures and SLA policy.
const qaForbidden = "not allowed on qa_scored: a review does not change the ticket (the reviewed agent and team are qa.agent_id and qa.team_id)"

// tagCount checks the number of tags, before the tags themselves.
func (c *checker) tagCount(n int) state {
	if n > MaxTags {
		if c.listed() {
			c.put(field("tags"), fmt.Sprintf("more than %d tags", MaxTags))
		}
		return invalid
	}
	return present
}

// tag checks one tag; an empty tag is odd but harmless, and kept as the source sent it.
func (c *checker) tag(p path, s string) state {
	if st := c.text(p, s, MaxTagBytes, false); st == invalid {
		return invalid
	}
	return present
}

func (c *checker) required(p path, s state) {
	if s == absent {
		c.add(p, "required")
	}
}

// actorDone applies the rules across an actor's fields.
func (c *checker) actorDone(kind, id state, k string) {
	c.required(field("actor.kind"), kind)
	if kind == present && id == absent && (k == "agent" || k == "customer") {
		c.add(field("actor.id"), "required for agent and customer actors")
	}
}

// satisfactionDone applies the rules across a rating's fields. Two- and three-point scales are
// normalised onto 1..5 (DESIGN.md §2), so other scores on them mean the sender did not
// normalise.
func (c *checker) satisfactionDone(score, scale state, s *Satisfaction) {
	c.required(field("satisfaction.score"), score)
	if score == present && scale != invalid {
		switch {
		case s.Scale == 2 && s.Score != 1 && s.Score != 5:
			c.add(field("satisfaction.score"), "on a 2-point scale must be 1 (bad) or 5 (good)")
		case s.Scale == 3 && s.Score != 1 && s.Score != 3 && s.Score != 5:
			c.add(field("satisfaction.score"), "on a 3-point scale must be 1, 3 or 5")
		}
	}
}

// eventDone applies the rules across an event's fields: the required ones, and what each type
// needs.
// forbidTicketAttributes refuses, with reason, each attribute of the ticket an event carries: a
// review or a call is about an agent's work, and must not move the ticket's own figures.
func (c *checker) forbidTicketAttributes(f *fields, reason string) {
	for _, x := range []struct {
		name string
		st   state
	}{{"assignee_id", f.assignee}, {"team_id", f.team}, {"priority", f.priority}, {"status", f.status},
		{"public", f.public}, {"satisfaction", f.sat}, {"channel", f.channel}, {"tags", f.tags}} {
		if x.st == present {
			c.add(field(x.name), reason)
		}
	}
}

func (c *checker) eventDone(typ string, f *fields) {
	c.required(field("id"), f.id)
	c.required(field("ticket_id"), f.ticket)
	c.required(field("type"), f.typ)
	c.required(field("occurred_at"), f.occurred)
	c.required(field("actor"), f.actor)
	if f.typ != present {
		return
	}
	switch typ {
	case "status_changed":
		if f.status == absent {
			c.add(field("status"), "required for status_changed")
		}
	case "priority_changed":
		if f.priority == absent {
			c.add(field("priority"), "required for priority_changed")
		}
	case "satisfaction_rated":
		if f.sat == absent {
			c.add(field("satisfaction"), "required for satisfaction_rated")
		}
	case "agent_message":
		if f.public == absent {
			c.add(field("public"), "required for agent_message (false marks a private note)")
		}
	case "qa_scored":
		c.forbidTicketAttributes(f, qaForbidden)
		if f.qa == absent {
			c.add(field("qa"), "required for qa_scored")
		}
	}
	if typ != "qa_scored" && f.qa == present {
		c.add(field("qa"), "only allowed on qa_scored")
	}
}

// event checks a typed event field by field, as its canonical JSON (empty optional fields left
// out) would be read.
func (c *checker) event(e *Event) {
	var f fields
	f.id = c.ident(field("id"), e.ID)
	c.word(field("source"), e.Source, sourceWords)
	f.ticket = c.ident(field("ticket_id"), e.TicketID)
	f.typ = c.word(field("type"), e.Type, typeWords)
	f.occurred = c.time(field("occurred_at"), e.OccurredAt)
	c.sequence(field("sequence"), e.Sequence)
	f.actor = c.actor(&e.Actor)
	f.assignee = c.text(field("assignee_id"), e.AssigneeID, MaxIDBytes, false)
	f.team = c.text(field("team_id"), e.TeamID, MaxIDBytes, false)
	if e.Priority != "" {
		f.priority = c.word(field("priority"), e.Priority, priorityWords)
	}
	if e.Status != "" {
		f.status = c.word(field("status"), e.Status, statusWords)
	}
	if e.Public != nil {
		f.public = present
	}
	if e.Satisfaction != nil {
		f.sat = c.satisfaction(e.Satisfaction)
	}
	f.channel = c.text(field("channel"), e.Channel, MaxChannelBytes, false)
	if len(e.Tags) > 0 {
		f.tags = c.tagCount(len(e.Tags))
		for i, t := range e.Tags {
			c.tag(path{name: "tags", elem: i}, t)
		}
	}
	if e.QA != nil {
		f.qa = c.qa(e.QA)
	}
	var cs callStates
	if e.Call != nil {
		f.call, cs = c.call(e.Type, e.Call)
	}
	c.eventDone(e.Type, &f)
	c.callEvent(e.Type, &f, cs, e.TicketID, e.Call)
}

func (c *checker) actor(a *Actor) state {
	before := c.count()
	var id state
	if a.ID != "" {
		id = c.text(field("actor.id"), a.ID, MaxIDBytes, false)
	}
	kind := c.word(field("actor.kind"), a.Kind, actorWords)
	c.actorDone(kind, id, a.Kind)
	if c.count() > before {
		return invalid
	}
	return present
}

func (c *checker) satisfaction(s *Satisfaction) state {
	before := c.count()
	score := c.score(field("satisfaction.score"), s.Score)
	var scale state
	if s.Scale != 0 {
		scale = c.scale(field("satisfaction.scale"), s.Scale)
	}
	if s.Comment != "" {
		c.text(field("satisfaction.comment"), s.Comment, MaxCommentBytes, true)
	}
	c.satisfactionDone(score, scale, s)
	if c.count() > before {
		return invalid
	}
	return present
}

func (c *checker) qa(q *QA) state {
	before := c.count()
	review := c.ident(field("qa.review_id"), q.ReviewID)
	c.text(field("qa.reviewer_id"), q.ReviewerID, MaxIDBytes, false)
	agent := c.ident(field("qa.agent_id"), q.AgentID)
	c.text(field("qa.team_id"), q.TeamID, MaxIDBytes, false)
	score := c.qaScore(field("qa.score"), q.Score)
	c.text(field("qa.scorecard"), q.Scorecard, MaxIDBytes, false)
	if len(q.Categories) > 0 && c.categoryCount(len(q.Categories)) == present {
		// A map has no order; problems are listed in the order of the names.
		names := make([]string, 0, len(q.Categories))
		for name := range q.Categories {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if c.categoryName(name) == present {
				c.qaScore(categoryField(name), q.Categories[name])
			}
		}
	}
	c.qaDone(review, agent, score)
	if c.count() > before {
		return invalid
	}
	return present
}
