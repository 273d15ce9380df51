//go:build !linux

package tree

import "io/fs"

// statKeyOf reports no key outside Linux: the stat cache is then never hit
// and every file is hashed.
func statKeyOf(fs.FileInfo) (statKey, bool) {
	return statKey{}, false
}

// linkIDOf reports no inode outside Linux: a scan there records every path
// of a hard link group as a file of its own.
func linkIDOf(fs.FileInfo) (linkID, bool) {
	return linkID{}, false
}
