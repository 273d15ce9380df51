package siteagent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
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
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/zeebo/blake3"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/daemon"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/libs/tree"
	"github.com/pulpdist/pulpdist/services/siteagent"
)

type harness struct {
	js      jetstream.JetStream
	layout  *bus.Layout
	dataDir string
	url     string
	srv     *natstest.Server
	site    string
	stop    func() // stops the running agent
	// prepare, when set, is given each agent before it runs.
	prepare func(*siteagent.Service)
	mu      sync.Mutex
	done    map[string]bus.SyncFinished
}

// start runs a site-agent for site on an embedded JetStream and records
// every sync.finished event.
func start(t *testing.T, site string, opts ...func(*siteagent.Config)) *harness {
	t.Helper()
	return startWith(t, site, nil, opts...)
}

// startWith is start, giving the agent to prepare (unless nil) before it
// runs, and again after each restart.
func startWith(t *testing.T, site string, prepare func(*siteagent.Service), opts ...func(*siteagent.Config)) *harness {
	t.Helper()
	srv := natstest.Serve(t)
	url := srv.URL
	log := slog.New(slog.DiscardHandler)
	h := &harness{dataDir: t.TempDir(), done: map[string]bus.SyncFinished{}, url: url, srv: srv, site: site, prepare: prepare}
	// The layout is declared before the agent starts: the server does not
	// like a stream's config updated while a consumer is created on it.
	nc, js, err := bus.Connect(t.Context(), url, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h.js = js
	if h.layout, err = bus.Ensure(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	h.startAgent(t, opts...)
	t.Cleanup(func() { h.stop() })
	cons, err := js.OrderedConsumer(t.Context(), bus.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.EventFilter(bus.EntitySync, bus.ActionFinished)},
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_, fin, err := bus.DecodeEvent[bus.SyncFinished](m.Data())
		if err != nil {
			t.Errorf("bad event: %v", err)
			return
		}
		h.mu.Lock()
		h.done[fin.RunID] = fin
		h.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return h
}

// startAgent runs a site-agent on h's bus and data directory; h.stop
// stops it.
func (h *harness) startAgent(t *testing.T, opts ...func(*siteagent.Config)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cfg := siteagent.Config{Options: daemon.Options{NATSURL: h.url}, Site: h.site, DataDir: h.dataDir}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := siteagent.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if h.prepare != nil {
		h.prepare(svc)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- svc.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-stopped; err != nil {
				t.Errorf("agent stopped with %v", err)
			}
		})
	}
}

// send publishes a command without waiting for its result.
func (h *harness) send(t *testing.T, cmd bus.SyncCommand) {
	t.Helper()
	cmd.V = bus.MessageVersion
	if err := bus.Publish(t.Context(), h.js, bus.CommandSubject(cmd), cmd.RunID, cmd); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the result of a run.
func (h *harness) wait(t *testing.T, runID string, within time.Duration) bus.SyncFinished {
	t.Helper()
	var fin bus.SyncFinished
	poll.Until(t, within, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		var ok bool
		if fin, ok = h.done[runID]; !ok {
			return fmt.Errorf("run %s not finished", runID)
		}
		return nil
	})
	return fin
}

// run sends a command and waits for its result.
func (h *harness) run(t *testing.T, cmd bus.SyncCommand) bus.SyncFinished {
	t.Helper()
	h.send(t, cmd)
	return h.wait(t, cmd.RunID, 20*time.Second)
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

// storePack writes a full pack of the tree in dir (from the empty base)
// into the deltas store, optionally corrupting its bytes, and returns its
// name and BLAKE3.
func (h *harness) storePack(t *testing.T, treeName, dir string, corrupt func([]byte)) (name, hash, root string) {
	t.Helper()
	return h.storeSignedPack(t, treeName, dir, corrupt, nil)
}

// storeSignedPack is storePack, signed with key unless it is nil.
func (h *harness) storeSignedPack(t *testing.T, treeName, dir string, corrupt func([]byte), key ed25519.PrivateKey) (name, hash, root string) {
	t.Helper()
	b, m := buildPack(t, dir, pack.Options{Tree: treeName, Key: key})
	if corrupt != nil {
		corrupt(b)
	}
	name = bus.DeltaID(treeName, "", m.Root())
	return name, h.putDelta(t, name, b), m.Root()
}

// buildPack builds a pack with opts to the tree in dir, which holds every
// content the pack needs, and returns it and the tree's manifest.
func buildPack(t *testing.T, dir string, opts pack.Options) ([]byte, *tree.Manifest) {
	t.Helper()
	m, err := tree.Scan(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	byHash := map[string]string{}
	for _, e := range m.Entries {
		byHash[e.Hash] = filepath.Join(dir, filepath.FromSlash(e.Path))
	}
	var buf bytes.Buffer
	open := func(_ context.Context, hash string) (io.ReadCloser, error) { return os.Open(byHash[hash]) }
	opts.To, opts.TempDir = m, t.TempDir()
	if _, err := pack.Build(t.Context(), &buf, opts, open); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

// putDelta writes b into the deltas store as name, in chunks of the
// size the delta-cache stores packs with, and returns its BLAKE3.
func (h *harness) putDelta(t *testing.T, name string, b []byte) string {
	t.Helper()
	if _, err := h.layout.Deltas.Put(t.Context(), bus.ObjectMeta(name, nil), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", blake3.Sum256(b))
}

func current(t *testing.T, h *harness, treeName string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(h.dataDir, "trees", treeName, "current"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(target)
}

func TestOriginSnapshotPublishesContentAndManifest(t *testing.T) {
	h := start(t, "origin")
	src := t.TempDir()
	write(t, src, "a.txt", "alpha")
	write(t, src, "dir/b.txt", "beta")
	write(t, src, "dir/a-again.txt", "alpha")
	fin := h.run(t, bus.SyncCommand{RunID: "r1", TriggerID: "t1", Kind: bus.CommandSnapshot, Site: "origin", Tree: "demo", Source: src})
	if fin.Result != bus.ResultCompleted || fin.Files != 2 || fin.Bytes != int64(len("alpha")+len("beta")) {
		t.Fatalf("snapshot run %+v: want COMPLETED uploading 2 contents, 9 bytes", fin)
	}
	m, err := tree.Scan(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	if fin.To != m.Root() {
		t.Fatalf("snapshot root %s, scan says %s", fin.To, m.Root())
	}
	if _, err := h.layout.Manifests.GetInfo(t.Context(), bus.ManifestObject("demo", m.Root())); err != nil {
		t.Fatalf("manifest not stored: %v", err)
	}
	if v, err := bus.GetSiteVersion(t.Context(), h.layout.Sites, "origin", "demo"); err != nil || v != m.Root() {
		t.Fatalf("site version %q, %v", v, err)
	}
	// Unchanged: UP_TO_DATE, nothing uploaded.
	fin = h.run(t, bus.SyncCommand{RunID: "r2", TriggerID: "t2", Kind: bus.CommandSnapshot, Site: "origin", Tree: "demo", Source: src})
	if fin.Result != bus.ResultUpToDate || fin.Bytes != 0 {
		t.Fatalf("second snapshot %+v: want UP_TO_DATE, 0 bytes", fin)
	}
}

// TestUnchangedSnapshotAsksTheStoreNothing: the contents of the served
// version are known to be stored, so a re-scan of a tree of 300 files
// sends a handful of messages, not a look-up per file; an edit uploads
// just the new content. Also after a restart (the manifest read back
// from the store).
func TestUnchangedSnapshotAsksTheStoreNothing(t *testing.T) {
	h := start(t, "origin")
	src := t.TempDir()
	const files = 300
	for i := range files {
		write(t, src, fmt.Sprintf("d%d/f%03d.txt", i%7, i), fmt.Sprintf("content %d", i))
	}
	cmd := func(id string) bus.SyncCommand {
		return bus.SyncCommand{RunID: id, TriggerID: id, Kind: bus.CommandSnapshot, Site: "origin", Tree: "demo", Source: src}
	}
	if fin := h.run(t, cmd("r1")); fin.Result != bus.ResultCompleted || fin.Files != files {
		t.Fatalf("first snapshot %+v", fin)
	}
	for i, step := range []string{"unchanged", "restarted"} {
		if step == "restarted" {
			h.stop()
			h.startAgent(t)
		}
		before := h.srv.Received()
		fin := h.run(t, cmd(fmt.Sprint("same-", i)))
		if got := h.srv.Received() - before; fin.Result != bus.ResultUpToDate || got > files/10 {
			t.Fatalf("%s: %s, %d messages to the server for %d unchanged files", step, fin.Result, got, files)
		}
	}
	write(t, src, "d1/f001.txt", "edited")
	before := h.srv.Received()
	fin := h.run(t, cmd("edit"))
	if got := h.srv.Received() - before; fin.Result != bus.ResultCompleted || fin.Files != 1 || got > files/10 {
		t.Fatalf("one edit: %+v, %d messages", fin, got)
	}
	info, err := h.layout.Blobs.GetInfo(t.Context(), fmt.Sprintf("%x", blake3.Sum256([]byte("edited"))))
	if err != nil || info.Opts == nil || info.Opts.ChunkSize != bus.ObjectChunkSize {
		t.Fatalf("edited content not stored in %d-byte chunks: %v %+v", bus.ObjectChunkSize, err, info)
	}
}

// TestLargeFileUploadsItsChangedChunks: a large file is stored as its
// chunks, each by its hash, not whole; an edit in its middle uploads the
// chunks that changed, a small part of the file.
func TestLargeFileUploadsItsChangedChunks(t *testing.T) {
	h := start(t, "origin")
	src := t.TempDir()
	big := make([]byte, 12<<20)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(src, "disk.img"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := func(id string) bus.SyncCommand {
		return bus.SyncCommand{RunID: id, TriggerID: id, Kind: bus.CommandSnapshot, Site: "origin", Tree: "demo", Source: src}
	}
	fin := h.run(t, cmd("r1"))
	if fin.Result != bus.ResultCompleted || fin.Bytes != int64(len(big)) {
		t.Fatalf("first snapshot %+v: want COMPLETED, %d bytes", fin, len(big))
	}
	storedChunks := func(root string) (tree.Entry, int) {
		t.Helper()
		r, err := h.layout.Manifests.Get(t.Context(), bus.ManifestObject("demo", root))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		m, err := tree.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		e := m.Entries[0]
		if len(e.Chunks) < 4 {
			t.Fatalf("%s has %d chunks", e.Path, len(e.Chunks))
		}
		for _, c := range e.Chunks {
			if _, err := h.layout.Blobs.GetInfo(t.Context(), c.Hash); err != nil {
				t.Fatalf("chunk %s not stored: %v", c.Hash, err)
			}
		}
		if _, err := h.layout.Blobs.GetInfo(t.Context(), e.Hash); !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Fatalf("the whole content is stored too (%v)", err)
		}
		return e, len(e.Chunks)
	}
	first, n := storedChunks(fin.To)
	copy(big[6<<20:], "an edit in the middle of the image")
	if err := os.WriteFile(filepath.Join(src, "disk.img"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	fin = h.run(t, cmd("r2"))
	if fin.Result != bus.ResultCompleted || fin.Bytes == 0 || fin.Bytes > 2*tree.ChunkMaxSize {
		t.Fatalf("after an edit: %+v, want COMPLETED with at most two chunks' bytes", fin)
	}
	second, _ := storedChunks(fin.To)
	if second.Hash == first.Hash {
		t.Fatal("the edit did not change the content")
	}
	t.Logf("%d chunks, %d bytes uploaded for the edit", n, fin.Bytes)
}

func TestSnapshotOfABadSourceFails(t *testing.T) {
	h := start(t, "origin")
	for i, src := range []string{"relative/path", "/nonexistent/pulpdist-test", "/tmp/../etc"} {
		fin := h.run(t, bus.SyncCommand{RunID: fmt.Sprint("bad-", i), TriggerID: "t", Kind: bus.CommandSnapshot, Site: "origin", Tree: "demo", Source: src})
		if fin.Result != bus.ResultFailed || fin.Error == "" {
			t.Errorf("source %q: %+v, want FAILED with a reason", src, fin)
		}
	}
}

// TestSourceRootsConfineScans: with PULPDIST_SOURCE_ROOTS set, an origin
// scans only under them, also when the source is a link pointing out.
func TestSourceRootsConfineScans(t *testing.T) {
	allowed, outside := t.TempDir(), t.TempDir()
	write(t, allowed, "tree/a.txt", "a")
	write(t, outside, "secret.txt", "s")
	if err := os.Symlink(outside, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	h := start(t, "origin", func(c *siteagent.Config) { c.SourceRoots = "/nonexistent-root, " + allowed })
	for _, tc := range []struct {
		source string
		want   bus.Result
	}{
		{filepath.Join(allowed, "tree"), bus.ResultCompleted},
		{outside, bus.ResultFailed},
		{filepath.Join(allowed, "escape"), bus.ResultFailed},
		{"/etc", bus.ResultFailed},
	} {
		fin := h.run(t, bus.SyncCommand{RunID: "src-" + tc.source, TriggerID: "t", Kind: bus.CommandSnapshot, Site: "origin", Tree: "demo", Source: tc.source})
		if fin.Result != tc.want {
			t.Errorf("source %s: %s (%s), want %s", tc.source, fin.Result, fin.Error, tc.want)
		}
		if tc.want == bus.ResultFailed && !strings.Contains(fin.Error, "source not allowed") {
			t.Errorf("source %s: error %q does not say why", tc.source, fin.Error)
		}
	}
	if err := (siteagent.Config{Options: daemon.Options{NATSURL: "nats://x"}, Site: "s", DataDir: "/d", SourceRoots: "relative/dir"}).Validate(); err == nil {
		t.Error("a relative source root was accepted")
	}
}

func TestReplicaAppliesAndRefusesBadPacks(t *testing.T) {
	h := start(t, "site-a")
	src := t.TempDir()
	write(t, src, "a.txt", "alpha")
	write(t, src, "dir/b.txt", "beta")
	name, hash, root := h.storePack(t, "demo", src, nil)

	// A pack whose bytes do not hash to the announced hash is refused
	// before anything is written.
	fin := h.run(t, bus.SyncCommand{RunID: "wrong-hash", TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "demo", To: root, Pack: name, PackHash: strings.Repeat("0", 64)})
	if fin.Result != bus.ResultFailed || !strings.Contains(fin.Error, "pack hash mismatch") {
		t.Fatalf("wrong hash: %+v", fin)
	}
	if cur := current(t, h, "demo"); cur != "" {
		t.Fatalf("a refused pack switched the tree to %s", cur)
	}
	// A base the site does not hold.
	if err := bus.PutSiteVersion(t.Context(), h.layout.Sites, "origin", "demo", root); err != nil {
		t.Fatal(err)
	}
	fin = h.run(t, bus.SyncCommand{RunID: "wrong-base", TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "demo", From: strings.Repeat("9", 64), To: root, Pack: name, PackHash: hash, Origin: "origin"})
	if fin.Result != bus.ResultFailed || !strings.Contains(fin.Error, "base") {
		t.Fatalf("wrong base: %+v", fin)
	}
	// ... and asks for the delta from what it does serve (nothing yet).
	reqs, err := h.js.Stream(t.Context(), bus.StreamDeltaReq)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := reqs.GetLastMsgForSubject(t.Context(), bus.DeltaRequestSubject("demo"))
	if err != nil {
		t.Fatalf("no delta requested after a base mismatch: %v", err)
	}
	if req, err := bus.Decode[bus.DeltaRequest](raw.Data); err != nil || req.From != "" || req.To != root {
		t.Fatalf("requested %+v (%v), want the delta from no version to %s", req, err, root)
	}

	fin = h.run(t, bus.SyncCommand{RunID: "good", TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "demo", To: root, Pack: name, PackHash: hash})
	if fin.Result != bus.ResultCompleted || fin.To != root {
		t.Fatalf("apply: %+v", fin)
	}
	got, err := tree.Scan(t.Context(), filepath.Join(h.dataDir, "trees", "demo", "current"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Root() != root {
		t.Fatalf("served root %s, want %s", got.Root(), root)
	}
	// A late command towards an older version, planned before the site
	// moved: the site serves the newest version, so it stays there.
	fin = h.run(t, bus.SyncCommand{RunID: "stale", TriggerID: "t0", Kind: bus.CommandApply, Site: "site-a", Tree: "demo",
		From: strings.Repeat("8", 64), To: strings.Repeat("7", 64), Pack: name, PackHash: hash, Origin: "origin"})
	if fin.Result != bus.ResultUpToDate || fin.To != root || current(t, h, "demo") != root {
		t.Fatalf("stale command: %+v, serving %s; want UP_TO_DATE at %s", fin, current(t, h, "demo"), root)
	}
	// The same command again: UP_TO_DATE, no transfer.
	fin = h.run(t, bus.SyncCommand{RunID: "again", TriggerID: "t2", Kind: bus.CommandApply, Site: "site-a", Tree: "demo", From: root, To: root})
	if fin.Result != bus.ResultUpToDate || fin.Bytes != 0 {
		t.Fatalf("again: %+v", fin)
	}

	// A pack whose content was altered (its announced hash matches the
	// altered bytes) fails verification and leaves the served tree alone.
	write(t, src, "dir/b.txt", "beta, changed")
	name2, hash2, root2 := h.storePack(t, "demo", src, func(b []byte) {
		b[len(b)-5] ^= 0xff
	})
	fin = h.run(t, bus.SyncCommand{RunID: "corrupt", TriggerID: "t3", Kind: bus.CommandApply, Site: "site-a", Tree: "demo", To: root2, Pack: name2, PackHash: hash2})
	if fin.Result != bus.ResultFailed {
		t.Fatalf("corrupt pack: %+v", fin)
	}
	if cur := current(t, h, "demo"); cur != root {
		t.Fatalf("after a corrupt pack the site serves %s, want %s", cur, root)
	}
	staging, err := os.ReadDir(filepath.Join(h.dataDir, "trees", "demo", "staging"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(staging) != 0 {
		t.Fatalf("staging left behind: %v", staging)
	}
}

// TestTrustedKeysRequireSignedPacks: an agent configured with trusted keys
// refuses an unsigned pack, and one signed by another key, and applies one
// signed by a trusted key.
func TestTrustedKeysRequireSignedPacks(t *testing.T) {
	pub, priv, err := pack.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, err := pack.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := pack.EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "trusted.pub")
	if err := os.WriteFile(keyFile, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, "site-a", func(c *siteagent.Config) { c.TrustedKeys = keyFile })
	src := t.TempDir()
	write(t, src, "a.txt", "alpha")
	for i, tc := range []struct {
		key  ed25519.PrivateKey
		want bus.Result
	}{{nil, bus.ResultFailed}, {otherPriv, bus.ResultFailed}, {priv, bus.ResultCompleted}} {
		name, hash, root := h.storeSignedPack(t, "demo", src, nil, tc.key)
		fin := h.run(t, bus.SyncCommand{RunID: fmt.Sprint("signed-", i), TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "demo", To: root, Pack: name, PackHash: hash})
		if fin.Result != tc.want {
			t.Fatalf("case %d: %s (%s), want %s", i, fin.Result, fin.Error, tc.want)
		}
		if tc.want == bus.ResultFailed && (!strings.Contains(fin.Error, "signature") || current(t, h, "demo") != "") {
			t.Fatalf("case %d: refused with %q, serving %q", i, fin.Error, current(t, h, "demo"))
		}
	}
	if _, err := siteagent.New(t.Context(), siteagent.Config{Options: daemon.Options{NATSURL: "nats://127.0.0.1:1"}, Site: "s", DataDir: t.TempDir(), TrustedKeys: filepath.Join(t.TempDir(), "missing.pub")}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "trusted keys") {
		t.Fatalf("a missing trusted-keys file: %v", err)
	}
}

func TestConfigIsValidated(t *testing.T) {
	for _, cfg := range []siteagent.Config{
		{Options: daemon.Options{NATSURL: "nats://x"}, Site: "Bad.Site", DataDir: "/tmp"},
		{Options: daemon.Options{NATSURL: "nats://x"}, Site: "ok", DataDir: "relative"},
		{Site: "ok", DataDir: "/tmp"},
		{Options: daemon.Options{NATSURL: "nats://x"}, Site: "ok", DataDir: "/tmp", ProgressInterval: -time.Second},
		{Options: daemon.Options{NATSURL: "nats://x"}, Site: "ok", DataDir: "/tmp", ProgressInterval: siteagent.MinProgressInterval - 1},
		{Options: daemon.Options{NATSURL: "nats://x"}, Site: "ok", DataDir: "/tmp", HeartbeatInterval: -time.Second},
		{Options: daemon.Options{NATSURL: "nats://x"}, Site: "ok", DataDir: "/tmp", HeartbeatInterval: siteagent.MinHeartbeatInterval - 1},
		{Options: daemon.Options{NATSURL: "nats://x"}, Site: "ok", DataDir: "/tmp", HeartbeatInterval: siteagent.MaxHeartbeatInterval + 1},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	for _, d := range []time.Duration{0, siteagent.MinProgressInterval, time.Minute} {
		if err := (siteagent.Config{Options: daemon.Options{NATSURL: "nats://x"}, Site: "ok", DataDir: "/tmp", ProgressInterval: d}).Validate(); err != nil {
			t.Errorf("progress interval %s: %v", d, err)
		}
	}
	for _, d := range []time.Duration{0, siteagent.MinHeartbeatInterval, siteagent.MaxHeartbeatInterval} {
		if err := (siteagent.Config{Options: daemon.Options{NATSURL: "nats://x"}, Site: "ok", DataDir: "/tmp", HeartbeatInterval: d}).Validate(); err != nil {
			t.Errorf("heartbeat interval %s: %v", d, err)
		}
	}
}

// TestAgentTokenFile: the token may come from a file (a mounted secret);
// a file that is missing, empty, of several lines, too big or holding no
// token, or a token given both ways, is refused before the agent starts.
func TestAgentTokenFile(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := siteagent.Config{Options: daemon.Options{NATSURL: "nats://x"}, Site: "s", DataDir: "/d"}
	good := base
	good.AgentTokenFile = file("good", "pdt_abc123_secretsecret\n")
	if err := good.Validate(); err != nil {
		t.Fatalf("a token file with a trailing newline: %v", err)
	}
	for _, tc := range []struct {
		name, token, file, want string
	}{
		{"missing", "", filepath.Join(dir, "nope"), "no such file"},
		{"empty", "", file("empty", "\n"), "one value on one line"},
		{"two lines", "", file("two", "pdt_a_b\npdt_c_d\n"), "one value on one line"},
		{"too big", "", file("big", "pdt_a_"+strings.Repeat("x", 5000)), "one value on one line"},
		{"not a token", "", file("junk", "hunter2"), "pdt_<id>_<secret>"},
		{"both", "pdt_abc123_secretsecret", good.AgentTokenFile, "not both"},
	} {
		cfg := base
		cfg.AgentToken, cfg.AgentTokenFile = tc.token, tc.file
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
