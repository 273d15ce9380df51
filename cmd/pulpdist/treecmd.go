package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/replica"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// newTreeCommands makes the commands that work on trees, packs and
// replicas on local disk, with the library code the services run:
// snapshot, pack, apply and verify.
func newTreeCommands(stdout, stderr io.Writer) []*cobra.Command {
	return []*cobra.Command{newSnapshot(stdout), newPack(stdout), newApply(stdout, stderr), newVerify(stdout)}
}

// newSnapshot makes `pulpdist snapshot DIR [-o MANIFEST]`.
func newSnapshot(stdout io.Writer) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "snapshot DIR [-o MANIFEST]",
		Short: "Print the version id (root) of a directory tree; -o writes its manifest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := tree.Scan(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			if out != "" {
				if err := writeAtomic(out, func(w io.Writer) error { return tree.Encode(w, m) }); err != nil {
					return fmt.Errorf("snapshot: %w", err)
				}
			}
			fmt.Fprintln(stdout, m.Root())
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the manifest (JSON) to this file")
	return cmd
}

// newPack makes `pulpdist pack [--from OLD_DIR] NEW_DIR -o FILE`.
func newPack(stdout io.Writer) *cobra.Command {
	var from, out, name, keyPath, effort string
	cmd := &cobra.Command{
		Use:   "pack [--from OLD_DIR] NEW_DIR -o FILE [--tree NAME] [--key KEY]",
		Short: "Write the pack that takes OLD_DIR's version (or nothing) to NEW_DIR's",
		Long: "Write the pack that takes a site serving OLD_DIR's version to NEW_DIR's: the\n" +
			"manifest changes and the content of the files whose hash no file of OLD_DIR has,\n" +
			"compressed against the old files and reusing their chunks, as the delta-cache\n" +
			"builds it. Without --from the pack carries every file.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("pack: -o FILE is required")
			}
			if name == "" {
				abs, err := filepath.Abs(args[0])
				if err != nil {
					return fmt.Errorf("pack: %w", err)
				}
				name = filepath.Base(abs)
			}
			var key ed25519.PrivateKey
			if keyPath != "" {
				var err error
				if key, err = pack.LoadPrivateKey(keyPath); err != nil {
					return fmt.Errorf("pack: %w", err)
				}
			}
			eff, err := pack.ParseEffort(effort)
			if err != nil {
				return fmt.Errorf("pack: %w", err)
			}
			res, err := writePack(cmd.Context(), from, args[0], name, out, key, eff)
			if err != nil {
				return fmt.Errorf("pack: %w", err)
			}
			fmt.Fprintf(stdout, "%s: %d bytes, %d parts (%d bytes copied from the base, %d carried), %q %s→%s\n",
				out, res.size, res.parts, res.copied, res.literal, name, orEmpty(res.from), res.to)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "directory holding the base version (default: empty base, a full pack)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "pack file to write")
	cmd.Flags().StringVar(&name, "tree", "", "tree name recorded in the pack (default: NEW_DIR's base name)")
	cmd.Flags().StringVar(&keyPath, "key", "", "sign the pack with this private key (pulpdist keygen)")
	cmd.Flags().StringVar(&effort, "effort", "best", "how hard to work for a smaller pack: best, default or fast (docs/pack-format.md)")
	return cmd
}

// packResult describes a written pack.
type packResult struct {
	size            int64
	parts           int
	copied, literal int64
	from, to        string
}

// writePack scans fromDir (if not "") and toDir and writes the pack
// between them to out, the content read from toDir.
func writePack(ctx context.Context, fromDir, toDir, name, out string, key ed25519.PrivateKey, effort pack.Effort) (packResult, error) {
	var base *tree.Manifest
	if fromDir != "" {
		var err error
		if base, err = tree.Scan(ctx, fromDir); err != nil {
			return packResult{}, err
		}
	}
	target, err := tree.Scan(ctx, toDir)
	if err != nil {
		return packResult{}, err
	}
	// Content comes through an os.Root per directory: a symlink swapped
	// in after the scan cannot make the pack read outside them, and
	// pack.Build checks every content's hash, so a file changed since the
	// scan fails the pack. Target content is read from toDir, base content
	// (what modified files are compressed against) from fromDir.
	open, closeAll, err := contentByHash([]string{toDir, fromDir}, []*tree.Manifest{target, base})
	if err != nil {
		return packResult{}, err
	}
	defer closeAll()
	var res pack.Result
	err = writeAtomic(out, func(w io.Writer) error {
		var err error
		res, err = pack.Build(ctx, w, pack.Options{Tree: name, From: base, To: target, Key: key, TempDir: filepath.Dir(out), Effort: effort}, open)
		return err
	})
	if err != nil {
		return packResult{}, err
	}
	r := packResult{size: res.Bytes, parts: res.Parts, copied: res.CopiedBytes, literal: res.LiteralBytes, to: target.Root()}
	if base != nil {
		r.from = base.Root()
	}
	return r, nil
}

// contentByHash opens files by content hash from the directories dirs,
// described by manifests ms (nil entries are skipped), earlier ones first.
func contentByHash(dirs []string, ms []*tree.Manifest) (pack.Source, func(), error) {
	type place struct {
		root *os.Root
		path string
	}
	where := map[string]place{}
	var roots []*os.Root
	closeAll := func() {
		for _, r := range roots {
			_ = r.Close() // read-only
		}
	}
	for i, m := range ms {
		if m == nil {
			continue
		}
		root, err := os.OpenRoot(dirs[i])
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		roots = append(roots, root)
		for _, e := range m.Entries {
			if _, ok := where[e.Hash]; !ok && e.Kind == tree.KindFile {
				where[e.Hash] = place{root, e.Path}
			}
		}
	}
	open := func(_ context.Context, hash string) (io.ReadCloser, error) {
		p, ok := where[hash]
		if !ok {
			return nil, fmt.Errorf("no file with content %s", hash)
		}
		return p.root.Open(filepath.FromSlash(p.path))
	}
	return open, closeAll, nil
}

// newApply makes `pulpdist apply FILE --root SITE_ROOT [--keep N]`.
func newApply(stdout, stderr io.Writer) *cobra.Command {
	var root, trustedPath string
	var keep int
	cmd := &cobra.Command{
		Use:   "apply FILE --root SITE_ROOT [--keep N] [--trusted-keys FILE]",
		Short: "Apply a pack to a replica directory and switch it to the new version",
		Long: "Apply a pack to the replica in SITE_ROOT as a site-agent does: build the new\n" +
			"version beside the served one, verify it, then switch SITE_ROOT/current to it.\n" +
			"A refused pack leaves the served version as it was. Do not run it on a\n" +
			"directory a site-agent manages: one process at a time may use a replica.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return errors.New("apply: --root SITE_ROOT is required")
			}
			var trusted []ed25519.PublicKey
			if trustedPath != "" {
				var err error
				if trusted, err = pack.LoadPublicKeys(trustedPath); err != nil {
					return fmt.Errorf("apply: %w", err)
				}
			}
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			defer f.Close()
			pr, err := pack.Open(bufio.NewReaderSize(f, 1<<20), pack.Limits{}, trusted)
			if err != nil {
				return fmt.Errorf("apply %s: %w", args[0], err)
			}
			defer pr.Close()
			rep, err := replica.Open(root, keep)
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			rep.SetLogger(slog.New(slog.NewTextHandler(stderr, nil)))
			st, err := rep.Apply(cmd.Context(), pr)
			if err != nil {
				return fmt.Errorf("apply %s: %w", args[0], err)
			}
			fmt.Fprintf(stdout, "serving %s (%d files written, %d linked, %d bytes written)\n", pr.Header().To, st.FilesWritten, st.FilesLinked, st.BytesWritten)
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "replica directory (created if missing)")
	cmd.Flags().IntVar(&keep, "keep", 1, "previous versions to hold besides the current one")
	cmd.Flags().StringVar(&trustedPath, "trusted-keys", "", "require a signature by one of these public keys")
	return cmd
}

// newVerify makes `pulpdist verify --root SITE_ROOT`.
func newVerify(stdout io.Writer) *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "verify --root SITE_ROOT",
		Short: "Check that a replica serves exactly the version it names",
		Long: "Scan the version SITE_ROOT/current serves and compare it to its stored\n" +
			"manifest and to its root. Read-only: safe beside a running site-agent.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if root == "" {
				return errors.New("verify: --root SITE_ROOT is required")
			}
			cur, err := replica.Verify(cmd.Context(), root)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "ok %s\n", cur)
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "replica directory")
	return cmd
}

// writeAtomic writes a file through write into a temporary file beside
// path, renamed over path only once write succeeded and the data is
// synced: path never holds a partial result.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = os.Remove(f.Name()) // best effort; the error being returned matters more
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// orEmpty spells an empty base version.
func orEmpty(root string) string {
	if root == "" {
		return "(empty)"
	}
	return root
}
