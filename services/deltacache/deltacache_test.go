package deltacache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/daemon"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// publish scans dir and stores its content and manifest as an origin
// would, returning the manifest.
func publish(t *testing.T, l *bus.Layout, treeName, dir string) *tree.Manifest {
	t.Helper()
	m, err := tree.Scan(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Entries {
		if e.Kind != tree.KindFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.Path)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Blobs.PutBytes(t.Context(), e.Hash, b); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := tree.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Manifests.PutBytes(t.Context(), bus.ManifestObject(treeName, m.Root()), buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	return m
}

func write(t *testing.T, dir, rel, body string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

type harness struct {
	js        jetstream.JetStream
	layout    *bus.Layout
	instances []*Service
}

func start(t *testing.T, n int) *harness {
	t.Helper()
	url := natstest.Start(t)
	log := slog.New(slog.DiscardHandler)
	h := &harness{}
	for i := range n {
		s, err := New(t.Context(), Config{Options: daemon.Options{NATSURL: url}, Instance: string(rune('a' + i)), WorkDir: t.TempDir()}, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.d.Close)
		h.instances = append(h.instances, s)
	}
	h.js, h.layout = h.instances[0].js, h.instances[0].layout
	return h
}

func (h *harness) computedEvents(t *testing.T) int {
	t.Helper()
	s, err := h.js.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	subject := bus.EventSubject(bus.EntityDelta, bus.ActionComputed)
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Subjects[subject])
}

// TestDeltaIsComputedOnceAcrossInstances has two instances serve the same
// request at once and again later: one pack is built, every answer after it
// comes from the store, and the pack carries only what the base lacks.
func TestDeltaIsComputedOnceAcrossInstances(t *testing.T) {
	h := start(t, 2)
	dir := t.TempDir()
	write(t, dir, "keep.txt", "unchanged")
	write(t, dir, "edit.txt", "version one")
	v1 := publish(t, h.layout, "demo", dir)
	write(t, dir, "edit.txt", "version two")
	write(t, dir, "new/file.txt", "added")
	write(t, dir, "copy.txt", "unchanged") // content the base already holds
	v2 := publish(t, h.layout, "demo", dir)

	req := bus.DeltaRequest{V: 1, TriggerID: "t", Tree: "demo", From: v1.Root(), To: v2.Root()}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range h.instances {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Serve(t.Context(), req) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, errClaimed) {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	// Whoever lost the race (or came second) is answered from the store.
	for _, s := range h.instances {
		if err := s.Serve(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.computedEvents(t); n != 1 {
		t.Fatalf("delta computed %d times, want once", n)
	}

	obj, err := h.layout.Deltas.Get(t.Context(), bus.DeltaID("demo", v1.Root(), v2.Root()))
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	pr, err := pack.NewReader(obj, pack.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	hd := pr.Header()
	if _, err := pr.Target(v1, nil); err != nil {
		t.Fatalf("pack does not fit its base: %v", err)
	}
	if hd.From != v1.Root() || hd.To != v2.Root() || hd.Tree != "demo" {
		t.Fatalf("pack header %s %s→%s", hd.Tree, hd.From, hd.To)
	}
	if len(hd.Parts) != 2 { // "version two" and "added"; not keep.txt nor copy.txt
		t.Fatalf("pack has %d parts, want 2: %+v", len(hd.Parts), hd.Parts)
	}
}

// TestBadRequestsAreRefused: a request naming a version nobody published,
// or a manifest that does not hash to its name, is a permanent error and
// stores nothing.
func TestBadRequestsAreRefused(t *testing.T) {
	h := start(t, 1)
	dir := t.TempDir()
	write(t, dir, "a.txt", "a")
	m := publish(t, h.layout, "demo", dir)
	missing := bus.DeltaRequest{V: 1, TriggerID: "t", Tree: "demo", From: "", To: string(bytes.Repeat([]byte("0"), 64))}
	if err := h.instances[0].Serve(t.Context(), missing); !bus.IsPermanent(err) {
		t.Fatalf("unpublished version: %v, want a permanent error", err)
	}
	// A manifest stored under another root's name.
	other := string(bytes.Repeat([]byte("1"), 64))
	var buf bytes.Buffer
	if err := tree.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if _, err := h.layout.Manifests.PutBytes(t.Context(), bus.ManifestObject("demo", other), buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	lying := bus.DeltaRequest{V: 1, TriggerID: "t", Tree: "demo", To: other}
	if err := h.instances[0].Serve(t.Context(), lying); !bus.IsPermanent(err) {
		t.Fatalf("manifest under a wrong name: %v, want a permanent error", err)
	}
	if _, err := h.layout.Manifests.PutBytes(t.Context(), bus.ManifestObject("demo", string(bytes.Repeat([]byte("2"), 64))), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	garbage := bus.DeltaRequest{V: 1, TriggerID: "t", Tree: "demo", To: string(bytes.Repeat([]byte("2"), 64))}
	if err := h.instances[0].Serve(t.Context(), garbage); !bus.IsPermanent(err) {
		t.Fatalf("garbage manifest: %v, want a permanent error", err)
	}
	if _, err := h.layout.Deltas.List(context.WithoutCancel(t.Context())); !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Fatalf("deltas store not empty after refused requests: %v", err)
	}
}

// TestClaimKeepsABuildToOneInstance: while another instance holds the claim
// on a delta, a request for it is retried (not built a second time); once
// that instance has stored the pack, the request is answered from the store.
func TestClaimKeepsABuildToOneInstance(t *testing.T) {
	h := start(t, 2)
	dir := t.TempDir()
	write(t, dir, "a.txt", "alpha")
	m := publish(t, h.layout, "demo", dir)
	req := bus.DeltaRequest{V: 1, TriggerID: "t", Tree: "demo", To: m.Root()}
	key := bus.DeltaClaimKey("demo", "", m.Root())
	if _, err := h.layout.DeltaClaims.Create(t.Context(), key, []byte("other")); err != nil {
		t.Fatal(err)
	}
	if err := h.instances[1].Serve(t.Context(), req); !errors.Is(err, errClaimed) || bus.IsPermanent(err) {
		t.Fatalf("Serve during another's build = %v, want a transient errClaimed", err)
	}
	if n := h.computedEvents(t); n != 0 {
		t.Fatalf("%d builds while the claim was held", n)
	}
	// The other instance finishes: it stores the pack and releases its claim.
	if err := h.instances[0].Serve(t.Context(), bus.DeltaRequest{V: 1, TriggerID: "first", Tree: "demo", To: m.Root()}); !errors.Is(err, errClaimed) {
		t.Fatalf("the claim must hold for every instance: %v", err)
	}
	if err := h.layout.DeltaClaims.Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	if err := h.instances[0].Serve(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if err := h.instances[1].Serve(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if n := h.computedEvents(t); n != 1 {
		t.Fatalf("%d builds, want 1", n)
	}
	// A released claim is gone, not left behind for the TTL.
	if _, err := h.layout.DeltaClaims.Get(t.Context(), key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("claim after the build: %v, want none", err)
	}
}

// TestEffortFollowsTheFanOut: a pack one site fetches gets the default
// effort, one many sites fetch the best, and the event says which.
func TestEffortFollowsTheFanOut(t *testing.T) {
	h := start(t, 1)
	dir := t.TempDir()
	write(t, dir, "a.txt", "one")
	v1 := publish(t, h.layout, "demo", dir)
	write(t, dir, "a.txt", "two")
	v2 := publish(t, h.layout, "demo", dir)
	for _, req := range []bus.DeltaRequest{
		{V: 1, TriggerID: "t", Tree: "demo", From: v1.Root(), To: v2.Root(), Sites: 1},
		{V: 1, TriggerID: "t", Tree: "demo", From: "", To: v2.Root(), Sites: 40},
	} {
		if err := h.instances[0].Serve(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	s, err := h.js.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for seq := uint64(1); ; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			break
		}
		if m.Subject != bus.EventSubject(bus.EntityDelta, bus.ActionComputed) {
			continue
		}
		_, ev, err := bus.DecodeEvent[bus.DeltaComputed](m.Data)
		if err != nil {
			t.Fatal(err)
		}
		got[ev.From] = fmt.Sprintf("%s/%d", ev.Effort, ev.Sites)
	}
	if got[v1.Root()] != "default/1" || got[""] != "best/40" {
		t.Fatalf("efforts %v, want default for 1 site and best for 40", got)
	}
}

func TestEffortConfig(t *testing.T) {
	c := Config{}
	for sites, want := range map[int]pack.Effort{0: pack.EffortDefault, 1: pack.EffortDefault, 2: pack.EffortBest, 60: pack.EffortBest} {
		if got := c.EffortFor(sites); got != want {
			t.Errorf("auto, %d sites: %s, want %s", sites, got, want)
		}
	}
	c.BestSites = 10
	if got := c.EffortFor(9); got != pack.EffortDefault {
		t.Errorf("best from 10, 9 sites: %s", got)
	}
	c.Effort = "fast"
	if got := c.EffortFor(60); got != pack.EffortFast {
		t.Errorf("forced fast: %s", got)
	}
	for _, bad := range []Config{{Effort: "max"}, {BestSites: -1}} {
		bad.Options, bad.Instance, bad.WorkDir = daemon.Options{NATSURL: "nats://bus:14222"}, "x", t.TempDir()
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

// TestPacksNobodyNeedsAreCollected: packs towards a replaced version, or
// from a base no site serves, go once past the grace period; the full pack
// and the packs from served bases to the newest version stay.
func TestPacksNobodyNeedsAreCollected(t *testing.T) {
	h := start(t, 1)
	s := h.instances[0]
	s.cfg.GCGrace = 30 * time.Minute
	dir := t.TempDir()
	var v [4]string
	for i := 1; i <= 3; i++ {
		write(t, dir, "a.txt", fmt.Sprintf("version %d", i))
		v[i] = publish(t, h.layout, "demo", dir).Root()
	}
	other := publish(t, h.layout, "other", dir).Root()
	for _, r := range []bus.DeltaRequest{
		{Tree: "demo", To: v[3]}, {Tree: "demo", From: v[1], To: v[3]}, {Tree: "demo", From: v[2], To: v[3]},
		{Tree: "demo", From: v[1], To: v[2]}, {Tree: "other", To: other},
	} {
		r.V, r.TriggerID = 1, "t"
		if err := s.Serve(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := bus.PutSiteVersion(t.Context(), h.layout.Sites, "site-a", "demo", v[1]); err != nil {
		t.Fatal(err)
	}
	if err := bus.PutSiteVersion(t.Context(), h.layout.Sites, "origin", "demo", v[3]); err != nil {
		t.Fatal(err)
	}
	snap := bus.Snapshot{V: 1, TriggerID: "t", Tree: "demo", Site: "origin", Root: v[3], PublishedAt: time.Now()}
	if err := bus.Publish(t.Context(), h.js, bus.SnapshotSubject("demo"), "snap", snap); err != nil {
		t.Fatal(err)
	}
	// Within the grace period nothing goes.
	if n, err := s.collect(t.Context(), time.Now()); err != nil || n != 0 {
		t.Fatalf("collect within the grace period: %d, %v", n, err)
	}
	n, err := s.collect(t.Context(), time.Now().Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("collect: %d deleted, %v; want 2", n, err)
	}
	for id, want := range map[string]bool{
		bus.DeltaID("demo", "", v[3]): true, bus.DeltaID("demo", v[1], v[3]): true, bus.DeltaID("other", "", other): true,
		bus.DeltaID("demo", v[2], v[3]): false, bus.DeltaID("demo", v[1], v[2]): false,
	} {
		_, err := h.layout.Deltas.GetInfo(t.Context(), id)
		if got := err == nil; got != want {
			t.Errorf("pack %s kept = %v, want %v (%v)", id, got, want, err)
		}
	}
	st, err := h.js.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	subject := bus.EventSubject(bus.EntityDelta, bus.ActionDeleted)
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Subjects[subject]; got != 2 {
		t.Errorf("%d delta.deleted events, want 2", got)
	}
	// Again: nothing more to do.
	if n, err := s.collect(t.Context(), time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("second collect: %d, %v", n, err)
	}
}
