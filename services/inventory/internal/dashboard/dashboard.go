// Package dashboard renders the inventory's overview of the whole
// mirroring network as one server-side HTML page: every site × tree with
// its version, state and lag, and the latest sync runs. The page refreshes
// itself; it needs no JavaScript and no build step.
package dashboard

import (
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// Source is what the page shows.
type Source interface {
	Overview(ctx context.Context) ([]catalog.OverviewRow, error)
	Runs(ctx context.Context, f catalog.RunFilter) ([]catalog.Run, error)
}

//go:embed dashboard.html
var page string

var tmpl = template.Must(template.New("dashboard").Funcs(template.FuncMap{
	"short": func(v string) string {
		if len(v) > 12 {
			return v[:12]
		}
		return v
	},
	"lag": func(s int64) string {
		if s == 0 {
			return "—"
		}
		return (time.Duration(s) * time.Second).String()
	},
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"bytes": func(n int64) string {
		const unit = 1024
		if n < unit {
			return fmt.Sprintf("%d B", n)
		}
		div, exp := int64(unit), 0
		for m := n / unit; m >= unit; m /= unit {
			div *= unit
			exp++
		}
		return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
	},
}).Parse(page))

// recentRuns is how many runs the page lists.
const recentRuns = 25

// Handler serves the dashboard at GET /.
func Handler(src Source, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rows, err := src.Overview(r.Context())
		if err != nil {
			log.Error("dashboard overview", "err", err)
			http.Error(w, "overview unavailable", http.StatusServiceUnavailable)
			return
		}
		runs, err := src.Runs(r.Context(), catalog.RunFilter{Limit: recentRuns})
		if err != nil {
			log.Error("dashboard runs", "err", err)
			http.Error(w, "runs unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := tmpl.Execute(w, struct {
			Rows []catalog.OverviewRow
			Runs []catalog.Run
			Now  time.Time
		}{rows, runs, time.Now()}); err != nil {
			log.Warn("dashboard render", "err", err)
		}
	})
}
