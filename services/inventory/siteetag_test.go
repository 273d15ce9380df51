package inventory_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// TestSiteTagIgnoresHeartbeat: an agent's report moves the site's
// last_heartbeat but not its entity tag, so an administrator's If-Match
// read before the report still holds; a change of a setting does move it.
func TestSiteTagIgnoresHeartbeat(t *testing.T) {
	h := start(t, databases[0].url(t))
	seed(t, h)
	get := func(path string) (string, string) {
		t.Helper()
		code, hdr, body := h.send(t, http.MethodGet, path, "", nil)
		if code != http.StatusOK || hdr.Get("ETag") == "" {
			t.Fatalf("GET %s: %d %v %s", path, code, hdr, body)
		}
		return hdr.Get("ETag"), body
	}
	before, _ := get("/api/v1/sites/origin")
	listBefore, _ := get("/api/v1/sites")

	publishFrom(t, h, "snap-1", "/pulpdist/siteagent/origin", bus.EntitySnapshot, bus.ActionPublished,
		bus.Snapshot{V: bus.MessageVersion, Tree: "docs", Site: "origin", Root: root('a'), PublishedAt: time.Now().UTC()})
	eventually(t, "origin's heartbeat", func() (bool, string) {
		_, body := get("/api/v1/sites/origin")
		return decodeAs[inventoryapi.Site](t, body).LastHeartbeat != nil, body
	})
	after, _ := get("/api/v1/sites/origin")
	if after != before {
		t.Fatalf("a heartbeat changed the site's tag: %s, before %s", after, before)
	}
	if listAfter, _ := get("/api/v1/sites"); listAfter == listBefore {
		t.Error("the site list kept its tag though a heartbeat in its body moved")
	}

	code, hdr, body := h.send(t, http.MethodPatch, "/api/v1/sites/origin", `{"location":"Lyon"}`, http.Header{"If-Match": {before}})
	if code != http.StatusOK || hdr.Get("ETag") == before || decodeAs[inventoryapi.Site](t, body).LastHeartbeat == nil {
		t.Fatalf("PATCH with the tag read before the heartbeat: %d %v %s", code, hdr, body)
	}
	if now, _ := get("/api/v1/sites/origin"); now != hdr.Get("ETag") {
		t.Errorf("GET tag %s, PATCH answered %s", now, hdr.Get("ETag"))
	}
	code, _, body = h.send(t, http.MethodPatch, "/api/v1/sites/origin", `{"location":"Paris"}`, http.Header{"If-Match": {before}})
	if code != http.StatusPreconditionFailed {
		t.Fatalf("PATCH with a tag from before a change of setting: %d %s, want 412", code, body)
	}
}

// TestRacingUpdatesOneWins: updates sent at once with the same If-Match
// are serialised by the row lock: exactly one is applied, every other one
// is a 412, and the stored tree is the winner's.
func TestRacingUpdatesOneWins(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			h := start(t, db.url(t))
			seed(t, h)
			_, hdr, _ := h.send(t, http.MethodGet, "/api/v1/trees/docs", "", nil)
			tag := hdr.Get("ETag")
			const n = 8
			codes := make([]int, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { // no t.Fatal off the test goroutine: errors are kept
					req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, h.url+"/api/v1/trees/docs", strings.NewReader(fmt.Sprintf(`{"keep":%d}`, 10+i)))
					if err != nil {
						errs[i] = err
						return
					}
					req.Header.Set("Authorization", "Bearer "+testAdminToken)
					req.Header.Set("If-Match", tag)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						errs[i] = err
						return
					}
					resp.Body.Close()
					codes[i] = resp.StatusCode
				})
			}
			wg.Wait()
			mustOK(t, errors.Join(errs...))
			winner := -1
			for i, c := range codes {
				switch {
				case c == http.StatusOK && winner < 0:
					winner = i
				case c != http.StatusPreconditionFailed:
					t.Errorf("update %d answered %d; want one 200 and 412 for the rest (all: %v)", i, c, codes)
				}
			}
			if winner < 0 {
				t.Fatalf("no update applied: %v", codes)
			}
			tree, err := h.client.Tree(t.Context(), "docs")
			mustOK(t, err)
			if tree.Keep != 10+winner {
				t.Fatalf("keep = %d, want the winner's %d", tree.Keep, 10+winner)
			}
		})
	}
}
