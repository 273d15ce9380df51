package siteagent

import (
	"slices"
	"testing"

	"github.com/pulpdist/pulpdist/libs/tree"
)

func TestNaturalOrder(t *testing.T) {
	got := []string{"1.10", "v10", "1.9", "1.10a", "v2", "01.9", "1.2", "a", "1"}
	slices.SortStableFunc(got, naturalCompare)
	want := []string{"1", "1.2", "1.9", "01.9", "1.10", "1.10a", "a", "v2", "v10"}
	if !slices.Equal(got, want) {
		t.Errorf("natural order %q, want %q", got, want)
	}
}

func TestVersionedRulesQuoteNames(t *testing.T) {
	names := []string{"a*", "b?", "c[1]", `d\e`, "f"}
	f, err := tree.ParseFilter(versionedRules(names, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names[:4] {
		if f.Includes(n, true) {
			t.Errorf("old version %q not excluded", n)
		}
	}
	for _, n := range []string{"f", "aa", "bb", "c1"} {
		if !f.Includes(n, true) {
			t.Errorf("%q excluded: a name was read as a pattern", n)
		}
	}
	if f.Includes("latest", false) {
		t.Error("the source's latest is scanned")
	}
}
