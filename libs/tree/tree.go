// Package tree describes a filesystem tree as a content-addressed manifest:
// every file, directory and symbolic link with its mode, and for files their
// size, modification time and BLAKE3 hash, and for large files their
// content-defined chunks (Chunk); paths that share one inode (hard links)
// are one file entry, the group's leader, and hardlink entries naming it. A manifest has a root hash that
// names the version of the tree; the same tree gives the same root on any
// machine. docs/manifest-format.md documents the JSON form and the root
// encoding byte by byte, and the stat cache (StatCache) that lets a re-scan
// skip unchanged files; docs/filters.md documents the include/exclude rules
// (Filter) a scan can apply.
package tree

import (
	"errors"
	"fmt"
	"strings"
)

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// Kind is the type of a tree entry.
type Kind string

// The kinds of entry a manifest holds.
const (
	KindFile    Kind = "file"
	KindDir     Kind = "dir"
	KindSymlink Kind = "symlink"
	// KindHardlink is a path that shares the inode of a file entry, its
	// group's leader: the path that sorts first of all the paths of the
	// tree with that inode. Its Target is the leader's path; it carries
	// nothing else, since mode, size, mtime and content are the leader's.
	KindHardlink Kind = "hardlink"
)

// MaxNameLen is the longest path component accepted, in bytes (NAME_MAX on
// Linux).
const MaxNameLen = 255

// ModeMask holds the mode bits a manifest records: permission bits only.
const ModeMask = 0o777

// Entry is one file, directory, symbolic link or hard link of a tree.
type Entry struct {
	// Path is slash-separated, relative and clean (see ValidatePath).
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// Mode holds permission bits only, 0..0o777; always 0 for symlinks
	// and hardlinks.
	Mode uint32 `json:"mode"`
	// Size is the content length in bytes; files only.
	Size int64 `json:"size,omitempty"`
	// MTime is the modification time in unix nanoseconds; files only.
	MTime int64 `json:"mtime,omitempty"`
	// Hash is the lowercase hex BLAKE3-256 of the content; files only.
	Hash string `json:"hash,omitempty"`
	// Target is, for a symlink, the link target, stored verbatim and
	// never followed; for a hardlink, the path of its group's leader, a
	// file entry that sorts before it. Other kinds have none.
	Target string `json:"target,omitempty"`
	// Chunks are the content-defined chunks of the content, in order;
	// files of at least ChunkThreshold bytes only, and optional there.
	// They are not part of the root: they follow from the content, which
	// Hash covers.
	Chunks []Chunk `json:"chunks,omitempty"`
}

// Manifest is the complete description of one version of a tree.
type Manifest struct {
	Format int `json:"format"`
	// Entries are sorted by Path in byte order and unique. The tree's root
	// directory itself is not an entry.
	Entries []Entry `json:"entries"`
}

// Sentinel errors; returned errors wrap them.
var (
	// ErrUnsafePath marks a path that could escape the tree or is not clean.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrInvalidManifest marks a manifest that breaks a format rule.
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrUnsupportedFile marks a file Scan cannot represent: a device,
	// socket, fifo, or a file with set-uid, set-gid or sticky bits.
	ErrUnsupportedFile = errors.New("unsupported file")
)

// ValidatePath checks that p is a relative, clean, slash-separated path
// that stays inside the tree: not empty, not absolute, no empty, "." or ".."
// component, no NUL byte, no component longer than MaxNameLen bytes.
// Backslashes are ordinary bytes. The error wraps ErrUnsafePath.
func ValidatePath(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty path", ErrUnsafePath)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("%w: %q contains a NUL byte", ErrUnsafePath, p)
	}
	if p[0] == '/' {
		return fmt.Errorf("%w: %q is absolute", ErrUnsafePath, p)
	}
	for c := range strings.SplitSeq(p, "/") {
		switch {
		case c == "":
			return fmt.Errorf("%w: %q has an empty component", ErrUnsafePath, p)
		case c == "." || c == "..":
			return fmt.Errorf("%w: %q has a %q component", ErrUnsafePath, p, c)
		case len(c) > MaxNameLen:
			return fmt.Errorf("%w: %q has a component longer than %d bytes", ErrUnsafePath, p, MaxNameLen)
		}
	}
	return nil
}

// Totals returns the number of files and the sum of their sizes. Hardlink
// entries are not counted: their content is their leader's.
func (m *Manifest) Totals() (files, bytes int64) {
	for i := range m.Entries {
		if m.Entries[i].Kind == KindFile {
			files++
			bytes += m.Entries[i].Size
		}
	}
	return files, bytes
}
