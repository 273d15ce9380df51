//go:build !linux

package tree

import "io/fs"

// statKeyOf reports no key outside Linux: the stat cache is then never hit
// and every file is hashed.
func statKeyOf(fs.FileInfo) (statKey, bool) {
	return statKey{}, false
}
