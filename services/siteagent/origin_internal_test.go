package siteagent

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/daemon"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// TestUploadOfAChangedFileLeavesNothing: a file whose content no longer
// matches its scanned hash is refused, and nothing is left under the hash.
func TestUploadOfAChangedFileLeavesNothing(t *testing.T) {
	s, err := New(t.Context(), Config{Options: daemon.Options{NATSURL: natstest.Start(t)}, Site: "origin", DataDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.d.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("changed after the scan"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	scanned := tree.Entry{Path: "a.txt", Kind: tree.KindFile, Hash: strings.Repeat("ab", 32), Size: 7}
	if _, err := s.uploadOne(t.Context(), root, scanned); !errors.Is(err, ErrChanged) {
		t.Fatalf("upload = %v, want ErrChanged", err)
	}
	if _, err := s.layout.Blobs.GetInfo(t.Context(), scanned.Hash); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("blob under the scanned hash after a refused upload: %v", err)
	}
}
