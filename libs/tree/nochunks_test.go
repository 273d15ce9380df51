package tree

import (
	"context"
	"math/rand/v2"
	"testing"
)

func TestScanNoChunks(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, ChunkThreshold+12345)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	writeFile(t, dir, "big", big)
	writeFile(t, dir, "small", []byte("small"))
	ctx := context.Background()
	full, err := Scan(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Entries[0].Chunks) == 0 {
		t.Fatal("a full scan of a large file has no chunks")
	}
	c := NewStatCache()
	lean, err := ScanWith(ctx, dir, ScanOptions{NoChunks: true, Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	if lean.Root() != full.Root() {
		t.Fatalf("root without chunks %s, with %s", lean.Root(), full.Root())
	}
	if len(lean.Entries[0].Chunks) != 0 {
		t.Fatal("NoChunks scan recorded chunks")
	}
	// The cache did not learn the large file without its chunks: a scan
	// that wants them reads it again and gets them.
	again, err := ScanWith(ctx, dir, ScanOptions{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Entries[0].Chunks) != len(full.Entries[0].Chunks) {
		t.Fatalf("chunks after a NoChunks scan filled the cache: %d, want %d", len(again.Entries[0].Chunks), len(full.Entries[0].Chunks))
	}
}
