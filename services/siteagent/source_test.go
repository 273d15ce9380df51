package siteagent_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// needRsync returns the system rsync; without one the test fails under
// CI=true (the Makefile installs it) and is skipped elsewhere.
func needRsync(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("rsync")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("rsync is required under CI=true (make test installs it): %v", err)
		}
		t.Skipf("no rsync on PATH: %v", err)
	}
	return bin
}

// rsyncDaemon serves dir as module "mirror" on a free local port until
// the test ends, and returns the module's URL.
func rsyncDaemon(t *testing.T, dir string) string {
	t.Helper()
	bin := needRsync(t)
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close() // rsync binds it next
	conf := filepath.Join(t.TempDir(), "rsyncd.conf")
	body := fmt.Sprintf("use chroot = no\nlog file = /dev/null\npid file = %s\n[mirror]\npath = %s\nread only = yes\n",
		filepath.Join(filepath.Dir(conf), "rsyncd.pid"), dir)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := exec.CommandContext(t.Context(), bin, "--daemon", "--no-detach", "--config="+conf, "--address=127.0.0.1", fmt.Sprintf("--port=%d", port))
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.Process.Kill() // the daemon has nothing to save
		_ = d.Wait()
	})
	poll.Until(t, 10*time.Second, func() error {
		var dialer net.Dialer
		c, err := dialer.DialContext(t.Context(), "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return err
		}
		return c.Close()
	})
	return fmt.Sprintf("rsync://127.0.0.1:%d/mirror", port)
}

func TestRsyncUpstreamIsImported(t *testing.T) {
	up := t.TempDir()
	write(t, up, "dists/stable/Release", "release 1")
	write(t, up, "pool/a.deb", "package a")
	write(t, up, "pool/a.deb.tmp", "being uploaded")
	url := rsyncDaemon(t, up)
	h := start(t, "origin")
	snap := func(id string) bus.SyncFinished {
		return h.run(t, bus.SyncCommand{RunID: id, TriggerID: id, Kind: bus.CommandSnapshot, Site: "origin", Tree: "debian",
			Source: url + "/", Filters: []string{"- *.tmp"}})
	}
	first := snap("r1")
	if first.Result != bus.ResultCompleted {
		t.Fatalf("import: %+v", first)
	}
	got := paths(h.published(t, "debian", first.To))
	if want := []string{"dists", "dists/stable", "dists/stable/Release", "pool", "pool/a.deb"}; !slices.Equal(got, want) {
		t.Fatalf("published %q, want %q", got, want)
	}
	// The upstream moves on: the staging copy follows, deletions included.
	write(t, up, "dists/stable/Release", "release 2")
	if err := os.Remove(filepath.Join(up, "pool/a.deb")); err != nil {
		t.Fatal(err)
	}
	write(t, up, "pool/b.deb", "package b")
	second := snap("r2")
	m := h.published(t, "debian", second.To)
	want, err := tree.ScanWith(t.Context(), up, tree.ScanOptions{Filter: mustFilter(t, "- *.tmp")})
	if err != nil {
		t.Fatal(err)
	}
	if m.Root() != want.Root() {
		for i := range min(len(m.Entries), len(want.Entries)) {
			if a, b := m.Entries[i], want.Entries[i]; a.Path != b.Path || a.Mode != b.Mode || a.MTime != b.MTime || a.Hash != b.Hash {
				t.Errorf("imported %+v, upstream %+v", a, b)
			}
		}
		t.Fatalf("imported %q, upstream holds %q", paths(m), paths(want))
	}
	// An upstream that is not there fails the run, saying why.
	bad := h.run(t, bus.SyncCommand{RunID: "r3", TriggerID: "r3", Kind: bus.CommandSnapshot, Site: "origin", Tree: "other",
		Source: strings.TrimSuffix(url, "/mirror") + "/nomodule"})
	if bad.Result != bus.ResultFailed || !strings.Contains(bad.Error, "rsync") {
		t.Fatalf("unknown module: %+v", bad)
	}
	if v := h.siteVersion(t, "origin", "other"); v != "" {
		t.Fatalf("a failed import published %s", v)
	}
}

func mustFilter(t *testing.T, rules ...string) *tree.Filter {
	t.Helper()
	f, err := tree.ParseFilter(rules)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReplicaSourceRepublishesTheServedVersion(t *testing.T) {
	h := start(t, "hub")
	none := h.run(t, bus.SyncCommand{RunID: "r0", TriggerID: "r0", Kind: bus.CommandSnapshot, Site: "hub", Tree: "lab", Source: "replica:upstream"})
	if none.Result != bus.ResultFailed || !strings.Contains(none.Error, "serves no version of upstream") {
		t.Fatalf("replica source before any version: %+v", none)
	}
	src := t.TempDir()
	write(t, src, "iso/big.iso", "image")
	write(t, src, "docs/readme", "read me")
	name, hash, root := h.storePack(t, "upstream", src, nil)
	if fin := h.run(t, bus.SyncCommand{RunID: "r1", TriggerID: "t", Kind: bus.CommandApply, Site: "hub", Tree: "upstream", To: root, Pack: name, PackHash: hash}); fin.Result != bus.ResultCompleted {
		t.Fatalf("hub apply: %+v", fin)
	}
	fin := h.run(t, bus.SyncCommand{RunID: "r2", TriggerID: "r2", Kind: bus.CommandSnapshot, Site: "hub", Tree: "lab",
		Source: "replica:upstream", Filters: []string{"- /iso/"}})
	if fin.Result != bus.ResultCompleted {
		t.Fatalf("republish: %+v", fin)
	}
	if got := paths(h.published(t, "lab", fin.To)); !slices.Equal(got, []string{"docs", "docs/readme"}) {
		t.Fatalf("lab holds %q", got)
	}
	// Again, unchanged: nothing to upload, the same version.
	again := h.run(t, bus.SyncCommand{RunID: "r3", TriggerID: "r3", Kind: bus.CommandSnapshot, Site: "hub", Tree: "lab",
		Source: "replica:upstream", Filters: []string{"- /iso/"}})
	if again.Result != bus.ResultUpToDate || again.To != fin.To || again.Bytes != 0 {
		t.Errorf("republishing the same version: %+v", again)
	}
}
