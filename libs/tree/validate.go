package tree

import (
	"fmt"
	"path"
	"strings"
)

// Validate checks every format rule: the format version, entries sorted by
// path and unique, safe paths, known kinds, mode within 0..0o777, the fields
// each kind may carry (a 64-character lowercase hex hash and a non-negative
// size for files, a non-empty target without NUL for symlinks), and a
// directory entry for the parent of every nested entry. The error wraps
// ErrInvalidManifest and names the offending entry.
func (m *Manifest) Validate() error {
	if m == nil {
		return fmt.Errorf("%w: nil manifest", ErrInvalidManifest)
	}
	if m.Format != FormatVersion {
		return fmt.Errorf("%w: format %d, want %d", ErrInvalidManifest, m.Format, FormatVersion)
	}
	dirs := make(map[string]struct{})
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := ValidatePath(e.Path); err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrInvalidManifest, i, err)
		}
		if i > 0 {
			prev := m.Entries[i-1].Path
			if prev == e.Path {
				return fmt.Errorf("%w: duplicate path %q", ErrInvalidManifest, e.Path)
			}
			if prev > e.Path {
				return fmt.Errorf("%w: %q sorts before %q", ErrInvalidManifest, e.Path, prev)
			}
		}
		if err := validateFields(e); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrInvalidManifest, e.Path, err)
		}
		if parent := path.Dir(e.Path); parent != "." {
			if _, ok := dirs[parent]; !ok {
				return fmt.Errorf("%w: %q: parent directory %q is not a dir entry", ErrInvalidManifest, e.Path, parent)
			}
		}
		if e.Kind == KindDir {
			dirs[e.Path] = struct{}{}
		}
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
	case KindDir:
		if e.Size != 0 || e.MTime != 0 || e.Hash != "" || e.Target != "" {
			return fmt.Errorf("a dir has no size, mtime, hash or target")
		}
	case KindSymlink:
		if e.Mode != 0 {
			return fmt.Errorf("a symlink has mode 0, not %#o", e.Mode)
		}
		if e.Size != 0 || e.MTime != 0 || e.Hash != "" {
			return fmt.Errorf("a symlink has no size, mtime or hash")
		}
		if e.Target == "" {
			return fmt.Errorf("empty symlink target")
		}
		if strings.IndexByte(e.Target, 0) >= 0 {
			return fmt.Errorf("symlink target contains a NUL byte")
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
