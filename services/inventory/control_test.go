package inventory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// send sends an admin request with extra headers and returns the status,
// headers and body.
func (h *harness) send(t *testing.T, method, path, body string, hdr http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	return roundTrip(t, req)
}

func decodeAs[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, body, err)
	}
	return v
}

func TestRESTMechanics(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			h := start(t, db.url(t))
			t.Run("pages", func(t *testing.T) { testPages(t, h) })
			t.Run("conditional", func(t *testing.T) { testConditional(t, h) })
			t.Run("overview and control", func(t *testing.T) { testOverviewControl(t, h) })
			t.Run("dry run", func(t *testing.T) { testDryRun(t, h) })
		})
	}
}

// names pages through a list of named things with limit n, calling
// between after the first page, and returns the names.
func names(t *testing.T, h *harness, path string, n int, between func()) []string {
	t.Helper()
	var got []string
	for _, it := range pages[struct {
		Name string `json:"name"`
	}](t, h, path, "", n, between) {
		got = append(got, it.Name)
	}
	return got
}

func testPages(t *testing.T, h *harness) {
	for _, s := range []string{"s-b", "s-d", "s-f", "s-h", "s-j"} {
		if code, _, body := h.send(t, "POST", "/api/v1/sites", `{"name":"`+s+`"}`, nil); code != 201 {
			t.Fatalf("create %s: %d %s", s, code, body)
		}
	}
	// Sites made after the first page: one before the cursor is not
	// given (the client has passed it), one after it is; none repeats.
	got := names(t, h, "/api/v1/sites", 2, func() {
		for _, s := range []string{"s-a", "s-e"} {
			if code, _, body := h.send(t, "POST", "/api/v1/sites", `{"name":"`+s+`"}`, nil); code != 201 {
				t.Fatalf("create %s: %d %s", s, code, body)
			}
		}
	})
	if want := []string{"s-b", "s-d", "s-e", "s-f", "s-h", "s-j"}; !slices.Equal(got, want) {
		t.Errorf("pages %v, want %v", got, want)
	}
	code, hdr, body := h.send(t, "GET", "/api/v1/sites", "", nil)
	if code != 200 || hdr.Get("X-Next-Cursor") != "" || len(decodeAs[[]inventoryapi.Site](t, body)) != 7 {
		t.Errorf("whole list: %d %v %s", code, hdr, body)
	}

	_, hdr, _ = h.send(t, "GET", "/api/v1/sites?limit=1", "", nil)
	siteCursor := hdr.Get("X-Next-Cursor")
	for _, tc := range []struct{ path, detail string }{
		{"/api/v1/sites?limit=0", "limit"},
		{"/api/v1/sites?limit=1001", "limit"},
		{"/api/v1/sites?limit=x", "limit"},
		{"/api/v1/sites?cursor=%%%", "query string"},
		{"/api/v1/sites?cursor=!!", "cursor"},
		{"/api/v1/sites?cursor=e30", "cursor"}, // {}: no key
		{"/api/v1/runs?cursor=" + siteCursor, "sorted by"},
		{"/api/v1/runs?sort=size", "sort"},
		{"/api/v1/runs?sort=-started_at&cursor=eyJzIjoiLXN0YXJ0ZWRfYXQiLCJrIjpbIngiLCJ5Il19", "cursor"},
		{"/api/v1/runs?since=yesterday", "since"},
		{"/api/v1/runs?until=2025-03-01", "until"},
		{"/api/v1/runs?since=2025-03-02T00:00:00Z&until=2025-03-01T00:00:00Z", "not after"},
		{"/api/v1/runs?result=GREAT", "result"},
		{"/api/v1/sites/s-b/history?site=s-b", "path"},
	} {
		code, hdr, body := h.send(t, "GET", tc.path, "", nil)
		if code != 400 || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, tc.detail) {
			t.Errorf("GET %s: %d %s, want 400 about %s", tc.path, code, body, tc.detail)
		}
	}
}

func testConditional(t *testing.T, h *harness) {
	h.send(t, "POST", "/api/v1/sites", `{"name":"c-origin"}`, nil)
	if code, _, body := h.send(t, "POST", "/api/v1/trees", `{"name":"c-docs","origin_site":"c-origin","source":"/srv/docs","keep":2}`, nil); code != 201 {
		t.Fatalf("create tree: %d %s", code, body)
	}
	code, hdr, body := h.send(t, "GET", "/api/v1/trees/c-docs", "", nil)
	tag := hdr.Get("ETag")
	if code != 200 || !strings.HasPrefix(tag, `"`) {
		t.Fatalf("GET tree: %d %q %s", code, tag, body)
	}
	for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
		if code, _, body := h.send(t, "GET", "/api/v1/trees/c-docs", "", http.Header{"If-None-Match": {inm}}); code != 304 || body != "" {
			t.Errorf("If-None-Match %s: %d %q, want 304 and no body", inm, code, body)
		}
	}
	if code, _, _ := h.send(t, "GET", "/api/v1/trees/c-docs", "", http.Header{"If-None-Match": {`"other"`}}); code != 200 {
		t.Errorf("If-None-Match other: %d, want 200", code)
	}
	_, lhdr, _ := h.send(t, "GET", "/api/v1/trees", "", nil)
	if code, _, _ := h.send(t, "GET", "/api/v1/trees", "", http.Header{"If-None-Match": {lhdr.Get("ETag")}}); code != 304 {
		t.Errorf("list If-None-Match: %d, want 304", code)
	}

	patch := `{"schedule":"  30 3 * * * ","filters":["- *.tmp"],"enabled":false,"allowed_lag":"6h"}`
	if code, _, body := h.send(t, "PATCH", "/api/v1/trees/c-docs", patch, nil); code != 428 || !strings.Contains(body, "If-Match") {
		t.Errorf("PATCH without If-Match: %d %s", code, body)
	}
	if code, _, body := h.send(t, "PATCH", "/api/v1/trees/c-docs", patch, http.Header{"If-Match": {`"stale"`}}); code != 412 {
		t.Errorf("PATCH with a stale tag: %d %s", code, body)
	}
	for _, bad := range []string{`{"schedule":"every day"}`, `{"keep":0}`, `{"allowed_lag":"soon"}`, `{"allowed_lag":"1s"}`, `{"filters":["? x"]}`, `{"owner":"x"}`, `[]`} {
		if code, _, body := h.send(t, "PATCH", "/api/v1/trees/c-docs", bad, http.Header{"If-Match": {tag}}); code != 400 {
			t.Errorf("PATCH %s: %d %s, want 400", bad, code, body)
		}
	}
	if code, hdr, _ := h.send(t, "GET", "/api/v1/trees/c-docs", "", nil); code != 200 || hdr.Get("ETag") != tag {
		t.Fatalf("refused patches changed the tree: ETag %q, was %q", hdr.Get("ETag"), tag)
	}
	code, phdr, body := h.send(t, "PATCH", "/api/v1/trees/c-docs", patch, http.Header{"If-Match": {tag}})
	if code != 200 {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	tr := decodeAs[map[string]any](t, body)
	if tr["schedule"] != "30 3 * * *" || tr["enabled"] != false || tr["allowed_lag"] != "6h" {
		t.Errorf("patched tree: %s", body)
	}
	_, ghdr, gbody := h.send(t, "GET", "/api/v1/trees/c-docs", "", nil)
	if ghdr.Get("ETag") != phdr.Get("ETag") || ghdr.Get("ETag") == tag || gbody != body {
		t.Errorf("GET after PATCH: ETag %q (PATCH gave %q, before %q); body %s vs %s", ghdr.Get("ETag"), phdr.Get("ETag"), tag, gbody, body)
	}
	// The old tag is stale now, for updates and for If-None-Match.
	if code, _, _ := h.send(t, "PATCH", "/api/v1/trees/c-docs", `{"keep":3}`, http.Header{"If-Match": {tag}}); code != 412 {
		t.Errorf("PATCH with the tag before the change: %d, want 412", code)
	}
	if code, _, _ := h.send(t, "GET", "/api/v1/trees/c-docs", "", http.Header{"If-None-Match": {tag}}); code != 200 {
		t.Errorf("If-None-Match with the tag before the change: %d, want 200", code)
	}
	if code, _, _ := h.send(t, "PATCH", "/api/v1/trees/nope", `{}`, http.Header{"If-Match": {tag}}); code != 404 {
		t.Errorf("PATCH unknown tree: %d, want 404", code)
	}

	_, shdr, _ := h.send(t, "GET", "/api/v1/sites/c-origin", "", nil)
	code, _, body = h.send(t, "PATCH", "/api/v1/sites/c-origin", `{"description":"Origin, rack 4"}`, http.Header{"If-Match": {shdr.Get("ETag")}})
	if code != 200 || decodeAs[inventoryapi.Site](t, body).Description != "Origin, rack 4" {
		t.Errorf("PATCH site: %d %s", code, body)
	}
	if code, _, _ := h.send(t, "PATCH", "/api/v1/sites/c-origin", `{"description":"x"}`, http.Header{"If-Match": {shdr.Get("ETag")}}); code != 412 {
		t.Errorf("PATCH site with a stale tag: %d, want 412", code)
	}
}

func testOverviewControl(t *testing.T, h *harness) {
	ctx := context.Background()
	for _, s := range []string{"o-origin", "o-paris", "o-lyon"} {
		h.send(t, "POST", "/api/v1/sites", `{"name":"`+s+`"}`, nil)
	}
	h.send(t, "POST", "/api/v1/trees", `{"name":"o-docs","origin_site":"o-origin","source":"/srv/docs","schedule":"0 2 * * *","keep":2}`, nil)
	for _, s := range []string{"o-paris", "o-lyon"} {
		h.send(t, "POST", "/api/v1/subscriptions", `{"site":"`+s+`","tree":"o-docs"}`, nil)
	}
	events := bus.NewEvents(h.js, "/test")
	now := time.Now().UTC()
	// v1 72 h ago, v2 48 h ago, v3 now. paris got v1 (71 h ago) and v3;
	// lyon got v1 only and failed towards v2.
	for i, ago := range []time.Duration{72 * time.Hour, 48 * time.Hour, 0} {
		mustOK(t, events.Publish(ctx, bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "o-docs", Site: "o-origin"}, bus.Snapshot{
			V: 1, TriggerID: "t", Tree: "o-docs", Site: "o-origin", Root: root(byte('1' + i)), Files: 1, Bytes: 1, PublishedAt: now.Add(-ago)}))
	}
	for _, r := range []struct {
		id, site, to string
		result       bus.Result
		ago          time.Duration
	}{
		{"o-1", "o-paris", root('1'), bus.ResultCompleted, 71 * time.Hour},
		{"o-2", "o-lyon", root('1'), bus.ResultCompleted, 70 * time.Hour},
		{"o-3", "o-paris", root('3'), bus.ResultCompleted, 0},
		{"o-4", "o-lyon", root('2'), bus.ResultFailed, time.Hour},
	} {
		mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: "o-docs", Site: r.site}, bus.SyncFinished{
			RunID: r.id, TriggerID: "t", Site: r.site, Tree: "o-docs", Kind: bus.CommandApply, To: r.to,
			Result: r.result, FinishedAt: now.Add(-r.ago)}))
	}
	eventually(t, "events recorded", func() (bool, string) {
		_, _, body := h.send(t, "GET", "/api/v1/runs?tree=o-docs", "", nil)
		return len(decodeAs[[]inventoryapi.Run](t, body)) == 4, body
	})
	_, _, body := h.send(t, "GET", "/api/v1/overview", "", nil)
	rows := decodeAs[[]inventoryapi.OverviewRow](t, body)
	cell := map[string]inventoryapi.OverviewRow{}
	for _, r := range rows {
		if r.Tree == "o-docs" {
			cell[r.Site] = r
		}
	}
	paris, lyon := cell["o-paris"], cell["o-lyon"]
	if paris.VersionsBehind != 0 || paris.BehindSince != nil || paris.LastResult != "COMPLETED" || paris.NextRunAt == nil ||
		paris.NextRunAt.Hour() != 2 || paris.NextRunAt.Minute() != 0 || !paris.NextRunAt.After(now) || paris.NextRunAt.After(now.Add(24*time.Hour)) {
		t.Errorf("paris cell: %+v", paris)
	}
	if lyon.VersionsBehind != 2 || lyon.BehindSince == nil || now.Sub(*lyon.BehindSince) < 47*time.Hour || lyon.LastResult != "FAILED" {
		t.Errorf("lyon cell: %+v", lyon)
	}

	_, _, body = h.send(t, "GET", "/api/v1/trees/o-docs/history", "", nil)
	hist := decodeAs[[]inventoryapi.VersionHistory](t, body)
	if len(hist) != 3 || hist[0].Root != root('3') || len(hist[0].Arrivals) != 1 || hist[0].Arrivals[0].Site != "o-paris" ||
		len(hist[1].Arrivals) != 0 || len(hist[2].Arrivals) != 2 || hist[2].Arrivals[0].Site != "o-paris" || hist[2].Arrivals[1].Site != "o-lyon" {
		t.Errorf("history: %s", body)
	}
	_, _, body = h.send(t, "GET", "/api/v1/sites/o-lyon/history", "", nil)
	if runs := decodeAs[[]inventoryapi.Run](t, body); len(runs) != 2 || runs[0].ID != "o-4" || runs[1].ID != "o-2" {
		t.Errorf("lyon history: %s", body)
	}
	if code, _, _ := h.send(t, "GET", "/api/v1/sites/nope/history", "", nil); code != 404 {
		t.Errorf("history of an unknown site: %d", code)
	}
	_, _, body = h.send(t, "GET", "/api/v1/failing", "", nil)
	if runs := decodeAs[[]inventoryapi.Run](t, body); len(runs) != 1 || runs[0].ID != "o-4" {
		t.Errorf("failing: %s", body)
	}

	// lyon is 48 h behind: an alarm under the default 24 h, none with 72 h.
	alarms := func() []inventoryapi.Alarm {
		_, _, body := h.send(t, "GET", "/api/v1/alarms", "", nil)
		var out []inventoryapi.Alarm
		for _, a := range decodeAs[[]inventoryapi.Alarm](t, body) {
			if a.Tree == "o-docs" {
				out = append(out, a)
			}
		}
		return out
	}
	if as := alarms(); len(as) != 1 || as[0].Site != "o-lyon" || as[0].AllowedLagSeconds != 86400 {
		t.Errorf("alarms: %+v", as)
	}
	_, hdr, _ := h.send(t, "GET", "/api/v1/trees/o-docs", "", nil)
	if code, _, body := h.send(t, "PATCH", "/api/v1/trees/o-docs", `{"allowed_lag":"72h"}`, http.Header{"If-Match": {hdr.Get("ETag")}}); code != 200 {
		t.Fatalf("PATCH allowed_lag: %d %s", code, body)
	}
	if as := alarms(); len(as) != 0 {
		t.Errorf("alarms with 72h allowed: %+v", as)
	}

	// Pause and resume.
	code, _, body := h.send(t, "POST", "/api/v1/sites/o-lyon/pause", "", nil)
	if subs := decodeAs[[]inventoryapi.Subscription](t, body); code != 200 || len(subs) != 1 || !subs[0].Paused {
		t.Errorf("pause lyon: %d %s", code, body)
	}
	code, _, body = h.send(t, "POST", "/api/v1/trees/o-docs/pause", "", nil)
	if subs := decodeAs[[]inventoryapi.Subscription](t, body); code != 200 || len(subs) != 2 || !subs[0].Paused || !subs[1].Paused {
		t.Errorf("pause docs: %d %s", code, body)
	}
	_, _, body = h.send(t, "GET", "/api/v1/overview", "", nil)
	for _, r := range decodeAs[[]inventoryapi.OverviewRow](t, body) {
		if r.Tree == "o-docs" && r.Role == "replica" && (!r.Paused || r.NextRunAt != nil) {
			t.Errorf("paused row: %+v", r)
		}
	}
	code, _, body = h.send(t, "POST", "/api/v1/trees/o-docs/resume", "", nil)
	if subs := decodeAs[[]inventoryapi.Subscription](t, body); code != 200 || len(subs) != 2 || subs[0].Paused || subs[1].Paused {
		t.Errorf("resume docs: %d %s", code, body)
	}
	for _, p := range []string{"/api/v1/sites/nope/pause", "/api/v1/trees/nope/resume"} {
		if code, _, _ := h.send(t, "POST", p, "", nil); code != 404 {
			t.Errorf("POST %s: %d, want 404", p, code)
		}
	}
	if code, _, _ := h.send(t, "POST", "/api/v1/sites/Bad_Name/pause", "", nil); code != 400 {
		t.Errorf("pause a bad name: %d, want 400", code)
	}

	// Resuming the tree resumed lyon's subscription, but lyon itself is
	// still paused: no alarm for it even with 1h allowed, until it resumes.
	_, hdr, _ = h.send(t, "GET", "/api/v1/trees/o-docs", "", nil)
	if code, _, body := h.send(t, "PATCH", "/api/v1/trees/o-docs", `{"allowed_lag":"1h"}`, http.Header{"If-Match": {hdr.Get("ETag")}}); code != 200 {
		t.Fatalf("PATCH allowed_lag: %d %s", code, body)
	}
	_, _, body = h.send(t, "GET", "/api/v1/sites/o-lyon", "", nil)
	if site := decodeAs[inventoryapi.Site](t, body); !site.Paused {
		t.Errorf("o-lyon after the tree's resume: %s, want paused", body)
	}
	if as := alarms(); len(as) != 0 {
		t.Errorf("alarms with lyon paused: %+v", as)
	}
	if code, _, body := h.send(t, "POST", "/api/v1/sites/o-lyon/resume", "", nil); code != 200 {
		t.Fatalf("resume lyon: %d %s", code, body)
	}
	if as := alarms(); len(as) != 1 || as[0].Site != "o-lyon" {
		t.Errorf("alarms with lyon resumed: %+v", as)
	}
	// The views sort by tree (the default), by site, or longest behind
	// first; a cursor belongs to its sort.
	places := func(path string) []string {
		t.Helper()
		code, _, body := h.send(t, "GET", path, "", nil)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		var out []string
		for _, r := range decodeAs[[]inventoryapi.OverviewRow](t, body) {
			out = append(out, r.Site)
		}
		return out
	}
	for path, want := range map[string][]string{
		"/api/v1/overview?tree=o-docs":           {"o-origin", "o-lyon", "o-paris"},
		"/api/v1/overview?tree=o-docs&sort=site": {"o-lyon", "o-origin", "o-paris"},
		"/api/v1/overview?tree=o-docs&sort=-lag": {"o-lyon", "o-origin", "o-paris"},
		"/api/v1/alarms?sort=-lag":               {"o-lyon"},
	} {
		if got := places(path); !slices.Equal(got, want) {
			t.Errorf("GET %s: sites %v, want %v", path, got, want)
		}
	}
	lagged := pages[inventoryapi.OverviewRow](t, h, "/api/v1/overview", "&tree=o-docs&sort=-lag", 1, nil)
	if len(lagged) != 3 || lagged[0].Site != "o-lyon" || lagged[0].LagSeconds < lagged[1].LagSeconds {
		t.Errorf("overview by lag in pages of 1: %+v", lagged)
	}
	_, hdr, _ = h.send(t, "GET", "/api/v1/overview?tree=o-docs&limit=1", "", nil)
	if code, _, body := h.send(t, "GET", "/api/v1/overview?tree=o-docs&sort=site&cursor="+url.QueryEscape(hdr.Get("X-Next-Cursor")), "", nil); code != 400 {
		t.Errorf("a tree-sorted cursor with sort=site: %d %s, want 400", code, body)
	}
	if code, _, body := h.send(t, "GET", "/api/v1/alarms?sort=lag", "", nil); code != 400 || !strings.Contains(body, "tree, site, -lag") {
		t.Errorf("alarms?sort=lag: %d %s, want 400 naming the sorts", code, body)
	}

	// The place filters keep one site's or tree's rows.
	for path, want := range map[string]int{
		"/api/v1/alarms?site=o-lyon&tree=o-docs": 1, "/api/v1/alarms?site=o-paris": 0, "/api/v1/alarms?tree=other": 0,
		"/api/v1/failing?site=o-lyon": 1, "/api/v1/failing?site=o-paris&tree=o-docs": 0,
	} {
		_, _, body := h.send(t, "GET", path, "", nil)
		if got := len(decodeAs[[]map[string]any](t, body)); got != want {
			t.Errorf("GET %s: %d rows, want %d: %s", path, got, want, body)
		}
	}

	// A sync stopped PARTIAL (the deletion guard) needs an operator as a
	// failed one does: it is failing too.
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: "o-docs", Site: "o-paris"}, bus.SyncFinished{
		RunID: "o-5", TriggerID: "t", Site: "o-paris", Tree: "o-docs", Kind: bus.CommandApply, To: root('3'),
		Result: bus.ResultPartial, Error: "would delete 120 entries, the tree allows 100", FinishedAt: now}))
	eventually(t, "the partial run recorded", func() (bool, string) {
		_, _, body := h.send(t, "GET", "/api/v1/failing?tree=o-docs", "", nil)
		runs := decodeAs[[]inventoryapi.Run](t, body)
		return len(runs) == 2 && runs[0].ID == "o-4" && runs[1].ID == "o-5" && runs[1].Result == "PARTIAL", body
	})
}

// scanned scans a directory holding files (path: content) and stores its
// manifest in the manifests object store, as an origin does.
func scanned(t *testing.T, h *harness, treeName string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		mustOK(t, os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644))
	}
	m, err := tree.Scan(t.Context(), dir)
	mustOK(t, err)
	var buf bytes.Buffer
	mustOK(t, tree.Encode(&buf, m))
	store, err := h.js.ObjectStore(t.Context(), bus.BucketManifests)
	mustOK(t, err)
	_, err = store.PutBytes(t.Context(), bus.ManifestObject(treeName, m.Root()), buf.Bytes())
	mustOK(t, err)
	return m.Root()
}

func testDryRun(t *testing.T, h *harness) {
	ctx := context.Background()
	for _, s := range []string{"d-origin", "d-paris"} {
		h.send(t, "POST", "/api/v1/sites", `{"name":"`+s+`"}`, nil)
	}
	h.send(t, "POST", "/api/v1/trees", `{"name":"d-docs","origin_site":"d-origin","source":"/srv/docs"}`, nil)
	h.send(t, "POST", "/api/v1/subscriptions", `{"site":"d-paris","tree":"d-docs"}`, nil)
	dry := func() (int, inventoryapi.DryRun, string) {
		code, _, body := h.send(t, "GET", "/api/v1/subscriptions/d-paris/d-docs/dry-run", "", nil)
		var d inventoryapi.DryRun
		if code == 200 {
			d = decodeAs[inventoryapi.DryRun](t, body)
		}
		return code, d, body
	}
	if code, d, body := dry(); code != 200 || d.To != "" || d.Set != 0 || d.Remove != 0 {
		t.Errorf("dry run before any version: %d %s", code, body)
	}

	v1 := scanned(t, h, "d-docs", map[string]string{"a.txt": "aaaaa", "b.txt": "bbb"})
	v2 := scanned(t, h, "d-docs", map[string]string{"a.txt": "aaaaaaa", "c.txt": "cccc"})
	events := bus.NewEvents(h.js, "/test")
	now := time.Now().UTC()
	for i, v := range []string{v1, v2} {
		mustOK(t, events.Publish(ctx, bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "d-docs", Site: "d-origin"}, bus.Snapshot{
			V: 1, TriggerID: "t", Tree: "d-docs", Site: "d-origin", Root: v, Files: 2, Bytes: 8, PublishedAt: now.Add(time.Duration(i-2) * time.Hour)}))
	}
	// Never synced: everything of v2 is to be written.
	eventually(t, "versions recorded", func() (bool, string) {
		code, d, body := dry()
		return code == 200 && d.From == "" && d.To == v2, body
	})
	if _, d, body := dry(); d.Set != 2 || d.Files != 2 || d.Bytes != 11 || d.Remove != 0 {
		t.Errorf("dry run from nothing: %s", body)
	}
	// At v1: a.txt changes, c.txt is new, b.txt goes.
	mustOK(t, events.Publish(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: "d-docs", Site: "d-paris"}, bus.SyncFinished{
		RunID: "d-1", TriggerID: "t", Site: "d-paris", Tree: "d-docs", Kind: bus.CommandApply, To: v1,
		Result: bus.ResultCompleted, FinishedAt: now.Add(-90 * time.Minute)}))
	eventually(t, "paris at v1", func() (bool, string) {
		code, d, body := dry()
		return code == 200 && d.From == v1, body
	})
	if _, d, body := dry(); d.To != v2 || d.Set != 2 || d.Files != 2 || d.Bytes != 11 || d.Remove != 1 {
		t.Errorf("dry run from v1: %s", body)
	}

	// A version whose manifest is not stored, a subscription that does
	// not exist, a bad name.
	mustOK(t, events.Publish(ctx, bus.EntitySnapshot, bus.ActionPublished, bus.About{Tree: "d-docs", Site: "d-origin"}, bus.Snapshot{
		V: 1, TriggerID: "t", Tree: "d-docs", Site: "d-origin", Root: root('9'), Files: 1, Bytes: 1, PublishedAt: now}))
	eventually(t, "v3 recorded", func() (bool, string) {
		code, _, body := dry()
		return code == 404 && strings.Contains(body, "manifest"), body
	})
	for path, want := range map[string]int{
		"/api/v1/subscriptions/d-origin/d-docs/dry-run": 404,
		"/api/v1/subscriptions/d-paris/nope/dry-run":    404,
		"/api/v1/subscriptions/D_Paris/d-docs/dry-run":  400,
	} {
		if code, _, body := h.send(t, "GET", path, "", nil); code != want {
			t.Errorf("GET %s: %d %s, want %d", path, code, body, want)
		}
	}
}
