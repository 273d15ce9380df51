package health_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/libs/health"
)

func TestReadyz(t *testing.T) {
	a, b := health.NewProbe("a"), health.NewProbe("b")
	mux := http.NewServeMux()
	health.Register(mux, a, b)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "a, b") {
		t.Fatalf("nothing ready: %d %q", code, body)
	}
	a.SetReady(true)
	b.SetReady(true)
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("all ready: %d", code)
	}
	connected := false
	b.SetCheck(func() bool { return connected })
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "b") || strings.Contains(body, "a,") {
		t.Fatalf("b lost its dependency: %d %q", code, body)
	}
	connected = true
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("b reconnected: %d", code)
	}
}
