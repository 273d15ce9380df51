package tree

import (
	"bufio"
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
// bytes have been read, unlike io.LimitReader which ends silently.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errTooLarge
	}
	return n, err
}

// Decode reads a JSON manifest from r, refusing more than MaxManifestBytes,
// unknown fields and trailing data, then validates it. Errors wrap
// ErrInvalidManifest.
func Decode(r io.Reader) (*Manifest, error) {
	return decode(r, MaxManifestBytes)
}

// decode is Decode with the size limit as a parameter, for tests.
func decode(r io.Reader, limit int64) (*Manifest, error) {
	lr := &limitReader{r: r, n: limit}
	dec := json.NewDecoder(bufio.NewReaderSize(lr, 64<<10))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("%w: decode: larger than %d bytes", ErrInvalidManifest, limit)
		}
		return nil, fmt.Errorf("%w: decode: %w", ErrInvalidManifest, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil || errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("%w: decode: trailing data after the manifest", ErrInvalidManifest)
		}
		return nil, fmt.Errorf("%w: decode: after the manifest: %w", ErrInvalidManifest, err)
	}
	if m.Entries == nil {
		m.Entries = []Entry{}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
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
