package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// progress shows a rebuild's progress: a bar redrawn in place on a terminal, else a line every
// interval (logs and CI keep every line, so fewer are better there).
type progress struct {
	w        io.Writer
	terminal bool
	every    time.Duration

	lastLine  time.Time
	drawn     bool
	rateDone  int64 // events done at rateAt
	rateAt    time.Time
	rate      float64 // events/s, smoothed
	startDone int64
	started   time.Time
}

func newProgress(w io.Writer, every time.Duration) *progress {
	p := &progress{w: w, every: every, started: time.Now(), startDone: -1}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) update(r *tpv1.RebuildProgress) {
	now := time.Now()
	done := r.GetEventsDone()
	if p.startDone < 0 {
		p.startDone, p.rateDone, p.rateAt = done, done, now
	}
	if dt := now.Sub(p.rateAt).Seconds(); dt >= 1 {
		inst := float64(done-p.rateDone) / dt
		if p.rate == 0 {
			p.rate = inst
		} else {
			p.rate = 0.7*p.rate + 0.3*inst
		}
		p.rateDone, p.rateAt = done, now
	}
	if r.GetPhase() != "building" {
		return
	}
	if p.terminal {
		fmt.Fprintf(p.w, "\r%s", p.bar(r))
		p.drawn = true
		return
	}
	if p.lastLine.IsZero() || now.Sub(p.lastLine) >= p.every {
		fmt.Fprintln(p.w, p.line(r))
		p.lastLine = now
	}
}

func (p *progress) finish(r *tpv1.RebuildProgress) {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
	if r == nil {
		return
	}
	took := time.Since(p.started).Round(time.Second)
	switch r.GetPhase() {
	case "failed":
		fmt.Fprintf(p.w, "rebuild of tenant %s failed after %s: %s\n", r.GetTenant(), took, r.GetError())
	default:
		if r.GetTarget() == 0 { // a rebuild in place: no generations
			fmt.Fprintf(p.w, "rebuild of tenant %s done: %d events replayed\n", r.GetTenant(), r.GetEventsDone())
			return
		}
		fmt.Fprintf(p.w, "rebuild of tenant %s switched to generation %d: %d events replayed; the old generation is deleted after kpi's -rebuild-grace\n",
			r.GetTenant(), r.GetCurrent(), r.GetEventsDone())
	}
}

func (p *progress) figures(r *tpv1.RebuildProgress) (pct float64, eta string) {
	done, total := r.GetEventsDone(), r.GetEventsTotal()
	if total > 0 {
		pct = min(100, 100*float64(done)/float64(total))
	}
	eta = "?"
	if p.rate > 0 && total >= done {
		eta = (time.Duration(float64(total-done)/p.rate) * time.Second).Round(time.Second).String()
	}
	return pct, eta
}

func (p *progress) line(r *tpv1.RebuildProgress) string {
	pct, eta := p.figures(r)
	return fmt.Sprintf("rebuild %s: %d/%d events (%.1f%%), %.0f events/s, ETA %s", r.GetTenant(), r.GetEventsDone(), r.GetEventsTotal(), pct, p.rate, eta)
}

func (p *progress) bar(r *tpv1.RebuildProgress) string {
	const width = 30
	pct, eta := p.figures(r)
	n := int(pct / 100 * width)
	return fmt.Sprintf("[%s%s] %5.1f%% %d/%d events  %.0f ev/s  ETA %s   ",
		strings.Repeat("#", n), strings.Repeat(".", width-n), pct, r.GetEventsDone(), r.GetEventsTotal(), p.rate, eta)
}

// replayProgress shows an event replay's progress the same way: the bar and ETA follow the
// bytes of the input (the only total known without reading it twice), the rate is in events.
type replayProgress struct {
	*progress
	total     int64
	bytesRate float64 // bytes/s, smoothed
	rateBytes int64
	rateEv    int64
	at        time.Time
}

func newReplayProgress(w io.Writer, every time.Duration, offset, total int64) *replayProgress {
	return &replayProgress{progress: newProgress(w, every), total: total, rateBytes: offset, at: time.Now()}
}

func (p *replayProgress) update(events, offset int64) {
	now := time.Now()
	if dt := now.Sub(p.at).Seconds(); dt >= 1 {
		ev, by := float64(events-p.rateEv)/dt, float64(offset-p.rateBytes)/dt
		if p.rate == 0 && p.bytesRate == 0 {
			p.rate, p.bytesRate = ev, by
		} else {
			p.rate, p.bytesRate = 0.7*p.rate+0.3*ev, 0.7*p.bytesRate+0.3*by
		}
		p.rateEv, p.rateBytes, p.at = events, offset, now
	}
	pct := 100.0
	if p.total > 0 {
		pct = min(100, 100*float64(offset)/float64(p.total))
	}
	eta := "?"
	if p.bytesRate > 0 && p.total >= offset {
		eta = (time.Duration(float64(p.total-offset)/p.bytesRate) * time.Second).Round(time.Second).String()
	}
	if p.terminal {
		const width = 30
		n := int(pct / 100 * width)
		fmt.Fprintf(p.w, "\r[%s%s] %5.1f%% %d events  %.0f ev/s  ETA %s   ", strings.Repeat("#", n), strings.Repeat(".", width-n), pct, events, p.rate, eta)
		p.drawn = true
		return
	}
	if p.lastLine.IsZero() || now.Sub(p.lastLine) >= p.every {
		fmt.Fprintf(p.w, "replay: %d events sent, %.1f%% of the file, %.0f events/s, ETA %s\n", events, pct, p.rate, eta)
		p.lastLine = now
	}
}

func (p *replayProgress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
