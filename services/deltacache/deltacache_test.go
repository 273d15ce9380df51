package deltacache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

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

// refineBudget is the harness's Config.RefineBudget: its packs are small,
// and refinements of a small pack cost more than a fifth of its build.
const refineBudget = 10000

func start(t *testing.T, n int) *harness {
	t.Helper()
	url := natstest.Start(t)
	log := slog.New(slog.DiscardHandler)
	h := &harness{}
	for i := range n {
		s, err := New(t.Context(), Config{Options: daemon.Options{NATSURL: url}, Instance: string(rune('a' + i)), WorkDir: t.TempDir(), RefineBudget: refineBudget}, log)
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
	return countEvents(t, s, bus.EntityDelta, bus.ActionComputed)
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
	// The metrics say the same: one computed among all instances, every
	// other answer a hit; a lost race is a wait, not an answer.
	var computed, stored, chained, waits float64
	for _, s := range h.instances {
		computed += testutil.ToFloat64(s.metrics.requests.WithLabelValues("demo", outcomeComputed))
		stored += testutil.ToFloat64(s.metrics.requests.WithLabelValues("demo", outcomeStored))
		chained += testutil.ToFloat64(s.metrics.requests.WithLabelValues("demo", outcomeChain))
		waits += testutil.ToFloat64(s.metrics.claimWaits.WithLabelValues("demo"))
	}
	answered := 2.0 // the second round
	for _, err := range errs {
		if err == nil {
			answered++
		}
	}
	if computed != 1 || chained != 0 || computed+stored != answered || waits != 4-answered {
		t.Fatalf("computed %v, stored %v, chained %v, claim waits %v; want 1 computed, %v answered, %v waits", computed, stored, chained, waits, answered, 4-answered)
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

// TestManifestReadFailureIsRetried: a manifest whose reading fails (NATS
// restarting in the middle of the object) is retried, not refused for
// good like one that breaks the format.
func TestManifestReadFailureIsRetried(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.txt", "a")
	m, err := tree.Scan(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tree.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	half := io.MultiReader(bytes.NewReader(buf.Bytes()[:buf.Len()/2]), iotest.ErrReader(nats.ErrTimeout))
	if _, err := readManifest(half, "demo/x", m.Root()); err == nil || bus.IsPermanent(err) || !errors.Is(err, nats.ErrTimeout) {
		t.Errorf("read failure: %v, want a transient error", err)
	}
	if _, err := readManifest(bytes.NewReader(buf.Bytes()[:buf.Len()/2]), "demo/x", m.Root()); !bus.IsPermanent(err) {
		t.Errorf("truncated manifest: %v, want a permanent error", err)
	}
	if got, err := readManifest(bytes.NewReader(buf.Bytes()), "demo/x", m.Root()); err != nil || got.Root() != m.Root() {
		t.Errorf("whole manifest: %v", err)
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

// lines is n lines of words drawn from a small vocabulary by seed:
// text that compresses, and whose edits a dictionary only partly covers.
func lines(seed uint64, n int) []string {
	words := []string{"mirror", "site", "tree", "delta", "pack", "origin", "version", "link", "chunk", "segment", "budget", "window"}
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		for range 4 + r.IntN(8) {
			fmt.Fprintf(&b, "%s-%d ", words[r.IntN(len(words))], r.IntN(1000))
		}
		out[i] = b.String()
	}
	return out
}

// TestRefinementFollowsTheFanOut: with the cost model, a pack one site
// fetches has no segment refined, one ten thousand sites fetch has, and
// the events say so.
func TestRefinementFollowsTheFanOut(t *testing.T) {
	h := start(t, 1)
	dir := t.TempDir()
	text := lines(1, 4000)
	var roots []string
	for v := range 3 {
		// Every version rewrites a fifth of the lines.
		for i := v; i < len(text); i += 5 {
			text[i] = lines(uint64(100+v*len(text)+i), 1)[0]
		}
		write(t, dir, "notes.txt", strings.Join(text, "\n"))
		roots = append(roots, publish(t, h.layout, "demo", dir).Root())
	}
	for _, req := range []bus.DeltaRequest{
		{V: 1, TriggerID: "t", Tree: "demo", From: roots[0], To: roots[1], Sites: 1},
		{V: 1, TriggerID: "t", Tree: "demo", From: roots[1], To: roots[2], Sites: 10000},
	} {
		if err := h.instances[0].Serve(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	s, err := h.js.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bus.DeltaComputed{}
	for seq := uint64(1); ; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			break
		}
		if e, a, _, _ := bus.ParseEventSubject(m.Subject); e != bus.EntityDelta || a != bus.ActionComputed {
			continue
		}
		_, ev, err := bus.DecodeEvent[bus.DeltaComputed](m.Data)
		if err != nil {
			t.Fatal(err)
		}
		got[ev.From] = ev
	}
	one, many := got[roots[0]], got[roots[1]]
	if one.Effort != "default" || one.Sites != 1 || one.Segments == 0 || one.Refined != 0 {
		t.Fatalf("pack for 1 site: %+v, want the default effort and nothing refined", one)
	}
	if many.Effort != "default" || many.Sites != 10000 || many.Refined == 0 || many.Refined > many.Segments {
		t.Fatalf("pack for 10000 sites: %+v, want segments refined", many)
	}
}

func TestEffortConfig(t *testing.T) {
	c := Config{}
	for _, sites := range []int{0, 1, 60} {
		if got := c.EffortFor(sites); got != pack.EffortDefault {
			t.Errorf("auto, %d sites: %s, want default", sites, got)
		}
	}
	// At 100 Mbit/s, 64 sites: worth it from a ratio of about 0.39, up to
	// the incompressible (over one half); within a budget as large as the
	// content carried is (ten times a segment here).
	const mib = 1 << 20
	for _, tc := range []struct {
		rate       string
		sites      int
		compressed int64
		want       bool
	}{
		{"", 1, 450 << 10, false},
		{"", 64, 450 << 10, true},
		{"", 64, 200 << 10, false},
		{"", 64, 900 << 10, false},
		{"1M", 64, 50 << 10, true},
		{"1M", 1, 50 << 10, false},
	} {
		c := Config{LinkRate: tc.rate, RefineBudget: DefaultRefineBudget}
		if got := c.Refiner(tc.sites, 10<<10*mib)(mib, tc.compressed); got != tc.want {
			t.Errorf("link %q, %d sites, 1 MiB to %d bytes: refine %v, want %v", tc.rate, tc.sites, tc.compressed, got, tc.want)
		}
	}
	// The budget: refinements add at most RefineBudget percent of the
	// build's CPU; 0 refines nothing.
	const carried = 100 * mib
	for _, budget := range []int{DefaultRefineBudget, 50, 100} {
		refine := Config{RefineBudget: budget}.Refiner(1_000_000, carried)
		var refined int64
		for range 200 {
			if refine(mib, 400<<10) {
				refined += mib
			}
		}
		want := int64(float64(budget) / 100 * carried * buildCost.Seconds() / refineCost.Seconds() / mib)
		if refined/mib != want || want == 0 {
			t.Errorf("budget %d%%: %d MiB of segments refined of 200, want %d", budget, refined/mib, want)
		}
	}
	if (Config{}).Refiner(1000, carried) != nil {
		t.Error("no budget, yet a refiner")
	}
	if c := (Config{LinkRate: "unlimited", RefineBudget: 20}); c.Refiner(1000, carried) != nil {
		t.Error("an unlimited link refines")
	}
	c.Effort, c.RefineBudget = "fast", 20
	if got := c.EffortFor(60); got != pack.EffortFast || c.Refiner(60, carried) != nil {
		t.Errorf("forced fast: %s, refiner %v", got, c.Refiner(60, carried) != nil)
	}
	for _, bad := range []Config{{Effort: "max"}, {LinkRate: "-5"}, {LinkRate: "fast"}, {LinkRate: "0"}, {RefineBudget: -1}, {RefineBudget: 10001}} {
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
	if got := countEvents(t, st, bus.EntityDelta, bus.ActionDeleted); got != 2 {
		t.Errorf("%d delta.deleted events, want 2", got)
	}
	// Again: nothing more to do.
	if n, err := s.collect(t.Context(), time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("second collect: %d, %v", n, err)
	}
}

// countEvents counts the events entity.action stored in st, whatever
// their tree and site.
func countEvents(t *testing.T, st jetstream.Stream, entity, action string) int {
	t.Helper()
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(bus.EventFilter(entity, action)))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// readies decodes the delta.ready events so far.
func (h *harness) readies(t *testing.T) []bus.DeltaReady {
	t.Helper()
	s, err := h.js.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	var out []bus.DeltaReady
	for seq := uint64(1); ; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			return out
		}
		if e, a, _, _ := bus.ParseEventSubject(m.Subject); e != bus.EntityDelta || a != bus.ActionReady {
			continue
		}
		_, r, err := bus.DecodeEvent[bus.DeltaReady](m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
}

// TestFarBehindSiteGetsTheCheaperWay: with packs v1→v2 and v2→v3 stored, a
// site at v1 is stepped along them when bytes are cheap (the first pack,
// towards v3, nothing computed), and gets one direct v1→v3 pack when they
// are dear; the direct pack then answers later requests.
func TestFarBehindSiteGetsTheCheaperWay(t *testing.T) {
	h := start(t, 1)
	s := h.instances[0]
	dir := t.TempDir()
	text := lines(3, 3000)
	var v [3]string
	for i := range v {
		for j := i; j < len(text); j += 4 {
			text[j] = lines(uint64(1000+i*len(text)+j), 1)[0]
		}
		write(t, dir, "notes.txt", strings.Join(text, "\n"))
		v[i] = publish(t, h.layout, "demo", dir).Root()
	}
	serve := func(from, to string, sites int) {
		t.Helper()
		if err := s.Serve(t.Context(), bus.DeltaRequest{V: 1, TriggerID: "t-" + from[:4] + to[:4], Tree: "demo", From: from, To: to, Sites: sites}); err != nil {
			t.Fatal(err)
		}
	}
	serve(v[0], v[1], 1)
	serve(v[1], v[2], 1)
	if n := h.computedEvents(t); n != 2 {
		t.Fatalf("%d packs computed, want 2", n)
	}
	info, err := h.layout.Deltas.GetInfo(t.Context(), bus.DeltaID("demo", v[1], v[2]))
	if err != nil || info.Metadata[BuildMSMeta] == "" || info.Opts == nil || info.Opts.ChunkSize != bus.ObjectChunkSize {
		t.Fatalf("pack without its build time or chunk size: %v %+v", err, info)
	}

	s.cfg.LinkRate = "unlimited" // bytes cost no time: the chain
	serve(v[0], v[2], 5)
	r := h.readies(t)
	last := r[len(r)-1]
	if n := h.computedEvents(t); n != 2 || last.Pack != bus.DeltaID("demo", v[0], v[1]) || last.To != v[1] || last.Target != v[2] {
		t.Fatalf("%d computed, last ready %+v: want the stored v1→v2 towards v3", n, last)
	}

	s.cfg.LinkRate = "1" // a byte a second: the direct delta
	serve(v[0], v[2], 5)
	r = h.readies(t)
	last = r[len(r)-1]
	if n := h.computedEvents(t); n != 3 || last.Pack != bus.DeltaID("demo", v[0], v[2]) || last.Target != "" {
		t.Fatalf("%d computed, last ready %+v: want a direct v1→v3", n, last)
	}
	s.cfg.LinkRate = "unlimited"
	serve(v[0], v[2], 5)
	if r = h.readies(t); r[len(r)-1].Pack != bus.DeltaID("demo", v[0], v[2]) {
		t.Fatalf("stored direct pack not used: %+v", r[len(r)-1])
	}
}

func TestChainSearch(t *testing.T) {
	packs := map[string][]hop{
		"a": {{from: "a", to: "b", size: 10}, {from: "a", to: "c", size: 100}},
		"b": {{from: "b", to: "c", size: 10}, {from: "b", to: "d", size: 500}},
		"c": {{from: "c", to: "d", size: 10}},
	}
	route := func(p []hop) string {
		var s []string
		for _, h := range p {
			s = append(s, h.from+h.to)
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct{ from, to, want string }{
		{"a", "d", "ab bc cd"}, // fewest bytes, not fewest hops
		{"a", "c", "ab bc"},
		{"b", "c", ""}, // one pack: no chain
		{"d", "a", ""}, // no way back
		{"a", "a", ""},
	} {
		if got := route(chain(packs, tc.from, tc.to)); got != tc.want {
			t.Errorf("%s→%s: %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
	c := Config{}
	path := chain(packs, "a", "d")
	path[0].build = 10 * time.Millisecond
	if !c.chainPays(path, 1) {
		t.Error("20 extra bytes to one site at 100 Mbit/s do not pay for 10 ms of CPU")
	}
	path[0].build = 0
	if c.chainPays(path, 1) {
		t.Error("a chain paid against a direct delta that costs nothing")
	}
}

// TestCollectionKeepsChains: the packs leading from a served version to
// the newest one are kept while it has no direct pack; once it has, the
// chain goes.
func TestCollectionKeepsChains(t *testing.T) {
	h := start(t, 1)
	s := h.instances[0]
	s.cfg.GCGrace = time.Minute
	dir := t.TempDir()
	var v [4]string
	for i := 1; i <= 3; i++ {
		write(t, dir, "a.txt", fmt.Sprintf("version %d", i))
		v[i] = publish(t, h.layout, "demo", dir).Root()
	}
	serve := func(from, to string) {
		t.Helper()
		if err := s.Serve(t.Context(), bus.DeltaRequest{V: 1, TriggerID: "t", Tree: "demo", From: from, To: to}); err != nil {
			t.Fatal(err)
		}
	}
	serve(v[1], v[2])
	serve(v[2], v[3])
	for site, ver := range map[string]string{"far": v[1], "origin": v[3]} {
		if err := bus.PutSiteVersion(t.Context(), h.layout.Sites, site, "demo", ver); err != nil {
			t.Fatal(err)
		}
	}
	snap := bus.Snapshot{V: 1, TriggerID: "t", Tree: "demo", Site: "origin", Root: v[3], PublishedAt: time.Now()}
	if err := bus.Publish(t.Context(), h.js, bus.SnapshotSubject("demo"), "snap", snap); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if n, err := s.collect(t.Context(), later); err != nil || n != 0 {
		t.Fatalf("collect with a chain in use: %d deleted, %v; want 0", n, err)
	}
	s.cfg.LinkRate = "1" // the direct delta
	serve(v[1], v[3])
	if n, err := s.collect(t.Context(), later); err != nil || n != 2 {
		t.Fatalf("collect with a direct pack: %d deleted, %v; want the 2 of the chain", n, err)
	}
	if _, err := h.layout.Deltas.GetInfo(t.Context(), bus.DeltaID("demo", v[1], v[3])); err != nil {
		t.Fatalf("direct pack: %v", err)
	}
}
