package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// words is the vocabulary identifiers, comments, log messages and strings
// are made of, so that generated text compresses like code and logs do
// rather than like random letters.
var words = strings.Fields(`
	tree pack manifest site version delta hash scan entry path root file size mode
	read write open close apply stage switch verify fetch store cache index chunk
	part header frame block buffer reader writer stream queue event subject message
	handler consumer publisher request response status error result value count
	limit offset length start stop run sync schedule plan job task worker pool group
	config option flag name key token user host port addr client server conn session
	node peer link target source dest copy move rename remove create update delete
	list get set put load save parse encode decode check valid state phase step
	level metric trace span log record batch window range table row column query
	filter rule match pattern glob include exclude local remote origin replica
`)

// keywords, types and packages of the Go-like source files.
var (
	goTypes  = strings.Fields("string int int64 uint32 bool error []byte context.Context time.Duration *Manifest *Entry io.Reader io.Writer map[string]int")
	goPkgs   = strings.Fields("fmt errors io os context time strings bytes sync path/filepath encoding/json log/slog")
	logLevel = []string{"INFO", "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR"}
)

// text generates source code, log lines and small text files from one
// random source, with a set of identifiers of its own (a file reuses its
// names, as real files do).
type text struct {
	r      *rand.Rand
	idents []string
}

func newText(r *rand.Rand) *text {
	t := &text{r: r}
	for range 24 {
		t.idents = append(t.idents, t.newIdent())
	}
	return t
}

func (t *text) word() string { return words[t.r.IntN(len(words))] }

// newIdent makes a camelCase identifier of one to three words.
func (t *text) newIdent() string {
	var b strings.Builder
	b.WriteString(t.word())
	for range t.r.IntN(3) {
		w := t.word()
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// ident returns one of the file's identifiers, mostly, or a fresh one.
func (t *text) ident() string {
	if t.r.IntN(8) == 0 {
		return t.newIdent()
	}
	return t.idents[t.r.IntN(len(t.idents))]
}

func (t *text) phrase(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = t.word()
	}
	return strings.Join(ws, " ")
}

// goFile returns a Go-like source file of about lines lines.
func (t *text) goFile(lines int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Package %s %s.\npackage %s\n\nimport (\n", t.word(), t.phrase(6), t.word())
	for range 2 + t.r.IntN(5) {
		fmt.Fprintf(&b, "\t%q\n", goPkgs[t.r.IntN(len(goPkgs))])
	}
	b.WriteString(")\n")
	for n := 0; n < lines; {
		n += t.goDecl(&b)
	}
	return b.Bytes()
}

// goDecl writes one type or function and returns its line count.
func (t *text) goDecl(b *bytes.Buffer) int {
	name := t.ident()
	fmt.Fprintf(b, "\n// %s %s.\n", name, t.phrase(4+t.r.IntN(8)))
	if t.r.IntN(4) == 0 {
		fmt.Fprintf(b, "type %s struct {\n", name)
		n := 2 + t.r.IntN(6)
		for range n {
			fmt.Fprintf(b, "\t%s %s\n", t.ident(), goTypes[t.r.IntN(len(goTypes))])
		}
		b.WriteString("}\n")
		return n + 4
	}
	fmt.Fprintf(b, "func %s(ctx context.Context, %s %s) (%s, error) {\n", name, t.ident(), goTypes[t.r.IntN(len(goTypes))], goTypes[t.r.IntN(len(goTypes))])
	n := 3 + t.r.IntN(20)
	for range n {
		b.WriteString(t.statement("\t"))
	}
	b.WriteString("\treturn nil, nil\n}\n")
	return n + 5
}

// statement returns one line (or a small block) of a function body.
func (t *text) statement(indent string) string {
	switch t.r.IntN(7) {
	case 0:
		return fmt.Sprintf("%s%s, err := %s.%s(ctx, %s)\n%sif err != nil {\n%s\treturn nil, fmt.Errorf(\"%s %%s: %%w\", %s, err)\n%s}\n",
			indent, t.ident(), t.ident(), t.ident(), t.ident(), indent, indent, t.phrase(2), t.ident(), indent)
	case 1:
		return fmt.Sprintf("%sfor _, %s := range %s.%s {\n%s\t%s = append(%s, %s)\n%s}\n",
			indent, t.ident(), t.ident(), t.ident(), indent, t.ident(), t.ident(), t.ident(), indent)
	case 2:
		return fmt.Sprintf("%s// %s\n", indent, t.phrase(3+t.r.IntN(10)))
	case 3:
		return fmt.Sprintf("%sif %s.%s > %d {\n%s\t%s.%s(%q)\n%s}\n",
			indent, t.ident(), t.ident(), t.r.IntN(1000), indent, t.ident(), t.ident(), t.phrase(3), indent)
	default:
		return fmt.Sprintf("%s%s := %s(%s, %s)\n", indent, t.ident(), t.ident(), t.ident(), t.ident())
	}
}

// editSource makes the small edits of a commit to text: one to four
// places where a line is replaced, lines are inserted, or lines removed.
func (t *text) editSource(data []byte) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	for range 1 + t.r.IntN(4) {
		i := t.r.IntN(len(lines))
		switch t.r.IntN(3) {
		case 0:
			lines[i] = t.statement("\t")
		case 1:
			var add []string
			for range 1 + t.r.IntN(8) {
				add = append(add, t.statement("\t"))
			}
			lines = append(lines[:i], append(add, lines[i:]...)...)
		default:
			if len(lines) > 8 {
				lines = append(lines[:i], lines[min(len(lines), i+1+t.r.IntN(4)):]...)
			}
		}
	}
	return []byte(strings.Join(lines, ""))
}

// logLines returns at least size bytes of log lines starting at time at,
// and the time of the last one.
func (t *text) logLines(size int, at time.Time) ([]byte, time.Time) {
	var b bytes.Buffer
	for b.Len() < size {
		at = at.Add(time.Duration(t.r.IntN(5000)) * time.Millisecond)
		fmt.Fprintf(&b, "%s %-5s component=%s msg=%q %s=%s-%d %s=%08x duration=%dms bytes=%d\n",
			at.Format("2006-01-02T15:04:05.000Z"), logLevel[t.r.IntN(len(logLevel))], t.word(),
			t.phrase(2+t.r.IntN(5)), t.word(), t.word(), t.r.IntN(20), t.word(), t.r.Uint32(),
			t.r.IntN(3000), t.r.IntN(1<<20))
	}
	return b.Bytes(), at
}

// smallFile returns a small file of about size bytes: JSON (kind 0), prose
// (1) or key = value configuration (2).
func (t *text) smallFile(kind, size int) []byte {
	var b bytes.Buffer
	switch kind {
	case 0:
		b.WriteString("{\n")
		for b.Len() < size {
			fmt.Fprintf(&b, "  %q: {\"name\": %q, \"version\": %d, \"enabled\": %t, \"tags\": [%q, %q]},\n",
				t.ident(), t.ident(), t.r.IntN(40), t.r.IntN(2) == 0, t.word(), t.word())
		}
		b.WriteString("  \"end\": null\n}\n")
	case 1:
		for b.Len() < size {
			fmt.Fprintf(&b, "%s %s.\n", strings.ToUpper(t.word()[:1]), t.phrase(5+t.r.IntN(12)))
		}
	default:
		fmt.Fprintf(&b, "[%s]\n", t.word())
		for b.Len() < size {
			fmt.Fprintf(&b, "%s_%s = %d\n", t.word(), t.word(), t.r.IntN(100000))
		}
	}
	return b.Bytes()
}
