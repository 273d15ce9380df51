package bench

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
)

// codeTemplates returns the byte patterns machine code is made of here:
// 256 "instructions" of 1 to 7 bytes, shared by every binary of a corpus,
// as real binaries share an instruction set.
func codeTemplates(seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 0xc0de))
	out := make([][]byte, 256)
	for i := range out {
		out[i] = make([]byte, 1+r.IntN(7))
		for j := range out[i] {
			out[i][j] = byte(r.Uint32())
		}
	}
	return out
}

// codeBytes returns n bytes of machine-code-like data: instructions drawn
// with a skewed distribution, a third with a 4-byte operand (small
// constants or addresses).
func (g *generator) codeBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, 0, n+16)
	for len(b) < n {
		b = append(b, g.code[int(r.ExpFloat64()*24)%len(g.code)]...)
		switch r.IntN(6) {
		case 0:
			b = binary.LittleEndian.AppendUint32(b, uint32(r.IntN(256)))
		case 1:
			b = binary.LittleEndian.AppendUint32(b, 0x400000+uint32(r.IntN(1<<22))&^3)
		}
	}
	return b[:n]
}

// randomBytes returns n bytes no compressor can shrink (embedded
// compressed assets, keys).
func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, (n+7)&^7)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// binary returns an executable-like file of size bytes: a header, 60%
// code, 20% NUL-terminated strings, 10% address tables, 10% random bytes.
func (g *generator) binary(r *rand.Rand, t *text, size int) []byte {
	var b bytes.Buffer
	b.WriteString("\x7fELF\x02\x01\x01")
	b.Write(make([]byte, 4*kib-b.Len()))
	b.Write(g.codeBytes(r, size*6/10))
	for strEnd := b.Len() + size/5; b.Len() < strEnd; {
		fmt.Fprintf(&b, "%s.%s: %s\x00", t.ident(), t.ident(), t.phrase(1+r.IntN(5)))
	}
	addr := uint64(0x400000)
	for tabEnd := b.Len() + size/10; b.Len() < tabEnd; {
		addr += uint64(8 + r.IntN(64))
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], addr)
		b.Write(w[:])
	}
	if rest := size - b.Len(); rest > 0 {
		b.Write(randomBytes(r, rest))
	}
	return b.Bytes()[:size]
}

// rebuildEdits are the changes a rebuild makes to a binary of size bytes:
// code inserted early and removed later (shifting the sections between
// and after), a string changed in length, and 4-byte operands changed
// every 16 KiB or so.
func (g *generator) rebuildEdits(r *rand.Rand, t *text, size int64) []edit {
	edits := scatteredEdits(r, size, max(4, int(size/(16*kib))), 4)
	i := r.IntN(len(edits))
	if e := edits[i]; e.off+1024 < size {
		edits[i] = edit{off: e.off, del: 1 + int64(r.IntN(1024)), ins: []byte(t.phrase(3))}
	}
	for range 2 {
		edits = append(edits, edit{off: edits[r.IntN(len(edits))].off, ins: g.codeBytes(r, 256+r.IntN(16*kib))})
	}
	if size > 16*kib {
		edits = append(edits, edit{off: r.Int64N(size - 8*kib), del: int64(r.IntN(8 * kib))})
	}
	return sortEdits(edits)
}

// imageBlock returns n bytes of a disk image: text, code, random bytes or
// zeros in equal shares.
func (g *generator) imageBlock(r *rand.Rand, t *text, n int) []byte {
	switch r.IntN(4) {
	case 0:
		var b []byte
		for len(b) < n {
			b = append(b, t.statement("")...)
		}
		return b[:n]
	case 1:
		return g.codeBytes(r, n)
	case 2:
		return randomBytes(r, n)
	default:
		return make([]byte, n)
	}
}

// edit replaces del bytes at offset off of the old content with ins: an
// overwrite (del == len(ins)), an insertion (del 0) or a removal (no ins).
type edit struct {
	off, del int64
	ins      []byte
}

// scatteredEdits returns n overwrites of 1 … maxLen random bytes at random
// offsets of content of size bytes, sorted and not overlapping.
func scatteredEdits(r *rand.Rand, size int64, n, maxLen int) []edit {
	edits := make([]edit, 0, n)
	for range n {
		l := int64(1 + r.IntN(maxLen))
		if size <= l+1 {
			continue
		}
		edits = append(edits, edit{off: 1 + r.Int64N(size-l-1), del: l, ins: randomBytes(r, int(l))})
	}
	return sortEdits(edits)
}

// sortEdits sorts edits by offset, an insertion before an overwrite or a
// removal at the same offset, and drops those that start inside an
// earlier one.
func sortEdits(edits []edit) []edit {
	slices.SortStableFunc(edits, func(x, y edit) int {
		return cmp.Or(cmp.Compare(x.off, y.off), cmp.Compare(x.del, y.del))
	})
	out := edits[:0]
	end := int64(-1)
	for _, e := range edits {
		if e.off < end || e.off < 0 {
			continue
		}
		out = append(out, e)
		end = e.off + e.del
	}
	return out
}

// applyEdits copies src to dst with edits (sorted by offset, not
// overlapping) applied.
func applyEdits(dst io.Writer, src io.Reader, edits []edit) error {
	pos := int64(0)
	for _, e := range edits {
		if _, err := io.CopyN(dst, src, e.off-pos); err != nil {
			return fmt.Errorf("apply edit at %d: %w", e.off, err)
		}
		if _, err := io.CopyN(io.Discard, src, e.del); err != nil {
			return fmt.Errorf("apply edit at %d: %w", e.off, err)
		}
		if _, err := dst.Write(e.ins); err != nil {
			return err
		}
		pos = e.off + e.del
	}
	_, err := io.Copy(dst, src)
	return err
}

// applyEditsBytes returns data with edits applied.
func applyEditsBytes(data []byte, edits []edit) ([]byte, error) {
	var b bytes.Buffer
	err := applyEdits(&b, bytes.NewReader(data), edits)
	return b.Bytes(), err
}
