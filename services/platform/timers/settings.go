package timers

import (
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

// Settings are the timer settings an operator tunes, the same flags in every service that keeps
// timers; each service gives its own defaults.
type Settings struct {
	// Poll is how often Run looks for due timers.
	Poll   time.Duration
	Lease  time.Duration
	Shards int
}

// Register declares -timer-poll, -timer-lease and -timer-shards on s. what names the timers
// (timers, group and retry timers) for the help texts.
func (c *Settings) Register(s *envflag.Set, defaults Settings, what string) {
	s.Duration(&c.Poll, "timer-poll", defaults.Poll, "How often each replica looks for due "+what+" (the firing delay is at most about this plus the handling).")
	s.Duration(&c.Lease, "timer-lease", defaults.Lease, "How long claimed "+what+" stay with the replica that claimed them; a replica that dies leaves them to the others after this.")
	s.Int(&c.Shards, "timer-shards", defaults.Shards, "Redis keys the "+what+" are spread over (every replica must use the same number).")
}

// Check adds the settings that cannot work to v.
func (c Settings) Check(v *envflag.Checks) {
	v.Positive("timer-poll", c.Poll)
	v.AtLeast("timer-lease", c.Lease, time.Second)
	v.AtLeastN("timer-shards", c.Shards, 1)
}

// Apply returns o with the settings' shards and lease in it.
func (c Settings) Apply(o Options) Options {
	o.Shards, o.Lease = c.Shards, c.Lease
	return o
}
