// Package slaclock keeps one SLA clock of a ticket (first response, next response or resolution):
// it runs in working time (package calendar) from when it starts, stops while the ticket waits on
// the customer (statuses that pause it), and says when the target is at risk and when it breaches.
package slaclock

import (
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
)

// Clock is the state of one SLA clock. The zero Clock has not started. It is a value: the
// service stores it with the ticket and replays nothing to plan its timers.
type Clock struct {
	// Used is the working time counted up to RunningSince (or in total, while paused).
	Used time.Duration
	// RunningSince is when the clock last started or resumed; zero while paused or stopped.
	RunningSince time.Time
	Started      bool
}

// Start starts the clock at t (a ticket created, a customer message waiting for a reply). A
// running clock keeps counting: restarting it would forgive the time already used.
func (c Clock) Start(t time.Time) Clock {
	if c.Started {
		return c
	}
	return Clock{Started: true, RunningSince: t}
}

// Pause stops counting at t (the ticket went to a status that pauses the clock).
func (c Clock) Pause(cal *calendar.Calendar, t time.Time) Clock {
	if !c.running() {
		return c
	}
	c.Used += cal.Elapsed(c.RunningSince, t)
	c.RunningSince = time.Time{}
	return c
}

// Resume counts again from t (the ticket left a pausing status).
func (c Clock) Resume(t time.Time) Clock {
	if !c.Started || c.running() {
		return c
	}
	c.RunningSince = t
	return c
}

func (c Clock) running() bool { return c.Started && !c.RunningSince.IsZero() }

// Elapsed is the working time counted at now.
func (c Clock) Elapsed(cal *calendar.Calendar, now time.Time) time.Duration {
	if !c.running() {
		return c.Used
	}
	return c.Used + cal.Elapsed(c.RunningSince, now)
}

// Due returns when the clock reaches share of target (1 for the breach, 0.8 for "at risk"); ok
// is false while the clock is not running, since a paused clock reaches nothing.
func (c Clock) Due(cal *calendar.Calendar, target time.Duration, share float64) (at time.Time, ok bool) {
	if !c.running() {
		return time.Time{}, false
	}
	left := time.Duration(float64(target)*share) - c.Used
	if left <= 0 {
		// Already past it when it resumed: due at once.
		return c.RunningSince, true
	}
	return cal.Add(c.RunningSince, left), true
}
