// Package escalationstore is the escalation store: it keeps escalations in Redis, at most one
// open escalation per (tenant, rule, subject), with its level, its timeline, and the lifecycle
// changes still to be published.
//
// Each escalation lives in its subject's hash slot (the ticket's, agent's, team's or queue's), and every
// change is a compare-and-set on that slot, so replicas judging the same subject at once never
// open two escalations or lose a change. A change is first recorded in the escalation's outbox,
// then published, then removed from the outbox: a crash in between publishes it again, with the
// same message id, which JetStream drops as a duplicate.
package escalationstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/judge"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// Subject kinds.
const (
	Ticket = "ticket"
	Agent  = "agent"
	Team   = "team"
	// Queue is a contact-centre queue, judged on its call figures.
	Queue = "queue"
)

// SystemActor is the actor of changes the service makes itself.
const SystemActor = "system"

// Subject is what an escalation is about.
type Subject struct {
	Kind string
	ID   string
}

// kindLetter is the subject kind's letter in keys and ids, matching DESIGN.md's hash tags.
var kindLetter = map[string]string{Ticket: "t", Agent: "a", Team: "g", Queue: "q"}

func kindOf(letter string) (string, bool) {
	for k, l := range kindLetter {
		if l == letter {
			return k, true
		}
	}
	return "", false
}

// Entry is one line of an escalation's timeline.
type Entry struct {
	At       time.Time       `json:"at"`
	Kind     tpv1.ChangeKind `json:"kind"`
	Actor    string          `json:"actor"`
	Note     string          `json:"note,omitempty"`
	Level    int32           `json:"level"`
	Severity tpv1.Severity   `json:"severity"`
}

// Pending is a change recorded but not yet known to be published.
type Pending struct {
	// ID and Seq identify the change: the escalation and its sequence number.
	ID   string
	Seq  int64
	Rule string
	// Data is the encoded tpv1.EscalationChange.
	Data []byte
}

// field is the pointer hash field holding the change until it is published.
func (p Pending) field() string {
	_, _, n, _ := ParseID(p.ID)
	return outboxPrefix + strconv.FormatInt(n, 10) + ":" + strconv.FormatInt(p.Seq, 10)
}

// outboxPrefix starts the pointer hash fields of unpublished changes: o:<number>:<seq>.
const outboxPrefix = "o:"

// Record is an escalation as stored.
type Record struct {
	ID          string               `json:"id"`
	Tenant      string               `json:"tenant"`
	Rule        string               `json:"rule"`
	Subject     Subject              `json:"subject"`
	State       tpv1.EscalationState `json:"state"`
	Severity    tpv1.Severity        `json:"severity"`
	Level       int32                `json:"level"`
	Policy      string               `json:"policy"`
	Labels      map[string]string    `json:"labels"`
	Summary     string               `json:"summary"`
	Facts       []judge.Fact         `json:"facts"`
	TriggeredAt time.Time            `json:"triggered_at"`
	UpdatedAt   time.Time            `json:"updated_at"`
	ResolvedAt  time.Time            `json:"resolved_at,omitzero"`
	// RaiseAt is when the escalation is raised to its next level (or repeated) unless
	// acknowledged first; zero when it never will be.
	RaiseAt  time.Time `json:"raise_at,omitzero"`
	Seq      int64     `json:"seq"`
	Timeline []Entry   `json:"timeline"`
	// Outbox are the changes not yet published, of this escalation and of earlier ones of the
	// same rule and subject, oldest first. They are stored beside the record, not in it.
	Outbox []Pending `json:"-"`
}

// Open reports whether the escalation is open or acknowledged, not resolved.
func (r *Record) Open() bool { return r.State != tpv1.EscalationState_ESCALATION_STATE_RESOLVED }

// ID forms an escalation id: rule, subject kind letter, escaped subject id and the number of the
// escalation for that rule and subject, dot-separated. None of the parts can hold a dot.
func ID(rule string, s Subject, n int64) string {
	return rule + "." + kindLetter[s.Kind] + "." + idtoken.Escape(s.ID) + "." + strconv.FormatInt(n, 10)
}

// ErrBadID reports an id that ID cannot have formed.
var ErrBadID = errors.New("malformed escalation id")

// ParseID splits an id formed by ID.
func ParseID(id string) (rule string, s Subject, n int64, err error) {
	parts := strings.Split(id, ".")
	if len(parts) != 4 || !validRule(parts[0]) {
		return "", Subject{}, 0, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	kind, ok := kindOf(parts[1])
	if !ok {
		return "", Subject{}, 0, fmt.Errorf("%w: %q: unknown subject kind %q", ErrBadID, id, parts[1])
	}
	sid, err := idtoken.Unescape(parts[2])
	if err != nil {
		return "", Subject{}, 0, fmt.Errorf("%w: %q: %v", ErrBadID, id, err)
	}
	n, err = strconv.ParseInt(parts[3], 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != parts[3] {
		return "", Subject{}, 0, fmt.Errorf("%w: %q: bad number", ErrBadID, id)
	}
	return parts[0], Subject{Kind: kind, ID: sid}, n, nil
}

// validRule is the rule-name syntax of the rules file, which keeps rule names usable as subject
// tokens and key parts unescaped.
func validRule(s string) bool { return idtoken.ValidTenant(s) }

// Proto converts the record; withTimeline adds the timeline.
func (r *Record) Proto(withTimeline bool) *tpv1.Escalation {
	e := &tpv1.Escalation{
		Id: r.ID, Tenant: r.Tenant, Rule: r.Rule, SubjectKind: r.Subject.Kind, SubjectId: r.Subject.ID,
		State: r.State, Severity: r.Severity, Level: r.Level, Labels: r.Labels, Summary: r.Summary,
		TriggeredAt: timestamppb.New(r.TriggeredAt), UpdatedAt: timestamppb.New(r.UpdatedAt),
	}
	if !r.ResolvedAt.IsZero() {
		e.ResolvedAt = timestamppb.New(r.ResolvedAt)
	}
	for _, f := range r.Facts {
		e.Facts = append(e.Facts, &tpv1.Fact{Name: f.Name, Value: f.Value})
	}
	if withTimeline {
		for _, t := range r.Timeline {
			e.Timeline = append(e.Timeline, &tpv1.TimelineEntry{
				At: timestamppb.New(t.At), Kind: t.Kind, Actor: t.Actor, Note: t.Note, Level: t.Level, Severity: t.Severity,
			})
		}
	}
	return e
}

// change records a lifecycle change: the timeline entry, the sequence number and the message to
// publish, which carries the escalation as of this change.
func (r *Record) change(kind tpv1.ChangeKind, at time.Time, actor, note string) {
	r.Seq++
	r.UpdatedAt = at
	r.Timeline = append(r.Timeline, Entry{At: at, Kind: kind, Actor: actor, Note: note, Level: r.Level, Severity: r.Severity})
	r.Labels["severity"] = SeverityWord(r.Severity)
	r.Labels["level"] = strconv.Itoa(int(r.Level))
	msg := &tpv1.EscalationChange{Kind: kind, Sequence: r.Seq, At: timestamppb.New(at), Escalation: r.Proto(false)}
	data, err := proto.Marshal(msg)
	if err != nil {
		// Marshal fails only on invalid UTF-8 in a string field; ids and labels come from
		// decoded protobuf and YAML, which are valid.
		panic(fmt.Sprintf("encode escalation change: %v", err))
	}
	r.Outbox = append(r.Outbox, Pending{ID: r.ID, Seq: r.Seq, Rule: r.Rule, Data: data})
}

// setLevel targets level (from 1) of policy and plans when it is raised: after the level's
// acknowledgement timeout to the next level; on the last level, when the policy repeats, after
// its timeout (or the repeat interval when it has none) and then every repeat interval.
func (r *Record) setLevel(level int32, pol *rulesfile.EscalationPolicy, at time.Time, repeating bool) {
	r.Level = level
	r.RaiseAt = time.Time{}
	if pol == nil || len(pol.Levels) == 0 {
		delete(r.Labels, "targets")
		return
	}
	idx := min(int(level), len(pol.Levels)) - 1
	r.Labels["targets"] = strings.Join(pol.Levels[idx].Targets, ",")
	wait := pol.Levels[idx].AckTimeout
	if int(level) >= len(pol.Levels) {
		if pol.Repeat <= 0 {
			return
		}
		if repeating || wait <= 0 {
			wait = pol.Repeat
		}
	}
	if wait > 0 {
		r.RaiseAt = at.Add(wait)
	}
}

// SeverityWord is the lower-case word of a severity, as labels carry it.
func SeverityWord(s tpv1.Severity) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SEVERITY_"))
}

// MsgID is the JetStream message id of change seq of escalation id: a republished change is
// dropped by the stream as a duplicate.
func MsgID(tenant, id string, seq int64) string {
	return tenant + "/" + id + "/" + strconv.FormatInt(seq, 10)
}
