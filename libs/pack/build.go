package pack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"

	"github.com/pulpdist/pulpdist/libs/ctxio"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// Source returns the content of a file by its hash. Build reads the target
// content and the base content it compresses against through it.
type Source func(ctx context.Context, hash string) (io.ReadCloser, error)

// Options say which pack Build writes.
type Options struct {
	// Tree names the tree (Header.Tree).
	Tree string
	// From is the base manifest; nil writes a full pack.
	From *tree.Manifest
	// To is the target manifest.
	To *tree.Manifest
	// Key signs the pack when set.
	Key ed25519.PrivateKey
	// TempDir holds the spooled pack body while the header is prepared
	// ("" for os.TempDir()).
	TempDir string
	// Effort is how much CPU Build spends to make the pack smaller; the
	// zero value is EffortBest.
	Effort Effort
	// Refine, when set and Effort is not EffortBest, is asked after each
	// segment compressed against base bytes, with its content size and
	// its compressed size, whether to encode it again at the best level;
	// the smaller frame is kept. It lets a caller spend the best level's
	// CPU only where the bytes it saves are worth it (a cost model).
	Refine func(content, compressed int64) bool
	// Chunked says the source also serves the chunks of large contents
	// (tree.Entry.Chunks) by their hashes, as pulpdist's content store
	// holds large files: Build then reads of a large content only the
	// chunks it carries and the base bytes it compresses against, each
	// chunk checked against its hash. A chunk the source lacks (an error
	// wrapping ErrNotStored) is read from the whole content instead.
	Chunked bool
}

// Effort is how hard Build works for a smaller pack.
type Effort int

// The efforts, from the most CPU to the least.
const (
	// EffortBest: zstd's best level for everything, and a file that can
	// be encoded both against its base file and by reusing its base's
	// chunks is encoded both ways, the smaller kept.
	EffortBest Effort = iota
	// EffortDefault: zstd's "better" level for everything, one encoding
	// per file (reusing the base's chunks when it can, as copies cost no
	// compression; else against the base file).
	EffortDefault
	// EffortFast: as EffortDefault, but zstd's default level for content
	// compressed on its own (no base bytes to match).
	EffortFast
	// Content compressed against base bytes (a raw dictionary) never uses
	// zstd's default level or below: they make little of a dictionary (a
	// delta pack of the benchmark corpus is 10 times larger). There the
	// "better" level's packs are 10–15% larger than the best level's, built
	// in a third of the time (docs/benchmarks.md).
)

// groupSize is the content and dictionary budget of one shared segment of
// small files. zstd's match finders keep a few candidates per hash: with
// a larger dictionary of similar files (megabytes of source code) they
// find the wrong ones, and packs grow several times over.
const groupSize = 1 << 20

var effortNames = [...]string{EffortBest: "best", EffortDefault: "default", EffortFast: "fast"}

func (e Effort) String() string {
	if e < 0 || int(e) >= len(effortNames) {
		return fmt.Sprintf("Effort(%d)", int(e))
	}
	return effortNames[e]
}

// ParseEffort reads "best", "default" or "fast".
func ParseEffort(s string) (Effort, error) {
	for i, n := range effortNames {
		if s == n {
			return Effort(i), nil
		}
	}
	return 0, fmt.Errorf("effort %q: want best, default or fast", s)
}

// dictLevel is the zstd level of an effort for content compressed
// against base bytes.
func (e Effort) dictLevel() zstd.EncoderLevel {
	if e == EffortBest {
		return zstd.SpeedBestCompression
	}
	return zstd.SpeedBetterCompression
}

// level is the zstd level of an effort.
func (e Effort) level() zstd.EncoderLevel {
	switch e {
	case EffortFast:
		return zstd.SpeedDefault
	case EffortDefault:
		return zstd.SpeedBetterCompression
	}
	return zstd.SpeedBestCompression
}

// Result describes a pack Build wrote.
type Result struct {
	// Bytes is the pack's size, signature envelope included.
	Bytes int64
	// Parts and Segments count the header's parts and segments.
	Parts, Segments int
	// Refined counts the segments Options.Refine had encoded again.
	Refined int
	// CopiedBytes is the content sites copy from their base version;
	// LiteralBytes the content carried in segments, before compression.
	CopiedBytes, LiteralBytes int64
}

// Build writes the pack that takes o.From to o.To. Unchanged entries cost
// nothing; content the base has under any path is linked or copied at the
// site; the rest is carried once per content hash, as follows.
//
//   - A file with a base file at the same path (or, failing that, with the
//     same name elsewhere) of at most MaxDict bytes is compressed against
//     it ("patch-from"); small files, changed or new, share segments so
//     that one file's bytes help compress the next.
//   - A file with chunk lists on both sides (tree.ChunkThreshold) reuses the
//     base's chunks: copy ops for every chunk the base holds, and literal
//     segments for the rest, each compressed against the base bytes around
//     it. When both apply, Build encodes both and keeps the smaller.
//   - Anything else is compressed on its own.
//
// Content read through src must hash to the manifest's hash
// (ErrHashMismatch). The body is spooled to o.TempDir, then the header and
// the body are written to w; a failed Build may have written part of a
// pack, which the caller must discard.
func Build(ctx context.Context, w io.Writer, o Options, src Source) (Result, error) {
	if o.To == nil {
		return Result{}, fmt.Errorf("build pack: %w: no target manifest", ErrFormat)
	}
	if err := o.To.Validate(); err != nil {
		return Result{}, fmt.Errorf("build pack: target: %w: %w", ErrFormat, err)
	}
	if o.From != nil {
		if err := o.From.Validate(); err != nil {
			return Result{}, fmt.Errorf("build pack: base: %w: %w", ErrFormat, err)
		}
	}
	if o.Key != nil && len(o.Key) != ed25519.PrivateKeySize {
		return Result{}, fmt.Errorf("build pack: private key has %d bytes, want %d", len(o.Key), ed25519.PrivateKeySize)
	}
	h := Header{Format: FormatVersion, Tree: o.Tree, To: o.To.Root(), Set: []tree.Entry{}, Remove: []string{}}
	if o.From != nil {
		h.From = o.From.Root()
	}
	set, remove := Diff(o.From, o.To)
	if set != nil {
		h.Set = set
	}
	if remove != nil {
		h.Remove = remove
	}
	// Everything but the parts and segments can be checked now, before
	// hours of compression: a bad tree name fails at once.
	if err := h.Validate(); err != nil {
		return Result{}, fmt.Errorf("build pack: %w", err)
	}
	spool, err := os.CreateTemp(o.TempDir, "pulpdist-pack-*")
	if err != nil {
		return Result{}, fmt.Errorf("build pack: spool: %w", err)
	}
	defer func() {
		_ = spool.Close()           // read-only use by now; nothing to flush
		_ = os.Remove(spool.Name()) // a temp file; os.TempDir is cleaned eventually
	}()
	b, err := newBuilder(ctx, o, src, spool)
	if err != nil {
		return Result{}, fmt.Errorf("build pack: %w", err)
	}
	defer b.close()
	if err := b.plan(set); err != nil {
		return Result{}, fmt.Errorf("build pack: %w", err)
	}
	if err := b.body.Flush(); err != nil {
		return Result{}, fmt.Errorf("build pack: spool: %w", err)
	}
	h.Segments, h.Parts = b.segments, b.parts
	if h.Segments == nil {
		h.Segments = []Segment{}
	}
	if h.Parts == nil {
		h.Parts = []Part{}
	}
	if err := h.Validate(); err != nil {
		return Result{}, fmt.Errorf("build pack: %w", err)
	}
	raw, err := json.Marshal(&h)
	if err != nil {
		return Result{}, fmt.Errorf("build pack: encode header: %w", err)
	}
	res := Result{Parts: len(h.Parts), Segments: len(h.Segments), Refined: b.refined, CopiedBytes: b.copied, LiteralBytes: b.literal}
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	if o.Key != nil {
		if _, err := bw.Write(envelope(o.Key, raw)); err != nil {
			return res, fmt.Errorf("build pack: signature: %w", err)
		}
	}
	hdr := b.plain.EncodeAll(raw, nil)
	pre := make([]byte, 0, len(Magic)+1+8)
	pre = append(pre, Magic...)
	pre = append(pre, FormatVersion)
	pre = binary.BigEndian.AppendUint64(pre, uint64(len(hdr)))
	for _, p := range [][]byte{pre, hdr} {
		if _, err := bw.Write(p); err != nil {
			return res, fmt.Errorf("build pack: header: %w", err)
		}
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return res, fmt.Errorf("build pack: spool: %w", err)
	}
	if _, err := io.Copy(bw, ctxio.Reader(ctx, spool)); err != nil {
		return res, fmt.Errorf("build pack: body: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return res, fmt.Errorf("build pack: flush: %w", err)
	}
	res.Bytes = cw.n
	return res, nil
}

// builder plans the parts and writes their segments to the spool.
type builder struct {
	ctx     context.Context
	o       Options
	src     Source
	tempDir string
	body    *bufio.Writer
	chunks  *chunkWriter
	plain   *zstd.Encoder // segments without a dictionary
	dicted  *zstd.Encoder // segments with one; options change per segment
	best    *zstd.Encoder // refinements at the best level, made on first use
	refined int           // segments encoded again by Options.Refine

	baseByPath  map[string]*tree.Entry
	baseByName  map[string]*tree.Entry
	baseSize    map[string]int64 // content hash → size
	chunkSource map[string]Range // chunk hash → where the base has it
	// chunkedBase holds the base's large contents by hash, read through
	// their chunks with Options.Chunked.
	chunkedBase map[string]*tree.Entry
	fetchBuf    []byte // chunked's copy buffer

	// bases gives random access to the base contents dictionaries are cut
	// from at an offset (see readRange); closed by close.
	bases map[string]baseFile

	segments []Segment
	parts    []Part
	copied   int64
	literal  int64
	buf      []byte
}

// baseFile is random access to one base content and how to release it.
type baseFile struct {
	r       io.ReaderAt
	release func()
}

func newBuilder(ctx context.Context, o Options, src Source, spool io.Writer) (*builder, error) {
	if o.Effort < EffortBest || o.Effort > EffortFast {
		return nil, fmt.Errorf("pack: unknown %s", o.Effort)
	}
	plain, err := getEncoder(encoderKey{level: o.Effort.level()})
	if err != nil {
		return nil, err
	}
	dicted, err := getEncoder(encoderKey{level: o.Effort.dictLevel(), dict: true})
	if err != nil {
		putEncoder(encoderKey{level: o.Effort.level()}, plain)
		return nil, err
	}
	body := bufio.NewWriterSize(spool, 256<<10)
	b := &builder{
		ctx: ctx, o: o, src: src, tempDir: o.TempDir,
		body: body, chunks: &chunkWriter{w: body, buf: make([]byte, 0, writeChunk)},
		plain: plain, dicted: dicted,
		baseByPath: map[string]*tree.Entry{}, baseByName: map[string]*tree.Entry{},
		baseSize: map[string]int64{}, chunkSource: map[string]Range{},
		buf: make([]byte, 256<<10), bases: map[string]baseFile{},
		chunkedBase: map[string]*tree.Entry{}, fetchBuf: make([]byte, 256<<10),
	}
	if o.From != nil {
		for i := range o.From.Entries {
			e := &o.From.Entries[i]
			if e.Kind != tree.KindFile {
				continue
			}
			b.baseByPath[e.Path] = e
			if _, ok := b.baseByName[path.Base(e.Path)]; !ok {
				b.baseByName[path.Base(e.Path)] = e
			}
			b.baseSize[e.Hash] = e.Size
			if len(e.Chunks) > 0 {
				b.chunkedBase[e.Hash] = e
			}
			offs := e.ChunkOffsets()
			for j, c := range e.Chunks {
				if _, ok := b.chunkSource[c.Hash]; !ok {
					b.chunkSource[c.Hash] = Range{Hash: e.Hash, Off: offs[j], Len: c.Size}
				}
			}
		}
	}
	return b, nil
}

// dictedOptions are those of an encoder for segments with a dictionary at
// level. One window for every such segment: the encoder cannot change it
// on reset. Declaring the content size keeps each frame's window within
// what readers accept (windowLimit).
func dictedOptions(level zstd.EncoderLevel) []zstd.EOption {
	return []zstd.EOption{
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(level),
		zstd.WithWindowSize(2 * MaxDict),
		zstd.WithEncoderCRC(false), // BLAKE3 covers every part
	}
}

// encoderKey names a kind of encoder Build uses: for segments with a
// dictionary (dictedOptions) or without, at a level.
type encoderKey struct {
	level zstd.EncoderLevel
	dict  bool
}

// encoders keeps encoders between builds, one pool per kind. An encoder's
// history buffer spans its window (up to 2 × MaxDict) and its hash tables
// take megabytes: allocating and clearing them anew cost more than
// compressing a small delta (a tenth of the delta-cache's CPU for a
// security update of a dozen packages).
var encoders sync.Map // encoderKey → *sync.Pool

func getEncoder(k encoderKey) (*zstd.Encoder, error) {
	p, _ := encoders.LoadOrStore(k, &sync.Pool{})
	if e, ok := p.(*sync.Pool).Get().(*zstd.Encoder); ok {
		return e, nil
	}
	opts := dictedOptions(k.level)
	if !k.dict {
		opts = []zstd.EOption{
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(k.level),
			zstd.WithWindowSize(maxWindow),
			zstd.WithEncoderCRC(false), // BLAKE3 covers every part
		}
	}
	e, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return e, nil
}

// putEncoder returns an encoder to its pool, writing nowhere; the next
// user resets it.
func putEncoder(k encoderKey, e *zstd.Encoder) {
	e.Reset(nil)
	p, _ := encoders.LoadOrStore(k, &sync.Pool{})
	p.(*sync.Pool).Put(e)
}

func (b *builder) close() {
	putEncoder(encoderKey{level: b.o.Effort.level()}, b.plain)
	putEncoder(encoderKey{level: b.o.Effort.dictLevel(), dict: true}, b.dicted)
	if b.best != nil {
		putEncoder(encoderKey{level: zstd.SpeedBestCompression, dict: true}, b.best)
	}
	for _, f := range b.bases {
		f.release()
	}
}

// job is one part to carry and the base file it may be compressed against.
type job struct {
	entry *tree.Entry
	base  *tree.Entry // nil for none
}

// plan decides the encoding of every content the base lacks and writes
// the segments: first the small files in shared segments, then the large
// ones one by one.
func (b *builder) plan(set []tree.Entry) error {
	seen := map[string]bool{}
	var small, large []job
	for i := range set {
		e := &set[i]
		if e.Kind != tree.KindFile || hasKey(b.baseSize, e.Hash) || seen[e.Hash] {
			continue
		}
		seen[e.Hash] = true
		// set carries no chunk lists; the target manifest does.
		full := b.targetEntry(e.Path)
		j := job{entry: full, base: b.baseFor(e.Path)}
		if e.Size <= MaxDictSegment && (j.base == nil || j.base.Size <= MaxDict) && !b.chunkable(full) {
			small = append(small, j)
			continue
		}
		large = append(large, j)
	}
	if err := b.writeSmall(small); err != nil {
		return err
	}
	for _, j := range large {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		if err := b.writeLarge(j); err != nil {
			return fmt.Errorf("part %s (%s): %w", j.entry.Hash, j.entry.Path, err)
		}
	}
	return nil
}

// targetEntry returns the entry of o.To at p.
func (b *builder) targetEntry(p string) *tree.Entry {
	es := b.o.To.Entries
	lo, hi := 0, len(es)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es[m].Path < p {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return &es[lo] // p comes from the diff of o.To, so it is there
}

// baseFor returns the base file to compress the file at p against: the
// one at the same path, else the first with the same name, else nil.
func (b *builder) baseFor(p string) *tree.Entry {
	if e := b.baseByPath[p]; e != nil {
		return e
	}
	return b.baseByName[path.Base(p)]
}

// chunkable reports whether chunk reuse may apply to e: it has chunks
// and the base has at least one of them.
func (b *builder) chunkable(e *tree.Entry) bool {
	for _, c := range e.Chunks {
		if _, ok := b.chunkSource[c.Hash]; ok {
			return true
		}
	}
	return false
}

// writeSmall writes the small jobs as shared segments of at most
// groupSize content (or one job), each with a dictionary made of the
// members' base files (at most groupSize bytes, or one base), in job
// order.
func (b *builder) writeSmall(jobs []job) error {
	for len(jobs) > 0 {
		var content, dictLen int64
		var dict []Range
		n := 0
		for n < len(jobs) {
			j := jobs[n]
			var add int64
			if j.base != nil && !inDict(dict, j.base.Hash) {
				add = j.base.Size
			}
			if n > 0 && (content+j.entry.Size > groupSize || dictLen+add > groupSize) {
				break
			}
			content += j.entry.Size
			if add > 0 {
				dict = append(dict, Range{Hash: j.base.Hash, Len: j.base.Size})
				dictLen += add
			}
			n++
		}
		group := jobs[:n]
		jobs = jobs[n:]
		if err := b.writeGroup(group, dict, content); err != nil {
			return err
		}
	}
	return nil
}

// inDict reports whether dict already holds the content hash.
func inDict(dict []Range, hash string) bool {
	for _, r := range dict {
		if r.Hash == hash {
			return true
		}
	}
	return false
}

// writeGroup writes one segment holding the content of every job, in
// order, compressed against dict.
func (b *builder) writeGroup(group []job, dict []Range, content int64) error {
	for _, j := range group {
		b.parts = append(b.parts, Part{Hash: j.entry.Hash, Size: j.entry.Size})
	}
	if content == 0 {
		// Empty files only: no segment, no literal bytes.
		return nil
	}
	enc, err := b.startSegment(dict, content)
	if err != nil {
		return err
	}
	for _, j := range group {
		if err := b.copyContent(enc, j.entry); err != nil {
			return fmt.Errorf("part %s (%s): %w", j.entry.Hash, j.entry.Path, err)
		}
	}
	return b.endSegment(enc)
}

// segment is the content side of one segment being written: what is
// written to it is compressed into the body, or, when the segment may be
// refined, into memory first, the content kept beside it.
type segment struct {
	enc     *zstd.Encoder
	size    int64
	dict    []byte       // the raw dictionary, kept for a refinement
	content []byte       // a copy of the content, when it may be refined
	frame   bytes.Buffer // the frame, when it may be refined
	refine  bool
}

func (s *segment) Write(p []byte) (int, error) {
	if s.refine {
		s.content = append(s.content, p...)
	}
	return s.enc.Write(p)
}

// startSegment begins a segment of size bytes compressed against dict and
// records it in the header.
func (b *builder) startSegment(dict []Range, size int64) (*segment, error) {
	b.segments = append(b.segments, Segment{Size: size, Dict: dict})
	b.literal += size
	if len(dict) == 0 {
		b.plain.ResetContentSize(b.chunks, size)
		return &segment{enc: b.plain, size: size}, nil
	}
	var d bytes.Buffer
	var dictLen int64
	for _, r := range dict {
		dictLen += r.Len
	}
	d.Grow(int(dictLen)) // at most MaxDict: one allocation, not a doubling series
	for _, r := range dict {
		if err := b.readRange(&d, r); err != nil {
			return nil, fmt.Errorf("dictionary: %w", err)
		}
	}
	seg := &segment{enc: b.dicted, size: size, refine: b.o.Refine != nil && b.o.Effort != EffortBest}
	var out io.Writer = b.chunks
	if seg.refine {
		seg.dict, seg.content, out = d.Bytes(), make([]byte, 0, size), &seg.frame
	}
	if err := b.dicted.ResetWithOptions(out, zstd.WithEncoderDictRaw(0, d.Bytes())); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	b.dicted.ResetContentSize(out, size)
	return seg, nil
}

// endSegment closes the segment's frame and chunks. A segment that may be
// refined is encoded again at the best level if Options.Refine says so,
// and the smaller frame is written.
func (b *builder) endSegment(seg *segment) error {
	if err := seg.enc.Close(); err != nil {
		return fmt.Errorf("finish zstd frame: %w", err)
	}
	if seg.refine {
		frame := seg.frame.Bytes()
		if b.o.Refine(seg.size, int64(len(frame))) {
			better, err := b.refineSegment(seg)
			if err != nil {
				return err
			}
			if len(better) < len(frame) {
				frame = better
			}
			b.refined++
		}
		if _, err := b.chunks.Write(frame); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	if err := b.chunks.end(); err != nil {
		return fmt.Errorf("end segment: %w", err)
	}
	return nil
}

// refineSegment encodes seg's content against its dictionary at the best
// level and returns the frame.
func (b *builder) refineSegment(seg *segment) ([]byte, error) {
	if b.best == nil {
		enc, err := getEncoder(encoderKey{level: zstd.SpeedBestCompression, dict: true})
		if err != nil {
			return nil, err
		}
		b.best = enc
	}
	var out bytes.Buffer
	if err := b.best.ResetWithOptions(&out, zstd.WithEncoderDictRaw(0, seg.dict)); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	b.best.ResetContentSize(&out, seg.size)
	if _, err := b.best.Write(seg.content); err != nil {
		return nil, fmt.Errorf("compress content: %w", err)
	}
	if err := b.best.Close(); err != nil {
		return nil, fmt.Errorf("finish zstd frame: %w", err)
	}
	return out.Bytes(), nil
}

// readRange appends base content r to d. A large content is read through
// its chunks with Options.Chunked (only those the range covers); else a
// range from the start is streamed, and one further in is read through
// baseAt, so that the many dictionaries of one large file do not each
// read it from its start.
func (b *builder) readRange(d *bytes.Buffer, r Range) error {
	var at io.ReaderAt
	switch e := b.chunkedBase[r.Hash]; {
	case e != nil && b.o.Chunked:
		c, err := b.chunkedAt(e)
		if err != nil {
			return err
		}
		at = c
	case r.Off > 0:
		f, err := b.baseAt(r.Hash)
		if err != nil {
			return err
		}
		at = f
	}
	if at != nil {
		n, err := d.ReadFrom(io.NewSectionReader(at, r.Off, r.Len))
		if err != nil {
			return fmt.Errorf("read base content %s: %w", r.Hash, err)
		}
		if n < r.Len {
			return fmt.Errorf("read base content %s: %w", r.Hash, io.ErrUnexpectedEOF)
		}
		return nil
	}
	rc, err := b.src(b.ctx, r.Hash)
	if err != nil {
		return fmt.Errorf("open base content %s: %w", r.Hash, err)
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, r.Off); err != nil {
		return fmt.Errorf("read base content %s: %w", r.Hash, truncated(err))
	}
	if _, err := io.CopyN(d, rc, r.Len); err != nil {
		return fmt.Errorf("read base content %s: %w", r.Hash, truncated(err))
	}
	return nil
}

// baseAt returns random access to base content hash, opened once: the
// source's file itself when it is one (os.File), else a copy spooled to
// TempDir.
func (b *builder) baseAt(hash string) (io.ReaderAt, error) {
	if f, ok := b.bases[hash]; ok {
		return f.r, nil
	}
	rc, err := b.src(b.ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("open base content %s: %w", hash, err)
	}
	if f, ok := rc.(*os.File); ok {
		b.bases[hash] = baseFile{r: f, release: func() { _ = f.Close() }} // read-only
		return f, nil
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(b.tempDir, "pulpdist-base-*")
	if err != nil {
		return nil, fmt.Errorf("spool base content %s: %w", hash, err)
	}
	release := func() {
		_ = tmp.Close()           // a temp file: nothing to flush that matters
		_ = os.Remove(tmp.Name()) // and nothing else uses it
	}
	if _, err := io.CopyBuffer(tmp, ctxio.Reader(b.ctx, rc), b.buf); err != nil {
		release()
		return nil, fmt.Errorf("spool base content %s: %w", hash, err)
	}
	b.bases[hash] = baseFile{r: tmp, release: release}
	return tmp, nil
}

// copyContent writes e's whole content to dst, checking size and hash.
func (b *builder) copyContent(dst io.Writer, e *tree.Entry) error {
	rc, err := b.openContent(e)
	if err != nil {
		return fmt.Errorf("open content: %w", err)
	}
	defer rc.Close()
	hasher := blake3.New()
	// At most one byte more than declared: enough to notice a longer
	// content without streaming all of it.
	r := io.TeeReader(io.LimitReader(ctxio.Reader(b.ctx, rc), e.Size+1), hasher)
	n, err := io.CopyBuffer(dst, io.LimitReader(r, e.Size), b.buf)
	if err != nil {
		return fmt.Errorf("compress content: %w", err)
	}
	extra, _ := io.Copy(io.Discard, r) // the probe byte; a read error shows as a size mismatch
	return checkContent(hasher, n+extra, e)
}

// checkContent compares what was read with the entry's size and hash.
func checkContent(hasher *blake3.Hasher, n int64, e *tree.Entry) error {
	if n != e.Size {
		return fmt.Errorf("%w: content has %s bytes, manifest says %d", ErrHashMismatch, sizeText(n, e.Size), e.Size)
	}
	if got := hex.EncodeToString(hasher.Sum(nil)); got != e.Hash {
		return fmt.Errorf("%w: content hashes to %s", ErrHashMismatch, got)
	}
	return nil
}

// sizeText says how many bytes were read, "more than" the declared size
// when the read stopped one past it.
func sizeText(n, declared int64) string {
	if n > declared {
		return fmt.Sprintf("more than %d", declared)
	}
	return fmt.Sprint(n)
}

// writeLarge writes one large content: by chunk reuse, by patch against a
// whole base file, or on its own, whichever applies and is smallest.
func (b *builder) writeLarge(j job) error {
	type candidate struct {
		part     Part
		segments []Segment
		body     []byte
		copied   int64
	}
	var encodings []func() (Part, error)
	if b.chunkable(j.entry) {
		encodings = append(encodings, func() (Part, error) { return b.encodeChunked(j.entry) })
	}
	if j.base != nil && j.base.Size <= MaxDict && j.entry.Size <= MaxDictSegment {
		encodings = append(encodings, func() (Part, error) {
			return b.encodeWhole(j.entry, []Range{{Hash: j.base.Hash, Len: j.base.Size}})
		})
	}
	// Below the best effort, one way only: chunk reuse, whose copies cost
	// no compression (on the benchmark corpus, packs of the same size).
	if len(encodings) > 1 && b.o.Effort != EffortBest {
		encodings = encodings[:1]
	}
	switch len(encodings) {
	case 0:
		// Nothing to compress against: one segment on its own.
		if j.entry.Size == 0 {
			b.parts = append(b.parts, Part{Hash: j.entry.Hash})
			return nil
		}
		encodings = append(encodings, func() (Part, error) { return b.encodeWhole(j.entry, nil) })
		fallthrough
	case 1:
		// One way: straight to the spool, whatever the size.
		p, err := encodings[0]()
		if err != nil {
			return err
		}
		b.parts = append(b.parts, p)
		return nil
	}
	// Two ways, both for a content of at most MaxDictSegment bytes: encode
	// each in memory and keep the smaller.
	var cands []candidate
	for _, f := range encodings {
		saveSegs, saveLit, saveCopied := len(b.segments), b.literal, b.copied
		var out bytes.Buffer
		saveBody := b.chunks.w
		b.chunks.w = &out
		p, err := f()
		b.chunks.w = saveBody
		segs := append([]Segment(nil), b.segments[saveSegs:]...)
		copied := b.copied - saveCopied
		b.segments, b.literal, b.copied = b.segments[:saveSegs], saveLit, saveCopied
		if err != nil {
			return err
		}
		cands = append(cands, candidate{part: p, segments: segs, body: out.Bytes(), copied: copied})
	}
	best := cands[0]
	for _, c := range cands[1:] {
		if len(c.body) < len(best.body) {
			best = c
		}
	}
	if _, err := b.body.Write(best.body); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	b.parts = append(b.parts, best.part)
	b.segments = append(b.segments, best.segments...)
	for _, s := range best.segments {
		b.literal += s.Size
	}
	b.copied += best.copied
	return nil
}

// encodeWhole writes e's content as one segment against dict.
func (b *builder) encodeWhole(e *tree.Entry, dict []Range) (Part, error) {
	enc, err := b.startSegment(dict, e.Size)
	if err != nil {
		return Part{}, err
	}
	if err := b.copyContent(enc, e); err != nil {
		return Part{}, err
	}
	if err := b.endSegment(enc); err != nil {
		return Part{}, err
	}
	return Part{Hash: e.Hash, Size: e.Size}, nil
}

// encodeChunked writes e as copies of the chunks the base holds and
// literal segments for the rest, each compressed against the base bytes
// between the copies around it.
func (b *builder) encodeChunked(e *tree.Entry) (Part, error) {
	ops := b.chunkOps(e)
	if b.o.Chunked {
		return b.encodeChunkedFromChunks(e, ops)
	}
	rc, err := b.src(b.ctx, e.Hash)
	if err != nil {
		return Part{}, fmt.Errorf("open content: %w", err)
	}
	defer rc.Close()
	hasher := blake3.New()
	r := io.TeeReader(ctxio.Reader(b.ctx, rc), hasher)
	var total int64
	for i, op := range ops {
		if op.Hash != "" {
			n, err := io.CopyBuffer(io.Discard, io.LimitReader(r, op.N), b.buf)
			total += n
			if err != nil {
				return Part{}, fmt.Errorf("read content: %w", err)
			}
			b.copied += op.N
			continue
		}
		enc, err := b.startSegment(b.gapDict(ops, i), op.N)
		if err != nil {
			return Part{}, err
		}
		n, err := io.CopyBuffer(enc, io.LimitReader(r, op.N), b.buf)
		total += n
		if err != nil {
			return Part{}, fmt.Errorf("compress content: %w", err)
		}
		if n != op.N {
			return Part{}, checkContent(hasher, total, e)
		}
		if err := b.endSegment(enc); err != nil {
			return Part{}, err
		}
	}
	var probe [1]byte
	if n, _ := io.ReadFull(r, probe[:]); n > 0 { // a read error shows as a size mismatch
		total++
	}
	if err := checkContent(hasher, total, e); err != nil {
		return Part{}, err
	}
	return Part{Hash: e.Hash, Size: e.Size, Ops: ops}, nil
}

// encodeChunkedFromChunks is encodeChunked with a source that serves
// chunks: only the literal ops' chunks are read, each checked against its
// hash.
func (b *builder) encodeChunkedFromChunks(e *tree.Entry, ops []Op) (Part, error) {
	c, err := b.chunkedAt(e)
	if err != nil {
		return Part{}, err
	}
	var off int64
	for i, op := range ops {
		if op.Hash != "" {
			b.copied += op.N
			off += op.N
			continue
		}
		enc, err := b.startSegment(b.gapDict(ops, i), op.N)
		if err != nil {
			return Part{}, err
		}
		n, err := io.CopyBuffer(enc, io.NewSectionReader(c, off, op.N), b.buf)
		if err != nil {
			return Part{}, fmt.Errorf("compress content: %w", err)
		}
		if n != op.N {
			return Part{}, fmt.Errorf("%w: content has %d bytes, its chunks %d", ErrHashMismatch, off+n, e.Size)
		}
		if err := b.endSegment(enc); err != nil {
			return Part{}, err
		}
		off += op.N
	}
	return Part{Hash: e.Hash, Size: e.Size, Ops: ops}, nil
}

// chunkOps maps e's chunks to copy ops (for chunks the base holds,
// adjacent ones merged) and literal ops (the rest, merged).
func (b *builder) chunkOps(e *tree.Entry) []Op {
	var ops []Op
	for _, c := range e.Chunks {
		src, ok := b.chunkSource[c.Hash]
		if n := len(ops); n > 0 {
			last := &ops[n-1]
			switch {
			case !ok && last.Hash == "":
				last.N += c.Size
				continue
			case ok && last.Hash == src.Hash && last.Off+last.N == src.Off:
				last.N += c.Size
				continue
			}
		}
		if ok {
			ops = append(ops, Op{N: c.Size, Hash: src.Hash, Off: src.Off})
		} else {
			ops = append(ops, Op{N: c.Size})
		}
	}
	return ops
}

// gapDict returns the dictionary for literal op i: the base bytes after
// the copy before it and before the copy after it, about twice the op's
// size in all and at most MaxDict.
func (b *builder) gapDict(ops []Op, i int) []Range {
	budget := min(MaxDict, 2*ops[i].N+256<<10)
	var prev, next *Op
	if i > 0 && ops[i-1].Hash != "" {
		prev = &ops[i-1]
	}
	if i+1 < len(ops) && ops[i+1].Hash != "" {
		next = &ops[i+1]
	}
	size := func(hash string) int64 { return b.baseSize[hash] }
	var dict []Range
	switch {
	case prev != nil && next != nil && prev.Hash == next.Hash && next.Off >= prev.Off+prev.N:
		start, end := prev.Off+prev.N, next.Off
		if end-start <= budget {
			// The region the gap replaced, widened to the budget.
			extra := (budget - (end - start)) / 2
			start, end = max(0, start-extra), end+extra
		} else {
			end = start + budget/2
			dict = append(dict, Range{Hash: prev.Hash, Off: start, Len: end - start})
			start, end = next.Off-budget/2, next.Off
			if start < dict[0].Off+dict[0].Len {
				start = dict[0].Off + dict[0].Len
			}
			if end > start {
				dict = append(dict, Range{Hash: prev.Hash, Off: start, Len: end - start})
			}
			return dict
		}
		end = min(end, size(prev.Hash))
		return []Range{{Hash: prev.Hash, Off: start, Len: end - start}}
	case prev != nil:
		start := prev.Off + prev.N
		end := min(start+budget, size(prev.Hash))
		if end > start {
			return []Range{{Hash: prev.Hash, Off: start, Len: end - start}}
		}
	case next != nil:
		start := max(0, next.Off-budget)
		if next.Off > start {
			return []Range{{Hash: next.Hash, Off: start, Len: next.Off - start}}
		}
	}
	return nil
}

// envelope returns the signature envelope for a header: magic, version,
// public key and the signature of SignatureMessage(raw).
func envelope(key ed25519.PrivateKey, raw []byte) []byte {
	env := make([]byte, 0, envelopeSize)
	env = append(env, SignatureMagic...)
	env = append(env, signatureVersion)
	env = append(env, key.Public().(ed25519.PublicKey)...)
	return append(env, ed25519.Sign(key, SignatureMessage(raw))...)
}
