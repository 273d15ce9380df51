package httpapi

import (
	"bufio"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// documented reads the /api/v1 operations of api/openapi.yaml as mux
// patterns ("GET /api/v1/sites/{name}").
func documented(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	inPaths, path := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " ")
		switch {
		case line == "paths:":
			inPaths = true
		case !inPaths || line == "":
		case !strings.HasPrefix(line, " "):
			inPaths = false
		case strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			path = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     ") && strings.HasPrefix(path, "/api/v1/"):
			m := strings.TrimSuffix(strings.TrimSpace(line), ":")
			if slices.Contains([]string{"get", "put", "post", "delete", "patch"}, m) {
				out = append(out, strings.ToUpper(m)+" "+path)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestEveryRouteHasAPolicy registers the routes and checks that the
// patterns Register guarded, the policies and the documented operations
// are the same set: a new route cannot be added without deciding who may
// call it.
func TestEveryRouteHasAPolicy(t *testing.T) {
	a := NewAuth(nil, "", slog.New(slog.DiscardHandler))
	Register(http.NewServeMux(), Endpoints{}, a, slog.New(slog.DiscardHandler))
	guarded := a.Guarded()
	if !slices.Contains(guarded, "/api/v1/") {
		t.Error("the fallback /api/v1/ route is not guarded")
	}
	guarded = slices.DeleteFunc(guarded, func(p string) bool { return p == "/api/v1/" })
	slices.Sort(guarded)
	var withPolicy []string
	for p := range policies {
		if p != "/api/v1/" {
			withPolicy = append(withPolicy, p)
		}
	}
	slices.Sort(withPolicy)
	if !slices.Equal(guarded, withPolicy) {
		t.Errorf("guarded routes %v\npolicies %v", guarded, withPolicy)
	}
	if doc := documented(t); !slices.Equal(guarded, doc) {
		t.Errorf("guarded routes %v\ndocumented in api/openapi.yaml %v", guarded, doc)
	}
}

func TestBearerToken(t *testing.T) {
	tok := "pdt_0123456789ab_" + strings.Repeat("x", 43)
	for _, tc := range []struct {
		name string
		hdr  []string
		want string // "" means tok
	}{
		{"good", []string{"Bearer " + tok}, ""},
		{"lower-case scheme", []string{"bearer " + tok}, ""},
		{"upper-case scheme", []string{"BEARER " + tok}, ""},
		{"none", nil, "no bearer token"},
		{"empty", []string{""}, "want Bearer <token>"},
		{"scheme only", []string{"Bearer"}, "want Bearer <token>"},
		{"empty token", []string{"Bearer "}, "empty bearer token"},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, "want Bearer <token>"},
		{"token only", []string{tok}, "want Bearer <token>"},
		{"two spaces", []string{"Bearer  " + tok}, "spaces"},
		{"tab", []string{"Bearer\t" + tok}, "want Bearer <token>"},
		{"trailing word", []string{"Bearer " + tok + " x"}, "spaces"},
		{"control character", []string{"Bearer a\x00b"}, "printable ASCII"},
		{"non-ASCII", []string{"Bearer tökén"}, "printable ASCII"},
		{"two headers", []string{"Bearer " + tok, "Bearer " + tok}, "more than one"},
		{"very long", []string{"Bearer " + strings.Repeat("a", MaxTokenHeader)}, "longer than 512 bytes"},
	} {
		h := http.Header{}
		for _, v := range tc.hdr {
			h.Add("Authorization", v)
		}
		got, err := BearerToken(h)
		switch {
		case tc.want == "" && (err != nil || got != tok):
			t.Errorf("%s: %q, %v", tc.name, got, err)
		case tc.want != "" && (err == nil || !errors.Is(err, catalog.ErrUnauthenticated) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if tc.want != "" {
			if p := Problem(err); p.Status != http.StatusUnauthorized {
				t.Errorf("%s: maps to %d", tc.name, p.Status)
			}
		}
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer pdt_0123456789ab_" + strings.Repeat("x", 43), "", "Bearer", "bearer  x", "Basic x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := BearerToken(http.Header{"Authorization": {v}})
		if err != nil {
			if !errors.Is(err, catalog.ErrUnauthenticated) {
				t.Fatalf("error %v does not wrap ErrUnauthenticated", err)
			}
			return
		}
		if tok == "" || len(tok) > MaxTokenHeader || strings.ContainsAny(tok, " \t\r\n") {
			t.Fatalf("accepted %q from %q", tok, v)
		}
	})
}

func TestValidateAdminToken(t *testing.T) {
	for _, tc := range []struct{ tok, want string }{
		{"", ""},
		{strings.Repeat("a", 32), ""},
		{strings.Repeat("a", 31), "31 characters, want at least 32"},
		{strings.Repeat("a", 506), "longer than 505"},
		{strings.Repeat("a", 32) + " ", "printable ASCII"},
		{strings.Repeat("é", 20), "printable ASCII"},
	} {
		err := ValidateAdminToken(tc.tok)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%.10q: %v", tc.tok, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%.10q: err = %v, want %q", tc.tok, err, tc.want)
		case err != nil && strings.Contains(err.Error(), tc.tok):
			t.Errorf("the error quotes the token: %v", err)
		}
	}
}
