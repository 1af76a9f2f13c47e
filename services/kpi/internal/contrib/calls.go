package contrib

import (
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// call is what one call's events say, gathered in the order of the state's events.
type call struct {
	dir                tpv1.CallDirection
	agent, team, queue string
	// firstAt is the call's first event; offered, answered, abandoned and ended index its first
	// call_offered, first call_answered, first call_abandoned and latest call_ended (-1: none).
	firstAt                             int64
	offered, answered, abandoned, ended int
	// talked, wrapped and bare index the latest call_ended giving talk or hold, giving wrap-up,
	// and giving none of the three (-1: none): a source may tell the talk and the wrap-up in
	// two events (Genesys Cloud's user.end, then its after-call work).
	talked, wrapped, bare int
}

// calls credits the call figures (docs/kpis.md, "Calls") of every call in the state, each call
// once however many times its events were delivered and in whatever order: the figures depend
// only on the set of its events.
//
// A call is credited to its agent (the latest its events name; none: the unassigned figures),
// team and queue (the latest its events name; none: no queue). An inbound call counts as offered,
// and as answered, answered in service level or abandoned, in the hour it was offered (its first
// event when no call_offered came). Speed of answer is offer to answer (the source's wait_seconds
// on call_answered when call_offered is missing), in the hour of the answer; handle time
// (handleTime) is talk + hold + wrap-up of a call that was answered or talked, in the hour of its
// latest call_ended.
func calls(c *Contribution, h *history, sla SLA) {
	var order []uint64
	var byKey map[uint64]*call
	for i := range h.evs {
		e := &h.evs[i]
		if !IsCall(e.Type) || e.CallKey == 0 {
			continue
		}
		if byKey == nil {
			byKey = map[uint64]*call{}
		}
		k := byKey[e.CallKey]
		if k == nil {
			k = &call{firstAt: e.AtMillis, offered: -1, answered: -1, abandoned: -1, ended: -1, talked: -1, wrapped: -1, bare: -1}
			byKey[e.CallKey] = k
			order = append(order, e.CallKey)
		}
		if k.dir == tpv1.CallDirection_CALL_DIRECTION_UNSPECIFIED {
			k.dir = e.CallDir
		}
		if e.CallAgent != "" {
			k.agent = e.CallAgent
		}
		if e.CallTeam != "" {
			k.team = e.CallTeam
		}
		if e.CallQueue != "" {
			k.queue = e.CallQueue
		}
		switch e.Type {
		case tpv1.EventType_EVENT_TYPE_CALL_OFFERED:
			if k.offered < 0 {
				k.offered = i
			}
		case tpv1.EventType_EVENT_TYPE_CALL_ANSWERED:
			if k.answered < 0 {
				k.answered = i
			}
		case tpv1.EventType_EVENT_TYPE_CALL_ABANDONED:
			if k.abandoned < 0 {
				k.abandoned = i
			}
		case tpv1.EventType_EVENT_TYPE_CALL_ENDED:
			k.ended = i
			if e.CallTalk > 0 || e.CallHold > 0 {
				k.talked = i
			}
			if e.CallWrapUp > 0 {
				k.wrapped = i
			}
			if e.CallTalk == 0 && e.CallHold == 0 && e.CallWrapUp == 0 {
				k.bare = i
			}
		}
	}
	threshold := sla.callServiceLevel().Milliseconds()
	for _, key := range order {
		k := byKey[key]
		if k.dir == tpv1.CallDirection_CALL_DIRECTION_INBOUND {
			inboundCall(c, h, k, threshold)
		}
		if k.ended < 0 {
			continue
		}
		if handle, ok := handleTime(h, k); ok {
			k.duration(c, h.evs[k.ended].AtMillis, bucket.CallHandleTime, bucket.CallHandleCount, bucket.CallHandleSumMillis, handle)
		}
	}
}

// handleTime is an ended call's talk + hold + wrap-up in milliseconds, each part from the latest
// call_ended that gives it. When none gives talk or hold (RingCentral's notifications carry no
// durations), talk and hold together are the answer to the latest end that gives nothing. A call
// that was never answered and has no talk time was not handled (false).
func handleTime(h *history, k *call) (int64, bool) {
	var talkHold, wrap int64
	switch {
	case k.talked >= 0:
		e := &h.evs[k.talked]
		if k.answered < 0 && e.CallTalk == 0 {
			return 0, false
		}
		talkHold = int64(e.CallTalk) + int64(e.CallHold)
	case k.answered < 0:
		return 0, false
	case k.bare >= 0:
		talkHold = max(h.evs[k.bare].AtMillis-h.evs[k.answered].AtMillis, 0)
	}
	if k.wrapped >= 0 {
		wrap = int64(h.evs[k.wrapped].CallWrapUp)
	}
	return talkHold + wrap, true
}

// inboundCall credits an inbound call's counters and its speed of answer.
func inboundCall(c *Contribution, h *history, k *call, threshold int64) {
	at := k.firstAt
	if k.offered >= 0 {
		at = h.evs[k.offered].AtMillis
	}
	k.credit(c, at, CounterField(bucket.CallsOffered), 1)
	switch {
	case k.answered >= 0:
		k.credit(c, at, CounterField(bucket.CallsAnswered), 1)
		ans := &h.evs[k.answered]
		wait := int64(-1)
		switch {
		case k.offered >= 0:
			wait = max(ans.AtMillis-h.evs[k.offered].AtMillis, 0)
		case ans.CallWait > 0:
			wait = int64(ans.CallWait)
		}
		if wait < 0 {
			return // neither the offer nor the source's wait: no speed of answer to measure
		}
		k.duration(c, ans.AtMillis, bucket.CallSpeedOfAnswer, bucket.CallAnswerCount, bucket.CallAnswerSumMillis, wait)
		if wait <= threshold {
			k.credit(c, at, CounterField(bucket.CallsInServiceLevel), 1)
		}
	case k.abandoned >= 0:
		k.credit(c, at, CounterField(bucket.CallsAbandoned), 1)
	}
}

// credit credits a call figure like a ticket's (agent or unassigned, and team), and to the
// call's queue too: only call figures have a queue.
func (k *call) credit(c *Contribution, atMillis int64, f Field, v int64) {
	c.credit(k.agent, k.team, atMillis, f, v)
	if k.queue != "" {
		c.add(bucket.Queue, k.queue, atMillis, f, v)
	}
}

// duration is Contribution.duration for a call's sample, its queue credited too.
func (k *call) duration(c *Contribution, atMillis int64, d bucket.Duration, count, sum bucket.Counter, millis int64) {
	millis = max(millis, 0)
	k.credit(c, atMillis, CounterField(count), 1)
	k.credit(c, atMillis, CounterField(sum), millis)
	k.credit(c, atMillis, BinField(d, hist.Bin(float64(millis)/1000)), 1)
}

// replier is who sent a response: the message's author, or the agent who answered the call.
func replier(e *Event) string {
	if e.Type == tpv1.EventType_EVENT_TYPE_CALL_ANSWERED {
		return e.CallAgent
	}
	return e.ActorID
}
