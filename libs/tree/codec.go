package tree

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/zeebo/blake3"
)

// MaxManifestBytes is the largest JSON manifest Decode accepts.
const MaxManifestBytes = 1 << 30

// Encode writes m to w as JSON (docs/manifest-format.md). It does not
// validate m; call Validate first when m comes from outside.
func Encode(w io.Writer, m *Manifest) error {
	out := *m
	if out.Entries == nil {
		out.Entries = []Entry{} // "entries": [] rather than null
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := json.NewEncoder(bw).Encode(&out); err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	return nil
}

// errTooLarge is returned by limitReader once more than its limit was read.
var errTooLarge = errors.New("input too large")

// limitReader reads from r and fails with errTooLarge once more than n
// bytes have been read, unlike io.LimitReader which ends silently. err is
// the first failure of r itself (not its end).
type limitReader struct {
	r   io.Reader
	n   int64
	err error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && l.err == nil {
		l.err = err
	}
	l.n -= int64(n)
	if l.n < 0 {
		return n, errTooLarge
	}
	return n, err
}

// Decode reads a JSON manifest from r, refusing more than MaxManifestBytes,
// unknown fields, repeated manifest fields and trailing data, and validates
// it. Entries are decoded and checked one at a time, and a chunk list one
// chunk at a time, so that memory stays a small multiple of the input's
// size whatever it holds: a hostile manifest is refused at its first bad
// entry or chunk. Errors wrap ErrInvalidManifest, but for a failure to
// read r (a lost connection, a disk error), which says nothing of the
// manifest and is returned as such.
func Decode(r io.Reader) (*Manifest, error) {
	return decode(r, MaxManifestBytes)
}

// decode is Decode with the size limit as a parameter, for tests.
func decode(r io.Reader, limit int64) (*Manifest, error) {
	lr := &limitReader{r: r, n: limit}
	dec := json.NewDecoder(bufio.NewReaderSize(lr, 64<<10))
	dec.DisallowUnknownFields()
	m, err := decodeManifest(dec)
	if err != nil {
		switch {
		case lr.err != nil:
			return nil, fmt.Errorf("decode: read: %w", lr.err)
		case errors.Is(err, errTooLarge):
			return nil, fmt.Errorf("%w: decode: larger than %d bytes", ErrInvalidManifest, limit)
		case errors.Is(err, ErrInvalidManifest):
			return nil, err
		default:
			return nil, fmt.Errorf("%w: decode: %w", ErrInvalidManifest, err)
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if lr.err != nil {
			return nil, fmt.Errorf("decode: read: %w", lr.err)
		}
		if err == nil || errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("%w: decode: trailing data after the manifest", ErrInvalidManifest)
		}
		return nil, fmt.Errorf("%w: decode: after the manifest: %w", ErrInvalidManifest, err)
	}
	if err := checkFormat(m.Format); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeManifest reads the manifest object token by token; each entry is
// checked as soon as it is read (entryChecker). Keys are matched exactly.
func decodeManifest(dec *json.Decoder) (*Manifest, error) {
	if err := expectDelim(dec, '{', "a manifest"); err != nil {
		return nil, err
	}
	m := &Manifest{Entries: []Entry{}}
	seen := make(map[string]bool, 2)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string) // object keys are strings
		if seen[key] {
			return nil, fmt.Errorf("repeated field %q", key)
		}
		seen[key] = true
		switch key {
		case "format":
			if err := dec.Decode(&m.Format); err != nil {
				return nil, fmt.Errorf("format: %w", err)
			}
		case "entries":
			if err := decodeEntries(dec, m); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown field %q", key)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	return m, nil
}

// decodeEntries reads the entries array (or null) into m, checking each.
func decodeEntries(dec *json.Decoder, m *Manifest) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // "entries": null is an empty tree
		return nil
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("entries: %v is not an array", tok)
	}
	var c entryChecker
	for dec.More() {
		var w wireEntry
		if err := dec.Decode(&w); err != nil {
			return fmt.Errorf("entry %d: %w", len(m.Entries), err)
		}
		e := w.entry()
		if err := c.check(&e, m.Entries); err != nil {
			return err
		}
		m.Entries = append(m.Entries, e)
	}
	_, err = dec.Token() // the closing ']'
	return err
}

// expectDelim reads the next token and checks that it is delim.
func expectDelim(dec *json.Decoder, delim json.Delim, what string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != delim {
		return fmt.Errorf("%s is not a JSON %s but %v", what, delimName(delim), tok)
	}
	return nil
}

// delimName names the JSON value an opening delimiter starts.
func delimName(d json.Delim) string {
	if d == '[' {
		return "array"
	}
	return "object"
}

// wireEntry is Entry as Decode reads it: the same fields under the same
// JSON names (TestWireEntryMatchesEntry), but with a chunk list that is
// checked chunk by chunk while it is decoded.
type wireEntry struct {
	Path   string    `json:"path"`
	Kind   Kind      `json:"kind"`
	Mode   uint32    `json:"mode"`
	Size   int64     `json:"size"`
	MTime  int64     `json:"mtime"`
	Hash   string    `json:"hash"`
	Target string    `json:"target"`
	Chunks chunkList `json:"chunks"`
}

// entry converts w; an empty chunk list becomes nil, as Encode omits it.
func (w *wireEntry) entry() Entry {
	e := Entry{Path: w.Path, Kind: w.Kind, Mode: w.Mode, Size: w.Size, MTime: w.MTime, Hash: w.Hash, Target: w.Target}
	if len(w.Chunks) > 0 {
		e.Chunks = w.Chunks
	}
	return e
}

// chunkList decodes a JSON array of chunks one element at a time and
// refuses it at the first chunk that breaks checkChunk, so that a list of
// empty objects cannot fill memory: every accepted chunk took at least 84
// bytes of input.
type chunkList []Chunk

// UnmarshalJSON implements json.Unmarshaler.
func (l *chunkList) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("chunks: %w", err)
	}
	if tok == nil { // null
		*l = nil
		return nil
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("chunks: %v is not an array", tok)
	}
	var out []Chunk
	for i := 0; dec.More(); i++ {
		var c Chunk
		if err := dec.Decode(&c); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		if err := checkChunk(i, c); err != nil {
			return err
		}
		out = append(out, c)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return fmt.Errorf("chunks: %w", err)
	}
	*l = out
	return nil
}

// HashReader reads r to its end and returns the hex BLAKE3-256 of what it
// read and how many bytes that was.
func HashReader(r io.Reader) (hash string, n int64, err error) {
	return hashWith(r, make([]byte, 128<<10))
}

// hashWith is HashReader with a caller-provided copy buffer.
func hashWith(r io.Reader, buf []byte) (string, int64, error) {
	h := blake3.New()
	// Hide any WriterTo of r (os.File has one) so that buf is used: BLAKE3
	// is faster on large writes than on io.Copy's default 32 KiB.
	n, err := io.CopyBuffer(h, struct{ io.Reader }{r}, buf)
	if err != nil {
		return "", n, fmt.Errorf("hash: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
