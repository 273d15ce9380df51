package siteagent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/daemon"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// TestUploadOfAChangedFileLeavesNothing: a file whose content no longer
// matches its scanned hash is refused, and nothing is left under the hash:
// a small one (checked before it is stored) and one of more than a chunk
// (streamed, then removed).
func TestUploadOfAChangedFileLeavesNothing(t *testing.T) {
	s, err := New(t.Context(), Config{Options: daemon.Options{NATSURL: natstest.Start(t)}, Site: "origin", DataDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.d.Close)
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for i, content := range [][]byte{[]byte("changed after the scan"), []byte(strings.Repeat("changed after the scan ", bus.ObjectChunkSize/10))} {
		name := fmt.Sprintf("f%d", i)
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, size := range []int64{int64(len(content)), 7} { // same size, or shorter at the scan
			scanned := tree.Entry{Path: name, Kind: tree.KindFile, Hash: strings.Repeat(fmt.Sprintf("%02x", i+1), 32), Size: size}
			if _, err := s.uploadOne(t.Context(), root, scanned); !errors.Is(err, ErrChanged) {
				t.Fatalf("upload of %d bytes scanned as %d = %v, want ErrChanged", len(content), size, err)
			}
			if _, err := s.layout.Blobs.GetInfo(t.Context(), scanned.Hash); !errors.Is(err, jetstream.ErrObjectNotFound) {
				t.Fatalf("blob under the scanned hash after a refused upload of %d bytes: %v", len(content), err)
			}
		}
	}
}

// TestSnapshotReportsItsUpload: a snapshot's progress ends in the upload
// phase with the contents it had to look at as totals and those it
// stored as done, each content once; the next snapshot counts only what
// changed.
func TestSnapshotReportsItsUpload(t *testing.T) {
	s, err := New(t.Context(), Config{Options: daemon.Options{NATSURL: natstest.Start(t)}, Site: "origin", DataDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.d.Close)
	src := t.TempDir()
	for name, content := range map[string]string{"a": "alpha", "b": "beta", "c": "gamma", "again-a": "alpha"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snap := func(run string) (outcome, bus.SyncProgress) {
		t.Helper()
		cmd := bus.SyncCommand{RunID: run, TriggerID: "t", Kind: bus.CommandSnapshot, Site: "origin", Tree: "demo", Source: src}
		prog := new(progress)
		out, err := s.snapshot(t.Context(), cmd, prog)
		if err != nil {
			t.Fatal(err)
		}
		return out, prog.event(cmd, time.Second)
	}
	out, p := snap("r1")
	want := bus.SyncProgress{RunID: "r1", TriggerID: "t", Site: "origin", Tree: "demo", Kind: bus.CommandSnapshot, Phase: bus.PhaseUpload,
		BytesDone: int64(len("alpha") + len("beta") + len("gamma")), BytesTotal: int64(len("alpha") + len("beta") + len("gamma")),
		FilesDone: 3, FilesTotal: 3, ElapsedMS: 1000}
	if p != want || out.files != 3 || out.bytes != want.BytesDone {
		t.Fatalf("first snapshot: %+v, progress\n got %+v\nwant %+v", out, p, want)
	}
	if err := os.WriteFile(filepath.Join(src, "b"), []byte("beta, edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, p = snap("r2")
	if p.Phase != bus.PhaseUpload || p.FilesTotal != 1 || p.FilesDone != 1 || p.BytesDone != int64(len("beta, edited")) || p.BytesTotal != p.BytesDone {
		t.Fatalf("second snapshot's progress %+v: want the edited content alone", p)
	}
}
