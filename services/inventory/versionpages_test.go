package inventory_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// TestVersionPages: a tree's versions and its history page in the
// database by publication time, both ways, within since/until, and the
// history's arrivals are those of the versions on the page.
func TestVersionPages(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			h := start(t, db.url(t))
			seed(t, h)
			ctx := context.Background()
			t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			for i, c := range []byte{'a', 'b', 'c', 'd'} {
				publishFrom(t, h, "snap-"+string(c), "/pulpdist/siteagent/origin", bus.EntitySnapshot, bus.ActionPublished,
					bus.Snapshot{V: bus.MessageVersion, Tree: "docs", Site: "origin", Root: root(c), PublishedAt: t0.Add(time.Duration(i) * time.Hour)})
			}
			// replica-a got b.
			fin := t0.Add(90 * time.Minute)
			publishFrom(t, h, "run-b", "/pulpdist/siteagent/replica-a", bus.EntitySync, bus.ActionFinished,
				bus.SyncFinished{RunID: "run-b", Site: "replica-a", Tree: "docs", Kind: bus.CommandApply, To: root('b'), Result: bus.ResultCompleted, FinishedAt: fin})
			eventually(t, "four versions and the run", func() (bool, string) {
				vs, err := h.client.Versions(ctx, "docs")
				rs, rerr := h.client.Runs(ctx, "docs", "replica-a")
				return err == nil && len(vs) == 4 && rerr == nil && len(rs) == 1, jsonString(vs, err)
			})

			roots := func(vs []inventoryapi.Version) []string {
				out := make([]string, len(vs))
				for i, v := range vs {
					out[i] = v.Root[:1]
				}
				return out
			}
			for _, tc := range []struct {
				query string
				want  []string
			}{
				{"", []string{"d", "c", "b", "a"}},
				{"&sort=published_at", []string{"a", "b", "c", "d"}},
				{"&since=" + t0.Add(time.Hour).Format(time.RFC3339) + "&until=" + t0.Add(3*time.Hour).Format(time.RFC3339), []string{"c", "b"}},
			} {
				if got := roots(pages[inventoryapi.Version](t, h, "/api/v1/trees/docs/versions", tc.query, 1, nil)); !slices.Equal(got, tc.want) {
					t.Errorf("versions%s in pages of 1 = %v, want %v", tc.query, got, tc.want)
				}
			}

			hs := pages[inventoryapi.VersionHistory](t, h, "/api/v1/trees/docs/history", "", 3, nil)
			if len(hs) != 4 {
				t.Fatalf("history = %+v", hs)
			}
			for _, v := range hs {
				want := 0
				if v.Root == root('b') {
					want = 1
				}
				if len(v.Arrivals) != want || (want == 1 && (v.Arrivals[0].Site != "replica-a" || !v.Arrivals[0].ArrivedAt.Equal(fin))) {
					t.Errorf("arrivals of %s = %+v", v.Root[:1], v.Arrivals)
				}
			}
			// A sort the list does not have is a 400.
			code, hdr, body := h.send(t, http.MethodGet, "/api/v1/trees/docs/versions?sort=up", "", nil)
			if code != http.StatusBadRequest {
				t.Errorf("sort=up: %d %v %s, want 400", code, hdr, body)
			}
		})
	}
}
