package bus

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// The kinds of tree source (a tree's source in the inventory, and
// SyncCommand.Source of a snapshot command).
const (
	// SourceDir: an absolute, clean directory on the origin site.
	SourceDir = "dir"
	// SourceRsync: an rsync:// upstream (rsync://host[:port]/module/path)
	// that the origin's site-agent imports with the system rsync into a
	// staging copy, then scans.
	SourceRsync = "rsync"
	// SourceReplica: "replica:TREE", the origin site's own replica of
	// another tree (a regional hub republishing what it mirrors, maybe
	// filtered). The scheduler syncs it each time that replica moves.
	SourceReplica = "replica"
)

// ReplicaSourcePrefix starts a SourceReplica source.
const ReplicaSourcePrefix = "replica:"

// ErrInvalidSource marks a source that is none of the kinds.
var ErrInvalidSource = errors.New("invalid source")

// ParseSource says what kind of source s is, and for SourceReplica the
// tree it names. The error wraps ErrInvalidSource.
func ParseSource(s string) (kind, tree string, err error) {
	bad := func(format string, args ...any) (string, string, error) {
		return "", "", fmt.Errorf("%w: source %q: "+format+" (want an absolute directory, rsync://host/module/path or replica:TREE)", append([]any{ErrInvalidSource, s}, args...)...)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return bad("holds a control character")
	}
	switch {
	case strings.HasPrefix(s, "/"):
		if path.Clean(s) != s {
			return bad("not a clean path (want %q)", path.Clean(s))
		}
		return SourceDir, "", nil
	case strings.HasPrefix(s, ReplicaSourcePrefix):
		t := strings.TrimPrefix(s, ReplicaSourcePrefix)
		if err := ValidateName("tree", t); err != nil {
			return bad("%v", err)
		}
		return SourceReplica, t, nil
	case strings.HasPrefix(s, "rsync://"):
		u, err := url.Parse(s)
		switch {
		case err != nil:
			return bad("%v", err)
		case u.Host == "" || u.Hostname() == "":
			return bad("no host")
		case u.User != nil:
			return bad("credentials do not belong in a source")
		case u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "?") || strings.Contains(s, "#"):
			return bad("no query or fragment")
		case strings.Trim(u.Path, "/") == "":
			return bad("no module")
		case strings.Contains(u.Path, "/../") || strings.HasSuffix(u.Path, "/..") || strings.Contains(u.Path, "//"):
			return bad("not a clean path")
		case strings.HasPrefix(u.Host, "-") || strings.ContainsAny(s, " \\'\"`$"):
			return bad("holds a character rsync would read otherwise")
		}
		return SourceRsync, "", nil
	}
	return bad("unknown kind")
}
