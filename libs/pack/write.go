package pack

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// Write streams the pack for h to w: the magic, the format byte, the
// length-prefixed JSON header, then each part of h.Parts in order as a zstd
// frame cut into length-prefixed chunks, its content read from open(ctx,
// hash). Nothing is held in memory beyond one chunk and the compressor's
// window. h is validated first (ErrFormat). The bytes open returns must hash
// to the part's hash and have its size, else Write fails with
// ErrHashMismatch; the pack written so far is then unusable and must be
// discarded by the caller. Write returns the number of bytes written.
func Write(ctx context.Context, w io.Writer, h Header, open func(ctx context.Context, hash string) (io.ReadCloser, error)) (int64, error) {
	return write(ctx, w, h, open, true)
}

// write is Write; verify false skips the content checks so that tests can
// produce packs with corrupt parts.
func write(ctx context.Context, w io.Writer, h Header, open func(ctx context.Context, hash string) (io.ReadCloser, error), verify bool) (int64, error) {
	if err := h.Validate(); err != nil {
		return 0, fmt.Errorf("write pack: %w", err)
	}
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	hdr, err := json.Marshal(&h)
	if err != nil {
		return 0, fmt.Errorf("write pack: encode header: %w", err)
	}
	pre := make([]byte, 0, len(Magic)+1+8)
	pre = append(pre, Magic...)
	pre = append(pre, FormatVersion)
	pre = binary.BigEndian.AppendUint64(pre, uint64(len(hdr)))
	if _, err := bw.Write(pre); err != nil {
		return cw.n, fmt.Errorf("write pack: header: %w", err)
	}
	if _, err := bw.Write(hdr); err != nil {
		return cw.n, fmt.Errorf("write pack: header: %w", err)
	}

	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithWindowSize(maxWindow),
		zstd.WithEncoderCRC(false), // BLAKE3 already covers every part
	)
	if err != nil {
		return cw.n, fmt.Errorf("write pack: zstd: %w", err)
	}
	defer enc.Close()
	chunks := &chunkWriter{w: bw, buf: make([]byte, 0, writeChunk)}
	copyBuf := make([]byte, 256<<10)
	for i, p := range h.Parts {
		if err := ctx.Err(); err != nil {
			return cw.n, fmt.Errorf("write pack: part %d: %w", i, err)
		}
		if err := writePart(ctx, enc, chunks, p, open, copyBuf, verify); err != nil {
			return cw.n, fmt.Errorf("write pack: part %d (%s): %w", i, p.Hash, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("write pack: flush: %w", err)
	}
	return cw.n, nil
}

// writePart compresses the content of p into chunks, checking its size and
// hash on the way.
func writePart(ctx context.Context, enc *zstd.Encoder, chunks *chunkWriter, p Part, open func(ctx context.Context, hash string) (io.ReadCloser, error), buf []byte, verify bool) error {
	rc, err := open(ctx, p.Hash)
	if err != nil {
		return fmt.Errorf("open content: %w", err)
	}
	defer rc.Close()
	hasher := blake3.New()
	// Read at most one byte more than declared: enough to notice a longer
	// content without streaming all of it.
	src := io.TeeReader(io.LimitReader(&ctxReader{ctx: ctx, r: rc}, p.Size+1), hasher)
	var dst io.Writer = enc
	switch {
	case p.Size == 0 && verify:
		// An empty part has no zstd frame at all: only the terminator.
		dst = io.Discard
	case verify:
		// Declaring the size lets the encoder pick a window no larger than
		// the content, which readers enforce.
		enc.ResetContentSize(chunks, p.Size)
	default:
		enc.Reset(chunks)
	}
	n, err := io.CopyBuffer(dst, struct{ io.Reader }{src}, buf)
	if err != nil {
		return fmt.Errorf("compress content: %w", err)
	}
	if verify {
		if n != p.Size {
			return fmt.Errorf("%w: content has %s bytes, part declares %d", ErrHashMismatch, sizeText(n, p.Size), p.Size)
		}
		if got := hex.EncodeToString(hasher.Sum(nil)); got != p.Hash {
			return fmt.Errorf("%w: content hashes to %s", ErrHashMismatch, got)
		}
	}
	if dst == enc {
		if err := enc.Close(); err != nil {
			return fmt.Errorf("finish zstd frame: %w", err)
		}
	}
	if err := chunks.end(); err != nil {
		return fmt.Errorf("end part: %w", err)
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

// chunkWriter cuts a part's compressed stream into chunks of at most
// writeChunk bytes, each preceded by its length as a big-endian uint32; end
// flushes the last chunk and writes the zero-length terminator.
type chunkWriter struct {
	w   io.Writer
	buf []byte
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), writeChunk-len(c.buf))
		c.buf = append(c.buf, p[:n]...)
		p = p[n:]
		written += n
		if len(c.buf) == writeChunk {
			if err := c.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// flush writes the buffered bytes as one chunk, if there are any.
func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(c.buf)))
	if _, err := c.w.Write(l[:]); err != nil {
		return err
	}
	if _, err := c.w.Write(c.buf); err != nil {
		return err
	}
	c.buf = c.buf[:0]
	return nil
}

// end flushes the last chunk and writes the terminator.
func (c *chunkWriter) end() error {
	if err := c.flush(); err != nil {
		return err
	}
	_, err := c.w.Write([]byte{0, 0, 0, 0})
	return err
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ctxReader fails reads once ctx is done, so a long part stops promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
