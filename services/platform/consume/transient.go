package consume

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// transientRedis are the replies of a Redis that is alive but cannot serve the command now:
// loading its data after a restart, busy with a script, failing over or resharding, a replica
// promoted late, a script cache emptied by a restart.
var transientRedis = []string{"LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY", "NOSCRIPT", "MOVED", "ASK"}

// Transient reports whether err says a dependency was unavailable rather than that the message
// cannot be handled: a timeout, a cancelled or expired context, a refused or dropped connection,
// or one of the Redis replies above. Such a failure never dead-letters a message, whatever its
// delivery count: the message is redelivered until the dependency is back.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		return true
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return true
	}
	return anyRedisReply(err, transientRedis)
}

// anyRedisReply reports whether a Redis error reply anywhere in err's tree (wrapped or joined)
// starts with one of prefixes.
func anyRedisReply(err error, prefixes []string) bool {
	switch e := err.(type) {
	case nil:
		return false
	case redis.Error:
		for _, p := range prefixes {
			if strings.HasPrefix(e.Error(), p) {
				return true
			}
		}
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			if anyRedisReply(inner, prefixes) {
				return true
			}
		}
		return false
	}
	return anyRedisReply(errors.Unwrap(err), prefixes)
}
