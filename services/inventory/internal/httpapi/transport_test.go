package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

func TestProblem(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		detail string
	}{
		{fmt.Errorf("%w: name", catalog.ErrInvalid), 400, "invalid: name"},
		{fmt.Errorf("%w: json", errMalformed), 400, "malformed request: json"},
		{fmt.Errorf("get: %w: %q", catalog.ErrTreeNotFound, "x"), 404, `get: tree not found: "x"`},
		{catalog.ErrSiteNotFound, 404, "site not found"},
		{catalog.ErrRunNotFound, 404, "run not found"},
		{fmt.Errorf("create: %w", catalog.ErrAlreadyExists), 409, "create: already exists"},
		{&http.MaxBytesError{Limit: MaxBody}, 413, "request body exceeds 1048576 bytes"},
		{errors.New("pq: password authentication failed"), 500, "internal error; the inventory log has the cause"},
	} {
		p := Problem(tc.err)
		if p.Status != tc.status || p.Title != http.StatusText(tc.status) || p.Detail != tc.detail {
			t.Errorf("Problem(%v) = %+v, want %d %q", tc.err, p, tc.status, tc.detail)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	for _, tc := range []struct {
		in, err string
	}{
		{in: `{"name":"a"}`},
		{in: " {\"name\":\"a\"}\n\t "},
		{in: ``, err: "empty request body"},
		{in: `{"name":`, err: "malformed"},
		{in: `{"name":1}`, err: "malformed"},
		{in: `{"name":"a","extra":1}`, err: `unknown field "extra"`},
		{in: `{"name":"a"}{"name":"b"}`, err: "exactly one JSON value"},
		{in: `{"name":"a"} x`, err: "exactly one JSON value"},
		{in: `[]`, err: "malformed"},
		{in: `{"name":"` + strings.Repeat("a", MaxBody) + `"}`, err: "too large"},
		{in: `{"name":"a"}` + strings.Repeat(" ", MaxBody), err: "too large"},
	} {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", strings.NewReader(tc.in))
		var b body
		err := decodeJSON(r, &b)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("decode %.40q: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("decode %.40q: err = %v, want %q", tc.in, err, tc.err)
		}
	}
}

func FuzzDecodeTree(f *testing.F) {
	for _, s := range []string{`{"name":"docs","origin_site":"o","source":"/srv","keep":2}`, `{}`, `null`, `{"keep":1e400}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/trees", strings.NewReader(s))
		v, err := decodeTree(r.Context(), r)
		if err != nil {
			if p := Problem(err); p.Status != 400 && p.Status != 413 {
				t.Fatalf("decode error maps to %d: %v", p.Status, err)
			}
			return
		}
		if _, ok := v.(catalog.Tree); !ok {
			t.Fatalf("decoded %T", v)
		}
	})
}
