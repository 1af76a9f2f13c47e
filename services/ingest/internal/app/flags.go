package app

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// consumerName is a durable name safe in a JetStream API subject.
var consumerName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// fractionFlag is a number between 0 and 1.
type fractionFlag float64

func (f *fractionFlag) String() string { return strconv.FormatFloat(float64(*f), 'g', -1, 64) }
func (f *fractionFlag) Set(v string) error {
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || x < 0 || x > 1 {
		return fmt.Errorf("%q: want a number between 0 and 1", v)
	}
	*f = fractionFlag(x)
	return nil
}

// listFlag is a comma-separated list of consumer names.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	var out []string
	for name := range strings.SplitSeq(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		// Consumer names go into JetStream API subjects: one plain token each.
		if !consumerName.MatchString(name) {
			return fmt.Errorf("consumer %q: want 1 to 64 letters, digits, '-' or '_'", name)
		}
		out = append(out, name)
	}
	if len(out) == 0 || len(out) > 16 {
		return fmt.Errorf("%q: want 1 to 16 consumer names", v)
	}
	*l = out
	return nil
}
