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
}

// Write writes the pack turning from (root fromRoot, "" for none) into to,
// fetching content with open, signed with key unless it is nil, and
// returns its size and hash.
func Write(ctx context.Context, w io.Writer, treeName, fromRoot string, from, to *tree.Manifest,
	open func(ctx context.Context, hash string) (io.ReadCloser, error), key ed25519.PrivateKey) (Result, error) {
	h := pack.Header{
		Format: pack.FormatVersion, Tree: treeName, From: fromRoot, To: to.Root(),
		Manifest: to, Parts: pack.Parts(from, to),
	}
	hasher := blake3.New()
	var n int64
	var err error
	if key != nil {
		n, err = pack.WriteSigned(ctx, io.MultiWriter(w, hasher), h, open, key)
	} else {
		n, err = pack.Write(ctx, io.MultiWriter(w, hasher), h, open)
	}
	if err != nil {
		return Result{}, fmt.Errorf("write pack %s %s→%s: %w", treeName, fromRoot, h.To, err)
	}
	return Result{Size: n, Hash: fmt.Sprintf("%x", hasher.Sum(nil)), Parts: len(h.Parts)}, nil
}
