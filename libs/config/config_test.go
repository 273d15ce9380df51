package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/config"
)

type cfg struct {
	URL   string
	N     int
	Every time.Duration
	On    bool
}

func bind(env map[string]string) (*cfg, *config.Set) {
	var c cfg
	s := config.New("t", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	s.String(&c.URL, "url", "T_URL", "default", "url")
	s.Int(&c.N, "n", "T_N", 3, "n")
	s.Duration(&c.Every, "every", "T_EVERY", time.Second, "every")
	s.Bool(&c.On, "on", "T_ON", false, "on")
	return &c, s
}

func TestPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want cfg
	}{
		{"defaults", nil, nil, cfg{"default", 3, time.Second, false}},
		{"env beats default", map[string]string{"T_URL": "e", "T_N": "7", "T_EVERY": "2m", "T_ON": "true"}, nil, cfg{"e", 7, 2 * time.Minute, true}},
		{"flag beats env", map[string]string{"T_URL": "e", "T_ON": "1"}, []string{"-url", "f", "-n", "9", "-on=false"}, cfg{"f", 9, time.Second, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := bind(tc.env)
			if err := s.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if *c != tc.want {
				t.Fatalf("got %+v, want %+v", *c, tc.want)
			}
		})
	}
}

func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"T_N": "many"}, nil, "T_N=\"many\": not an integer"},
		{map[string]string{"T_EVERY": "soon"}, nil, "T_EVERY=\"soon\": not a duration"},
		{map[string]string{"T_ON": "yes please"}, nil, "T_ON=\"yes please\": not true or false"},
		{nil, []string{"-n", "x"}, "invalid value"},
		{nil, []string{"-nope"}, "flag provided but not defined"},
	} {
		_, s := bind(tc.env)
		s.FlagSet().SetOutput(&strings.Builder{})
		err := s.Parse(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%v, %v) = %v, want %q", tc.env, tc.args, err, tc.want)
		}
	}
}

func TestEnvVarsListsWhatIsRead(t *testing.T) {
	_, s := bind(nil)
	if got := strings.Join(s.EnvVars(), ","); got != "T_EVERY,T_N,T_ON,T_URL" {
		t.Fatalf("EnvVars = %s", got)
	}
}
