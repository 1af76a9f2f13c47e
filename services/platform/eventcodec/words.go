package eventcodec

import (
	"slices"
	"sort"
	"strings"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Words are the lower-case words of one proto enum, its prefix dropped
// (EVENT_TYPE_AGENT_MESSAGE is "agent_message"): the canonical JSON form, and for event types
// the subject token. They are derived from the generated name map, so a value added to the
// proto has its word at once. The zero (UNSPECIFIED) value has no word.
type Words[E ~int32] struct {
	byWord  map[string]E
	byValue map[E]string
	list    []string
}

func newWords[E ~int32](names map[int32]string, prefix string) Words[E] {
	w := Words[E]{byWord: map[string]E{}, byValue: map[E]string{}}
	nums := make([]int32, 0, len(names))
	for n := range names {
		if n != 0 {
			nums = append(nums, n)
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	for _, n := range nums {
		word := strings.ToLower(strings.TrimPrefix(names[n], prefix))
		w.byWord[word] = E(n)
		w.byValue[E(n)] = word
		w.list = append(w.list, word)
	}
	return w
}

// Word is v's word; it is empty for the zero value and values the proto does not define.
func (w Words[E]) Word(v E) string { return w.byValue[v] }

// Value is the value of word, and whether word is one of the enum's words.
func (w Words[E]) Value(word string) (E, bool) {
	v, ok := w.byWord[word]
	return v, ok
}

// List is every word in proto order.
func (w Words[E]) List() []string { return slices.Clone(w.list) }

// The words of the TicketEvent enums.
var (
	EventTypes = newWords[tpv1.EventType](tpv1.EventType_name, "EVENT_TYPE_")
	ActorKinds = newWords[tpv1.ActorKind](tpv1.ActorKind_name, "ACTOR_KIND_")
	Priorities = newWords[tpv1.Priority](tpv1.Priority_name, "PRIORITY_")
	Statuses   = newWords[tpv1.TicketStatus](tpv1.TicketStatus_name, "TICKET_STATUS_")
)

// TypeWord is the word of an event type ("agent_message"), as used in subjects; it is empty
// for EVENT_TYPE_UNSPECIFIED and unknown values.
func TypeWord(t tpv1.EventType) string { return EventTypes.Word(t) }
