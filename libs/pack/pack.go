// Package pack reads and writes pulpdist delta packs: a versioned binary
// stream that carries the complete target manifest of a tree version and the
// content of the files a site lacks, each file's content once, zstd
// compressed. Both directions stream: neither holds a whole part or a whole
// pack in memory. docs/pack-format.md documents the byte layout.
package pack

import (
	"errors"
	"fmt"

	"github.com/pulpdist/pulpdist/libs/tree"
)

// FormatVersion is the pack format this package writes and reads.
const FormatVersion = 1

// Magic starts every pack.
const Magic = "PDPK"

// Format limits that are part of the wire format, not tunable.
const (
	// writeChunk is the largest chunk of compressed bytes Write emits.
	writeChunk = 1 << 20
	// maxChunk is the largest chunk a reader accepts.
	maxChunk = 16 << 20
	// maxWindow is the largest zstd window a reader accepts (the encoder
	// uses at most 8 MiB).
	maxWindow = 8 << 20
	// maxTreeName is the longest Header.Tree accepted, in bytes.
	maxTreeName = 1024
)

// Default limits for a Reader (see Limits).
const (
	DefaultMaxHeader   = 256 << 20
	DefaultMaxPartSize = 64 << 30
)

// Part is the content of one file, by hash.
type Part struct {
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

// Header describes a pack: which tree, the version it applies to (From) and
// the version it builds (To), the complete target manifest, and the parts
// that follow it in the stream, in order.
type Header struct {
	Format int    `json:"format"`
	Tree   string `json:"tree"`
	// From is the base version's root; "" means an empty base, so that the
	// pack carries the content of every file.
	From string `json:"from"`
	// To is the target version's root and equals Manifest.Root().
	To       string         `json:"to"`
	Manifest *tree.Manifest `json:"manifest"`
	// Parts are unique by hash, and each is the content of at least one
	// file of Manifest with the same size.
	Parts []Part `json:"parts"`
}

// Sentinel errors; returned errors wrap them.
var (
	// ErrFormat marks a stream or header that breaks the pack format,
	// including truncation.
	ErrFormat = errors.New("invalid pack")
	// ErrHashMismatch marks content whose BLAKE3 differs from its part's
	// hash.
	ErrHashMismatch = errors.New("pack content hash mismatch")
	// ErrTooLarge marks a header or part above its limit, or a part that
	// decompresses to more bytes than it declares.
	ErrTooLarge = errors.New("pack too large")
)

// Limits bound what a Reader accepts. Zero fields take the defaults.
type Limits struct {
	// MaxHeader is the largest JSON header in bytes (default 256 MiB).
	MaxHeader int64
	// MaxPartSize is the largest declared part size in bytes (default
	// 64 GiB).
	MaxPartSize int64
}

// withDefaults fills zero or negative fields with the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxHeader <= 0 {
		l.MaxHeader = DefaultMaxHeader
	}
	if l.MaxPartSize <= 0 {
		l.MaxPartSize = DefaultMaxPartSize
	}
	return l
}

// Validate checks the header: format version, tree name, From and To
// spelled as roots, a valid manifest whose root is To, and parts with unique
// hashes each matching a file of the manifest in hash and size. Errors wrap
// ErrFormat.
func (h *Header) Validate() error {
	if h.Format != FormatVersion {
		return fmt.Errorf("%w: header format %d, want %d", ErrFormat, h.Format, FormatVersion)
	}
	if h.Tree == "" || len(h.Tree) > maxTreeName {
		return fmt.Errorf("%w: tree name must be 1..%d bytes, got %d", ErrFormat, maxTreeName, len(h.Tree))
	}
	if h.From != "" && !tree.IsHash(h.From) {
		return fmt.Errorf("%w: from %q is not a root", ErrFormat, h.From)
	}
	if !tree.IsHash(h.To) {
		return fmt.Errorf("%w: to %q is not a root", ErrFormat, h.To)
	}
	if h.Manifest == nil {
		return fmt.Errorf("%w: no manifest", ErrFormat)
	}
	if err := h.Manifest.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if root := h.Manifest.Root(); root != h.To {
		return fmt.Errorf("%w: to %s is not the manifest root %s", ErrFormat, h.To, root)
	}
	sizes := make(map[string]int64)
	for _, e := range h.Manifest.Entries {
		if e.Kind == tree.KindFile {
			sizes[e.Hash] = e.Size
		}
	}
	seen := make(map[string]struct{}, len(h.Parts))
	for i, p := range h.Parts {
		size, ok := sizes[p.Hash]
		if !ok {
			return fmt.Errorf("%w: part %d: hash %q is no file of the manifest", ErrFormat, i, p.Hash)
		}
		if size != p.Size {
			return fmt.Errorf("%w: part %d (%s): size %d, manifest says %d", ErrFormat, i, p.Hash, p.Size, size)
		}
		if _, dup := seen[p.Hash]; dup {
			return fmt.Errorf("%w: part %d: duplicate hash %s", ErrFormat, i, p.Hash)
		}
		seen[p.Hash] = struct{}{}
	}
	return nil
}
