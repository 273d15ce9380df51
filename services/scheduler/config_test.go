package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/libs/daemon"
	"github.com/pulpdist/pulpdist/services/scheduler"
)

func TestConfigInventoryToken(t *testing.T) {
	var cfg scheduler.Config
	s := config.New("scheduler", func(k string) (string, bool) {
		v, ok := map[string]string{"PULPDIST_INVENTORY_TOKEN": "pdt_0123456789ab_x"}[k]
		return v, ok
	})
	cfg.Bind(s)
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg.InventoryToken != "pdt_0123456789ab_x" {
		t.Fatalf("token from the environment = %q", cfg.InventoryToken)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	good := scheduler.Config{Options: daemon.Options{NATSURL: "nats://x:4222"}, InventoryURL: "http://x:7400",
		InventoryToken: "t", RefreshInterval: time.Second, TickInterval: time.Second}
	for _, tc := range []struct{ token, want string }{
		{"", "inventory token required"},
		{"a b", "printable ASCII without spaces"},
		{"a\nb", "printable ASCII without spaces"},
	} {
		cfg := good
		cfg.InventoryToken = tc.token
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("token %q: err = %v, want %q", tc.token, err, tc.want)
		}
	}
}
