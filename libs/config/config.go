// Package config binds a program's typed configuration to command-line flags
// and PULPDIST_* environment variables: a flag beats the environment, which
// beats the default. The set remembers which variables it reads, so the
// deployment files can be checked against what programs really read.
package config

import (
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Set is a flag set that also reads the environment.
type Set struct {
	fs     *flag.FlagSet
	lookup func(string) (string, bool)
	envs   []string
	apply  []func() error
}

// New returns a set for the program name. lookup is os.LookupEnv in
// programs and a map in tests.
func New(name string, lookup func(string) (string, bool)) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return &Set{fs: fs, lookup: lookup}
}

// FlagSet exposes the flags, for usage output.
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

// EnvVars lists the environment variables this set reads, sorted.
func (s *Set) EnvVars() []string {
	out := append([]string(nil), s.envs...)
	sort.Strings(out)
	return out
}

func (s *Set) bind(env string, fromEnv func(string) error) {
	if env == "" {
		return
	}
	s.envs = append(s.envs, env)
	s.apply = append(s.apply, func() error {
		v, ok := s.lookup(env)
		if !ok {
			return nil
		}
		if err := fromEnv(v); err != nil {
			return fmt.Errorf("%s=%q: %w", env, v, err)
		}
		return nil
	})
}

// String binds a string option.
func (s *Set) String(p *string, name, env, def, usage string) {
	s.fs.StringVar(p, name, def, withEnv(usage, env))
	s.bind(env, func(v string) error { *p = v; return nil })
}

// Int binds an integer option.
func (s *Set) Int(p *int, name, env string, def int, usage string) {
	s.fs.IntVar(p, name, def, withEnv(usage, env))
	s.bind(env, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("not an integer")
		}
		*p = n
		return nil
	})
}

// Bool binds a boolean option; the environment takes true/false, 1/0 (as
// strconv.ParseBool).
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	s.fs.BoolVar(p, name, def, withEnv(usage, env))
	s.bind(env, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("not true or false")
		}
		*p = b
		return nil
	})
}

// Duration binds a duration option ("30s", "5m").
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	s.fs.DurationVar(p, name, def, withEnv(usage, env))
	s.bind(env, func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("not a duration")
		}
		*p = d
		return nil
	})
}

// Parse applies the environment over the defaults, then the flags.
func (s *Set) Parse(args []string) error {
	for _, f := range s.apply {
		if err := f(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	if err := s.fs.Parse(args); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func withEnv(usage, env string) string {
	if env == "" {
		return usage
	}
	return usage + " (env " + env + ")"
}
