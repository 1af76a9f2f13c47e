package adapter

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// ID is an identifier a source sends as a JSON number or a string, often both across payloads
// or versions (Chatwoot, Help Scout). A number keeps its JSON text ("42"), a string its value
// as sent, null is ""; anything else is a type error, which DecodeJSON turns into a Problem.
type ID string

// UnmarshalJSON implements json.Unmarshaler.
func (id *ID) UnmarshalJSON(b []byte) error {
	s, err := unmarshalID(b)
	*id = ID(s)
	return err
}

// TrimmedID is an ID with the spaces around a string value removed, for sources whose ids
// pass through templates an admin writes (Zammad, Intercom): " 7" is 7, "  " is absent.
type TrimmedID string

// UnmarshalJSON implements json.Unmarshaler.
func (id *TrimmedID) UnmarshalJSON(b []byte) error {
	s, err := unmarshalID(b)
	*id = TrimmedID(strings.TrimSpace(s))
	return err
}

func unmarshalID(b []byte) (string, error) {
	switch {
	case string(b) == "null":
		return "", nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return "", err
		}
		return s, nil
	case b[0] == '-' || b[0] >= '0' && b[0] <= '9':
		return string(b), nil
	}
	return "", &json.UnmarshalTypeError{Value: JSONKind(b), Type: reflect.TypeFor[string]()}
}

// JSONKind names the kind of the JSON value b ("object", "array", "string", "bool", "null" or
// "number"), for the Value of the json.UnmarshalTypeError a custom UnmarshalJSON returns.
func JSONKind(b []byte) string {
	if len(b) == 0 {
		return "value"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// Sequence reads a source's numeric id as the sequence of its event (canonical.Event.Sequence):
// ids the source hands out in increasing order (message, comment, article or conversation-part
// ids) order a ticket's events of the same instant and kind. An id that is not a plain decimal
// number from 1 to canonical.MaxSequence gives 0, no sequence: the event is still valid, and
// the events of its instant fall back to their ids.
func Sequence(id string) uint64 {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n > canonical.MaxSequence {
		return 0
	}
	return n
}
