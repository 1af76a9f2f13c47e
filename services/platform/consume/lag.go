package consume

import "github.com/ticketpulse/ticketpulse/services/platform/consumerlag"

// Lag names the consumer's durable for consumerlag.Observe.
func (c *Consumer[T]) Lag() consumerlag.Durable {
	return consumerlag.Durable{Stream: c.cfg.Stream, Name: c.cfg.Durable, Filter: c.cfg.Filter}
}
