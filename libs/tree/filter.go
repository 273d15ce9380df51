package tree

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidFilter marks a filter rule ParseFilter refuses.
var ErrInvalidFilter = errors.New("invalid filter rule")

// MaxFilterRuleLen is the longest filter rule ParseFilter accepts, in bytes.
const MaxFilterRuleLen = 4096

// Filter decides which entries of a tree a scan records, from rsync-style
// include/exclude rules (docs/filters.md). The first rule whose pattern
// matches a path decides; a path no rule matches is included. A nil or
// empty Filter includes everything. A Filter is immutable and safe for
// concurrent use.
type Filter struct {
	rules []filterRule
}

// filterRule is one parsed "+ PATTERN" or "- PATTERN" rule.
type filterRule struct {
	include bool
	dirOnly bool
	tokens  []globToken
}

// globKind is the kind of one element of a compiled pattern.
type globKind uint8

const (
	globLit   globKind = iota // one literal byte
	globAny                   // "?": one byte other than '/'
	globClass                 // "[...]": one byte other than '/' in (or not in) a set
	globStar                  // "*": any bytes other than '/'
	globDStar                 // "**": any bytes
	globEps                   // consumes nothing; leads to the next token or skip tokens ahead
)

// globToken is one element of a compiled pattern. skip > 0 lets a match
// jump over this token and the skip-1 following ones without consuming
// input: 1 for "*" and "**", 2 for the "/" "**" pair of a trailing "/***"
// (the directory itself or anything below it), 3 for the globEps that
// starts a "**/" (zero or more directories: eps, "**", "/"). Only states
// a match enters may skip: a looping "**" state never skips its "/", or
// "**/" would match "x" without a slash.
type globToken struct {
	kind   globKind
	skip   int
	lit    byte
	negate bool
	set    *[256]bool
}

// ParseFilter compiles rsync-style rules, each "+ PATTERN" (include) or
// "- PATTERN" (exclude) with exactly one space after the sign. Patterns:
// a leading "/" anchors at the tree root; a trailing "/" matches
// directories only; "*" matches within one path component, "**" across
// components, "?" one byte, "[...]" one byte of a set ("[!...]" or "[^...]"
// negated, ranges allowed), "\" escapes the next byte; "**/" matches zero
// or more directories; "dir/***" matches dir and everything below it; a
// pattern without "/" or "**" matches the last component at any depth,
// another unanchored pattern matches the end of the path at a component
// boundary. No rules gives a Filter that includes everything. Errors wrap
// ErrInvalidFilter and name the rule.
func ParseFilter(rules []string) (*Filter, error) {
	f := &Filter{rules: make([]filterRule, 0, len(rules))}
	for i, r := range rules {
		fr, err := parseRule(r)
		if err != nil {
			return nil, fmt.Errorf("%w: rule %d %q: %w", ErrInvalidFilter, i+1, r, err)
		}
		f.rules = append(f.rules, fr)
	}
	return f, nil
}

// parseRule compiles one rule.
func parseRule(r string) (filterRule, error) {
	var fr filterRule
	switch {
	case len(r) > MaxFilterRuleLen:
		return fr, fmt.Errorf("longer than %d bytes", MaxFilterRuleLen)
	case strings.HasPrefix(r, "+ "):
		fr.include = true
	case strings.HasPrefix(r, "- "):
	default:
		return fr, errors.New(`want "+ PATTERN" or "- PATTERN"`)
	}
	pat := r[2:]
	if pat == "" {
		return fr, errors.New("empty pattern")
	}
	if strings.IndexByte(pat, 0) >= 0 {
		return fr, errors.New("pattern contains a NUL byte")
	}
	if strings.HasSuffix(pat, "/") {
		fr.dirOnly = true
		pat = pat[:len(pat)-1]
	}
	anchored := strings.HasPrefix(pat, "/")
	if anchored {
		pat = pat[1:]
	}
	if pat == "" {
		return fr, errors.New("pattern matches no path")
	}
	if strings.HasPrefix(pat, "/") || strings.HasSuffix(pat, "/") || strings.Contains(pat, "//") {
		return fr, errors.New("pattern has an empty path component")
	}
	tokens, err := compileGlob(pat)
	if err != nil {
		return fr, err
	}
	// A pattern with "/" or "**" is matched against the whole path, else
	// against the last component; unanchored, both amount to matching the
	// whole path with a leading "**/" (zero or more directories).
	if !anchored {
		tokens = append(anyDirs(), tokens...)
	}
	fr.tokens = tokens
	return fr, nil
}

// compileGlob compiles a pattern without its anchor and trailing slash.
func compileGlob(pat string) ([]globToken, error) {
	var tokens []globToken
	for i := 0; i < len(pat); {
		c := pat[i]
		switch c {
		case '\\':
			if i+1 >= len(pat) {
				return nil, errors.New(`trailing "\"`)
			}
			tokens = append(tokens, globToken{kind: globLit, lit: pat[i+1]})
			i += 2
		case '?':
			tokens = append(tokens, globToken{kind: globAny})
			i++
		case '[':
			t, n, err := compileClass(pat[i:])
			if err != nil {
				return nil, err
			}
			tokens = append(tokens, t)
			i += n
		case '*':
			n := 1
			for i+n < len(pat) && pat[i+n] == '*' {
				n++
			}
			atStart := i == 0 || pat[i-1] == '/'
			slashAfter := i+n < len(pat) && pat[i+n] == '/'
			atEnd := i+n == len(pat)
			switch {
			case n == 1:
				tokens = append(tokens, globToken{kind: globStar, skip: 1})
			case n == 3 && atEnd && i > 0 && pat[i-1] == '/':
				// "dir/***": dir itself, or anything below it.
				tokens[len(tokens)-1].skip = 2
				tokens = append(tokens, globToken{kind: globDStar, skip: 1})
			case atStart && slashAfter:
				// "**/" at the start of a component: zero or more
				// directories.
				tokens = append(tokens, anyDirs()...)
				n++ // the "/"
			default:
				tokens = append(tokens, globToken{kind: globDStar, skip: 1})
			}
			i += n
		default:
			tokens = append(tokens, globToken{kind: globLit, lit: c})
			i++
		}
	}
	return tokens, nil
}

// anyDirs returns the tokens of "**/" at the start of a component: zero
// or more whole directories.
func anyDirs() []globToken {
	return []globToken{{kind: globEps, skip: 3}, {kind: globDStar, skip: 1}, {kind: globLit, lit: '/'}}
}

// compileClass compiles the "[...]" at the start of s and returns its
// length.
func compileClass(s string) (globToken, int, error) {
	t := globToken{kind: globClass, set: new([256]bool)}
	i := 1
	if i < len(s) && (s[i] == '!' || s[i] == '^') {
		t.negate = true
		i++
	}
	first := true
	for {
		if i >= len(s) {
			return t, 0, errors.New(`unterminated "["`)
		}
		c := s[i]
		if c == ']' && !first {
			return t, i + 1, nil
		}
		first = false
		lo, n, err := classByte(s[i:])
		if err != nil {
			return t, 0, err
		}
		i += n
		hi := lo
		if i+1 < len(s) && s[i] == '-' && s[i+1] != ']' {
			hi, n, err = classByte(s[i+1:])
			if err != nil {
				return t, 0, err
			}
			if hi < lo {
				return t, 0, fmt.Errorf("range %q-%q is reversed", lo, hi)
			}
			i += 1 + n
		}
		for b := int(lo); b <= int(hi); b++ {
			t.set[b] = true
		}
	}
}

// classByte reads one possibly escaped byte of a class.
func classByte(s string) (byte, int, error) {
	if s[0] != '\\' {
		return s[0], 1, nil
	}
	if len(s) < 2 {
		return 0, 0, errors.New(`unterminated "["`)
	}
	return s[1], 2, nil
}

// Includes reports whether the entry at path p (slash-separated, relative
// to the tree root) is kept; dir tells whether it is a directory (a
// symbolic link is not one). The first matching rule decides; no match
// includes. A nil Filter includes everything.
func (f *Filter) Includes(p string, dir bool) bool {
	if f == nil {
		return true
	}
	for i := range f.rules {
		r := &f.rules[i]
		if r.dirOnly && !dir {
			continue
		}
		if globMatch(r.tokens, p) {
			return r.include
		}
	}
	return true
}

// globMatch runs the compiled pattern as a nondeterministic automaton over
// s: state i means the first i tokens matched what was read so far. It
// takes O(len(tokens)*len(s)) time whatever the pattern, with no
// backtracking.
func globMatch(tokens []globToken, s string) bool {
	n := len(tokens)
	var a, b [64]bool // no allocation for the usual short patterns
	cur, next := a[:], b[:]
	if n+1 > len(a) {
		cur, next = make([]bool, n+1), make([]bool, n+1)
	}
	cur, next = cur[:n+1], next[:n+1]
	cur[0] = true
	closeStates(tokens, cur)
	for i := 0; i < len(s); i++ {
		c := s[i]
		clear(next)
		live := false
		for st := 0; st < n; st++ {
			if !cur[st] {
				continue
			}
			t := &tokens[st]
			switch t.kind {
			case globLit:
				if c == t.lit {
					next[st+1] = true
				}
			case globAny:
				if c != '/' {
					next[st+1] = true
				}
			case globClass:
				if c != '/' && t.set[c] != t.negate {
					next[st+1] = true
				}
			case globStar:
				if c != '/' {
					next[st] = true
				}
			case globDStar:
				next[st] = true
			}
		}
		closeStates(tokens, next)
		for _, v := range next {
			live = live || v
		}
		if !live {
			return false
		}
		cur, next = next, cur
	}
	return cur[n]
}

// closeStates adds the states reachable without input: skips only go
// forward, so one pass in order is enough.
func closeStates(tokens []globToken, states []bool) {
	for st := range tokens {
		if !states[st] {
			continue
		}
		if tokens[st].kind == globEps {
			states[st+1] = true
		}
		if tokens[st].skip > 0 {
			states[st+tokens[st].skip] = true
		}
	}
}
