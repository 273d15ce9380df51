package replica

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncFS makes everything written to the filesystem holding dir durable
// with one syncfs(2): the data and metadata of every file and directory
// of a staged version, in one journal commit instead of one per file and
// directory. With many files, or many sites applying on one machine, the
// per-file fsyncs queue on the journal and take most of an apply's time
// (16 sites applying the Debian benchmark update at once: a third of the
// wall time). syncfs reports write-back errors since Linux 5.8. It
// reports false only where the call is not available, so the caller
// falls back to fsyncing each file.
func syncFS(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return true, err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		if err == unix.ENOSYS {
			return false, nil
		}
		return true, fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return true, nil
}
