package siteagent_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// published reads the manifest the origin stored for root.
func (h *harness) published(t *testing.T, treeName, root string) *tree.Manifest {
	t.Helper()
	r, err := h.layout.Manifests.Get(t.Context(), bus.ManifestObject(treeName, root))
	if err != nil {
		t.Fatalf("manifest of %s: %v", root, err)
	}
	defer r.Close()
	m, err := tree.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (h *harness) siteVersion(t *testing.T, site, treeName string) string {
	t.Helper()
	v, err := bus.GetSiteVersion(t.Context(), h.layout.Sites, site, treeName)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func paths(m *tree.Manifest) []string {
	out := make([]string, len(m.Entries))
	for i, e := range m.Entries {
		out[i] = e.Path
	}
	return out
}

func TestSnapshotTreeIsPublishedOnlyWhenFinished(t *testing.T) {
	h := start(t, "origin")
	src := t.TempDir()
	write(t, src, "build/out.bin", "half written")
	snap := func(id string) bus.SyncFinished {
		return h.run(t, bus.SyncCommand{RunID: id, TriggerID: id, Kind: bus.CommandSnapshot, Site: "origin", Tree: "nightly", Source: src, Type: bus.TreeSnapshot})
	}
	fin := snap("no-status")
	if fin.Result != bus.ResultUpToDate || !strings.Contains(fin.Error, "no STATUS file") || fin.To != "" {
		t.Fatalf("without STATUS: %+v, want UP_TO_DATE, not published", fin)
	}
	write(t, src, "STATUS", "RUNNING\nstep 3 of 7\n")
	fin = snap("running")
	if fin.Result != bus.ResultUpToDate || !strings.Contains(fin.Error, `says "RUNNING"`) {
		t.Fatalf("STATUS RUNNING: %+v, want UP_TO_DATE, not published", fin)
	}
	if v := h.siteVersion(t, "origin", "nightly"); v != "" {
		t.Fatalf("an unfinished tree was published as %s", v)
	}
	write(t, src, "build/out.bin", "complete")
	write(t, src, "STATUS", "FINISHED\n")
	fin = snap("finished")
	if fin.Result != bus.ResultCompleted || fin.Error != "" {
		t.Fatalf("STATUS FINISHED: %+v, want COMPLETED", fin)
	}
	if v := h.siteVersion(t, "origin", "nightly"); v != fin.To {
		t.Fatalf("origin serves %q, published %q", v, fin.To)
	}
	// The next build starts: the finished version stays the served one.
	write(t, src, "STATUS", "RUNNING")
	write(t, src, "build/out.bin", "next, half written")
	again := snap("next-running")
	if again.Result != bus.ResultUpToDate || again.To != fin.To {
		t.Fatalf("next build running: %+v, want UP_TO_DATE at %s", again, fin.To)
	}
	if v := h.siteVersion(t, "origin", "nightly"); v != fin.To {
		t.Fatalf("origin serves %q, want the finished %q", v, fin.To)
	}
}

func TestVersionedTreePublishesTheNewestVersionsAndALatestLink(t *testing.T) {
	h := start(t, "origin")
	src := t.TempDir()
	for _, v := range []string{"1.2", "1.9", "1.10", "2.0-rc[1]"} {
		write(t, src, v+"/pkg.tar", "release "+v)
	}
	write(t, src, "README", "read me")
	if err := os.Symlink("1.2", filepath.Join(src, "latest")); err != nil { // stale: the origin's link replaces it
		t.Fatal(err)
	}
	fin := h.run(t, bus.SyncCommand{RunID: "v1", TriggerID: "v1", Kind: bus.CommandSnapshot, Site: "origin", Tree: "releases",
		Source: src, Type: bus.TreeVersioned, SyncLatest: 2, Filters: []string{"- *-rc*"}})
	if fin.Result != bus.ResultCompleted {
		t.Fatalf("snapshot: %+v", fin)
	}
	m := h.published(t, "releases", fin.To)
	want := []string{"1.10", "1.10/pkg.tar", "1.9", "1.9/pkg.tar", "README", "latest"}
	if got := paths(m); !slices.Equal(got, want) {
		t.Fatalf("published %q, want %q (the newest 2 of 1.2, 1.9, 1.10; the rc is filtered out)", got, want)
	}
	for _, e := range m.Entries {
		if e.Path == "latest" && (e.Kind != tree.KindSymlink || e.Target != "1.10") {
			t.Errorf("latest is %+v, want a link to 1.10", e)
		}
	}
	// All versions when SyncLatest is 0.
	fin = h.run(t, bus.SyncCommand{RunID: "v2", TriggerID: "v2", Kind: bus.CommandSnapshot, Site: "origin", Tree: "releases",
		Source: src, Type: bus.TreeVersioned})
	m = h.published(t, "releases", fin.To)
	if got := paths(m); !slices.Contains(got, "1.2/pkg.tar") || !slices.Contains(got, "2.0-rc[1]/pkg.tar") {
		t.Fatalf("published %q, want every version", got)
	}
	for _, e := range m.Entries {
		if e.Path == "latest" && e.Target != "2.0-rc[1]" {
			t.Errorf("latest points to %q, want 2.0-rc[1]", e.Target)
		}
	}
}

func TestProtectedPathsAndTheDeletionGuard(t *testing.T) {
	h := start(t, "origin")
	src := t.TempDir()
	for i := range 6 {
		write(t, src, "pkgs/p"+string(rune('a'+i)), "package")
	}
	write(t, src, "local/notes.txt", "kept by the sites")
	write(t, src, "etc/app.conf", "conf")
	cmd := func(id string, confirm bool) bus.SyncCommand {
		return bus.SyncCommand{RunID: id, TriggerID: id, Kind: bus.CommandSnapshot, Site: "origin", Tree: "mirror", Source: src,
			MaxDeletions: 3, ProtectedPaths: []string{"/local/", "*.conf"}, ConfirmDeletions: confirm}
	}
	first := h.run(t, cmd("v1", false))
	if first.Result != bus.ResultCompleted {
		t.Fatalf("first version: %+v", first)
	}
	// The source loses its protected paths and two packages: under the
	// limit once the protected ones are kept.
	for _, p := range []string{"local", "etc", "pkgs/pa", "pkgs/pb"} {
		if err := os.RemoveAll(filepath.Join(src, p)); err != nil {
			t.Fatal(err)
		}
	}
	second := h.run(t, cmd("v2", false))
	if second.Result != bus.ResultCompleted {
		t.Fatalf("two deletions, limit 3: %+v", second)
	}
	got := paths(h.published(t, "mirror", second.To))
	for _, p := range []string{"local/notes.txt", "etc/app.conf"} {
		if !slices.Contains(got, p) {
			t.Errorf("protected %s deleted: %q", p, got)
		}
	}
	if slices.Contains(got, "pkgs/pa") {
		t.Errorf("pkgs/pa not deleted: %q", got)
	}
	// The package directory vanishes (an unmounted share): five deletions.
	if err := os.RemoveAll(filepath.Join(src, "pkgs")); err != nil {
		t.Fatal(err)
	}
	cons, err := h.js.OrderedConsumer(t.Context(), bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.EventFilter(bus.EntityGuard, bus.ActionTripped)}})
	if err != nil {
		t.Fatal(err)
	}
	third := h.run(t, cmd("v3", false))
	if third.Result != bus.ResultPartial || !strings.Contains(third.Error, "deletion guard") || third.To != second.To {
		t.Fatalf("five deletions, limit 3: %+v, want PARTIAL at the served version", third)
	}
	if v := h.siteVersion(t, "origin", "mirror"); v != second.To {
		t.Fatalf("guarded version published: origin serves %s", v)
	}
	msg, err := cons.Next()
	if err != nil {
		t.Fatal(err)
	}
	_, ev, err := bus.DecodeEvent[bus.GuardTripped](msg.Data())
	if err != nil {
		t.Fatal(err)
	}
	if ev.Deletions != 5 || ev.Limit != 3 || ev.RunID != "v3" || ev.From != second.To || ev.Root == second.To || !slices.Contains(ev.Sample, "pkgs") {
		t.Errorf("guard event %+v", ev)
	}
	// The operator confirms.
	fourth := h.run(t, cmd("v4", true))
	if fourth.Result != bus.ResultCompleted || fourth.To != ev.Root {
		t.Fatalf("confirmed: %+v, want COMPLETED at the refused %s", fourth, ev.Root)
	}
	if got := paths(h.published(t, "mirror", fourth.To)); !slices.Equal(got, []string{"etc", "etc/app.conf", "local", "local/notes.txt"}) {
		t.Errorf("confirmed version holds %q", got)
	}
}
