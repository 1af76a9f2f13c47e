// Package envflag builds a service's configuration from TICKETPULSE_* environment variables
// overridden by command-line flags, and documents both in -h.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/redact"
)

// Set registers flags that each have an environment variable as their default source.
type Set struct {
	fs      *flag.FlagSet
	lookup  func(string) (string, bool)
	entries []entry
	errs    []error
	summary string
}

type entry struct {
	flag, env, help string
}

// New returns a Set for the program name; summary is printed at the top of -h.
// lookup reads the environment (os.LookupEnv in main, a map in tests).
func New(name, summary string, lookup func(string) (string, bool)) *Set {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	s := &Set{fs: flag.NewFlagSet(name, flag.ContinueOnError), lookup: lookup, summary: summary}
	s.fs.Usage = func() { s.PrintUsage(s.fs.Output()) }
	return s
}

// EnvName is the environment variable for a flag: "nats-url" becomes TICKETPULSE_NATS_URL.
func EnvName(flagName string) string {
	return "TICKETPULSE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (s *Set) env(name string) (string, bool) {
	v, ok := s.lookup(EnvName(name))
	return v, ok && v != ""
}

func (s *Set) note(name, help string) {
	s.entries = append(s.entries, entry{flag: name, env: EnvName(name), help: help})
}

// String registers a string setting.
func (s *Set) String(p *string, name, def, help string) {
	if v, ok := s.env(name); ok {
		def = v
	}
	s.fs.StringVar(p, name, def, help)
	s.note(name, help)
}

// Int registers an integer setting.
func (s *Set) Int(p *int, name string, def int, help string) {
	if v, ok := s.env(name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not an integer", EnvName(name), v))
		} else {
			def = n
		}
	}
	s.fs.IntVar(p, name, def, help)
	s.note(name, help)
}

// Int64 registers a 64-bit integer setting.
func (s *Set) Int64(p *int64, name string, def int64, help string) {
	if v, ok := s.env(name); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not an integer", EnvName(name), v))
		} else {
			def = n
		}
	}
	s.fs.Int64Var(p, name, def, help)
	s.note(name, help)
}

// Bool registers a boolean setting.
func (s *Set) Bool(p *bool, name string, def bool, help string) {
	if v, ok := s.env(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not a boolean", EnvName(name), v))
		} else {
			def = b
		}
	}
	s.fs.BoolVar(p, name, def, help)
	s.note(name, help)
}

// Duration registers a duration setting such as "5s" or "720h".
func (s *Set) Duration(p *time.Duration, name string, def time.Duration, help string) {
	if v, ok := s.env(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not a duration (e.g. 5s, 720h)", EnvName(name), v))
		} else {
			def = d
		}
	}
	s.fs.DurationVar(p, name, def, help)
	s.note(name, help)
}

// Var registers a setting parsed by v, such as a list; v's value when Var is called is the default.
func (s *Set) Var(v flag.Value, name, help string) {
	if e, ok := s.env(name); ok {
		if err := v.Set(e); err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: %w", EnvName(name), e, err))
		}
	}
	s.fs.Var(v, name, help)
	s.note(name, help)
}

// Parse reads the flags. It returns flag.ErrHelp after printing usage for -h.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", s.fs.Args())
	}
	return errors.Join(s.errs...)
}

// SetOutput directs usage and parse errors.
func (s *Set) SetOutput(w io.Writer) { s.fs.SetOutput(w) }

// PrintUsage writes every flag with its environment variable, default and help.
func (s *Set) PrintUsage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage: %s [flags]\n\nEvery flag can also be set by the environment variable shown; a flag given on the\ncommand line wins over the environment.\n\n", s.summary, s.fs.Name())
	entries := append([]entry(nil), s.entries...)
	sort.Slice(entries, func(i, j int) bool { return entries[i].flag < entries[j].flag })
	for _, e := range entries {
		f := s.fs.Lookup(e.flag)
		// The default may come from the environment, and a URL there may carry a password.
		def := redact.URL(f.DefValue)
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  -%s  (env %s, default %s)\n      %s\n", e.flag, e.env, def, e.help)
	}
}
