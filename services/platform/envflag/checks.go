package envflag

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Checks collects the settings that cannot work, each error naming its flag, so a service
// reports all of them at once.
type Checks struct{ errs []error }

// Positive requires d > 0.
func (c *Checks) Positive(flag string, d time.Duration) {
	if d <= 0 {
		c.errs = append(c.errs, fmt.Errorf("-%s %s: must be positive", flag, d))
	}
}

// NotNegative requires d >= 0.
func (c *Checks) NotNegative(flag string, d time.Duration) {
	if d < 0 {
		c.errs = append(c.errs, fmt.Errorf("-%s %s: must not be negative", flag, d))
	}
}

// AtLeast requires d >= least.
func (c *Checks) AtLeast(flag string, d, least time.Duration) {
	if d < least {
		c.errs = append(c.errs, fmt.Errorf("-%s %s: must be at least %s", flag, d, least))
	}
}

// AtLeastN requires n >= least.
func (c *Checks) AtLeastN(flag string, n, least int) {
	if n < least {
		c.errs = append(c.errs, fmt.Errorf("-%s %d: must be at least %d", flag, n, least))
	}
}

// AtLeastN64 requires n >= least, for sizes in bytes.
func (c *Checks) AtLeastN64(flag string, n, least int64) {
	if n < least {
		c.errs = append(c.errs, fmt.Errorf("-%s %d: must be at least %d", flag, n, least))
	}
}

// Between requires least <= n <= most.
func (c *Checks) Between(flag string, n, least, most int) {
	if n < least || n > most {
		c.errs = append(c.errs, fmt.Errorf("-%s %d: must be between %d and %d", flag, n, least, most))
	}
}

// NotEmpty requires s to be set.
func (c *Checks) NotEmpty(flag, s string) {
	if s == "" {
		c.errs = append(c.errs, fmt.Errorf("-%s %q: must not be empty", flag, s))
	}
}

// OneOf requires s to be one of words.
func (c *Checks) OneOf(flag, s string, words ...string) {
	if !slices.Contains(words, s) {
		c.errs = append(c.errs, fmt.Errorf("-%s %q: want %s", flag, s, orList(words)))
	}
}

func orList(words []string) string {
	switch len(words) {
	case 0:
		return "nothing"
	case 1:
		return words[0]
	}
	out := words[0]
	for _, w := range words[1 : len(words)-1] {
		out += ", " + w
	}
	return out + " or " + words[len(words)-1]
}

// Add records checks made elsewhere; each error must name its flag. Nil errors are skipped.
func (c *Checks) Add(errs ...error) {
	for _, err := range errs {
		if err != nil {
			c.errs = append(c.errs, err)
		}
	}
}

// Err joins what failed; nil when everything passed.
func (c *Checks) Err() error { return errors.Join(c.errs...) }
