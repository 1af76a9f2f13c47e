// Package canonical is the one typed model of a ticket event before it becomes a TicketEvent
// message: Event is the canonical form (DESIGN.md §2) that adapters build and that the JSON body
// of POST /v1/tenants/{tenant}/events decodes into; Decode reads that JSON, Validate checks
// events an adapter built, both with the same rules, and Proto converts accepted events. A
// request is all or nothing: either every event is accepted or the problems are returned, each
// naming the event's position and the dotted JSON field.
package canonical

import (
	"errors"
	"fmt"
	"strings"
	"time"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
)

// Limits of the canonical form, in bytes unless named otherwise.
const (
	MaxIDBytes      = 256
	MaxChannelBytes = 64
	MaxTags         = 50
	MaxTagBytes     = 128
	MaxCommentBytes = 4000
	// MaxCategories and MaxCategoryBytes bound a QA review's categories (scorecard sections).
	MaxCategories    = 100
	MaxCategoryBytes = 128
	DefaultSource    = "generic"
)

// MaxSequence is the largest sequence an event may carry: 2^53-1, the largest integer every
// JSON client (JavaScript's numbers, float64 decoders) reads exactly, so a sequence survives any
// client's round trip unchanged.
const MaxSequence = 1<<53 - 1

// MaxProblems is how many problems a rejection lists; the rest are only counted, so a hostile
// body cannot make the answer larger than the request.
const MaxProblems = 100

// Sources are the accepted values of the source field.
var Sources = []string{"zendesk", "chatwoot", "freshdesk", "helpscout", "zammad", "intercom", "salesforce", "hubspot", DefaultSource,
	"typeform", "surveymonkey", "qualtrics", "five9", "genesys", "ringcentral"}

// Problem is one reason a request was rejected. Index is the event's position in the array (0 for
// a single object); Field is the dotted JSON name ("actor.kind", "tags[3]"), empty for the body.
type Problem struct {
	Index  int    `json:"index"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Problems is the error for bad input: the first MaxProblems problems found, in order, and how
// many more there were.
type Problems struct {
	List []Problem
	More int
}

// Reject returns the Problems of a single problem.
func Reject(index int, field, reason string) Problems {
	return Problems{List: []Problem{{Index: index, Field: field, Reason: reason}}}
}

func (p Problems) Error() string {
	if len(p.List) == 0 {
		return "no problems"
	}
	first := p.List[0]
	msg := fmt.Sprintf("event %d: %s: %s", first.Index, first.Field, first.Reason)
	if first.Field == "" {
		msg = fmt.Sprintf("event %d: %s", first.Index, first.Reason)
	}
	switch rest := len(p.List) - 1 + p.More; {
	case p.More > 0:
		msg += fmt.Sprintf(" (and %d more problems; the first %d are listed)", rest, len(p.List))
	case rest > 0:
		msg += fmt.Sprintf(" (and %d more problems)", rest)
	}
	return msg
}

// ErrTooManyEvents is wrapped by the error Decode returns when the array exceeds Options.MaxEvents.
var ErrTooManyEvents = errors.New("too many events")

func tooMany(n, max int) error {
	return fmt.Errorf("%w: %d events, at most %d per request", ErrTooManyEvents, n, max)
}

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

// The closed word sets a field is checked against; the enum words are eventcodec's, so a value
// added to the proto is accepted at once.
var (
	typeWords     = newWordSet(eventcodec.EventTypes.List())
	actorWords    = newWordSet(eventcodec.ActorKinds.List())
	priorityWords = newWordSet(eventcodec.Priorities.List())
	statusWords   = newWordSet(eventcodec.Statuses.List())
	sourceWords   = newWordSet(Sources)
)

// valueOf is the enum value of a word already checked against its set.
func valueOf[E ~int32](w eventcodec.Words[E], word string) E {
	v, _ := w.Value(word)
	return v
}

// TypeWord is the canonical JSON word of an event type ("agent_message"), as used in subjects;
// it is empty for EVENT_TYPE_UNSPECIFIED and unknown values.
func TypeWord(t ticketpulsev1.EventType) string { return eventcodec.TypeWord(t) }

// ActorWord, PriorityWord and StatusWord are the canonical JSON words of the other enums.
func ActorWord(k ticketpulsev1.ActorKind) string     { return eventcodec.ActorKinds.Word(k) }
func PriorityWord(p ticketpulsev1.Priority) string   { return eventcodec.Priorities.Word(p) }
func StatusWord(s ticketpulsev1.TicketStatus) string { return eventcodec.Statuses.Word(s) }
