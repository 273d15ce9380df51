package inventory_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/libs/health"
	"github.com/pulpdist/pulpdist/services/inventory"
)

func parse(t *testing.T, env map[string]string, args ...string) (inventory.Config, error) {
	t.Helper()
	var cfg inventory.Config
	s := config.New("inventory", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	cfg.Bind(s)
	err := s.Parse(args)
	return cfg, err
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := inventory.Config{NATSURL: "nats://127.0.0.1:4222", DatabaseURL: "sqlite://pulpdist-inventory.db",
		HTTPAddr: "127.0.0.1:7400", LogFormat: "text", LogLevel: "info"}
	if cfg.NATSURL != want.NATSURL || cfg.DatabaseURL != want.DatabaseURL || cfg.HTTPAddr != want.HTTPAddr ||
		cfg.LogFormat != want.LogFormat || cfg.LogLevel != want.LogLevel || cfg.Migrate {
		t.Fatalf("defaults = %+v, want %+v (no migration unless asked)", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if l := cfg.EventLimits(); l.MaxAge != bus.EventRetention || l.MaxBytes != 0 {
		t.Fatalf("default event limits %+v", l)
	}
	if l := (inventory.Config{}).EventLimits(); l.MaxAge != bus.EventRetention {
		t.Fatalf("event limits of a zero config %+v", l)
	}
}

func TestConfigEnvAndFlags(t *testing.T) {
	env := map[string]string{
		"PULPDIST_NATS_URL":                "nats://bus:14222",
		"PULPDIST_DATABASE_URL":            "postgresql://inv@db/inventory",
		"PULPDIST_HTTP_ADDR":               ":18080",
		"PULPDIST_LOG_FORMAT":              "json",
		"PULPDIST_LOG_LEVEL":               "debug",
		"PULPDIST_MIGRATE":                 "true",
		"PULPDIST_ACCEPT_UNSIGNED_REPORTS": "true",
		"PULPDIST_EVENTS_MAX_AGE":          "2160h",
		"PULPDIST_EVENTS_MAX_MB":           "512",
		"PULPDIST_AGENT_OFFLINE_AFTER":     "15m",
	}
	cfg, err := parse(t, env, "-database-url", "sqlite:///var/lib/pulpdist/inventory.db")
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.EventLimits(); l.MaxAge != 90*24*time.Hour || l.MaxBytes != 512<<20 {
		t.Fatalf("event limits %+v from PULPDIST_EVENTS_MAX_AGE=2160h, PULPDIST_EVENTS_MAX_MB=512", l)
	}
	if cfg.AgentOfflineAfter != 15*time.Minute {
		t.Fatalf("agent offline after %s from PULPDIST_AGENT_OFFLINE_AFTER=15m", cfg.AgentOfflineAfter)
	}
	if !cfg.Migrate || !cfg.AcceptUnsignedReports {
		t.Fatal("PULPDIST_MIGRATE=true or PULPDIST_ACCEPT_UNSIGNED_REPORTS=true did not set its field")
	}
	if cfg.NATSURL != "nats://bus:14222" || cfg.DatabaseURL != "sqlite:///var/lib/pulpdist/inventory.db" ||
		cfg.HTTPAddr != ":18080" || cfg.LogFormat != "json" || cfg.LogLevel != "debug" {
		t.Fatalf("config = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var names []string
	s := config.New("inventory", func(string) (string, bool) { return "", false })
	cfg.Bind(s)
	names = s.EnvVars()
	if got := strings.Join(names, ","); got != "PULPDIST_ACCEPT_UNSIGNED_REPORTS,PULPDIST_ADMIN_TOKEN,PULPDIST_AGENT_OFFLINE_AFTER,PULPDIST_ALARM_INTERVAL,PULPDIST_DATABASE_URL,PULPDIST_EVENTS_MAX_AGE,PULPDIST_EVENTS_MAX_MB,PULPDIST_HTTP_ADDR,PULPDIST_LOG_FORMAT,PULPDIST_LOG_LEVEL,PULPDIST_MIGRATE,PULPDIST_NATS_URL" {
		t.Fatalf("env vars = %s", got)
	}
}

func TestConfigValidate(t *testing.T) {
	good := inventory.Config{NATSURL: "nats://x:14222", DatabaseURL: "sqlite://x.db", HTTPAddr: "127.0.0.1:0", LogFormat: "text", LogLevel: "info"}
	for _, tc := range []struct {
		name string
		edit func(*inventory.Config)
		want string
	}{
		{"no nats", func(c *inventory.Config) { c.NATSURL = "" }, "nats url required"},
		{"mysql", func(c *inventory.Config) { c.DatabaseURL = "mysql://x/y" }, `scheme "mysql"`},
		{"no database", func(c *inventory.Config) { c.DatabaseURL = "" }, "database url"},
		{"no port", func(c *inventory.Config) { c.HTTPAddr = "localhost" }, "want host:port"},
		{"log format", func(c *inventory.Config) { c.LogFormat = "xml" }, "log format"},
		{"log level", func(c *inventory.Config) { c.LogLevel = "loud" }, "log level"},
		{"nil probe", func(c *inventory.Config) { c.ExtraProbes = []*health.Probe{nil} }, "probe 0 is nil"},
		{"negative republish", func(c *inventory.Config) { c.KeyRepublish = -time.Second }, "key republish interval -1s is negative"},
		{"negative offline threshold", func(c *inventory.Config) { c.AgentOfflineAfter = -time.Minute }, "agent offline after -1m0s: want 1s or more"},
		{"offline threshold below a second", func(c *inventory.Config) { c.AgentOfflineAfter = 500 * time.Millisecond }, "agent offline after 500ms"},
		{"events kept a minute", func(c *inventory.Config) { c.EventsMaxAge = time.Minute }, "events max age 1m0s: want an hour or more"},
		{"negative events age", func(c *inventory.Config) { c.EventsMaxAge = -time.Hour }, "events max age -1h0m0s"},
		{"negative events size", func(c *inventory.Config) { c.EventsMaxMB = -1 }, "events max MiB -1"},
		{"short admin token", func(c *inventory.Config) { c.AdminToken = "secret" }, "admin token: 6 characters, want at least 32"},
		{"long admin token", func(c *inventory.Config) { c.AdminToken = strings.Repeat("a", 506) }, "admin token: longer than 505"},
		{"admin token with space", func(c *inventory.Config) { c.AdminToken = strings.Repeat("a", 32) + " b" }, "printable ASCII without spaces"},
	} {
		cfg := good
		tc.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := parse(t, map[string]string{"PULPDIST_LOG_LEVEL": "x"}, "-no-such-flag"); err == nil {
		t.Error("unknown flag accepted")
	}
}
