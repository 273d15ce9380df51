// Package packtest takes packs apart and puts them together without the
// checks of package pack, so that tests of code reading packs can feed it
// hostile or damaged ones.
package packtest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/pulpdist/pulpdist/libs/pack"
)

// preamble is the magic, the format byte and the header length.
const preamble = len(pack.Magic) + 1 + 8

// Raw assembles an unsigned pack from a header and a body (the segments'
// chunked frames), checking nothing.
func Raw(t testing.TB, h pack.Header, body []byte) []byte {
	t.Helper()
	js, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	return RawJSON(t, js, body)
}

// RawJSON is Raw with the header's JSON given verbatim.
func RawJSON(t testing.TB, js []byte, body []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	hdr := enc.EncodeAll(js, nil)
	_ = enc.Close() // EncodeAll leaves nothing to flush
	out := make([]byte, 0, preamble+len(hdr)+len(body))
	out = append(out, pack.Magic...)
	out = append(out, pack.FormatVersion)
	out = binary.BigEndian.AppendUint64(out, uint64(len(hdr)))
	out = append(out, hdr...)
	return append(out, body...)
}

// Split returns the header of an unsigned pack, decoded without
// validation, and its body.
func Split(t testing.TB, data []byte) (pack.Header, []byte) {
	t.Helper()
	if len(data) < preamble || string(data[:len(pack.Magic)]) != pack.Magic {
		t.Fatalf("packtest.Split: not an unsigned pack")
	}
	n := binary.BigEndian.Uint64(data[len(pack.Magic)+1:])
	if uint64(len(data)-preamble) < n {
		t.Fatalf("packtest.Split: truncated header")
	}
	dec, err := zstd.NewReader(bytes.NewReader(data[preamble:preamble+int(n)]), zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	js, err := io.ReadAll(dec)
	if err != nil {
		t.Fatal(err)
	}
	var h pack.Header
	if err := json.Unmarshal(js, &h); err != nil {
		t.Fatal(err)
	}
	return h, data[preamble+int(n):]
}
