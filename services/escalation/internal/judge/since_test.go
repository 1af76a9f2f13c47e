package judge

import (
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
)

// Since is the instant a condition became true, which the horizon for historical breaches is
// measured from: the deadline (or its at-risk share), the rating, the reopen reaching the count.
func TestConditionSince(t *testing.T) {
	tn := tenant(urgentPolicy())
	tn.Quality = []*rulesfile.QualityRule{
		{Name: "bad-rating", Kind: rulesfile.KindBadRating, MaxScore: 2, Severity: critical, Escalation: "default"},
		{Name: "reopened", Kind: rulesfile.KindReopens, MinReopens: 2, Severity: warning, Escalation: "default"},
	}
	unanswered := evs{}.add(created, 0)
	quality := unanswered.add(agentMsg, 10*time.Minute).
		add(status, time.Hour, st(solvedS)).add(status, 2*time.Hour, st(open)).
		add(status, 3*time.Hour, st(solvedS)).add(status, 4*time.Hour, st(open)).
		add(status, 5*time.Hour, st(solvedS)).add(status, 6*time.Hour, st(open)).
		add(rated, 7*time.Hour, func(e *Event) { e.Score = 1 })
	for _, tc := range []struct {
		name   string
		events evs
		now    time.Duration
		rule   string
		want   time.Duration
	}{
		{"at risk: 80% of 30m", unanswered, 25 * time.Minute, rulesfile.RuleFirstResponse, 24 * time.Minute},
		{"breached: the deadline", unanswered, 48 * time.Hour, rulesfile.RuleFirstResponse, 30 * time.Minute},
		{"resolution breached", unanswered, 48 * time.Hour, rulesfile.RuleResolution, 8 * time.Hour},
		{"the rating", quality, 48 * time.Hour, "bad-rating", 7 * time.Hour},
		{"the second reopen, not the third", quality, 48 * time.Hour, "reopened", 4 * time.Hour},
		// A paused clock cannot say when it is due, yet its condition still began when it
		// crossed the share while running.
		{"breached, then pending for ever", unanswered.add(status, 2*time.Hour, st(pending)), 48 * time.Hour,
			rulesfile.RuleFirstResponse, 30 * time.Minute},
		{"at risk, then pending for ever", unanswered.add(status, 26*time.Minute, st(pending)), 48 * time.Hour,
			rulesfile.RuleFirstResponse, 24 * time.Minute},
		{"breached at the instant it paused", unanswered.add(status, 30*time.Minute, st(pending)), 48 * time.Hour,
			rulesfile.RuleFirstResponse, 30 * time.Minute},
		{"breached after a pause, then paused again",
			unanswered.add(status, 10*time.Minute, st(pending)).add(status, time.Hour, st(open)).add(status, 100*time.Minute, st(pending)),
			48 * time.Hour, rulesfile.RuleFirstResponse, 80 * time.Minute},
		{"resolution breached, then pending", unanswered.add(status, 9*time.Hour, st(pending)), 48 * time.Hour,
			rulesfile.RuleResolution, 8 * time.Hour},
		{"next response: the waiting message's breach, not an answered one's",
			unanswered.add(agentMsg, 10*time.Minute).add(custMsg, 20*time.Minute).add(agentMsg, 2*time.Hour).
				add(custMsg, 3*time.Hour).add(status, 5*time.Hour, st(pending)),
			48 * time.Hour, rulesfile.RuleNextResponse, 4 * time.Hour},
	} {
		c := cond(t, Ticket("T-1", tc.events, tn, m(tc.now)), tc.rule)
		if !c.Active || !c.Since.Equal(m(tc.want)) {
			t.Errorf("%s: active %v since %v, want since %v", tc.name, c.Active, c.Since, m(tc.want))
		}
	}
	if c := cond(t, Ticket("T-1", unanswered, tn, m(time.Minute)), rulesfile.RuleFirstResponse); c.Active || !c.Since.IsZero() {
		t.Errorf("in time: %+v, want inactive with no instant", c)
	}
}
