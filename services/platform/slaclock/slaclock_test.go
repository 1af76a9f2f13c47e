package slaclock

import (
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the machine's zone files

	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
)

var utc = time.UTC

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, utc)
	if err != nil {
		panic(err)
	}
	return t
}

// weekdays is Monday to Friday, 09:00-17:00 UTC.
func weekdays(t *testing.T) *calendar.Calendar {
	t.Helper()
	var week [7][]calendar.Interval
	for d := time.Monday; d <= time.Friday; d++ {
		week[d] = []calendar.Interval{{From: 9 * 60, To: 17 * 60}}
	}
	c, err := calendar.New(utc, week, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClockAcrossPauses(t *testing.T) {
	cal := weekdays(t)
	target := 8 * time.Hour
	var c Clock
	if _, ok := c.Due(cal, target, 1); ok {
		t.Fatal("a clock that has not started is due")
	}
	// Created on Tuesday at 10:00: breach after 8 working hours, at risk at 80 %.
	c = c.Start(at("2026-11-24 10:00"))
	if due, _ := c.Due(cal, target, 1); !due.Equal(at("2026-11-25 10:00")) {
		t.Errorf("breach at %s, want Wednesday 10:00", due)
	}
	if due, _ := c.Due(cal, target, 0.8); !due.Equal(at("2026-11-24 16:24")) {
		t.Errorf("at risk at %s, want Tuesday 16:24", due)
	}
	// Starting again (another customer message) does not forgive the time used.
	if again := c.Start(at("2026-11-24 15:00")); again != c {
		t.Errorf("a second Start changed the clock: %+v", again)
	}
	// Pending (waiting on the customer) from 13:00 to Wednesday 12:00: three hours used, then paused.
	c = c.Pause(cal, at("2026-11-24 13:00"))
	if c.Used != 3*time.Hour {
		t.Errorf("used %s at the pause, want 3h", c.Used)
	}
	if _, ok := c.Due(cal, target, 1); ok {
		t.Error("a paused clock is due")
	}
	if got := c.Elapsed(cal, at("2026-11-30 12:00")); got != 3*time.Hour {
		t.Errorf("elapsed while paused %s, want 3h", got)
	}
	c = c.Resume(at("2026-11-25 12:00"))
	// Five working hours left from Wednesday 12:00: Wednesday 17:00.
	if due, _ := c.Due(cal, target, 1); !due.Equal(at("2026-11-25 17:00")) {
		t.Errorf("breach after resuming at %s, want Wednesday 17:00", due)
	}
	// At risk is 6h24m: 3h used, 3h24m left from Wednesday 12:00: 15:24.
	if due, _ := c.Due(cal, target, 0.8); !due.Equal(at("2026-11-25 15:24")) {
		t.Errorf("at risk after resuming at %s, want Wednesday 15:24", due)
	}
	if got := c.Elapsed(cal, at("2026-11-25 14:00")); got != 5*time.Hour {
		t.Errorf("elapsed %s, want 5h", got)
	}
}

func TestClockAlreadyPastItsTargetIsDueAtOnce(t *testing.T) {
	cal := weekdays(t)
	c := Clock{}.Start(at("2026-11-24 09:00")).Pause(cal, at("2026-11-24 17:00")).Resume(at("2026-11-27 10:00"))
	due, ok := c.Due(cal, 4*time.Hour, 1)
	if !ok || !due.Equal(at("2026-11-27 10:00")) {
		t.Errorf("due %s (%v), want at the resume, Friday 10:00", due, ok)
	}
}

func TestPauseAndResumeOfAStoppedClockDoNothing(t *testing.T) {
	cal := weekdays(t)
	var c Clock
	if got := c.Pause(cal, at("2026-11-24 10:00")).Resume(at("2026-11-24 11:00")); got != (Clock{}) {
		t.Errorf("a clock that never started changed: %+v", got)
	}
	running := c.Start(at("2026-11-24 10:00"))
	if got := running.Resume(at("2026-11-24 12:00")); got != running {
		t.Errorf("resuming a running clock moved its start: %+v", got)
	}
}

func TestAlwaysOpenCalendar(t *testing.T) {
	c := Clock{}.Start(at("2026-11-28 12:00")) // a Saturday: a 24/7 team counts it
	due, _ := c.Due(nil, time.Hour, 1)
	if !due.Equal(at("2026-11-28 13:00")) {
		t.Errorf("due %s, want Saturday 13:00", due)
	}
}
