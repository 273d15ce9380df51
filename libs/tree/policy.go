package tree

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Protector decides which paths of a tree no sync deletes: those a
// protected pattern matches, and everything below a directory one
// matches. Patterns are written as in a filter rule (docs/filters.md),
// without the sign. A nil Protector protects nothing.
type Protector struct {
	f *Filter
}

// NewProtector compiles protected path patterns; none gives nil.
func NewProtector(patterns []string) (*Protector, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	rules := make([]string, len(patterns))
	for i, p := range patterns {
		if p == "" {
			return nil, fmt.Errorf("protected path %d: empty pattern", i)
		}
		rules[i] = "- " + p
	}
	f, err := ParseFilter(rules)
	if err != nil {
		return nil, fmt.Errorf("protected paths: %w", err)
	}
	return &Protector{f: f}, nil
}

// Protected reports whether the entry at p (a directory when dir is set)
// is protected: a pattern matches it or one of its parent directories.
func (p *Protector) Protected(rel string, dir bool) bool {
	if p == nil {
		return false
	}
	if !p.f.Includes(rel, dir) {
		return true
	}
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if !p.f.Includes(d, true) {
			return true
		}
	}
	return false
}

// Deleted lists, in order, the paths of prev that next does not hold.
// Both must be valid manifests (sorted by path).
func Deleted(prev, next *Manifest) []string {
	var out []string
	j := 0
	for i := range prev.Entries {
		p := prev.Entries[i].Path
		for j < len(next.Entries) && next.Entries[j].Path < p {
			j++
		}
		if j < len(next.Entries) && next.Entries[j].Path == p {
			continue
		}
		out = append(out, p)
	}
	return out
}

// KeepProtected returns next with the protected entries of prev that
// next lacks put back, with the parent directories they need, and the
// paths put back. An entry is not put back when next holds something
// other than a directory at one of its parents (the source replaced that
// directory: the new content wins). A protected hard link comes back as a
// file with its leader's content, since its leader may be gone. next is
// not modified; without anything to put back it is returned as is.
func KeepProtected(prev, next *Manifest, p *Protector) (*Manifest, []string, error) {
	if p == nil || prev == nil {
		return next, nil, nil
	}
	kinds := make(map[string]Kind, len(next.Entries))
	for i := range next.Entries {
		kinds[next.Entries[i].Path] = next.Entries[i].Kind
	}
	byPath := make(map[string]*Entry, len(prev.Entries))
	for i := range prev.Entries {
		byPath[prev.Entries[i].Path] = &prev.Entries[i]
	}
	var add []Entry
	var kept []string
	for i := range prev.Entries {
		e := prev.Entries[i]
		if _, ok := kinds[e.Path]; ok || !p.Protected(e.Path, e.Kind == KindDir) {
			continue
		}
		parents, ok := missingParents(e.Path, kinds, byPath)
		if !ok {
			continue
		}
		if e.Kind == KindHardlink {
			leader, ok := byPath[e.Target]
			if !ok {
				return nil, nil, fmt.Errorf("%w: hardlink %q: no leader %q", ErrInvalidManifest, e.Path, e.Target)
			}
			f := *leader
			f.Path = e.Path
			e = f
		}
		for _, d := range parents {
			kinds[d.Path] = KindDir
			add = append(add, d)
		}
		kinds[e.Path] = e.Kind
		add = append(add, e)
		kept = append(kept, e.Path)
	}
	if len(add) == 0 {
		return next, nil, nil
	}
	out := &Manifest{Format: next.Format, Entries: append(slices.Clone(next.Entries), add...)}
	slices.SortFunc(out.Entries, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	if err := out.Validate(); err != nil {
		return nil, nil, fmt.Errorf("keep protected paths: %w", err)
	}
	return out, kept, nil
}

// missingParents lists the parent directories of rel that kinds lacks,
// outermost first, taken from prev (byPath); false when one of them is
// something other than a directory in kinds.
func missingParents(rel string, kinds map[string]Kind, byPath map[string]*Entry) ([]Entry, bool) {
	var out []Entry
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		k, ok := kinds[d]
		if ok {
			if k != KindDir {
				return nil, false
			}
			break // its own parents are there: next is valid
		}
		pe, ok := byPath[d]
		if !ok || pe.Kind != KindDir {
			return nil, false
		}
		out = append(out, *pe)
	}
	slices.Reverse(out)
	return out, true
}
