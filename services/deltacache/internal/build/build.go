// Package build computes a delta pack from two manifests: which content the
// target needs that the base does not hold, written as a pack.
package build

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"

	"github.com/zeebo/blake3"

	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// Result describes a written pack.
type Result struct {
	Size  int64
	Hash  string // hex BLAKE3 of the whole pack
	Parts int
	// Segments counts the pack's segments, Refined those encoded again at
	// the best level (pack.Options.Refine).
	Segments, Refined int
}

// Write writes the pack turning from (root fromRoot, "" for none) into to,
// fetching content with open from pulpdist's content store (large
// contents as chunks, pack.Options.Chunked), signed with key unless it is nil, spooling
// in tempDir, at effort, refined by refine (nil for none), and returns its
// size and hash.
func Write(ctx context.Context, w io.Writer, treeName, fromRoot string, from, to *tree.Manifest,
	open func(ctx context.Context, hash string) (io.ReadCloser, error), key ed25519.PrivateKey, tempDir string,
	effort pack.Effort, refine func(content, compressed int64) bool) (Result, error) {
	if (from == nil) != (fromRoot == "") || (from != nil && from.Root() != fromRoot) {
		return Result{}, fmt.Errorf("write pack %s %s→%s: the base manifest is not %q", treeName, fromRoot, to.Root(), fromRoot)
	}
	hasher := blake3.New()
	res, err := pack.Build(ctx, io.MultiWriter(w, hasher), pack.Options{Tree: treeName, From: from, To: to, Key: key, TempDir: tempDir, Effort: effort, Refine: refine, Chunked: true}, open)
	if err != nil {
		return Result{}, fmt.Errorf("write pack %s %s→%s: %w", treeName, fromRoot, to.Root(), err)
	}
	return Result{Size: res.Bytes, Hash: fmt.Sprintf("%x", hasher.Sum(nil)), Parts: res.Parts, Segments: res.Segments, Refined: res.Refined}, nil
}
