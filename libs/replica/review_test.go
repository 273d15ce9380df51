package replica

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/pack/packtest"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// TestApplyRefusesSizesThatHideCopies applies a hostile pack that lists a
// 1 MiB base file's content under 50 new paths, each declared empty: the
// declared target is far below MaxTotal, the copies far above. Apply must
// refuse it before it copies anything, not after writing 50 MiB and
// scanning them.
func TestApplyRefusesSizesThatHideCopies(t *testing.T) {
	ctx := t.Context()
	src := filepath.Join(t.TempDir(), "src")
	writeFiles(t, src, map[string][]byte{"big": randomBytes(5, 1<<20)})
	full, base := packBytes(t, src, nil)
	r, err := Open(t.TempDir(), 1)
	mustDo(t, err)
	_, err = r.Apply(ctx, reader(t, full))
	mustDo(t, err)

	big := base.Entries[0]
	h := pack.Header{Format: pack.FormatVersion, Tree: "demo", From: base.Root(), Remove: []string{}}
	for i := range 50 {
		e := big
		e.Path, e.Size, e.MTime, e.Chunks = fmt.Sprintf("copy%02d", i), 0, big.MTime+1, nil
		h.Set = append(h.Set, e)
	}
	target := &tree.Manifest{Format: tree.FormatVersion, Entries: append(slices.Clone(base.Entries), h.Set...)}
	slices.SortFunc(target.Entries, func(a, b tree.Entry) int { return strings.Compare(a.Path, b.Path) })
	h.To = target.Root()
	pr, err := pack.NewReader(bytes.NewReader(packtest.Raw(t, h, nil)), pack.Limits{MaxTotal: 4 << 20})
	mustDo(t, err)
	defer pr.Close()

	var copies atomic.Int64
	r.SetStepHook(func(step string) {
		if strings.HasPrefix(step, "copy ") {
			copies.Add(1)
		}
	})
	before := snapshot(t, r)
	_, err = r.Apply(ctx, pr)
	r.SetStepHook(nil)
	if !errors.Is(err, pack.ErrFormat) {
		t.Fatalf("Apply: %v, want pack.ErrFormat", err)
	}
	if n := copies.Load(); n > 0 {
		t.Fatalf("Apply copied %d MiB of base content before refusing the pack", n)
	}
	if after := snapshot(t, r); after != before {
		t.Fatalf("refused apply changed the replica:\n%s\n%s", before, after)
	}
	assertStagingEmpty(t, r)
}
