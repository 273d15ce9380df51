package tree

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	chunkers "github.com/PlakarKorp/go-cdc-chunkers"
	_ "github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc" // registers ChunkAlgorithm
	"github.com/zeebo/blake3"
)

// The content-defined chunking of large files (docs/manifest-format.md,
// docs/adr/0002-content-defined-chunks.md). The algorithm and the three
// sizes are part of the manifest format: other values give other
// boundaries, and Validate refuses chunk sizes outside them.
const (
	// ChunkAlgorithm names the chunker: FastCDC with normalized chunking
	// (level 2) and the Gear table of github.com/PlakarKorp/go-cdc-chunkers,
	// under the name that library registers it with. The library pins the
	// boundaries of each versioned name with test vectors.
	ChunkAlgorithm = "fastcdc-v1.0.0"
	// ChunkThreshold is the smallest file size, in bytes, that Scan splits
	// into chunks; smaller files have none.
	ChunkThreshold = 4 << 20
	// ChunkMinSize is the smallest chunk, in bytes, except the last of a
	// file.
	ChunkMinSize = 64 << 10
	// ChunkAvgSize is the size the chunker aims for, in bytes (FastCDC's
	// normal size).
	ChunkAvgSize = 256 << 10
	// ChunkMaxSize is the largest chunk, in bytes.
	ChunkMaxSize = 1 << 20
)

// Chunk is one content-defined piece of a file: chunks follow each other
// without gap or overlap, so a chunk's offset is the sum of the sizes
// before it.
type Chunk struct {
	// Size is the chunk's length in bytes, > 0.
	Size int64 `json:"size"`
	// Hash is the lowercase hex BLAKE3-256 of the chunk's bytes.
	Hash string `json:"hash"`
}

// ChunkOffsets returns the offset in the file of each of e's chunks.
func (e *Entry) ChunkOffsets() []int64 {
	if len(e.Chunks) == 0 {
		return nil
	}
	offs := make([]int64, len(e.Chunks))
	var off int64
	for i, c := range e.Chunks {
		offs[i] = off
		off += c.Size
	}
	return offs
}

// HashChunks reads r to its end and returns, from that one pass, the hex
// BLAKE3-256 of everything read, how many bytes that was, and its
// content-defined chunks (ChunkAlgorithm with ChunkMinSize, ChunkAvgSize
// and ChunkMaxSize). The chunks depend only on the bytes, never on how r
// splits its reads. It chunks whatever it is given; Scan records chunks
// only for files of at least ChunkThreshold bytes.
func HashChunks(r io.Reader) (hash string, n int64, chunks []Chunk, err error) {
	return hashChunksWith(r, make([]byte, 2*ChunkMaxSize), 0)
}

// hashChunksWith is HashChunks with a caller-provided scan buffer of at
// least ChunkMaxSize bytes (twice that saves copies) and the expected size,
// used only to size the chunk list.
func hashChunksWith(r io.Reader, buf []byte, size int64) (string, int64, []Chunk, error) {
	opts := &chunkers.ChunkerOpts{MinSize: ChunkMinSize, NormalSize: ChunkAvgSize, MaxSize: ChunkMaxSize}
	c, err := chunkers.NewChunkerBuffer(ChunkAlgorithm, r, opts, buf)
	if err != nil {
		return "", 0, nil, fmt.Errorf("chunk: %w", err)
	}
	file := blake3.New()
	chunks := make([]Chunk, 0, size/ChunkAvgSize+1)
	var n int64
	for {
		data, err := c.Next()
		if err != nil && !errors.Is(err, io.EOF) {
			return "", n, nil, fmt.Errorf("hash: %w", err)
		}
		if len(data) > 0 {
			_, _ = file.Write(data) // a hash never fails
			sum := blake3.Sum256(data)
			chunks = append(chunks, Chunk{Size: int64(len(data)), Hash: hex.EncodeToString(sum[:])})
			n += int64(len(data))
		}
		if err != nil { // io.EOF
			break
		}
	}
	if len(chunks) == 0 {
		chunks = nil
	}
	return hex.EncodeToString(file.Sum(nil)), n, chunks, nil
}

// checkChunk checks the rules one chunk obeys on its own: a size in
// 1..ChunkMaxSize and a well-formed hash.
func checkChunk(i int, c Chunk) error {
	if c.Size <= 0 || c.Size > ChunkMaxSize {
		return fmt.Errorf("chunk %d: size %d outside 1..%d", i, c.Size, ChunkMaxSize)
	}
	if !IsHash(c.Hash) {
		return fmt.Errorf("chunk %d: hash %q is not 64 lowercase hex characters", i, c.Hash)
	}
	return nil
}

// validateChunks checks the chunk list of a file of size bytes: none below
// ChunkThreshold; otherwise, if there are any, each valid (checkChunk),
// every chunk but the last at least ChunkMinSize, and the sizes summing to
// size. An empty list is valid: chunks are optional.
func validateChunks(size int64, chunks []Chunk) error {
	if len(chunks) == 0 {
		return nil
	}
	if size < ChunkThreshold {
		return fmt.Errorf("a file of %d bytes, below the chunk threshold %d, has no chunks", size, ChunkThreshold)
	}
	// Every chunk but the last has at least ChunkMinSize bytes.
	if limit := size/ChunkMinSize + 1; int64(len(chunks)) > limit {
		return fmt.Errorf("%d chunks for %d bytes, more than %d", len(chunks), size, limit)
	}
	var sum int64
	for i, c := range chunks {
		if err := checkChunk(i, c); err != nil {
			return err
		}
		if i < len(chunks)-1 && c.Size < ChunkMinSize {
			return fmt.Errorf("chunk %d: size %d below the minimum %d (only the last chunk may be smaller)", i, c.Size, ChunkMinSize)
		}
		if c.Size > size-sum {
			return fmt.Errorf("chunk sizes add up to more than the file size %d", size)
		}
		sum += c.Size
	}
	if sum != size {
		return fmt.Errorf("chunk sizes add up to %d, not the file size %d", sum, size)
	}
	return nil
}
