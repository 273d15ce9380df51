package tree

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/blake3"
)

// ErrInvalidStatCache marks a stat cache file LoadStatCache cannot use.
var ErrInvalidStatCache = errors.New("invalid stat cache")

// Limits of the stat cache file (docs/manifest-format.md).
const (
	// MaxStatCacheRecord is the largest record of a stat cache file, in
	// bytes: room for the chunks of a file of about 400 GiB (at least
	// 100 GiB). A larger file is not remembered and is read at every scan.
	MaxStatCacheRecord = 64 << 20
	// MaxStatCacheBytes is the largest stat cache file, in bytes.
	MaxStatCacheBytes = 4 << 30
)

// statCacheMagic and statCacheVersion start a stat cache file. Version 2
// added chunks; a change of ChunkAlgorithm, its sizes or ChunkThreshold
// needs a new version too, since records of version 2 must hold exactly
// the chunks a scan would compute.
const (
	statCacheMagic   = "PDSC"
	statCacheVersion = 2
	// statRecordFixed is the size of a record without its chunks and path:
	// dev, ino, size, mtime, ctime (8 bytes each), mode (4), the raw hash
	// (32) and the chunk count (4).
	statRecordFixed = 5*8 + 4 + 32 + 4
	// statChunkSize is the size of one chunk in a record: size (8) and the
	// raw hash (32).
	statChunkSize = 8 + 32
)

// errStatCacheOutdated marks a stat cache file of an older version, which
// LoadStatCache discards without an error.
var errStatCacheOutdated = errors.New("older stat cache version")

// RacyWindow is how recent a file's mtime or ctime may be, relative to the
// start of a scan, for its hash to be remembered. A file changed again
// within the timestamp granularity of its filesystem keeps the same stat
// fields with other content (git's "racy" files); a file whose times are at
// least RacyWindow older than the scan start cannot have been changed after
// its hash was taken without its mtime or ctime moving past them. The
// window covers filesystems with 2-second timestamps (FAT) and small clock
// differences.
const RacyWindow = 2 * time.Second

// statKey is what a file's stat(2) says about it; the cached hash is
// trusted only while every field is unchanged.
type statKey struct {
	Dev, Ino           uint64
	Size, MTime, CTime int64 // mtime and ctime in unix nanoseconds
	Mode               uint32
}

// statEntry is one remembered file: its stat fields, content hash and
// chunks.
type statEntry struct {
	key    statKey
	hash   string  // lowercase hex, as in manifests
	chunks []Chunk // as in manifests: files of at least ChunkThreshold bytes only
}

// StatCache remembers the BLAKE3 hash and chunks of files by path, device,
// inode, size, mtime, ctime and mode, so that a re-scan with ScanWith does
// not read a file whose stat fields are all unchanged. It is safe for concurrent use
// by the hashers of one scan; one cache serves one scan at a time (ScanWith
// refuses a cache another scan is using) and belongs to one tree, since it
// is keyed by paths relative to the tree root.
//
// After a successful scan the cache holds exactly the files of that scan
// whose times are older than the scan start minus RacyWindow (newer files
// are hashed again next time); after a failed scan it keeps its previous
// entries as well. Stat fields are read on Linux only: elsewhere the cache
// never hits.
type StatCache struct {
	mu      sync.Mutex
	entries map[string]statEntry
	next    map[string]statEntry // entries of the scan in progress; nil between scans

	hits, misses atomic.Int64
}

// NewStatCache returns an empty stat cache.
func NewStatCache() *StatCache {
	return &StatCache{entries: make(map[string]statEntry)}
}

// Len returns the number of remembered files.
func (c *StatCache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Stats returns the counts of the latest scan that used the cache: hits are
// files whose hash came from the cache without reading them, misses are
// files that were read and hashed.
func (c *StatCache) Stats() (hits, misses int64) {
	if c == nil {
		return 0, 0
	}
	return c.hits.Load(), c.misses.Load()
}

// begin starts a scan: it resets the counters and the set of seen entries.
func (c *StatCache) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next != nil {
		return errors.New("stat cache is in use by another scan")
	}
	if c.entries == nil {
		c.entries = make(map[string]statEntry)
	}
	c.next = make(map[string]statEntry, len(c.entries))
	c.hits.Store(0)
	c.misses.Store(0)
	return nil
}

// end finishes a scan: after a complete one the entries it saw replace the
// old ones; after a failed one they are added to them.
func (c *StatCache) end(complete bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if complete {
		c.entries = c.next
	} else {
		for p, e := range c.next {
			c.entries[p] = e
		}
	}
	c.next = nil
}

// lookup returns the remembered entry of the file at p if its stat fields
// are still k, and counts a hit or a miss (the file will then be hashed).
// The entry's chunks belong to the cache: the caller copies them.
func (c *StatCache) lookup(p string, k statKey, ok bool) (statEntry, bool) {
	if ok {
		c.mu.Lock()
		e, found := c.entries[p]
		if found && e.key == k {
			c.next[p] = e
			c.mu.Unlock()
			c.hits.Add(1)
			return e, true
		}
		c.mu.Unlock()
	}
	c.misses.Add(1)
	return statEntry{}, false
}

// store remembers e, the hash and chunks of the file at p, unless its mtime
// or ctime is within RacyWindow of the scan start (or after it).
func (c *StatCache) store(p string, k statKey, e statEntry, start time.Time) {
	limit := start.Add(-RacyWindow).UnixNano()
	if k.MTime >= limit || k.CTime >= limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next != nil {
		c.next[p] = e
	}
}

// LoadStatCache reads a stat cache written by Save. A missing file, or one
// of an older version (written before an upgrade), gives an empty cache and
// no error. Any other problem (unreadable, truncated, corrupt, wrong magic,
// an unknown version, a record above MaxStatCacheRecord, a file above
// MaxStatCacheBytes, a bad checksum, chunks that break the manifest rules)
// gives an empty cache AND an error the caller may log before scanning with
// the empty cache: a broken cache only costs a full re-hash. Errors about
// the content wrap ErrInvalidStatCache. The returned cache is never nil.
func LoadStatCache(path string) (*StatCache, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NewStatCache(), nil
	}
	if err != nil {
		return NewStatCache(), fmt.Errorf("load stat cache: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return NewStatCache(), fmt.Errorf("load stat cache %s: %w", path, err)
	}
	if info.Size() > MaxStatCacheBytes {
		return NewStatCache(), fmt.Errorf("%w: %s: %d bytes, more than %d", ErrInvalidStatCache, path, info.Size(), int64(MaxStatCacheBytes))
	}
	entries, err := readStatCache(f, MaxStatCacheBytes)
	if errors.Is(err, errStatCacheOutdated) {
		return NewStatCache(), nil
	}
	if err != nil {
		return NewStatCache(), fmt.Errorf("load stat cache %s: %w", path, err)
	}
	return &StatCache{entries: entries}, nil
}

// readStatCache decodes a stat cache file of at most limit bytes; errors
// wrap ErrInvalidStatCache unless reading itself failed, or
// errStatCacheOutdated for an older version.
func readStatCache(r io.Reader, limit int64) (map[string]statEntry, error) {
	lr := &limitReader{r: r, n: limit}
	br := bufio.NewReaderSize(lr, 64<<10)
	h := blake3.New()
	tr := io.TeeReader(br, h)
	fail := func(step string, err error) error {
		switch {
		case errors.Is(err, errTooLarge):
			return fmt.Errorf("%w: %s: more than %d bytes", ErrInvalidStatCache, step, limit)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%w: %s: truncated", ErrInvalidStatCache, step)
		default:
			return fmt.Errorf("%s: %w", step, err)
		}
	}

	var head [8]byte
	if _, err := io.ReadFull(tr, head[:]); err != nil {
		return nil, fail("header", err)
	}
	if string(head[:4]) != statCacheMagic {
		return nil, fmt.Errorf("%w: header: magic %q, want %q", ErrInvalidStatCache, head[:4], statCacheMagic)
	}
	if v := binary.BigEndian.Uint32(head[4:]); v != statCacheVersion {
		if v < statCacheVersion {
			return nil, fmt.Errorf("%w: version %d, want %d", errStatCacheOutdated, v, statCacheVersion)
		}
		return nil, fmt.Errorf("%w: header: version %d, want %d", ErrInvalidStatCache, v, statCacheVersion)
	}

	entries := make(map[string]statEntry)
	// The buffer grows with the bytes actually read, not with the length a
	// record claims.
	var buf bytes.Buffer
	var prev string
	for n := uint64(0); ; n++ {
		var lenBuf [4]byte
		if _, err := io.ReadFull(tr, lenBuf[:]); err != nil {
			return nil, fail(fmt.Sprintf("record %d", n), err)
		}
		size := binary.BigEndian.Uint32(lenBuf[:])
		if size == 0 {
			if err := readStatCacheEnd(br, tr, h, n, fail); err != nil {
				return nil, err
			}
			return entries, nil
		}
		if size <= statRecordFixed || size > MaxStatCacheRecord {
			return nil, fmt.Errorf("%w: record %d: length %d outside %d..%d", ErrInvalidStatCache, n, size, statRecordFixed+1, MaxStatCacheRecord)
		}
		buf.Reset()
		if _, err := io.CopyN(&buf, tr, int64(size)); err != nil {
			return nil, fail(fmt.Sprintf("record %d", n), err)
		}
		p, e, err := decodeStatRecord(buf.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%w: record %d: %w", ErrInvalidStatCache, n, err)
		}
		if err := ValidatePath(p); err != nil {
			return nil, fmt.Errorf("%w: record %d: %w", ErrInvalidStatCache, n, err)
		}
		if n > 0 && p <= prev {
			return nil, fmt.Errorf("%w: record %d: %q does not sort after %q", ErrInvalidStatCache, n, p, prev)
		}
		if e.key.Size < 0 {
			return nil, fmt.Errorf("%w: record %d: %q has negative size %d", ErrInvalidStatCache, n, p, e.key.Size)
		}
		if err := checkStatChunks(e); err != nil {
			return nil, fmt.Errorf("%w: record %d: %q: %w", ErrInvalidStatCache, n, p, err)
		}
		entries[p] = e
		prev = p
	}
}

// readStatCacheEnd checks what follows the end marker: the record count,
// the checksum of everything before it, and nothing else.
func readStatCacheEnd(br *bufio.Reader, tr io.Reader, h *blake3.Hasher, n uint64, fail func(string, error) error) error {
	var count [8]byte
	if _, err := io.ReadFull(tr, count[:]); err != nil {
		return fail("record count", err)
	}
	if c := binary.BigEndian.Uint64(count[:]); c != n {
		return fmt.Errorf("%w: record count %d, read %d records", ErrInvalidStatCache, c, n)
	}
	want := h.Sum(nil)
	var sum [32]byte
	if _, err := io.ReadFull(br, sum[:]); err != nil {
		return fail("checksum", err)
	}
	if !bytes.Equal(sum[:], want) {
		return fmt.Errorf("%w: checksum mismatch", ErrInvalidStatCache)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		if err == nil {
			return fmt.Errorf("%w: trailing data after the checksum", ErrInvalidStatCache)
		}
		return fail("after the checksum", err)
	}
	return nil
}

// checkStatChunks checks that e holds the chunks a scan records: the
// manifest rules (validateChunks), and chunks for every file of at least
// ChunkThreshold bytes.
func checkStatChunks(e statEntry) error {
	if e.key.Size >= ChunkThreshold && len(e.chunks) == 0 {
		return fmt.Errorf("a file of %d bytes without chunks", e.key.Size)
	}
	return validateChunks(e.key.Size, e.chunks)
}

// decodeStatRecord splits a record body of more than statRecordFixed bytes;
// it fails when the chunk count leaves no room for a path.
func decodeStatRecord(rec []byte) (string, statEntry, error) {
	be := binary.BigEndian
	k := statKey{
		Dev:   be.Uint64(rec[0:]),
		Ino:   be.Uint64(rec[8:]),
		Size:  int64(be.Uint64(rec[16:])),
		MTime: int64(be.Uint64(rec[24:])),
		CTime: int64(be.Uint64(rec[32:])),
		Mode:  be.Uint32(rec[40:]),
	}
	e := statEntry{key: k, hash: hex.EncodeToString(rec[44:76])}
	count := uint64(be.Uint32(rec[76:]))
	rest := rec[statRecordFixed:]
	if count*statChunkSize >= uint64(len(rest)) {
		return "", statEntry{}, fmt.Errorf("%d chunks do not fit in a record of %d bytes with a path", count, len(rec))
	}
	if count > 0 {
		e.chunks = make([]Chunk, count)
		for i := range e.chunks {
			c := rest[i*statChunkSize:]
			e.chunks[i] = Chunk{Size: int64(be.Uint64(c)), Hash: hex.EncodeToString(c[8:statChunkSize])}
		}
	}
	return string(rest[count*statChunkSize:]), e, nil
}

// statRecordLen is the length of the record body of p and e.
func statRecordLen(p string, e statEntry) int {
	return statRecordFixed + len(e.chunks)*statChunkSize + len(p)
}

// appendStatRecord appends the length-prefixed record of one entry.
func appendStatRecord(buf []byte, p string, e statEntry) []byte {
	be := binary.BigEndian
	buf = be.AppendUint32(buf, uint32(statRecordLen(p, e)))
	buf = be.AppendUint64(buf, e.key.Dev)
	buf = be.AppendUint64(buf, e.key.Ino)
	buf = be.AppendUint64(buf, uint64(e.key.Size))
	buf = be.AppendUint64(buf, uint64(e.key.MTime))
	buf = be.AppendUint64(buf, uint64(e.key.CTime))
	buf = be.AppendUint32(buf, e.key.Mode)
	buf, _ = hex.AppendDecode(buf, []byte(e.hash)) // e.hash is a checked hash
	buf = be.AppendUint32(buf, uint32(len(e.chunks)))
	for _, c := range e.chunks {
		buf = be.AppendUint64(buf, uint64(c.Size))
		buf, _ = hex.AppendDecode(buf, []byte(c.Hash)) // checked by checkStatChunks
	}
	return append(buf, p...)
}

// writeStatCache encodes entries to w: header, records sorted by path,
// end marker, record count, checksum. Entries whose record would exceed
// MaxStatCacheRecord, whose hash is malformed or whose chunks break the
// rules LoadStatCache checks are left out (they can only cost a re-hash).
func writeStatCache(w io.Writer, entries map[string]statEntry) error {
	paths := make([]string, 0, len(entries))
	for p, e := range entries {
		if statRecordLen(p, e) <= MaxStatCacheRecord && IsHash(e.hash) && ValidatePath(p) == nil && e.key.Size >= 0 && checkStatChunks(e) == nil {
			paths = append(paths, p)
		}
	}
	slices.SortFunc(paths, strings.Compare)

	h := blake3.New()
	bw := bufio.NewWriterSize(w, 64<<10)
	mw := io.MultiWriter(h, bw)
	var total int64
	write := func(b []byte) error {
		total += int64(len(b))
		if total > MaxStatCacheBytes {
			return fmt.Errorf("more than %d bytes", int64(MaxStatCacheBytes))
		}
		_, err := mw.Write(b)
		return err
	}
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, statCacheMagic...)
	buf = binary.BigEndian.AppendUint32(buf, statCacheVersion)
	for _, p := range paths {
		buf = appendStatRecord(buf, p, entries[p])
		if len(buf) >= 32<<10 {
			if err := write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	buf = binary.BigEndian.AppendUint32(buf, 0)
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(paths)))
	if err := write(buf); err != nil {
		return err
	}
	if _, err := bw.Write(h.Sum(nil)); err != nil {
		return err
	}
	return bw.Flush()
}

// Save writes the cache to path atomically: to a temporary file in the
// same directory, synced, then renamed over path, and the directory synced;
// a crash leaves the old file or the new one, never a mix. A nil cache
// saves nothing.
func (c *StatCache) Save(path string) (err error) {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	entries := make(map[string]statEntry, len(c.entries))
	for p, e := range c.entries {
		entries[p] = e
	}
	c.mu.Unlock()

	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save stat cache: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()           // already failed; the write error matters
			_ = os.Remove(f.Name()) // best effort: a leftover temp file is harmless
		}
	}()
	if err := writeStatCache(f, entries); err != nil {
		return fmt.Errorf("save stat cache %s: write: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save stat cache %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save stat cache %s: close: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("save stat cache %s: rename: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("save stat cache %s: %w", path, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}
