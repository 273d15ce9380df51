package siteagent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/pulpdist/pulpdist/libs/tree"
)

// Names a tree type gives meaning to.
const (
	// statusFile at the root of a snapshot tree says whether the tree is
	// complete: a version is published only when it reads statusFinished.
	statusFile     = "STATUS"
	statusFinished = "FINISHED"
	// latestLink at the root of a versioned tree is made by the origin: a
	// symbolic link to the newest version directory.
	latestLink = "latest"
)

// maxStatusSize bounds what is read of a STATUS file.
const maxStatusSize = 4096

// errNotFinished means a snapshot tree's STATUS does not say FINISHED.
var errNotFinished = errors.New("snapshot not finished")

// readStatus returns the first line of the STATUS file at the root of
// source, trimmed; "" when there is none.
func readStatus(root *os.Root) (string, error) {
	f, err := root.Open(statusFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", statusFile, err)
	}
	defer f.Close()
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file", errNotFinished, statusFile)
	}
	line, err := bufio.NewReader(io.LimitReader(f, maxStatusSize)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s: %w", statusFile, err)
	}
	return strings.TrimSpace(line), nil
}

// checkFinished fails with errNotFinished unless the STATUS file of
// source says FINISHED.
func checkFinished(source string) error {
	root, err := os.OpenRoot(source)
	if err != nil {
		return fmt.Errorf("open source %s: %w", source, err)
	}
	defer root.Close()
	st, err := readStatus(root)
	if err != nil {
		return err
	}
	if st != statusFinished {
		if st == "" {
			return fmt.Errorf("%w: no %s file saying %s", errNotFinished, statusFile, statusFinished)
		}
		return fmt.Errorf("%w: %s says %q, not %s", errNotFinished, statusFile, st, statusFinished)
	}
	return nil
}

// versionDirs lists the version directories of a versioned tree's
// source: the directories at its root other than latestLink, in version
// order (natural order: "1.9" before "1.10"), oldest first. Symbolic
// links, files and excluded names are not versions.
func versionDirs(source string, filter *tree.Filter) ([]string, error) {
	ents, err := os.ReadDir(source)
	if err != nil {
		return nil, fmt.Errorf("read versions of %s: %w", source, err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && e.Name() != latestLink && filter.Includes(e.Name(), true) {
			out = append(out, e.Name())
		}
	}
	slices.SortFunc(out, naturalCompare)
	return out, nil
}

// versionedRules are the filter rules that scan only the newest latest
// of versions (all when latest is 0) and leave out the source's own
// latest entry, which the origin makes (withLatest).
func versionedRules(versions []string, latest int) []string {
	rules := []string{"- /" + escapeGlob(latestLink)}
	if latest > 0 && len(versions) > latest {
		for _, v := range versions[:len(versions)-latest] {
			rules = append(rules, "- /"+escapeGlob(v)+"/")
		}
	}
	return rules
}

// withLatest adds to m the latestLink symbolic link to the newest of
// versions, when there is one.
func withLatest(m *tree.Manifest, versions []string) (*tree.Manifest, error) {
	if len(versions) == 0 {
		return m, nil
	}
	e := tree.Entry{Path: latestLink, Kind: tree.KindSymlink, Target: versions[len(versions)-1]}
	i, found := slices.BinarySearchFunc(m.Entries, latestLink, func(e tree.Entry, p string) int { return strings.Compare(e.Path, p) })
	if found {
		return nil, fmt.Errorf("%s: the scan holds an entry the origin makes", latestLink)
	}
	out := &tree.Manifest{Format: m.Format, Entries: slices.Insert(slices.Clone(m.Entries), i, e)}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// escapeGlob quotes the bytes a filter pattern gives a meaning to.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`*?[\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// naturalCompare orders names by runs of digits as numbers and the rest
// as bytes: "v2" < "v10", "1.9" < "1.10" < "1.10a".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			na, ra := digitRun(a)
			nb, rb := digitRun(b)
			// Compare numbers by length without leading zeros, then by bytes.
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if c := len(ta) - len(tb); c != 0 {
				return c
			}
			if c := strings.Compare(ta, tb); c != 0 {
				return c
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	if c := len(a) - len(b); c != 0 {
		return c
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}
