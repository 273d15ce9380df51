package migrations

import (
	"io/fs"
	"strings"
	"testing"
)

// Every up migration has its down migration, and the other way round.
func TestInventoryPairs(t *testing.T) {
	names, err := fs.Glob(Inventory, "inventory/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no inventory migrations embedded")
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, n := range names {
		var pair string
		switch {
		case strings.HasSuffix(n, ".up.sql"):
			pair = strings.TrimSuffix(n, ".up.sql") + ".down.sql"
		case strings.HasSuffix(n, ".down.sql"):
			pair = strings.TrimSuffix(n, ".down.sql") + ".up.sql"
		default:
			t.Errorf("%s: want NNNNNN_name.up.sql or .down.sql", n)
			continue
		}
		if !have[pair] {
			t.Errorf("%s has no %s", n, pair)
		}
	}
}

// The schema stays portable: none of the constructs one of the two
// databases refuses.
func TestInventoryPortable(t *testing.T) {
	names, err := fs.Glob(Inventory, "inventory/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	banned := []string{"now()", "::", "serial", "autoincrement", "identity", "jsonb", "timestamptz", "current_timestamp"}
	for _, n := range names {
		b, err := fs.ReadFile(Inventory, n)
		if err != nil {
			t.Fatal(err)
		}
		sql := strings.ToLower(string(b))
		for _, w := range banned {
			if strings.Contains(sql, w) {
				t.Errorf("%s uses %q, which is not portable between PostgreSQL and SQLite", n, w)
			}
		}
	}
}
