// Package dashboard serves the inventory's overview of the whole mirroring
// network at GET /: one static HTML page whose script reads
// /api/v1/overview and /api/v1/runs every 5 s and shows every site × tree
// with its version, state and lag, and the latest sync runs. The page holds
// no data, so it is served without a token; its script sends the bearer
// token the user gives it: once in the URL fragment (/#token=…, which
// browsers never send to the server), then kept in the browser's
// localStorage, or typed into the page when the API refuses it.
package dashboard

import (
	_ "embed"
	"net/http"
)

//go:embed dashboard.html
var page []byte

// Handler serves the dashboard page.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The status line is out; a client that left cannot be told more.
		_, _ = w.Write(page)
	})
}
