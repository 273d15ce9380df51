package pack

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/bits"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"

	"github.com/pulpdist/pulpdist/libs/tree"
)

// Reader reads a pack from a stream: NewReader reads and checks the header,
// Target checks it against the base and gives the target manifest, Next
// returns the parts one after the other. A Reader is not safe for
// concurrent use.
type Reader struct {
	br    *bufio.Reader
	h     Header
	raw   []byte // the header's JSON, as signed
	lim   Limits
	open  func(hash string) (ReaderAtCloser, error)
	files map[string]ReaderAtCloser
	ready bool // Target succeeded
	lit   *literalStream
	next  int // index in h.Parts of the part Next returns next
	cur   *partReader
	err   error // sticky: once set, Next returns it
}

// NewReader reads the magic, the format version and the header from r and
// validates them (Header.Validate, plus lim). Errors wrap ErrFormat, and
// also ErrTooLarge for a header or part above lim.
func NewReader(r io.Reader, lim Limits) (*Reader, error) {
	lim = lim.withDefaults()
	br := bufio.NewReaderSize(r, 64<<10)
	var pre [len(Magic) + 1 + 8]byte
	if _, err := io.ReadFull(br, pre[:]); err != nil {
		return nil, fmt.Errorf("%w: read preamble: %w", ErrFormat, truncated(err))
	}
	if string(pre[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("%w: bad magic %q, want %q", ErrFormat, pre[:len(Magic)], Magic)
	}
	if v := pre[len(Magic)]; v != FormatVersion {
		return nil, fmt.Errorf("%w: unsupported format version %d, want %d", ErrFormat, v, FormatVersion)
	}
	n := binary.BigEndian.Uint64(pre[len(Magic)+1:])
	if n == 0 {
		return nil, fmt.Errorf("%w: empty header", ErrFormat)
	}
	if n > uint64(lim.MaxHeader) {
		return nil, fmt.Errorf("%w: compressed header of %d bytes is above the limit of %d: %w", ErrFormat, n, lim.MaxHeader, ErrTooLarge)
	}
	// ReadAll grows its buffer as bytes arrive, so a lying length on a
	// short stream does not allocate the whole declared size.
	compressed, err := io.ReadAll(io.LimitReader(br, int64(n)))
	if err != nil {
		return nil, fmt.Errorf("%w: read header: %w", ErrFormat, err)
	}
	if uint64(len(compressed)) != n {
		return nil, fmt.Errorf("%w: read header: %d of %d bytes: %w", ErrFormat, len(compressed), n, io.ErrUnexpectedEOF)
	}
	raw, err := decompressHeader(compressed, min(lim.MaxHeader, headerRatio*int64(len(compressed))+1<<20))
	if err != nil {
		return nil, err
	}
	h, err := decodeHeader(raw, lim)
	if err != nil {
		return nil, err
	}
	lit, err := newLiteralStream(br, h.Segments, lim)
	if err != nil {
		return nil, err
	}
	return &Reader{br: br, h: h, raw: raw, lim: lim, lit: lit, files: map[string]ReaderAtCloser{}}, nil
}

// headerRatio bounds a header's decompressed size per compressed byte
// (beyond 1 MiB): real headers are mostly hashes and compress about 2–4×,
// while a header of repeated tiny objects could inflate thousands of times
// and cost the JSON decoder far more memory than its bytes.
const headerRatio = 64

// decompressHeader inflates the header's zstd frame, refusing more than
// limit bytes.
func decompressHeader(compressed []byte, limit int64) ([]byte, error) {
	dec, err := zstd.NewReader(bytes.NewReader(compressed),
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderLowmem(true),
	)
	if err != nil {
		return nil, fmt.Errorf("pack reader: zstd: %w", err)
	}
	defer dec.Close()
	raw, err := io.ReadAll(io.LimitReader(dec, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: decompress header: %w", ErrFormat, err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("%w: header above the limit of %d bytes: %w", ErrFormat, limit, ErrTooLarge)
	}
	return raw, nil
}

// decodeHeader parses and validates the JSON header.
func decodeHeader(raw []byte, lim Limits) (Header, error) {
	var h Header
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return Header{}, fmt.Errorf("%w: decode header: %w", ErrFormat, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Header{}, fmt.Errorf("%w: decode header: trailing data", ErrFormat)
	}
	if err := h.Validate(); err != nil {
		return Header{}, err
	}
	var total int64
	for i, p := range h.Parts {
		if p.Size > lim.MaxPartSize {
			return Header{}, fmt.Errorf("%w: part %d (%s) of %d bytes is above the limit of %d: %w", ErrFormat, i, p.Hash, p.Size, lim.MaxPartSize, ErrTooLarge)
		}
		total += p.Size
		if total > lim.MaxTotal {
			return Header{}, fmt.Errorf("%w: parts above the total limit of %d bytes: %w", ErrFormat, lim.MaxTotal, ErrTooLarge)
		}
	}
	return h, nil
}

// Header returns the validated header.
func (r *Reader) Header() Header { return r.h }

// Target checks the header against the base the pack is applied to and
// returns the target manifest (see Header.Target). open gives random
// access to a base file by content hash; the Reader closes what it opens.
// base and open are nil for a pack from the empty tree. Target must
// succeed before Next.
func (r *Reader) Target(base *tree.Manifest, open func(hash string) (ReaderAtCloser, error)) (*tree.Manifest, error) {
	m, err := r.h.Target(base, r.lim)
	if err != nil {
		return nil, err
	}
	r.open = open
	r.lit.base = r.baseFile
	r.ready = true
	return m, nil
}

// Close releases the decompressors and closes the base files the Reader
// opened; the Reader is unusable afterwards.
func (r *Reader) Close() error {
	r.lit.close()
	var errs []error
	for _, f := range r.files {
		errs = append(errs, f.Close())
	}
	clear(r.files)
	if r.err == nil {
		r.err = errors.New("pack reader closed")
	}
	return errors.Join(errs...)
}

// baseFile returns the base file with content hash, opening it once.
func (r *Reader) baseFile(hash string) (ReaderAtCloser, error) {
	if f, ok := r.files[hash]; ok {
		return f, nil
	}
	if r.open == nil {
		return nil, fmt.Errorf("%w: no base content to read %s from", ErrBase, hash)
	}
	f, err := r.open(hash)
	if err != nil {
		return nil, fmt.Errorf("%w: open base content %s: %w", ErrBase, hash, err)
	}
	r.files[hash] = f
	return f, nil
}

// Next returns the next part and a reader of its content. The content
// reader yields exactly Part.Size bytes then io.EOF, after checking that
// the content's BLAKE3 is Part.Hash (ErrHashMismatch) and, at the end of
// each segment, that the compressed data holds nothing more (ErrTooLarge
// if it decompresses to more, ErrFormat if to less). A part not read to
// io.EOF is read to its end by the next call to Next. After the last part,
// Next checks that the stream ends and returns io.EOF. Any error is sticky.
func (r *Reader) Next() (Part, io.Reader, error) {
	if r.err != nil {
		return Part{}, nil, r.err
	}
	if !r.ready {
		r.err = errors.New("pack reader: Next before a successful Target")
		return Part{}, nil, r.err
	}
	if cur := r.cur; cur != nil {
		r.cur = nil
		if cur.err == nil {
			if _, err := io.Copy(io.Discard, cur); err != nil {
				r.err = fmt.Errorf("skip part %s: %w", cur.part.Hash, err)
				return Part{}, nil, r.err
			}
		} else if !errors.Is(cur.err, io.EOF) {
			r.err = cur.err
			return Part{}, nil, r.err
		}
	}
	if r.next == len(r.h.Parts) {
		if err := r.lit.end(); err != nil {
			r.err = err
			return Part{}, nil, r.err
		}
		if _, err := r.br.ReadByte(); err == nil {
			r.err = fmt.Errorf("%w: trailing data after the last segment", ErrFormat)
		} else if errors.Is(err, io.EOF) {
			r.err = io.EOF
		} else {
			r.err = fmt.Errorf("%w: after the last segment: %w", ErrFormat, err)
		}
		return Part{}, nil, r.err
	}
	p := r.h.Parts[r.next]
	r.next++
	ops := p.Ops
	if len(ops) == 0 && p.Size > 0 {
		ops = []Op{{N: p.Size}}
	}
	r.cur = &partReader{r: r, part: p, ops: ops, hash: blake3.New()}
	return p, r.cur, nil
}

// windowLimit is the largest zstd window accepted for a segment of size
// bytes after dict bytes of dictionary: the smallest power of two above
// their sum, at least 1 KiB, at most maxWindow without a dictionary and
// 2×MaxDict with one. Writers declare the content size, so the encoder
// never needs more; a hostile frame cannot make the reader allocate more.
func windowLimit(size, dict int64) uint64 {
	w := uint64(1) << bits.Len64(uint64(size+dict))
	top := uint64(maxWindow)
	if dict > 0 {
		top = 2 * MaxDict
	}
	return min(max(w, zstd.MinWindowSize), top)
}

// compressedLimit is the most compressed bytes accepted for a segment of
// size bytes: zstd's worst case is far below (3 bytes per 128 KiB block
// plus a frame header), so only a hostile stream reaches it.
func compressedLimit(size int64) int64 {
	return size + size/64 + 64<<10
}

// truncated turns the end of a stream in the middle of a structure into
// io.ErrUnexpectedEOF.
func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// partReader yields one part's content, op by op, and checks its hash.
type partReader struct {
	r    *Reader
	part Part
	ops  []Op  // left to do; ops[0] is under way
	done int64 // bytes of ops[0] already produced
	hash hash.Hash
	err  error // sticky; io.EOF once the part is read and verified
}

func (p *partReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	for len(p.ops) > 0 && p.done == p.ops[0].N {
		p.ops, p.done = p.ops[1:], 0
	}
	if len(p.ops) == 0 {
		p.err = p.finish()
		return 0, p.err
	}
	op := p.ops[0]
	if left := op.N - p.done; int64(len(b)) > left {
		b = b[:left]
	}
	var n int
	var err error
	if op.Hash == "" {
		n, err = p.r.lit.Read(b)
	} else {
		n, err = p.copyBase(op, b)
	}
	p.hash.Write(b[:n])
	p.done += int64(n)
	if err != nil {
		p.err = err
		return n, err
	}
	return n, nil
}

// copyBase reads the next bytes of a copy op from its base file.
func (p *partReader) copyBase(op Op, b []byte) (int, error) {
	f, err := p.r.baseFile(op.Hash)
	if err != nil {
		return 0, err
	}
	n, err := f.ReadAt(b, op.Off+p.done)
	if n == len(b) {
		return n, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, fmt.Errorf("%w: part %s: copy from %s at %d: %w", ErrBase, p.part.Hash, op.Hash, op.Off+p.done, err)
}

// finish checks the content's hash once every op is done; it returns
// io.EOF when all is well.
func (p *partReader) finish() error {
	if got := hex.EncodeToString(p.hash.Sum(nil)); got != p.part.Hash {
		return fmt.Errorf("part %s: content hashes to %s: %w", p.part.Hash, got, ErrHashMismatch)
	}
	return io.EOF
}

// literalStream decompresses the segments one after the other into one
// stream of literal bytes.
type literalStream struct {
	br       *bufio.Reader
	segs     []Segment
	lim      Limits
	base     func(hash string) (ReaderAtCloser, error)
	plain    *zstd.Decoder // segments without a dictionary
	dicted   *zstd.Decoder // segments with one
	next     int           // index of the segment to start next
	cur      *Segment      // segment under way, nil between segments
	dec      *zstd.Decoder // cur's decoder; nil for none
	chunks   *chunkReader
	left     int64 // bytes of cur not yet produced
	produced int64 // bytes of cur produced
	err      error // sticky
}

func newLiteralStream(br *bufio.Reader, segs []Segment, lim Limits) (*literalStream, error) {
	opts := []zstd.DOption{
		zstd.WithDecoderConcurrency(1), // synchronous: no goroutines to stop
		zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderMaxMemory(maxWindow),
		zstd.WithDecoderLowmem(true),
	}
	plain, err := zstd.NewReader(nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("pack reader: zstd: %w", err)
	}
	dicted, err := zstd.NewReader(nil, opts...)
	if err != nil {
		plain.Close()
		return nil, fmt.Errorf("pack reader: zstd: %w", err)
	}
	return &literalStream{br: br, segs: segs, lim: lim, plain: plain, dicted: dicted}, nil
}

func (l *literalStream) close() {
	l.plain.Close()
	l.dicted.Close()
}

// start begins the next segment: its decoder, window and dictionary.
func (l *literalStream) start(open func(hash string) (ReaderAtCloser, error)) error {
	if l.next == len(l.segs) {
		return fmt.Errorf("%w: the parts read past the last segment", ErrFormat)
	}
	s := &l.segs[l.next]
	l.next++
	l.cur, l.left, l.produced = s, s.Size, 0
	l.chunks = &chunkReader{r: l.br, left: compressedLimit(s.Size)}
	if len(s.Dict) == 0 {
		win := windowLimit(s.Size, 0)
		if err := l.plain.ResetWithOptions(l.chunks, zstd.WithDecoderMaxWindow(win), zstd.WithDecoderMaxMemory(win)); err != nil {
			return fmt.Errorf("%w: segment %d: %w", ErrFormat, l.next-1, err)
		}
		l.dec = l.plain
		return nil
	}
	var dict bytes.Buffer
	for _, rg := range s.Dict {
		f, err := open(rg.Hash)
		if err != nil {
			return err
		}
		n, err := dict.ReadFrom(io.NewSectionReader(f, rg.Off, rg.Len))
		if err != nil {
			return fmt.Errorf("%w: segment %d: read dictionary from %s: %w", ErrBase, l.next-1, rg.Hash, err)
		}
		if n != rg.Len {
			return fmt.Errorf("%w: segment %d: dictionary range %d+%d is past the end of %s", ErrBase, l.next-1, rg.Off, rg.Len, rg.Hash)
		}
	}
	win := windowLimit(s.Size, int64(dict.Len()))
	err := l.dicted.ResetWithOptions(l.chunks,
		zstd.WithDecoderMaxWindow(win),
		zstd.WithDecoderMaxMemory(win),
		zstd.WithDecoderDictRaw(0, dict.Bytes()),
	)
	if err != nil {
		return fmt.Errorf("%w: segment %d: %w", ErrFormat, l.next-1, err)
	}
	l.dec = l.dicted
	return nil
}

// Read produces the next literal bytes, starting segments as needed.
func (l *literalStream) Read(b []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.cur == nil {
		if l.err = l.start(l.base); l.err != nil {
			return 0, l.err
		}
	}
	if int64(len(b)) > l.left {
		b = b[:l.left]
	}
	n, err := l.dec.Read(b)
	l.left -= int64(n)
	l.produced += int64(n)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		l.err = l.classify(err)
	case errors.Is(err, io.EOF) && l.left > 0:
		l.err = fmt.Errorf("%w: segment %d decompresses to %d bytes, declares %d: %w",
			ErrFormat, l.next-1, l.produced, l.cur.Size, io.ErrUnexpectedEOF)
	case len(l.cur.Dict) == 0 && l.produced > l.lim.MaxRatio*l.chunks.consumed()+1<<20:
		l.err = fmt.Errorf("%w: segment %d: %d bytes from %d compressed is above the ratio limit of %d: %w",
			ErrFormat, l.next-1, l.produced, l.chunks.consumed(), l.lim.MaxRatio, ErrTooLarge)
	case l.left == 0:
		l.err = l.finishSegment()
	}
	if l.err != nil {
		return n, l.err
	}
	if n == 0 {
		// The decoder may return no bytes without an error; the caller
		// reads again.
		return 0, nil
	}
	return n, nil
}

// finishSegment checks, once a segment's Size bytes were produced, that
// its frame and its chunks end there.
func (l *literalStream) finishSegment() error {
	var one [1]byte
	for {
		n, err := l.dec.Read(one[:])
		if n > 0 {
			return fmt.Errorf("segment %d decompresses to more than its %d bytes: %w", l.next-1, l.cur.Size, ErrTooLarge)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return l.classify(err)
		}
	}
	n, err := io.Copy(io.Discard, l.chunks)
	if err != nil {
		return fmt.Errorf("segment %d: %w", l.next-1, err)
	}
	if n > 0 {
		return fmt.Errorf("%w: segment %d: %d compressed bytes after the end of its zstd frame", ErrFormat, l.next-1, n)
	}
	l.cur, l.dec = nil, nil
	return nil
}

// end checks that every segment was read.
func (l *literalStream) end() error {
	if l.err != nil {
		return l.err
	}
	if l.cur != nil || l.next != len(l.segs) {
		return fmt.Errorf("%w: the parts did not read every segment", ErrFormat)
	}
	return nil
}

// classify wraps a decompression error in the pack's sentinels, preferring
// the framing error that caused it, if any.
func (l *literalStream) classify(err error) error {
	if l.chunks.err != nil && !errors.Is(l.chunks.err, io.EOF) {
		return fmt.Errorf("segment %d: %w", l.next-1, l.chunks.err)
	}
	switch {
	case errors.Is(err, zstd.ErrCRCMismatch):
		return fmt.Errorf("segment %d: %w: %w", l.next-1, ErrHashMismatch, err)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return fmt.Errorf("%w: segment %d: %w: %w", ErrFormat, l.next-1, ErrTooLarge, err)
	default:
		return fmt.Errorf("%w: segment %d: decompress: %w", ErrFormat, l.next-1, err)
	}
}

// chunkReader reads one segment's chunked compressed stream from r:
// chunks of 1..maxChunk bytes, each preceded by its length as a big-endian
// uint32, ended by a zero length. It returns io.EOF at the terminator and
// refuses more than left bytes of chunk payload.
type chunkReader struct {
	r     *bufio.Reader
	chunk int64 // bytes left in the current chunk
	left  int64 // payload bytes still allowed
	read  int64 // payload bytes read
	err   error // sticky; io.EOF after the terminator
}

// consumed is the compressed bytes read so far.
func (c *chunkReader) consumed() int64 { return c.read }

func (c *chunkReader) Read(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.chunk == 0 {
		var l [4]byte
		if _, err := io.ReadFull(c.r, l[:]); err != nil {
			c.err = fmt.Errorf("%w: read chunk length: %w", ErrFormat, truncated(err))
			return 0, c.err
		}
		n := int64(binary.BigEndian.Uint32(l[:]))
		switch {
		case n == 0:
			c.err = io.EOF
			return 0, c.err
		case n > maxChunk:
			c.err = fmt.Errorf("%w: chunk of %d bytes is above %d", ErrFormat, n, maxChunk)
			return 0, c.err
		case n > c.left:
			c.err = fmt.Errorf("%w: compressed segment is larger than its size allows: %w", ErrFormat, ErrTooLarge)
			return 0, c.err
		}
		c.chunk = n
		c.left -= n
	}
	if int64(len(b)) > c.chunk {
		b = b[:c.chunk]
	}
	n, err := c.r.Read(b)
	c.chunk -= int64(n)
	c.read += int64(n)
	if err != nil {
		c.err = fmt.Errorf("%w: read chunk: %w", ErrFormat, truncated(err))
		return n, c.err
	}
	return n, nil
}
