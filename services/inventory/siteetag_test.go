package inventory_test

import (
	"net/http"
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
