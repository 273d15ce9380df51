package tree

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Validate checks every format rule: the format version, entries sorted by
// path and unique, safe paths, known kinds, mode within 0..0o777, the fields
// each kind may carry (a 64-character lowercase hex hash and a non-negative
// size for files, a non-empty target without NUL for symlinks, chunks only
// on files of at least ChunkThreshold bytes, summing to the size), a
// directory entry for the parent of every nested entry, and for every
// hardlink a target that is the path of a file entry before it (its
// group's leader, the smallest path of the group). The error wraps
// ErrInvalidManifest and names the offending entry.
func (m *Manifest) Validate() error {
	if m == nil {
		return fmt.Errorf("%w: nil manifest", ErrInvalidManifest)
	}
	if err := checkFormat(m.Format); err != nil {
		return err
	}
	var c entryChecker
	for i := range m.Entries {
		if err := c.check(&m.Entries[i], m.Entries[:i]); err != nil {
			return err
		}
	}
	return nil
}

// checkFormat checks the manifest format version.
func checkFormat(format int) error {
	if format != FormatVersion {
		return fmt.Errorf("%w: format %d, want %d", ErrInvalidManifest, format, FormatVersion)
	}
	return nil
}

// entryChecker checks the entries of a manifest one at a time, in order,
// so that Decode can refuse a bad entry as soon as it is read.
type entryChecker struct {
	n    int                 // entries checked so far
	prev string              // path of the previous entry
	dirs map[string]struct{} // paths of the dir entries so far
}

// check checks e, the next entry, against the format rules and the
// entries before it, which are prior (sorted and checked: a hardlink's
// leader is looked up there). The error wraps ErrInvalidManifest.
func (c *entryChecker) check(e *Entry, prior []Entry) error {
	i := c.n
	c.n++
	if err := ValidatePath(e.Path); err != nil {
		return fmt.Errorf("%w: entry %d: %w", ErrInvalidManifest, i, err)
	}
	if i > 0 {
		if c.prev == e.Path {
			return fmt.Errorf("%w: duplicate path %q", ErrInvalidManifest, e.Path)
		}
		if c.prev > e.Path {
			return fmt.Errorf("%w: %q sorts before %q", ErrInvalidManifest, e.Path, c.prev)
		}
	}
	c.prev = e.Path
	if err := validateFields(e); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrInvalidManifest, e.Path, err)
	}
	if parent := path.Dir(e.Path); parent != "." {
		if _, ok := c.dirs[parent]; !ok {
			return fmt.Errorf("%w: %q: parent directory %q is not a dir entry", ErrInvalidManifest, e.Path, parent)
		}
	}
	if e.Kind == KindHardlink {
		if err := checkLeader(e, prior); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrInvalidManifest, e.Path, err)
		}
	}
	if e.Kind == KindDir {
		if c.dirs == nil {
			c.dirs = make(map[string]struct{})
		}
		c.dirs[e.Path] = struct{}{}
	}
	return nil
}

// checkLeader checks that the target of the hardlink e is its group's
// leader: a file entry of prior, the entries sorted before e. A leader is
// the smallest path of its group, so it always comes before its members;
// that makes the form of a group unique (one root per tree).
func checkLeader(e *Entry, prior []Entry) error {
	i, found := slices.BinarySearchFunc(prior, e.Target, func(p Entry, t string) int { return strings.Compare(p.Path, t) })
	switch {
	case e.Target >= e.Path:
		return fmt.Errorf("hardlink target %q does not sort before the hardlink: the leader of a group is its smallest path", e.Target)
	case !found:
		return fmt.Errorf("hardlink target %q is not an entry of the manifest", e.Target)
	case prior[i].Kind != KindFile:
		return fmt.Errorf("hardlink target %q is a %s, not a file", e.Target, prior[i].Kind)
	}
	return nil
}

// validateFields checks the fields of one entry against its kind.
func validateFields(e *Entry) error {
	if e.Mode&^ModeMask != 0 {
		return fmt.Errorf("mode %#o has bits outside %#o", e.Mode, ModeMask)
	}
	switch e.Kind {
	case KindFile:
		if e.Size < 0 {
			return fmt.Errorf("negative size %d", e.Size)
		}
		if !IsHash(e.Hash) {
			return fmt.Errorf("hash %q is not 64 lowercase hex characters", e.Hash)
		}
		if e.Target != "" {
			return fmt.Errorf("a file has no target")
		}
		if err := validateChunks(e.Size, e.Chunks); err != nil {
			return err
		}
	case KindDir:
		if e.Size != 0 || e.MTime != 0 || e.Hash != "" || e.Target != "" || len(e.Chunks) != 0 {
			return fmt.Errorf("a dir has no size, mtime, hash, target or chunks")
		}
	case KindSymlink:
		if e.Mode != 0 {
			return fmt.Errorf("a symlink has mode 0, not %#o", e.Mode)
		}
		if e.Size != 0 || e.MTime != 0 || e.Hash != "" || len(e.Chunks) != 0 {
			return fmt.Errorf("a symlink has no size, mtime, hash or chunks")
		}
		if e.Target == "" {
			return fmt.Errorf("empty symlink target")
		}
		if strings.IndexByte(e.Target, 0) >= 0 {
			return fmt.Errorf("symlink target contains a NUL byte")
		}
	case KindHardlink:
		if e.Mode != 0 || e.Size != 0 || e.MTime != 0 || e.Hash != "" || len(e.Chunks) != 0 {
			return fmt.Errorf("a hardlink has no mode, size, mtime, hash or chunks: they are its leader's")
		}
		if err := ValidatePath(e.Target); err != nil {
			return fmt.Errorf("hardlink target: %w", err)
		}
	default:
		return fmt.Errorf("unknown kind %q", e.Kind)
	}
	return nil
}

// IsHash reports whether s is a hash as manifests spell it: 64 lowercase
// hexadecimal characters (BLAKE3-256). Roots have the same form.
func IsHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
