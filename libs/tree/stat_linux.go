//go:build linux

package tree

import (
	"io/fs"
	"syscall"
)

// statKeyOf returns the stat cache key of info, from the raw stat(2) fields;
// ok is false when info carries none.
func statKeyOf(info fs.FileInfo) (k statKey, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || st == nil {
		return statKey{}, false
	}
	return statKey{
		Dev:   uint64(st.Dev), //nolint:unconvert // uint32 on some platforms
		Ino:   uint64(st.Ino), //nolint:unconvert // uint32 on some platforms
		Size:  int64(st.Size), //nolint:unconvert // int32 on some platforms
		MTime: st.Mtim.Nano(),
		CTime: st.Ctim.Nano(),
		Mode:  uint32(st.Mode), //nolint:unconvert // uint16 on some platforms
	}, true
}

// linkIDOf returns the device and inode of info when the inode has more
// than one link, so that other paths may share it; ok is false otherwise.
func linkIDOf(info fs.FileInfo) (id linkID, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || st == nil || st.Nlink <= 1 {
		return linkID{}, false
	}
	return linkID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true //nolint:unconvert // uint32 on some platforms
}
