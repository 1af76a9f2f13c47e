// Package redisconn opens go-redis clients from a URL.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/redact"
)

// Open parses a redis:// URL, connects and pings. The client is sized for pipelined batches.
func Open(ctx context.Context, url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		// url.Error repeats the URL, password and all.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis url %q: %w", redact.URL(url), err)
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = 5 * time.Second
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = 5 * time.Second
	}
	// RESP2 keeps HGETALL replies flat and avoids the client's CLIENT SETINFO round trip noise.
	opt.Protocol = 2
	opt.DisableIdentity = true
	c := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("ping redis %s: %w", opt.Addr, err)
	}
	return c, nil
}
