// Package pack reads and writes pulpdist delta packs: a versioned binary
// stream that takes a site from one version of a tree to another. It carries
// the changes to the manifest and, for the file contents the site lacks, a
// recipe per content: bytes copied from files the site already has, and
// literal bytes from a stream of zstd segments, each optionally compressed
// against a dictionary made of base content ("patch-from"). Both directions
// stream: the reader never holds a part or the pack in memory, the writer
// spools to disk. docs/pack-format.md documents the byte layout.
package pack

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/pulpdist/pulpdist/libs/tree"
)

// FormatVersion is the pack format this package writes and reads.
const FormatVersion = 2

// Magic starts every pack.
const Magic = "PDPK"

// Format limits that are part of the wire format, not tunable.
const (
	// writeChunk is the largest chunk of compressed bytes a writer emits.
	writeChunk = 1 << 20
	// maxChunk is the largest chunk a reader accepts.
	maxChunk = 16 << 20
	// maxWindow is the largest zstd window a reader accepts for a segment
	// without a dictionary.
	maxWindow = 8 << 20
	// MaxDict is the largest dictionary of a segment, in bytes.
	MaxDict = 32 << 20
	// MaxDictSegment is the largest content of a segment with a
	// dictionary, in bytes; such a segment's window covers dictionary and
	// content.
	MaxDictSegment = 32 << 20
	// maxTreeName is the longest Header.Tree accepted, in bytes.
	maxTreeName = 1024
)

// Default limits for a Reader (see Limits).
const (
	DefaultMaxHeader   = 256 << 20
	DefaultMaxPartSize = 64 << 30
	DefaultMaxTotal    = 4 << 40
	DefaultMaxRatio    = 1 << 16
)

// Header describes a pack: which tree, the version it applies to (From)
// and the version it builds (To), the manifest changes between them, the
// literal segments of the stream and the parts built from them.
type Header struct {
	Format int    `json:"format"`
	Tree   string `json:"tree"`
	// From is the base version's root; "" means an empty base, so that
	// the pack carries every entry and the content of every file.
	From string `json:"from"`
	// To is the target version's root; applying Set and Remove to the
	// base manifest gives a manifest with this root.
	To string `json:"to"`
	// Set holds the entries of To that From lacks or has otherwise
	// (content, mode, mtime, kind, target), sorted by path, without
	// chunk lists.
	Set []tree.Entry `json:"set"`
	// Remove holds the paths of From that To lacks, sorted.
	Remove []string `json:"remove"`
	// Segments are the zstd frames that follow the header, in order;
	// their decompressed bytes, concatenated, are the literal stream the
	// parts' literal ops consume in order.
	Segments []Segment `json:"segments"`
	// Parts are the file contents the target needs and the base lacks,
	// unique by hash, each the content of a file of Set with the same
	// size.
	Parts []Part `json:"parts"`
}

// Segment is one zstd frame of the literal stream.
type Segment struct {
	// Size is its decompressed length, at least 1.
	Size int64 `json:"size"`
	// Dict lists base content whose concatenation is the frame's raw
	// dictionary (at most MaxDict bytes); empty for none.
	Dict []Range `json:"dict,omitempty"`
}

// Range is a slice of a base file's content.
type Range struct {
	Hash string `json:"hash"`
	Off  int64  `json:"off"`
	Len  int64  `json:"len"`
}

// Part is the content of one file, by hash, and how to build it.
type Part struct {
	Hash string `json:"hash"`
	Size int64  `json:"size"`
	// Ops build the content in order. None means one literal op of Size
	// bytes.
	Ops []Op `json:"ops,omitempty"`
}

// Op produces N bytes of a part: copied from the base file with content
// Hash at offset Off, or, when Hash is empty, taken from the literal
// stream.
type Op struct {
	N    int64  `json:"n"`
	Hash string `json:"hash,omitempty"`
	Off  int64  `json:"off,omitempty"`
}

// literal reports the bytes the part takes from the literal stream.
func (p *Part) literal() int64 {
	if len(p.Ops) == 0 {
		return p.Size
	}
	var n int64
	for _, op := range p.Ops {
		if op.Hash == "" {
			n += op.N
		}
	}
	return n
}

// Sentinel errors; returned errors wrap them.
var (
	// ErrFormat marks a stream or header that breaks the pack format,
	// including truncation.
	ErrFormat = errors.New("invalid pack")
	// ErrHashMismatch marks content whose BLAKE3 differs from its part's
	// hash.
	ErrHashMismatch = errors.New("pack content hash mismatch")
	// ErrTooLarge marks a header, part or pack above its limit, or a
	// segment that decompresses to more bytes than it declares.
	ErrTooLarge = errors.New("pack too large")
	// ErrBase marks a pack that does not fit the base it is applied to.
	ErrBase = errors.New("pack does not fit its base")
)

// Limits bound what a Reader accepts. Zero fields take the defaults.
type Limits struct {
	// MaxHeader is the largest decompressed JSON header in bytes
	// (default 256 MiB).
	MaxHeader int64
	// MaxPartSize is the largest declared part size in bytes (default
	// 64 GiB).
	MaxPartSize int64
	// MaxTotal bounds the sum of the part sizes and the total file size
	// of the target (default 4 TiB).
	MaxTotal int64
	// MaxRatio bounds decompressed bytes per compressed byte of a segment
	// without a dictionary, above a 1 MiB allowance (default 65536, more
	// than zstd reaches on real content; lower it for stricter checks).
	MaxRatio int64
}

// withDefaults fills zero or negative fields with the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxHeader <= 0 {
		l.MaxHeader = DefaultMaxHeader
	}
	if l.MaxPartSize <= 0 {
		l.MaxPartSize = DefaultMaxPartSize
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = DefaultMaxTotal
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

// Validate checks what the header says on its own: format version, tree
// name, roots, sorted and valid Set and Remove, segments and parts that
// agree in size, and ops that add up. What needs the base (the refs into
// it, the target root) is checked by Target. Errors wrap ErrFormat.
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
	if h.From == "" && len(h.Remove) > 0 {
		return fmt.Errorf("%w: a pack from the empty tree removes %q", ErrFormat, h.Remove[0])
	}
	if err := validateChanges(h.Set, h.Remove); err != nil {
		return err
	}
	sizes := make(map[string]int64)
	for _, e := range h.Set {
		if e.Kind == tree.KindFile {
			if size, ok := sizes[e.Hash]; ok && size != e.Size {
				return fmt.Errorf("%w: set: %q has %d bytes of content %s, another file %d", ErrFormat, e.Path, e.Size, e.Hash, size)
			}
			sizes[e.Hash] = e.Size
		}
	}
	var stream int64
	for i, s := range h.Segments {
		if err := s.validate(h.From != ""); err != nil {
			return fmt.Errorf("%w: segment %d: %w", ErrFormat, i, err)
		}
		if s.Size > math.MaxInt64-stream {
			return fmt.Errorf("%w: segments above %d bytes in all", ErrFormat, int64(math.MaxInt64))
		}
		stream += s.Size
	}
	var literal int64
	seen := make(map[string]struct{}, len(h.Parts))
	for i, p := range h.Parts {
		size, ok := sizes[p.Hash]
		if !ok {
			return fmt.Errorf("%w: part %d: hash %q is no file of the changes", ErrFormat, i, p.Hash)
		}
		if size != p.Size {
			return fmt.Errorf("%w: part %d (%s): size %d, manifest says %d", ErrFormat, i, p.Hash, p.Size, size)
		}
		if _, dup := seen[p.Hash]; dup {
			return fmt.Errorf("%w: part %d: duplicate hash %s", ErrFormat, i, p.Hash)
		}
		seen[p.Hash] = struct{}{}
		if err := p.validateOps(h.From != ""); err != nil {
			return fmt.Errorf("%w: part %d (%s): %w", ErrFormat, i, p.Hash, err)
		}
		n := p.literal()
		if n > math.MaxInt64-literal {
			return fmt.Errorf("%w: parts take more than %d literal bytes", ErrFormat, int64(math.MaxInt64))
		}
		literal += n
	}
	if literal != stream {
		return fmt.Errorf("%w: parts take %d literal bytes, segments hold %d", ErrFormat, literal, stream)
	}
	return nil
}

// validateChanges checks that set holds valid entries and remove valid
// paths, each sorted and unique.
func validateChanges(set []tree.Entry, remove []string) error {
	for i := range set {
		if i > 0 && set[i-1].Path >= set[i].Path {
			return fmt.Errorf("%w: set: %q after %q: not sorted or not unique", ErrFormat, set[i].Path, set[i-1].Path)
		}
		if len(set[i].Chunks) > 0 {
			return fmt.Errorf("%w: set: %q carries chunks", ErrFormat, set[i].Path)
		}
	}
	for i := range set {
		// Parents may be in the base: Target checks the whole manifest.
		if err := set[i].Validate(); err != nil {
			return fmt.Errorf("%w: set: %w", ErrFormat, err)
		}
	}
	for i, p := range remove {
		if err := tree.ValidatePath(p); err != nil {
			return fmt.Errorf("%w: remove: %w", ErrFormat, err)
		}
		if i > 0 && remove[i-1] >= p {
			return fmt.Errorf("%w: remove: %q after %q: not sorted or not unique", ErrFormat, p, remove[i-1])
		}
	}
	return nil
}

// validate checks a segment's size and dictionary ranges.
func (s *Segment) validate(haveBase bool) error {
	if s.Size <= 0 {
		return fmt.Errorf("size %d, want at least 1", s.Size)
	}
	if len(s.Dict) == 0 {
		return nil
	}
	if !haveBase {
		return errors.New("a dictionary in a pack from the empty tree")
	}
	if s.Size > MaxDictSegment {
		return fmt.Errorf("size %d with a dictionary is above %d", s.Size, MaxDictSegment)
	}
	var total int64
	for _, r := range s.Dict {
		if !tree.IsHash(r.Hash) || r.Off < 0 || r.Len <= 0 {
			return fmt.Errorf("bad dictionary range %+v", r)
		}
		if r.Len > MaxDict-total {
			return fmt.Errorf("dictionary above %d bytes", MaxDict)
		}
		total += r.Len
	}
	return nil
}

// validateOps checks that a part's ops add up to its size.
func (p *Part) validateOps(haveBase bool) error {
	var sum int64
	for j, op := range p.Ops {
		switch {
		case op.N <= 0:
			return fmt.Errorf("op %d: length %d, want at least 1", j, op.N)
		case op.Hash == "" && op.Off != 0:
			return fmt.Errorf("op %d: a literal op with an offset", j)
		case op.Hash != "" && !haveBase:
			return fmt.Errorf("op %d: a copy in a pack from the empty tree", j)
		case op.Hash != "" && (!tree.IsHash(op.Hash) || op.Off < 0):
			return fmt.Errorf("op %d: bad copy source %q at %d", j, op.Hash, op.Off)
		}
		if op.N > p.Size-sum {
			return fmt.Errorf("ops make more than the %d bytes the part declares", p.Size)
		}
		sum += op.N
	}
	if len(p.Ops) > 0 && sum != p.Size {
		return fmt.Errorf("ops make %d bytes, part declares %d", sum, p.Size)
	}
	return nil
}

// Target returns the manifest the pack builds on base, the manifest of
// version From (nil when From is ""): base minus Remove, with Set laid
// over it. It checks that base is From, that every removed path exists,
// that the result is a valid manifest whose root is To, that each file
// whose content base holds has that content's size, that every copy
// and dictionary range lies within a file of base, and that no size limit
// is passed (lim, zero for the defaults). Errors wrap ErrBase or ErrFormat,
// and ErrTooLarge for a limit.
func (h *Header) Target(base *tree.Manifest, lim Limits) (*tree.Manifest, error) {
	lim = lim.withDefaults()
	if (base == nil) != (h.From == "") {
		return nil, fmt.Errorf("%w: pack from %q, base given: %t", ErrBase, h.From, base != nil)
	}
	if base != nil {
		if root := base.Root(); root != h.From {
			return nil, fmt.Errorf("%w: pack from %s, base is %s", ErrBase, h.From, root)
		}
	}
	var old []tree.Entry
	if base != nil {
		old = base.Entries
	}
	out := &tree.Manifest{Format: tree.FormatVersion, Entries: make([]tree.Entry, 0, len(old)+len(h.Set))}
	rm, set := h.Remove, h.Set
	for _, e := range old {
		for len(set) > 0 && set[0].Path < e.Path {
			out.Entries = append(out.Entries, set[0])
			set = set[1:]
		}
		if len(rm) > 0 && rm[0] < e.Path {
			return nil, fmt.Errorf("%w: removes %q, which the base lacks", ErrBase, rm[0])
		}
		if len(rm) > 0 && rm[0] == e.Path {
			rm = rm[1:]
			if len(set) > 0 && set[0].Path == e.Path {
				return nil, fmt.Errorf("%w: %q is both set and removed", ErrFormat, e.Path)
			}
			continue
		}
		if len(set) > 0 && set[0].Path == e.Path {
			out.Entries = append(out.Entries, set[0])
			set = set[1:]
			continue
		}
		out.Entries = append(out.Entries, e)
	}
	out.Entries = append(out.Entries, set...)
	if len(rm) > 0 {
		return nil, fmt.Errorf("%w: removes %q, which the base lacks", ErrBase, rm[0])
	}
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("%w: target: %w", ErrFormat, err)
	}
	if root := out.Root(); root != h.To {
		return nil, fmt.Errorf("%w: the target's root is %s, the pack says %s", ErrBase, root, h.To)
	}
	sizes := make(map[string]int64)
	if base != nil {
		for _, e := range base.Entries {
			if e.Kind == tree.KindFile {
				sizes[e.Hash] = e.Size
			}
		}
	}
	// A file is built from the content its hash names: its size must be
	// that content's, so that the total below bounds what is written.
	for _, e := range out.Entries {
		if size, ok := sizes[e.Hash]; ok && e.Kind == tree.KindFile && e.Size != size {
			return nil, fmt.Errorf("%w: %q has %d bytes of content %s, which has %d in the base", ErrFormat, e.Path, e.Size, e.Hash, size)
		}
	}
	_, total := out.Totals()
	if total > lim.MaxTotal {
		return nil, fmt.Errorf("%w: target of %d bytes is above the limit of %d: %w", ErrFormat, total, lim.MaxTotal, ErrTooLarge)
	}
	within := func(what string, hash string, off, n int64) error {
		size, ok := sizes[hash]
		if !ok {
			return fmt.Errorf("%w: %s: base has no file with content %s", ErrBase, what, hash)
		}
		if off+n > size || off+n < off {
			return fmt.Errorf("%w: %s: bytes %d..%d of %s, which has %d", ErrBase, what, off, off+n, hash, size)
		}
		return nil
	}
	for i, s := range h.Segments {
		for _, r := range s.Dict {
			if err := within(fmt.Sprintf("segment %d dictionary", i), r.Hash, r.Off, r.Len); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range h.Parts {
		for j, op := range p.Ops {
			if op.Hash == "" {
				continue
			}
			if err := within(fmt.Sprintf("part %s op %d", p.Hash, j), op.Hash, op.Off, op.N); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Diff returns the changes that take from (nil: the empty tree) to to:
// the entries of to that from lacks or has otherwise, without chunk lists,
// and the paths of from that to lacks.
func Diff(from, to *tree.Manifest) (set []tree.Entry, remove []string) {
	var old []tree.Entry
	if from != nil {
		old = from.Entries
	}
	i := 0
	for _, e := range to.Entries {
		for i < len(old) && old[i].Path < e.Path {
			remove = append(remove, old[i].Path)
			i++
		}
		if i < len(old) && old[i].Path == e.Path {
			o := old[i]
			i++
			if o.Equivalent(&e) {
				continue
			}
		}
		e.Chunks = nil
		set = append(set, e)
	}
	for ; i < len(old); i++ {
		remove = append(remove, old[i].Path)
	}
	return set, remove
}

// ReaderAtCloser is random access to one base file's content.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}
