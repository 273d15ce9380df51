package tree

import (
	"errors"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestFilterIncludes(t *testing.T) {
	type check struct {
		path string
		dir  bool
		want bool // included
	}
	tests := []struct {
		name   string
		rules  []string
		checks []check
	}{
		{"no rules", nil, []check{{"a", false, true}, {"a/b", true, true}}},
		{"suffix at any depth", []string{"- *.tmp"}, []check{
			{"a.tmp", false, false}, {"x/y/b.tmp", false, false}, {"d.tmp", true, false},
			{"a.tmpx", false, true}, {"a.tmp/b", false, true}, {".tmp", false, false},
		}},
		{"anchored dir", []string{"- /.git/"}, []check{
			{".git", true, false}, {".git", false, true}, {"sub/.git", true, true}, {".gitx", true, true},
		}},
		{"dir at any depth with **/", []string{"- **/cache/"}, []check{
			{"cache", true, false}, {"a/b/cache", true, false}, {"cache", false, true},
			{"a/cachex", true, true}, {"a/xcache", true, true},
		}},
		{"keep only rpms", []string{"+ */", "+ *.rpm", "- *"}, []check{
			{"x", true, true}, {"x/y", true, true}, {"x/a.rpm", false, true}, {"a.rpm", false, true},
			{"x/a.txt", false, false}, {"a.txt", false, false}, {"link", false, false},
		}},
		{"first match wins", []string{"+ keep.tmp", "- *.tmp"}, []check{
			{"keep.tmp", false, true}, {"d/keep.tmp", false, true}, {"x.tmp", false, false},
		}},
		{"unanchored path matches the end", []string{"- sub/foo"}, []check{
			{"sub/foo", false, false}, {"a/sub/foo", false, false}, {"a/b/sub/foo", true, false},
			{"xsub/foo", false, true}, {"sub/foo/bar", false, true}, {"sub/foox", false, true},
		}},
		{"anchored path", []string{"- /sub/foo"}, []check{
			{"sub/foo", false, false}, {"a/sub/foo", false, true},
		}},
		{"? is one byte of a component", []string{"- /a?c"}, []check{
			{"abc", false, false}, {"a/c", false, true}, {"ac", false, true}, {"abbc", false, true},
		}},
		{"* stays in a component", []string{"- /a*"}, []check{
			{"a", false, false}, {"abc", false, false}, {"a/b", false, true}, {"ba", false, true},
		}},
		{"** crosses components", []string{"- /a**"}, []check{
			{"a/b/c", false, false}, {"abc", false, false}, {"b/a", false, true},
		}},
		{"**/ in the middle is zero or more dirs", []string{"- /a/**/z"}, []check{
			{"a/z", false, false}, {"a/b/z", false, false}, {"a/b/c/z", false, false},
			{"b/z", false, true}, {"az", false, true}, {"a/bz", false, true},
		}},
		{"** inside a component", []string{"- a**b"}, []check{
			{"x/a/y/b", false, false}, {"ab", false, false}, {"x/ba", false, true},
		}},
		{"* not across slash, unanchored", []string{"- foo*bar"}, []check{
			{"x/fooZbar", false, false}, {"foobar", false, false}, {"foo/bar", false, true},
		}},
		{"class", []string{"- [ab].txt"}, []check{
			{"a.txt", false, false}, {"d/b.txt", false, false}, {"c.txt", false, true}, {"ab.txt", false, true},
		}},
		{"negated class", []string{"- [!ab].txt"}, []check{
			{"c.txt", false, false}, {"a.txt", false, true},
		}},
		{"caret class and range", []string{"- [^a-c]x"}, []check{
			{"dx", false, false}, {"bx", false, true},
		}},
		{"class with ] first and escapes", []string{`- []\-]`}, []check{
			{"]", false, false}, {"-", false, false}, {"a", false, true},
		}},
		{"class never matches slash", []string{"- /a[/]b", "- /c[!x]d"}, []check{
			{"a/b", false, true}, {"c/d", false, true},
		}},
		{"escaped wildcard", []string{`- \*`}, []check{
			{"*", false, false}, {"a", false, true}, {"d/*", false, false},
		}},
		{"dir/*** is the dir and its content", []string{"- /dir/***"}, []check{
			{"dir", true, false}, {"dir/x", false, false}, {"dir/x/y", true, false}, {"dirx", true, true},
		}},
		{"dir/** is only the content", []string{"- /dir/**"}, []check{
			{"dir", true, true}, {"dir/x", false, false}, {"dir/x/y", false, false},
		}},
		{"exclude everything", []string{"- *"}, []check{
			{"a", false, false}, {"a", true, false}, {"a/b/c", false, false},
		}},
		{"dir-only rule skips files and symlinks", []string{"- build/"}, []check{
			{"build", false, true}, {"build", true, false}, {"x/build", true, false},
		}},
		{"docs: keep one file of a directory", []string{"+ /conf/", "+ /conf/site.yaml", "- /conf/*"}, []check{
			{"conf", true, true}, {"conf/site.yaml", false, true}, {"conf/other", false, false}, {"conf/sub", true, false},
		}},
		{"docs: cache/ equals **/cache/", []string{"- cache/"}, []check{
			{"cache", true, false}, {"a/b/cache", true, false}, {"cache", false, true},
		}},
		{"docs: /scratch/*** also matches a file", []string{"- /scratch/***"}, []check{
			{"scratch", false, false}, {"scratch", true, false}, {"scratch/a", false, false}, {"scratchy", false, true},
		}},
		{"spaces and bytes are literal", []string{"- a b ", "- /\xff"}, []check{
			{"a b ", false, false}, {"a b", false, true}, {"x/ ", false, true}, {"\xff", false, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFilter(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.checks {
				if got := f.Includes(c.path, c.dir); got != c.want {
					t.Errorf("Includes(%q, dir=%v) = %v, want %v", c.path, c.dir, got, c.want)
				}
			}
		})
	}
	var nilFilter *Filter
	if !nilFilter.Includes("a", false) {
		t.Fatal("a nil filter excludes")
	}
}

func TestParseFilterRefusesBadRules(t *testing.T) {
	for _, rule := range []string{
		"",
		"x",
		"+x",
		"-x",
		"+ ",
		"- ",
		"* foo",
		"include foo",
		"- /",
		"- //",
		"- a//b",
		"- //a",
		"- [abc",
		"- [!",
		"- [",
		`- a\`,
		`- [a\`,
		"- [z-a]",
		"- a\x00b",
		"- " + strings.Repeat("a", MaxFilterRuleLen),
	} {
		f, err := ParseFilter([]string{"- ok", rule})
		if err == nil {
			t.Errorf("ParseFilter(%q) accepted", rule)
			continue
		}
		if f != nil || !errors.Is(err, ErrInvalidFilter) {
			t.Errorf("ParseFilter(%q) = %v, %v", rule, f, err)
		}
		if !strings.Contains(err.Error(), "rule 2") {
			t.Errorf("error %q does not name the rule", err)
		}
	}
}

// entryPaths returns the paths of m's entries.
func entryPaths(m *Manifest) []string {
	out := make([]string, 0, len(m.Entries))
	for _, e := range m.Entries {
		out = append(out, e.Path)
	}
	return out
}

func TestScanWithFilter(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{".git", "sub/cache", "cache", "deep/er", "scratch", "docs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{
		"keep.rpm", "a.tmp", "sub/x.rpm", "sub/y.txt", "sub/cache/z.rpm", ".git/config",
		"cache/q.rpm", "deep/er/w.rpm", "scratch/s.rpm", "docs/readme",
	} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("deep", filepath.Join(dir, "dirlink")); err != nil {
		t.Fatal(err)
	}
	// Unsupported files that a filter excludes are never looked at.
	if err := syscall.Mkfifo(filepath.Join(dir, "sub/fifo.tmp"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "unix", filepath.Join(dir, ".git/sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	tests := []struct {
		name  string
		rules []string
		want  []string
	}{
		{"keep only rpms", []string{"- *.tmp", "- /.git/", "- **/cache/", "+ */", "+ *.rpm", "- *"}, []string{
			"deep", "deep/er", "deep/er/w.rpm", "docs", "keep.rpm", "scratch", "scratch/s.rpm", "sub", "sub/x.rpm",
		}},
		{"included file in an excluded dir is not reached", []string{"- *.tmp", "- /.git/", "+ /sub/x.rpm", "- /sub/"}, []string{
			"cache", "cache/q.rpm", "deep", "deep/er", "deep/er/w.rpm", "dirlink", "docs", "docs/readme", "keep.rpm", "scratch", "scratch/s.rpm",
		}},
		{"rsync include below excluded dir is unreachable", []string{"- *.tmp", "- .git/", "+ sub/x.rpm", "- sub/", "- /cache/***", "- deep/er/", "- /scratch/", "- docs/readme"}, []string{
			"deep", "dirlink", "docs", "keep.rpm",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := scanFiltered(t, dir, tt.rules)
			if got := entryPaths(m); !slices.Equal(got, tt.want) {
				t.Fatalf("entries\n got %q\nwant %q", got, tt.want)
			}
		})
	}

	// Without a filter the fifo and the socket are refused.
	if _, err := Scan(t.Context(), dir); !errors.Is(err, ErrUnsupportedFile) {
		t.Fatalf("unfiltered scan: %v, want ErrUnsupportedFile", err)
	}
	// Entries kept by a filter are exactly those of an unfiltered scan.
	f, err := ParseFilter([]string{"- *.tmp", "- /.git/"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ScanWith(t.Context(), dir, ScanOptions{Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "sub/fifo.tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, ".git")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "a.tmp")); err != nil {
		t.Fatal(err)
	}
	if full := scan(t, dir); full.Root() != m.Root() {
		t.Fatalf("filtered scan %q differs from the scan of the pruned tree %q", entryPaths(m), entryPaths(full))
	}
}

func FuzzParseFilter(f *testing.F) {
	f.Add("- *.tmp", "a/b.tmp", false)
	f.Add("+ */", "a/b", true)
	f.Add("- /.git/", ".git", true)
	f.Add("- **/cache/", "x/cache", true)
	f.Add("- /dir/***", "dir/a", false)
	f.Add("- [!a-z]?*[\\]]", "q/b1c]", false)
	f.Add("+ a/**/b***", "a/x/y/bb", false)
	f.Fuzz(func(t *testing.T, rule, p string, dir bool) {
		flt, err := ParseFilter([]string{rule})
		if err != nil {
			if flt != nil || !errors.Is(err, ErrInvalidFilter) {
				t.Fatalf("ParseFilter(%q) = %v, %v", rule, flt, err)
			}
			return
		}
		got := flt.Includes(p, dir)
		// A single include rule includes everything; an exclude rule decides
		// the same as its include twin, negated where it matches.
		if strings.HasPrefix(rule, "+ ") && !got {
			t.Fatalf("include-only filter %q excludes %q", rule, p)
		}
		if strings.HasPrefix(rule, "- ") {
			twin, err := ParseFilter([]string{"+" + rule[1:], "- *", "- */"})
			if err != nil {
				t.Fatal(err)
			}
			if twin.Includes(p, dir) == got && ValidatePath(p) == nil {
				t.Fatalf("rule %q: %q decided the same as its include twin", rule, p)
			}
		}
	})
}

// TestFilterMatchesPathMatch compares anchored patterns without "**" with
// path.Match, which has the same "*", "?" and "[...]" rules on ASCII.
func TestFilterMatchesPathMatch(t *testing.T) {
	words := func(alphabet string, maxLen int) []string {
		out := []string{""}
		cur := []string{""}
		for range maxLen {
			var next []string
			for _, w := range cur {
				for _, c := range alphabet {
					next = append(next, w+string(c))
				}
			}
			out = append(out, next...)
			cur = next
		}
		return out
	}
	var paths []string
	for _, p := range words("ab/", 5) {
		if ValidatePath(p) == nil {
			paths = append(paths, p)
		}
	}
	checked := 0
	for _, pat := range append(words("a/*?", 4), "[ab]/*", "[^a]?", "a[a-b]", "*/[!b]") {
		if strings.Contains(pat, "**") || strings.HasPrefix(pat, "/") || strings.HasSuffix(pat, "/") || pat == "" || strings.Contains(pat, "//") {
			continue
		}
		f, err := ParseFilter([]string{"- /" + pat})
		if err != nil {
			t.Fatalf("%q: %v", pat, err)
		}
		pm := strings.ReplaceAll(pat, "[!", "[^")
		for _, p := range paths {
			want, err := path.Match(pm, p)
			if err != nil {
				t.Fatal(err)
			}
			if got := !f.Includes(p, false); got != want {
				t.Fatalf("pattern /%s, path %q: matched %v, path.Match %v", pat, p, got, want)
			}
			checked++
		}
	}
	t.Logf("%d pattern/path pairs agree", checked)
}

// scanFiltered scans dir with the filter rules and validates the result.
func scanFiltered(t *testing.T, dir string, rules []string) *Manifest {
	t.Helper()
	f, err := ParseFilter(rules)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ScanWith(t.Context(), dir, ScanOptions{Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("filtered manifest invalid: %v", err)
	}
	return m
}
