package consume

import (
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

// Settings are the consumer settings an operator tunes, the same flags in every consuming
// service; each service gives its own defaults.
type Settings struct {
	Durable  string
	BatchMax int
	Linger   time.Duration
	AckWait  time.Duration
}

// Register declares -durable, -batch-max, -batch-linger and -ack-wait on s. stream names the
// stream consumed (TICKETS) and what the messages handled (ticket events), for the help texts.
func (c *Settings) Register(s *envflag.Set, defaults Settings, stream, what string) {
	RegisterDurable(s, &c.Durable, "durable", defaults.Durable, stream)
	s.Int(&c.BatchMax, "batch-max", defaults.BatchMax, "Most "+what+" handled in one batch.")
	s.Duration(&c.Linger, "batch-linger", defaults.Linger, "How long to wait for more "+what+" once one arrived; keeps latency low when traffic is light.")
	s.Duration(&c.AckWait, "ack-wait", defaults.AckWait, "How long JetStream waits for an ack before redelivering.")
}

// RegisterDurable declares a durable consumer's name on s, for a service that consumes a second
// stream with the same batching.
func RegisterDurable(s *envflag.Set, p *string, flag, def, stream string) {
	s.String(p, flag, def, "Durable consumer on the "+stream+" stream; replicas share it.")
}

// Check adds the settings that cannot work to v.
func (c Settings) Check(v *envflag.Checks) {
	v.AtLeastN("batch-max", c.BatchMax, 1)
	v.NotNegative("batch-linger", c.Linger)
	v.AtLeast("ack-wait", c.AckWait, time.Second)
}

// Apply returns cfg, which names the stream and the consumer's purpose, with the settings in it.
func (c Settings) Apply(cfg Config) Config {
	cfg.Durable, cfg.BatchMax, cfg.Linger, cfg.AckWait = c.Durable, c.BatchMax, c.Linger, c.AckWait
	return cfg
}

// RegisterWatermark declares -watermark-interval on s: how often a service records its durables'
// ack floors in Redis and checks whether Redis lost acknowledged writes (package watermark).
func RegisterWatermark(s *envflag.Set, p *time.Duration) {
	s.Duration(p, "watermark-interval", time.Second, "How often each consumer records its durable's acknowledged stream sequence in Redis (hash tp:{wm}:<service>:<durable>) and checks whether Redis restarted, failed over or went back in time; when it did, the messages whose writes may be lost are replayed from the stream (logged at WARN, counted in watermark_replays_total). Also replays the last interval's messages at start. 0 turns it off: writes Redis loses after their messages were acknowledged (up to a second with AOF everysec, more on a failover) are then never redone.")
}

// CheckWatermark adds an impossible -watermark-interval to v.
func CheckWatermark(v *envflag.Checks, interval time.Duration) {
	v.NotNegative("watermark-interval", interval)
}
