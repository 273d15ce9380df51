package scheduler_test

import (
	"os"
	"path/filepath"
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
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ token, file, want string }{
		{"", "", "inventory token required"},
		{"a b", "", "printable ASCII without spaces"},
		{"a\nb", "", "printable ASCII without spaces"},
		{"", filepath.Join(dir, "missing"), "no such file"},
		{"", file("empty", "\n"), "one value on one line"},
		{"", file("spaced", "a b\n"), "printable ASCII without spaces"},
		{"t", file("both", "t\n"), "not both"},
	} {
		cfg := good
		cfg.InventoryToken, cfg.InventoryTokenFile = tc.token, tc.file
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("token %q, file %q: err = %v, want %q", tc.token, tc.file, err, tc.want)
		}
	}
	cfg = good
	cfg.InventoryToken, cfg.InventoryTokenFile = "", file("good", "pdt_0123456789ab_x\n")
	if err := cfg.Validate(); err != nil {
		t.Errorf("a token file: %v", err)
	}
}
