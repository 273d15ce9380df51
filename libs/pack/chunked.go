package pack

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/zeebo/blake3"

	"github.com/pulpdist/pulpdist/libs/ctxio"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// ErrNotStored is what a Source's error wraps for content it does not
// hold: with Options.Chunked, a missing chunk is then read from the whole
// content.
var ErrNotStored = errors.New("content not stored")

// chunked gives random access to a large content (one with chunks)
// through a source that serves chunks by their hashes (Options.Chunked):
// a chunk is fetched the first time a read covers it, checked against its
// hash, and kept at its offset in a sparse spool file. When the source
// lacks a chunk, the whole content is spooled instead and checked against
// the content's hash.
type chunked struct {
	b     *builder
	e     *tree.Entry
	offs  []int64
	have  []bool
	whole bool
	spool *os.File
}

// chunkedAt returns random access to e's content, a large content of the
// target or the base, opened once per build.
func (b *builder) chunkedAt(e *tree.Entry) (*chunked, error) {
	if f, ok := b.bases[e.Hash]; ok {
		if c, ok := f.r.(*chunked); ok {
			return c, nil
		}
	}
	spool, err := os.CreateTemp(b.tempDir, "pulpdist-chunks-*")
	if err != nil {
		return nil, fmt.Errorf("spool content %s: %w", e.Hash, err)
	}
	c := &chunked{b: b, e: e, offs: e.ChunkOffsets(), have: make([]bool, len(e.Chunks)), spool: spool}
	b.bases[e.Hash] = baseFile{r: c, release: func() {
		_ = spool.Close()           // a temp file: nothing to flush that matters
		_ = os.Remove(spool.Name()) // and nothing else uses it
	}}
	return c, nil
}

// ReadAt reads the content at off, fetching the chunks it covers.
func (c *chunked) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read content %s: negative offset", c.e.Hash)
	}
	if off >= c.e.Size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), c.e.Size)
	i := sort.Search(len(c.offs), func(i int) bool { return c.offs[i]+c.e.Chunks[i].Size > off })
	for ; i < len(c.offs) && c.offs[i] < end; i++ {
		if err := c.fetch(i); err != nil {
			return 0, err
		}
	}
	n, err := c.spool.ReadAt(p[:end-off], off)
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// fetch spools chunk i unless it is there.
func (c *chunked) fetch(i int) error {
	if c.whole || c.have[i] {
		return nil
	}
	ch := c.e.Chunks[i]
	rc, err := c.b.src(c.b.ctx, ch.Hash)
	if errors.Is(err, ErrNotStored) {
		return c.fetchWhole()
	}
	if err != nil {
		return fmt.Errorf("open chunk %s of content %s: %w", ch.Hash, c.e.Hash, err)
	}
	defer rc.Close()
	if err := c.spoolFrom(rc, c.offs[i], ch.Size, ch.Hash); err != nil {
		return fmt.Errorf("chunk %s of content %s: %w", ch.Hash, c.e.Hash, err)
	}
	c.have[i] = true
	return nil
}

// fetchWhole spools the whole content, checked against its hash.
func (c *chunked) fetchWhole() error {
	rc, err := c.b.src(c.b.ctx, c.e.Hash)
	if err != nil {
		return fmt.Errorf("open content %s: %w", c.e.Hash, err)
	}
	defer rc.Close()
	if err := c.spoolFrom(rc, 0, c.e.Size, c.e.Hash); err != nil {
		return fmt.Errorf("content %s: %w", c.e.Hash, err)
	}
	c.whole = true
	return nil
}

// spoolFrom writes what r gives into the spool at off, checked to be size
// bytes hashing to hash (ErrHashMismatch otherwise).
func (c *chunked) spoolFrom(r io.Reader, off, size int64, hash string) error {
	hasher := blake3.New()
	w := io.MultiWriter(io.NewOffsetWriter(c.spool, off), hasher)
	n, err := io.CopyBuffer(w, io.LimitReader(ctxio.Reader(c.b.ctx, r), size+1), c.b.fetchBuf)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return checkContent(hasher, n, &tree.Entry{Size: size, Hash: hash})
}

// chunkStream reads a large content from its start, chunk by chunk; from
// the first chunk the source lacks on, it reads the whole content
// (skipping what it already gave).
type chunkStream struct {
	b    *builder
	e    *tree.Entry
	next int           // the next chunk to open
	off  int64         // bytes given so far
	cur  io.ReadCloser // the chunk being read, or the whole content
	rest bool          // cur is the whole content
}

func (s *chunkStream) Read(p []byte) (int, error) {
	for {
		if s.cur != nil {
			n, err := s.cur.Read(p)
			s.off += int64(n)
			if errors.Is(err, io.EOF) && !s.rest {
				_ = s.cur.Close() // read to its end
				s.cur, err = nil, nil
				if n == 0 {
					continue
				}
			}
			return n, err
		}
		if s.next >= len(s.e.Chunks) {
			return 0, io.EOF
		}
		ch := s.e.Chunks[s.next]
		rc, err := s.b.src(s.b.ctx, ch.Hash)
		if errors.Is(err, ErrNotStored) {
			if rc, err = s.b.src(s.b.ctx, s.e.Hash); err != nil {
				return 0, fmt.Errorf("open content %s: %w", s.e.Hash, err)
			}
			if _, err := io.CopyN(io.Discard, rc, s.off); err != nil {
				_ = rc.Close() // the error below is what matters
				return 0, fmt.Errorf("read content %s: %w", s.e.Hash, truncated(err))
			}
			s.cur, s.rest = rc, true
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("open chunk %s of content %s: %w", ch.Hash, s.e.Hash, err)
		}
		// A chunk longer than declared shows as a wrong size or hash of
		// the whole content, which the caller checks.
		s.cur = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(rc, ch.Size+1), rc}
		s.next++
	}
}

func (s *chunkStream) Close() error {
	if s.cur != nil {
		return s.cur.Close()
	}
	return nil
}

// openContent opens e's whole content: chunk by chunk when the source
// serves chunks (Options.Chunked) and e has them, else as one.
func (b *builder) openContent(e *tree.Entry) (io.ReadCloser, error) {
	if b.o.Chunked && len(e.Chunks) > 0 {
		return &chunkStream{b: b, e: e}, nil
	}
	return b.src(b.ctx, e.Hash)
}
