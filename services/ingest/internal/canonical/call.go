package canonical

import (
	"fmt"
	"math"
)

// MaxCallSeconds bounds each duration of a call (a day): a longer wait or talk is a source's
// error (a timestamp taken for a duration), not a call.
const MaxCallSeconds = 86400

// Call is the contact-centre call a call_* event is about ("call_offered", "call_answered",
// "call_abandoned", "call_ended"). The call's agent, team and queue are its own fields: a call
// event carries no ticket attribute (assignee_id, team_id, ...), since on a linked ticket those
// would move the ticket's own figures and SLA policy.
//
// Every event of one call carries the same ticket_id: the linked ticket (TicketID), or for a
// call with no ticket the call id. kpi keeps an unlinked call apart from any ticket of the same
// id, so a call id that equals a ticket id changes nothing of that ticket.
type Call struct {
	CallID   string `json:"call_id"`
	TicketID string `json:"ticket_id,omitempty"`
	QueueID  string `json:"queue_id,omitempty"`
	// AgentID is the agent the call is with: required on call_answered.
	AgentID string `json:"agent_id,omitempty"`
	TeamID  string `json:"team_id,omitempty"`
	// Direction is "inbound" or "outbound".
	Direction string `json:"direction"`
	// The durations the source measured, in seconds (kept to milliseconds, RoundSeconds); 0 is
	// not given. WaitSeconds (queue and ringing) is allowed on call_answered, call_abandoned and
	// call_ended; talk, hold and wrap-up only on call_ended.
	WaitSeconds   float64 `json:"wait_seconds,omitempty"`
	TalkSeconds   float64 `json:"talk_seconds,omitempty"`
	HoldSeconds   float64 `json:"hold_seconds,omitempty"`
	WrapUpSeconds float64 `json:"wrap_up_seconds,omitempty"`
}

// RoundSeconds rounds a call duration to the milliseconds it is kept to.
func RoundSeconds(v float64) float64 { return math.Round(v*1000) / 1000 }

var (
	callKeys       = []string{"call_id", "ticket_id", "queue_id", "agent_id", "team_id", "direction", "wait_seconds", "talk_seconds", "hold_seconds", "wrap_up_seconds"}
	directionWords = newWordSet([]string{"inbound", "outbound"})
)

// isCall reports whether typ is a call event's type.
func isCall(typ string) bool {
	switch typ {
	case "call_offered", "call_answered", "call_abandoned", "call_ended":
		return true
	}
	return false
}

// callForbidden is the reason a ticket attribute is refused on a call event.
const callForbidden = "not allowed on call events: a call does not change the ticket (the call's agent, team and queue are call.agent_id, call.team_id and call.queue_id)"

// callStates are what the rules across a call's fields and its event need to know.
type callStates struct {
	id, link, direction, agent, wait, ended state
}

// seconds checks a call duration.
func (c *checker) seconds(p path, v float64) state {
	if math.IsNaN(v) || v < 0 || v > MaxCallSeconds {
		c.add(p, fmt.Sprintf("must be seconds between 0 and %d", MaxCallSeconds))
		return invalid
	}
	if v == 0 {
		return absent
	}
	return present
}

// callDone applies the rules across a call's fields.
func (c *checker) callDone(typ string, s callStates) {
	c.required(field("call.call_id"), s.id)
	c.required(field("call.direction"), s.direction)
	if typ == "call_answered" && s.agent == absent {
		c.add(field("call.agent_id"), "required for call_answered (the agent who answered)")
	}
	if s.wait == present && typ == "call_offered" {
		c.add(field("call.wait_seconds"), "not allowed on call_offered (nothing was waited for yet)")
	}
	if s.ended == present && typ != "call_ended" {
		c.add(field("call.talk_seconds"), "talk_seconds, hold_seconds and wrap_up_seconds are only allowed on call_ended")
	}
}

// callEvent applies the rules between a call event and its call: which ticket attributes it may
// not carry, that call is present, and which ticket_id it names (once the call's own ids are
// valid, whatever else is wrong with the call).
func (c *checker) callEvent(typ string, f *fields, s callStates, ticketID string, call *Call) {
	if !isCall(typ) {
		if f.call == present || f.call == invalid {
			c.add(field("call"), "only allowed on call_offered, call_answered, call_abandoned and call_ended")
		}
		return
	}
	c.forbidTicketAttributes(f, callForbidden)
	if f.call == absent {
		c.add(field("call"), "required for "+typ)
	}
	if call == nil || f.ticket != present || s.id != present || s.link == invalid {
		return
	}
	if call.TicketID != "" && ticketID != call.TicketID {
		c.add(field("ticket_id"), "must equal call.ticket_id, the ticket the call is linked to")
	} else if call.TicketID == "" && ticketID != call.CallID {
		c.add(field("ticket_id"), "must equal call.call_id for a call with no ticket (or set call.ticket_id to the linked ticket)")
	}
}

func (c *checker) call(typ string, k *Call) (state, callStates) {
	before := c.count()
	var s callStates
	s.id = c.ident(field("call.call_id"), k.CallID)
	s.link = c.text(field("call.ticket_id"), k.TicketID, MaxIDBytes, false)
	c.text(field("call.queue_id"), k.QueueID, MaxIDBytes, false)
	s.agent = c.text(field("call.agent_id"), k.AgentID, MaxIDBytes, false)
	c.text(field("call.team_id"), k.TeamID, MaxIDBytes, false)
	if k.Direction != "" {
		s.direction = c.word(field("call.direction"), k.Direction, directionWords)
	}
	s.wait = c.seconds(field("call.wait_seconds"), k.WaitSeconds)
	for _, x := range []struct {
		name string
		v    float64
	}{{"call.talk_seconds", k.TalkSeconds}, {"call.hold_seconds", k.HoldSeconds}, {"call.wrap_up_seconds", k.WrapUpSeconds}} {
		if c.seconds(field(x.name), x.v) == present {
			s.ended = present
		}
	}
	if isCall(typ) {
		c.callDone(typ, s) // as Decode: the type's rules only for a call's type
	}
	if c.count() > before {
		return invalid, s
	}
	return present, s
}

// seconds reads a JSON number that is a call duration; null is absent.
func (d *decoder) seconds(p path, raw []byte) (float64, state) {
	v, st := d.float(p, raw)
	if st != present {
		return 0, st
	}
	st = d.c.seconds(p, v)
	if st != present {
		return 0, st
	}
	return v, st
}

// call reads an event's call. The rules that depend on the event's type (callDone) are applied
// by the caller once the whole event is read, as "type" may come after "call".
func (d *decoder) call(raw []byte) (*Call, callStates, state) {
	var s callStates
	st := d.object(field("call"), raw)
	if st != present {
		return nil, s, st
	}
	before := d.c.count()
	k := &Call{}
	var seen keySet
	members(raw, func(rawKey, val []byte) {
		key, ok := d.key(rawKey, "call.", callKeys, &seen)
		if !ok {
			return
		}
		var dst *float64
		switch key {
		case "call_id":
			k.CallID, s.id = d.ident(field("call.call_id"), val)
		case "ticket_id":
			k.TicketID, s.link = d.text(field("call.ticket_id"), val, MaxIDBytes, false)
		case "queue_id":
			k.QueueID, _ = d.text(field("call.queue_id"), val, MaxIDBytes, false)
		case "agent_id":
			k.AgentID, s.agent = d.text(field("call.agent_id"), val, MaxIDBytes, false)
		case "team_id":
			k.TeamID, _ = d.text(field("call.team_id"), val, MaxIDBytes, false)
		case "direction":
			k.Direction, s.direction = d.word(field("call.direction"), val, directionWords)
		case "wait_seconds":
			k.WaitSeconds, s.wait = d.seconds(field("call.wait_seconds"), val)
		case "talk_seconds":
			dst = &k.TalkSeconds
		case "hold_seconds":
			dst = &k.HoldSeconds
		case "wrap_up_seconds":
			dst = &k.WrapUpSeconds
		default:
			d.c.add(path{prefix: "call.", name: key, elem: -1}, "unknown field")
		}
		if dst != nil {
			var st state
			if *dst, st = d.seconds(field("call."+key), val); st == present {
				s.ended = present
			}
		}
	})
	if d.c.count() > before {
		st = invalid
	}
	return k, s, st
}
