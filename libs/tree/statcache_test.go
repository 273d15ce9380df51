package tree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

// later is a scan clock one hour ahead, so that files the test just wrote
// are old enough to be remembered (RacyWindow).
func later() time.Time { return time.Now().Add(time.Hour) }

// scanCached scans dir with cache and the clock now, validates the result
// and checks that it equals a plain Scan.
func scanCached(t testing.TB, dir string, cache *StatCache, now func() time.Time) *Manifest {
	t.Helper()
	m, err := ScanWith(t.Context(), dir, ScanOptions{Cache: cache, now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := scan(t, dir); !reflect.DeepEqual(m, want) {
		t.Fatalf("cached scan differs from a full scan:\n got %+v\nwant %+v", m.Entries, want.Entries)
	}
	return m
}

// warmCache scans dir twice with a new StatCache: the first scan hashes
// all its files (files of them), the second none. It returns the cache.
func warmCache(t testing.TB, dir string, files int64) *StatCache {
	t.Helper()
	c := NewStatCache()
	cold := scanCached(t, dir, c, later)
	assertStats(t, c, 0, files)
	if c.Len() != int(files) {
		t.Fatalf("cache holds %d files, want %d", c.Len(), files)
	}
	warm := scanCached(t, dir, c, later)
	assertStats(t, c, files, 0)
	if warm.Root() != cold.Root() {
		t.Fatal("warm root differs")
	}
	return c
}

// assertStats checks the hit and miss counts of the latest scan.
func assertStats(t testing.TB, c *StatCache, hits, misses int64) {
	t.Helper()
	if h, m := c.Stats(); h != hits || m != misses {
		t.Fatalf("stats: %d hits, %d misses; want %d, %d", h, m, hits, misses)
	}
}

// ctimeOf returns the ctime of p in nanoseconds.
func ctimeOf(t testing.TB, p string) int64 {
	t.Helper()
	info, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Sys().(*syscall.Stat_t).Ctim.Nano()
}

// changeUntilCtimeMoves applies change until the ctime of p differs from
// before: a change within the same clock tick keeps the ctime, which is the
// racy case the scan-start rule exists for and not what these tests check.
func changeUntilCtimeMoves(t testing.TB, p string, before int64, change func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		change()
		if ctimeOf(t, p) != before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("ctime does not move")
		}
	}
}

func TestStatCacheWarmScanHashesNothing(t *testing.T) {
	dir := t.TempDir()
	writeSample(t, dir)
	files, _ := scan(t, dir).Totals()

	warmCache(t, dir, files)
}

func TestStatCacheDetectsChanges(t *testing.T) {
	old := time.Unix(1_700_000_000, 123456789)
	tests := []struct {
		name   string
		change func(t *testing.T, p string)
	}{
		{"mtime touched", func(t *testing.T, p string) {
			if err := os.Chtimes(p, old, old.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}},
		{"same size content with the mtime restored", func(t *testing.T, p string) {
			if err := os.WriteFile(p, []byte("BRAVO"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}},
		{"chmod", func(t *testing.T, p string) {
			if err := os.Chmod(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by another inode", func(t *testing.T, p string) {
			tmp := p + ".new"
			if err := os.WriteFile(tmp, []byte("BRAVO"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(tmp, old, old); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSample(t, dir)
			files, _ := scan(t, dir).Totals()
			c := NewStatCache()
			before := scanCached(t, dir, c, later)

			p := filepath.Join(dir, "sub/b.txt")
			changeUntilCtimeMoves(t, p, ctimeOf(t, p), func() { tt.change(t, p) })
			after := scanCached(t, dir, c, later) // equals a full scan
			assertStats(t, c, files-1, 1)
			if after.Root() == before.Root() {
				t.Fatal("root unchanged")
			}
			// And the new state is remembered.
			scanCached(t, dir, c, later)
			assertStats(t, c, files, 0)
		})
	}
}

func TestStatCacheDistrustsRecentFiles(t *testing.T) {
	dir := t.TempDir()
	writeSample(t, dir) // ctimes are now
	files, _ := scan(t, dir).Totals()

	// With the real clock nothing just written is remembered.
	c := NewStatCache()
	scanCached(t, dir, c, nil)
	assertStats(t, c, 0, files)
	if c.Len() != 0 {
		t.Fatalf("cache remembered %d racy files", c.Len())
	}
	// The racy case: content rewritten with the same size and mtime right
	// after a scan, possibly within the same ctime tick. It is re-hashed.
	p := filepath.Join(dir, "sub/b.txt")
	if err := os.WriteFile(p, []byte("BRAVO"), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1_700_000_000, 123456789)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	m := scanCached(t, dir, c, nil) // equals a full scan
	assertStats(t, c, 0, files)
	if e := m.Entries[entryIndex(t, m, "sub/b.txt")]; e.Hash != hashOf(t, "BRAVO") {
		t.Fatal("stale hash")
	}

	// The boundary: times within RacyWindow of the scan start are not
	// remembered, older ones are.
	ct := time.Unix(0, ctimeOf(t, p))
	c = NewStatCache()
	scanCached(t, dir, c, func() time.Time { return ct.Add(RacyWindow) })
	if _, ok := c.entries["sub/b.txt"]; ok {
		t.Fatal("file with ctime = start - RacyWindow remembered")
	}
	scanCached(t, dir, c, func() time.Time { return ct.Add(RacyWindow + time.Nanosecond) })
	if _, ok := c.entries["sub/b.txt"]; !ok {
		t.Fatal("file with ctime < start - RacyWindow not remembered")
	}
}

// entryIndex returns the index of the entry at p.
func entryIndex(t testing.TB, m *Manifest, p string) int {
	t.Helper()
	for i := range m.Entries {
		if m.Entries[i].Path == p {
			return i
		}
	}
	t.Fatalf("no entry %q", p)
	return -1
}

func TestStatCacheDropsUnseenEntries(t *testing.T) {
	dir := t.TempDir()
	writeSample(t, dir)
	files, _ := scan(t, dir).Totals()
	c := NewStatCache()
	scanCached(t, dir, c, later)
	if err := os.Remove(filepath.Join(dir, "a.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "link")); err != nil { // pointed to a.txt
		t.Fatal(err)
	}
	scanCached(t, dir, c, later)
	assertStats(t, c, files-1, 0)
	if c.Len() != int(files-1) {
		t.Fatalf("cache holds %d files, want %d", c.Len(), files-1)
	}
	// Files a filter excludes are not remembered either.
	f, err := ParseFilter([]string{"- /sub/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ScanWith(t.Context(), dir, ScanOptions{Cache: c, Filter: f, now: later}); err != nil {
		t.Fatal(err)
	}
	for p := range c.entries {
		if strings.HasPrefix(p, "sub/") {
			t.Fatalf("excluded %s remembered", p)
		}
	}
	// A failed scan keeps what the cache knew.
	n := c.Len()
	if err := os.Mkdir(filepath.Join(dir, "bad"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "bad/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ScanWith(t.Context(), dir, ScanOptions{Cache: c, now: later}); !errors.Is(err, ErrUnsupportedFile) {
		t.Fatalf("scan: %v", err)
	}
	if c.Len() < n {
		t.Fatalf("failed scan shrank the cache from %d to %d", n, c.Len())
	}
}

func TestStatCacheOneScanAtATime(t *testing.T) {
	c := NewStatCache()
	if err := c.begin(); err != nil {
		t.Fatal(err)
	}
	if _, err := ScanWith(t.Context(), t.TempDir(), ScanOptions{Cache: c}); err == nil {
		t.Fatal("second scan with a busy cache accepted")
	}
	c.end(true)
	if _, err := ScanWith(t.Context(), t.TempDir(), ScanOptions{Cache: c}); err != nil {
		t.Fatal(err)
	}
	var nilCache *StatCache
	if h, m := nilCache.Stats(); h != 0 || m != 0 || nilCache.Len() != 0 || nilCache.Save(filepath.Join(t.TempDir(), "x")) != nil {
		t.Fatal("nil cache misbehaves")
	}
}

func TestStatCacheSaveLoad(t *testing.T) {
	dir := t.TempDir()
	writeSample(t, dir)
	files, _ := scan(t, dir).Totals()
	c := NewStatCache()
	scanCached(t, dir, c, later)

	cacheDir := t.TempDir()
	path := filepath.Join(cacheDir, "demo.statcache")
	loaded, err := LoadStatCache(path)
	if err != nil || loaded == nil || loaded.Len() != 0 {
		t.Fatalf("missing file: %v, %v", loaded, err)
	}
	for range 2 { // the second Save replaces the first
		if err := c.Save(path); err != nil {
			t.Fatal(err)
		}
	}
	names, err := os.ReadDir(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 {
		t.Fatalf("cache dir holds %v, want only the cache", names)
	}
	loaded, err = LoadStatCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded.entries, c.entries) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", loaded.entries, c.entries)
	}
	scanCached(t, dir, loaded, later)
	assertStats(t, loaded, files, 0)

	// An empty cache round-trips too.
	empty := filepath.Join(cacheDir, "empty")
	if err := NewStatCache().Save(empty); err != nil {
		t.Fatal(err)
	}
	if l, err := LoadStatCache(empty); err != nil || l.Len() != 0 {
		t.Fatalf("empty: %v, %v", l, err)
	}
	// Save into a missing directory fails cleanly.
	if err := c.Save(filepath.Join(cacheDir, "missing", "x")); err == nil {
		t.Fatal("save into a missing directory succeeded")
	}
}

// sampleEntries is a small valid cache content.
func sampleEntries(t testing.TB) map[string]statEntry {
	t.Helper()
	return map[string]statEntry{
		"a":     {key: statKey{Dev: 1, Ino: 2, Size: 5, MTime: 3, CTime: 4, Mode: 0o100644}, hash: hashOf(t, "alpha")},
		"a/b":   {key: statKey{Dev: 1, Ino: 3, Size: 0, MTime: -1, CTime: 5, Mode: 0o100755}, hash: hashOf(t, "")},
		"z z\\": {key: statKey{Dev: 9, Ino: 1 << 60, Size: ChunkThreshold + 1, MTime: 1 << 62, CTime: 1, Mode: 0o100600}, hash: hashOf(t, "z"), chunks: chunkedFile("z").Chunks},
	}
}

// encodeEntries encodes entries as Save does.
func encodeEntries(t testing.TB, entries map[string]statEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := writeStatCache(&buf, entries); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sealStatCache builds a cache file from raw record bodies with a correct
// end marker, count and checksum, to test the checks behind the checksum.
func sealStatCache(version uint32, records [][]byte, count uint64) []byte {
	var b []byte
	b = append(b, statCacheMagic...)
	b = binary.BigEndian.AppendUint32(b, version)
	for _, r := range records {
		b = binary.BigEndian.AppendUint32(b, uint32(len(r)))
		b = append(b, r...)
	}
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint64(b, count)
	sum := blake3.Sum256(b)
	return append(b, sum[:]...)
}

// rawRecord is the body of one record.
func rawRecord(t testing.TB, p string, size int64) []byte {
	t.Helper()
	return rawChunkedRecord(t, p, size, nil)
}

// rawChunkedRecord is the body of one record with chunks, which are not
// checked.
func rawChunkedRecord(t testing.TB, p string, size int64, chunks []Chunk) []byte {
	t.Helper()
	rec := appendStatRecord(nil, p, statEntry{key: statKey{Size: size}, hash: hashOf(t, p), chunks: chunks})
	return rec[4:]
}

func TestLoadStatCacheRefusesCorruptFiles(t *testing.T) {
	good := encodeEntries(t, sampleEntries(t))
	if got, err := readStatCache(bytes.NewReader(good), MaxStatCacheBytes); err != nil || !reflect.DeepEqual(got, sampleEntries(t)) {
		t.Fatalf("good file: %v, %v", got, err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	bad := map[string][]byte{
		"empty":                   {},
		"garbage":                 []byte("this is not a stat cache at all, no no no"),
		"wrong magic":             append([]byte("PDSX"), good[4:]...),
		"newer version":           sealStatCache(statCacheVersion+1, nil, 0),
		"huge record length":      append(bytes.Clone(good[:8]), 0xff, 0xff, 0xff, 0xff, 0, 0, 0),
		"record above the max":    sealStatCache(statCacheVersion, [][]byte{rawRecord(t, strings.Repeat("a", MaxStatCacheRecord), 1)}, 1),
		"record too short":        sealStatCache(statCacheVersion, [][]byte{make([]byte, statRecordFixed)}, 1),
		"bit flip in a hash":      flip(8 + 4 + 44),
		"bit flip in a size":      flip(8 + 4 + 16 + 7),
		"bit flip in the sum":     flip(len(good) - 1),
		"trailing data":           append(bytes.Clone(good), 0),
		"count mismatch":          sealStatCache(statCacheVersion, [][]byte{rawRecord(t, "a", 1)}, 2),
		"unsorted records":        sealStatCache(statCacheVersion, [][]byte{rawRecord(t, "b", 1), rawRecord(t, "a", 1)}, 2),
		"duplicate records":       sealStatCache(statCacheVersion, [][]byte{rawRecord(t, "a", 1), rawRecord(t, "a", 1)}, 2),
		"unsafe path":             sealStatCache(statCacheVersion, [][]byte{rawRecord(t, "../etc/passwd", 1)}, 1),
		"negative size":           sealStatCache(statCacheVersion, [][]byte{rawRecord(t, "a", -1)}, 1),
		"missing end and trailer": good[:len(good)-32-12],
		"big file, no chunks":     sealStatCache(statCacheVersion, [][]byte{rawRecord(t, "a", ChunkThreshold)}, 1),
		"chunks on a small file": sealStatCache(statCacheVersion, [][]byte{
			rawChunkedRecord(t, "a", 10, []Chunk{{Size: 10, Hash: hashOf(t, "c")}}),
		}, 1),
		"chunk sizes short of the size": sealStatCache(statCacheVersion, [][]byte{
			rawChunkedRecord(t, "a", ChunkThreshold+2, chunkedFile("a").Chunks),
		}, 1),
		"zero chunk size": sealStatCache(statCacheVersion, [][]byte{
			rawChunkedRecord(t, "a", ChunkThreshold+1, append(chunkedFile("a").Chunks[:4:4], Chunk{Size: 0, Hash: hashOf(t, "c")}, Chunk{Size: 1, Hash: hashOf(t, "c")})),
		}, 1),
		"chunk count beyond the record": func() []byte {
			rec := rawChunkedRecord(t, "abc", ChunkThreshold+1, chunkedFile("a").Chunks)
			binary.BigEndian.PutUint32(rec[76:], 6)
			return sealStatCache(statCacheVersion, [][]byte{rec}, 1)
		}(),
		"chunk count leaving no path": func() []byte {
			rec := rawChunkedRecord(t, "a", ChunkThreshold+1, chunkedFile("a").Chunks)
			return sealStatCache(statCacheVersion, [][]byte{rec[:len(rec)-1]}, 1)
		}(),
	}
	for i := range len(good) {
		bad[fmt.Sprintf("truncated at %d", i)] = good[:i]
	}
	for name, data := range bad {
		got, err := readStatCache(bytes.NewReader(data), MaxStatCacheBytes)
		if err == nil || got != nil || !errors.Is(err, ErrInvalidStatCache) {
			t.Errorf("%s: %v, %v", name, got, err)
		}
	}
	// The size limit.
	if _, err := readStatCache(bytes.NewReader(good), int64(len(good)-1)); !errors.Is(err, ErrInvalidStatCache) || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("over the limit: %v", err)
	}

	// Through LoadStatCache: an empty cache and an error, for content and
	// for unreadable files.
	dir := t.TempDir()
	for name, data := range map[string][]byte{"garbage": bad["garbage"], "truncated": good[:len(good)/2]} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadStatCache(p)
		if !errors.Is(err, ErrInvalidStatCache) || c == nil || c.Len() != 0 || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: %v, %v", name, c, err)
		}
	}
	c, err := LoadStatCache(dir) // a directory
	if err == nil || c == nil || c.Len() != 0 {
		t.Fatalf("directory: %v, %v", c, err)
	}
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("directory: %v", err)
	}
}

func TestLoadStatCacheDiscardsOlderVersions(t *testing.T) {
	// A version 1 file as Save wrote it before chunks: records without a
	// chunk count.
	var v1 []byte
	v1 = append(v1, statCacheMagic...)
	v1 = binary.BigEndian.AppendUint32(v1, 1)
	v1 = binary.BigEndian.AppendUint32(v1, 76+1)
	v1 = append(v1, make([]byte, 44)...)
	v1 = append(v1, blake3.New().Sum(nil)...)
	v1 = append(v1, 'a')
	v1 = binary.BigEndian.AppendUint32(v1, 0)
	v1 = binary.BigEndian.AppendUint64(v1, 1)
	sum := blake3.Sum256(v1)
	v1 = append(v1, sum[:]...)
	if _, err := readStatCache(bytes.NewReader(v1), MaxStatCacheBytes); !errors.Is(err, errStatCacheOutdated) {
		t.Fatalf("version 1: %v", err)
	}
	p := filepath.Join(t.TempDir(), "old.statcache")
	if err := os.WriteFile(p, v1, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadStatCache(p)
	if err != nil || c == nil || c.Len() != 0 {
		t.Fatalf("version 1: %v, %v; want an empty cache and no error", c, err)
	}
	// The empty cache works, and the next Save replaces the old file.
	dir := t.TempDir()
	writeSample(t, dir)
	scanCached(t, dir, c, later)
	if err := c.Save(p); err != nil {
		t.Fatal(err)
	}
	if c2, err := LoadStatCache(p); err != nil || c2.Len() != c.Len() || c2.Len() == 0 {
		t.Fatalf("after Save: %v, %v", c2, err)
	}
}

func TestStatCacheKeepsChunks(t *testing.T) {
	dir := t.TempDir()
	writeSample(t, dir)
	writeFile(t, dir, "big", pseudoRandom(t, "statcache", 5<<20))
	files, _ := scan(t, dir).Totals()

	c := NewStatCache()
	cold := scanCached(t, dir, c, later) // equals a full scan, chunks included
	assertStats(t, c, 0, files)
	big := &cold.Entries[entryIndex(t, cold, "big")]
	if len(big.Chunks) < 2 {
		t.Fatalf("big has %d chunks", len(big.Chunks))
	}
	// The manifest's chunks are its own: changing them leaves the cache
	// alone.
	big.Chunks[0].Hash = strings.Repeat("00", 32)

	warm := scanCached(t, dir, c, later)
	assertStats(t, c, files, 0) // big was not read
	if got := warm.Entries[entryIndex(t, warm, "big")].Chunks; got[0].Hash == big.Chunks[0].Hash {
		t.Fatal("the cache shares its chunks with a manifest")
	}

	// Through a file: the chunks survive Save and LoadStatCache.
	p := filepath.Join(t.TempDir(), "statcache")
	if err := c.Save(p); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadStatCache(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded.entries, c.entries) {
		t.Fatal("chunks changed through Save and LoadStatCache")
	}
	scanCached(t, dir, loaded, later)
	assertStats(t, loaded, files, 0)

	// Entries whose chunks break the rules are not saved.
	broken := map[string]statEntry{
		"large without chunks": {key: statKey{Size: ChunkThreshold}, hash: hashOf(t, "x")},
		"small with chunks":    {key: statKey{Size: 1}, hash: hashOf(t, "x"), chunks: []Chunk{{Size: 1, Hash: hashOf(t, "x")}}},
		"bad chunk hash":       {key: statKey{Size: ChunkThreshold + 1}, hash: hashOf(t, "x"), chunks: append(chunkedFile("a").Chunks[:4:4], Chunk{Size: 1, Hash: "x"})},
		"ok":                   {key: statKey{Size: ChunkThreshold + 1}, hash: hashOf(t, "x"), chunks: chunkedFile("a").Chunks},
	}
	got, err := readStatCache(bytes.NewReader(encodeEntries(t, broken)), MaxStatCacheBytes)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got["ok"], broken["ok"]) {
		t.Fatalf("saved %v, %v; want only the valid entry", got, err)
	}
}

func FuzzLoadStatCache(f *testing.F) {
	good := encodeEntries(f, sampleEntries(f))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(encodeEntries(f, nil))
	f.Add(sealStatCache(statCacheVersion, [][]byte{rawRecord(f, "a", 1)}, 1))
	f.Add(sealStatCache(statCacheVersion, [][]byte{rawChunkedRecord(f, "a", ChunkThreshold+1, chunkedFile("a").Chunks)}, 1))
	f.Add(sealStatCache(1, [][]byte{rawRecord(f, "a", 1)[:77]}, 1))
	f.Add([]byte("PDSC\x00\x00\x00\x02\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readStatCache(bytes.NewReader(data), 1<<20)
		if err != nil {
			if got != nil {
				t.Fatalf("entries with an error: %v", err)
			}
			return
		}
		for p, e := range got {
			if ValidatePath(p) != nil || !IsHash(e.hash) || e.key.Size < 0 || checkStatChunks(e) != nil {
				t.Fatalf("bad entry %q %+v accepted", p, e)
			}
		}
		back, err := readStatCache(bytes.NewReader(encodeEntries(t, got)), 1<<20)
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// writeBenchTree writes files files of about 8 KiB in 50 directories.
func writeBenchTree(b *testing.B, files int) string {
	b.Helper()
	dir := b.TempDir()
	content := bytes.Repeat([]byte("pulpdist "), 900)
	for i := range files {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%50))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		c := append(fmt.Appendf(nil, "%d", i), content...)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d", i)), c, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

const benchFiles = 5000

// BenchmarkScanCold scans a 5k-file tree with an empty stat cache: every
// file is hashed.
func BenchmarkScanCold(b *testing.B) {
	dir := writeBenchTree(b, benchFiles)
	for b.Loop() {
		c := NewStatCache()
		if _, err := ScanWith(b.Context(), dir, ScanOptions{Cache: c, now: later}); err != nil {
			b.Fatal(err)
		}
		if _, misses := c.Stats(); misses != benchFiles {
			b.Fatalf("%d misses", misses)
		}
	}
	b.ReportMetric(float64(benchFiles*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkScanWarm re-scans the same unchanged tree with a filled stat
// cache: no file is read.
func BenchmarkScanWarm(b *testing.B) {
	dir := writeBenchTree(b, benchFiles)
	c := NewStatCache()
	if _, err := ScanWith(b.Context(), dir, ScanOptions{Cache: c, now: later}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ScanWith(b.Context(), dir, ScanOptions{Cache: c, now: later}); err != nil {
			b.Fatal(err)
		}
		if hits, misses := c.Stats(); hits != benchFiles || misses != 0 {
			b.Fatalf("%d hits, %d misses", hits, misses)
		}
	}
	b.ReportMetric(float64(benchFiles*b.N)/b.Elapsed().Seconds(), "files/s")
}
