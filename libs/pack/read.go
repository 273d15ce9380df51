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
)

// Reader reads a pack from a stream: NewReader reads and checks the header,
// Next returns the parts one after the other. A Reader is not safe for
// concurrent use.
type Reader struct {
	br   *bufio.Reader
	h    Header
	lim  Limits
	next int // index in h.Parts of the part Next returns next
	dec  *zstd.Decoder
	cur  *partReader
	err  error // sticky: once set, Next returns it
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
		return nil, fmt.Errorf("%w: header of %d bytes is above the limit of %d: %w", ErrFormat, n, lim.MaxHeader, ErrTooLarge)
	}
	// ReadAll grows its buffer as bytes arrive, so a lying length on a
	// short stream does not allocate the whole declared size.
	raw, err := io.ReadAll(io.LimitReader(br, int64(n)))
	if err != nil {
		return nil, fmt.Errorf("%w: read header: %w", ErrFormat, err)
	}
	if uint64(len(raw)) != n {
		return nil, fmt.Errorf("%w: read header: %d of %d bytes: %w", ErrFormat, len(raw), n, io.ErrUnexpectedEOF)
	}
	h, err := decodeHeader(raw, lim)
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1), // synchronous: no goroutines to stop
		zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderMaxMemory(maxWindow),
		zstd.WithDecoderLowmem(true),
	)
	if err != nil {
		return nil, fmt.Errorf("pack reader: zstd: %w", err)
	}
	return &Reader{br: br, h: h, lim: lim, dec: dec}, nil
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
	for i, p := range h.Parts {
		if p.Size > lim.MaxPartSize {
			return Header{}, fmt.Errorf("%w: part %d (%s) of %d bytes is above the limit of %d: %w", ErrFormat, i, p.Hash, p.Size, lim.MaxPartSize, ErrTooLarge)
		}
	}
	return h, nil
}

// Header returns the validated header.
func (r *Reader) Header() Header { return r.h }

// Close releases the decompressor. Calling it is optional (the decompressor
// runs no goroutines); the Reader is unusable afterwards.
func (r *Reader) Close() error {
	r.dec.Close()
	if r.err == nil {
		r.err = errors.New("pack reader closed")
	}
	return nil
}

// Next returns the next part and a reader of its decompressed content. The
// content reader yields exactly Part.Size bytes then io.EOF, after checking
// that the compressed data holds nothing more (ErrTooLarge if it
// decompresses to more, ErrFormat if to less) and that the content's BLAKE3
// is Part.Hash (ErrHashMismatch). A part not read to io.EOF is skipped
// without decompression by the next call to Next. After the last part, Next
// checks that the stream ends and returns io.EOF. Any error is sticky.
func (r *Reader) Next() (Part, io.Reader, error) {
	if r.err != nil {
		return Part{}, nil, r.err
	}
	if cur := r.cur; cur != nil {
		r.cur = nil
		if cur.err == nil {
			cur.err = errAbandoned
			if _, err := io.Copy(io.Discard, cur.chunks); err != nil {
				r.err = fmt.Errorf("skip part %s: %w", cur.part.Hash, err)
				return Part{}, nil, r.err
			}
		} else if !errors.Is(cur.err, io.EOF) && !errors.Is(cur.err, errAbandoned) {
			r.err = cur.err
			return Part{}, nil, r.err
		}
	}
	if r.next == len(r.h.Parts) {
		if _, err := r.br.ReadByte(); err == nil {
			r.err = fmt.Errorf("%w: trailing data after the last part", ErrFormat)
		} else if errors.Is(err, io.EOF) {
			r.err = io.EOF
		} else {
			r.err = fmt.Errorf("%w: after the last part: %w", ErrFormat, err)
		}
		return Part{}, nil, r.err
	}
	p := r.h.Parts[r.next]
	r.next++
	chunks := &chunkReader{r: r.br, left: compressedLimit(p.Size)}
	r.cur = &partReader{part: p, remaining: p.Size, chunks: chunks, hash: blake3.New()}
	if p.Size > 0 { // an empty part has no zstd frame
		win := windowLimit(p.Size)
		err := r.dec.ResetWithOptions(chunks, zstd.WithDecoderMaxWindow(win), zstd.WithDecoderMaxMemory(win))
		if err != nil {
			r.err = fmt.Errorf("%w: part %s: %w", ErrFormat, p.Hash, err)
			return Part{}, nil, r.err
		}
		r.cur.dec = r.dec
	}
	return p, r.cur, nil
}

// windowLimit is the largest zstd window accepted for a part of size
// bytes: the smallest power of two above size, at least 1 KiB, at most
// maxWindow. Writers declare the content size, so the encoder never needs
// more; a hostile frame cannot make the reader allocate more.
func windowLimit(size int64) uint64 {
	w := uint64(1) << bits.Len64(uint64(size))
	return min(max(w, zstd.MinWindowSize), maxWindow)
}

// errAbandoned is returned by a part reader after Next moved past it.
var errAbandoned = errors.New("pack part abandoned: Next was called before it was read to the end")

// compressedLimit is the most compressed bytes accepted for a part of size
// bytes: zstd's worst case is far below (3 bytes per 128 KiB block plus a
// frame header), so only a hostile stream reaches it.
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

// partReader yields one part's decompressed content and checks it.
type partReader struct {
	part      Part
	remaining int64
	dec       *zstd.Decoder
	chunks    *chunkReader
	hash      hash.Hash
	err       error // sticky; io.EOF once the part is read and verified
}

func (p *partReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.remaining == 0 {
		p.err = p.finish()
		return 0, p.err
	}
	if int64(len(b)) > p.remaining {
		b = b[:p.remaining]
	}
	n, err := p.dec.Read(b)
	p.hash.Write(b[:n])
	p.remaining -= int64(n)
	switch {
	case err == nil && p.remaining == 0:
		p.err = p.finish()
		return n, p.err
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF) && p.remaining > 0:
		p.err = fmt.Errorf("%w: part %s decompresses to %d bytes, declares %d: %w",
			ErrFormat, p.part.Hash, p.part.Size-p.remaining, p.part.Size, io.ErrUnexpectedEOF)
	case errors.Is(err, io.EOF):
		p.err = p.finish()
	default:
		p.err = p.classify(err)
	}
	return n, p.err
}

// finish checks, once Size bytes were read, that the part ends there and
// that its hash matches; it returns io.EOF when all is well.
func (p *partReader) finish() error {
	var one [1]byte
	for p.dec != nil {
		n, err := p.dec.Read(one[:])
		if n > 0 {
			return fmt.Errorf("part %s decompresses to more than its %d bytes: %w", p.part.Hash, p.part.Size, ErrTooLarge)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return p.classify(err)
		}
	}
	// The zstd frame ended; the chunks must end with it.
	n, err := io.Copy(io.Discard, p.chunks)
	if err != nil {
		return fmt.Errorf("part %s: %w", p.part.Hash, err)
	}
	if n > 0 {
		return fmt.Errorf("%w: part %s: %d compressed bytes after the end of its zstd frame", ErrFormat, p.part.Hash, n)
	}
	if got := hex.EncodeToString(p.hash.Sum(nil)); got != p.part.Hash {
		return fmt.Errorf("part %s: content hashes to %s: %w", p.part.Hash, got, ErrHashMismatch)
	}
	return io.EOF
}

// classify wraps a decompression error in the pack's sentinels, preferring
// the framing error that caused it, if any.
func (p *partReader) classify(err error) error {
	if p.chunks.err != nil && !errors.Is(p.chunks.err, io.EOF) {
		return fmt.Errorf("part %s: %w", p.part.Hash, p.chunks.err)
	}
	switch {
	case errors.Is(err, zstd.ErrCRCMismatch):
		return fmt.Errorf("part %s: %w: %w", p.part.Hash, ErrHashMismatch, err)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return fmt.Errorf("%w: part %s: %w: %w", ErrFormat, p.part.Hash, ErrTooLarge, err)
	default:
		return fmt.Errorf("%w: part %s: decompress: %w", ErrFormat, p.part.Hash, err)
	}
}

// chunkReader reads one part's chunked compressed stream from r: chunks
// of 1..maxChunk bytes, each preceded by its length as a big-endian uint32,
// ended by a zero length. It returns io.EOF at the terminator and refuses
// more than left bytes of chunk payload.
type chunkReader struct {
	r     *bufio.Reader
	chunk int64 // bytes left in the current chunk
	left  int64 // payload bytes still allowed
	err   error // sticky; io.EOF after the terminator
}

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
			c.err = fmt.Errorf("%w: compressed part is larger than its size allows: %w", ErrFormat, ErrTooLarge)
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
	if err != nil {
		c.err = fmt.Errorf("%w: read chunk: %w", ErrFormat, truncated(err))
		return n, c.err
	}
	return n, nil
}
