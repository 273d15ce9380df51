package tree

import (
	"encoding/binary"
	"encoding/hex"
	"io"

	"github.com/zeebo/blake3"
)

// rootMagic starts the canonical encoding hashed by Root, so that a root
// can never be confused with the hash of some other pulpdist encoding.
const rootMagic = "PDTR"

// Root returns the hex BLAKE3-256 of the canonical binary encoding of the
// manifest (docs/manifest-format.md): the magic "PDTR", the format version,
// the entry count, then every field of every entry in a fixed order, strings
// length-prefixed, integers big-endian. Every byte of every field counts, so
// any change of content hash, name, mode, mtime, kind or link target gives a
// different root; JSON spelling (field order, whitespace) does not matter.
// Chunks are left out: they are a function of the content, which the hash
// already covers, so a manifest with or without them names the same tree.
func (m *Manifest) Root() string {
	h := blake3.New()
	writeRootEncoding(h, m)
	return hex.EncodeToString(h.Sum(nil))
}

// writeRootEncoding writes the canonical encoding of m to w, which must not
// fail (a hash or a bytes.Buffer).
func writeRootEncoding(w io.Writer, m *Manifest) {
	var buf []byte
	buf = append(buf, rootMagic...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(m.Format))
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		buf = appendString(buf, string(e.Kind))
		buf = appendString(buf, e.Path)
		buf = binary.BigEndian.AppendUint32(buf, e.Mode)
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.Size))
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.MTime))
		buf = appendString(buf, e.Hash)
		buf = appendString(buf, e.Target)
		if len(buf) >= 64<<10 {
			_, _ = w.Write(buf) // cannot fail: w is a hash or a bytes.Buffer
			buf = buf[:0]
		}
	}
	_, _ = w.Write(buf) // cannot fail: w is a hash or a bytes.Buffer
}

// appendString appends s with its length as a big-endian uint64 before it.
func appendString(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(s)))
	return append(buf, s...)
}
