package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// parseSLA reads first-response targets such as "urgent=1h,high=4h,normal=8h,low=24h". Priorities
// not named have no target; "0" switches one off.
func parseSLA(s string) (contrib.SLA, error) {
	sla := contrib.SLA{FirstResponse: map[tpv1.Priority]time.Duration{}}
	if strings.TrimSpace(s) == "" {
		return sla, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return contrib.SLA{}, fmt.Errorf("sla target %q: want priority=duration", part)
		}
		p, ok := tpv1.Priority_value["PRIORITY_"+strings.ToUpper(strings.TrimSpace(name))]
		if !ok || p == 0 {
			return contrib.SLA{}, fmt.Errorf("sla target %q: priority must be urgent, high, normal or low", part)
		}
		d, err := time.ParseDuration(strings.TrimSpace(val))
		if err != nil || d < 0 {
			return contrib.SLA{}, fmt.Errorf("sla target %q: bad duration", part)
		}
		sla.FirstResponse[tpv1.Priority(p)] = d
	}
	return sla, nil
}

// slaFlag is -sla-first-response: the targets as written, parsed into sla.
type slaFlag struct {
	text string
	sla  *contrib.SLA
}

// newSLAFlag sets *sla to the targets def names, which must parse.
func newSLAFlag(sla *contrib.SLA, def string) *slaFlag {
	f := &slaFlag{sla: sla}
	if err := f.Set(def); err != nil {
		panic(err)
	}
	return f
}

func (f *slaFlag) String() string { return f.text }

func (f *slaFlag) Set(s string) error {
	sla, err := parseSLA(s)
	if err != nil {
		return err
	}
	f.text, *f.sla = s, sla
	return nil
}
