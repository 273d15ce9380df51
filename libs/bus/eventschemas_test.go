package bus_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// updateSchemas rewrites api/events from api/asyncapi.yaml:
// go test ./libs/bus -run TestEventSchemas -update
var updateSchemas = flag.Bool("update", false, "rewrite api/events/*.json from api/asyncapi.yaml")

// eventSchemasDir holds one standalone JSON Schema per event type.
const eventSchemasDir = "../../api/events"

// TestEventSchemas checks that api/events holds, for every event the
// services publish and nothing else, the JSON Schema of the whole event
// (CloudEvents envelope, type, subject and data) as api/asyncapi.yaml
// describes its message: the document is the one source, the files are
// derived from it for tools that want a plain schema per event type.
func TestEventSchemas(t *testing.T) {
	doc := loadAsyncAPI(t)
	want := map[string][]byte{}
	for _, c := range eventCases {
		typ := bus.EventType(c.entity, c.action)
		_, ch := channelByAddress(t, doc, bus.EventSubject(c.entity, c.action, c.about))
		if ch == nil {
			t.Fatalf("%s: no channel", typ)
		}
		var msg any
		for _, m := range node(ch, "messages").(map[string]any) {
			msg = resolve(t, doc, m)
		}
		schema := map[string]any{
			"$schema":     "https://json-schema.org/draft/2020-12/schema",
			"title":       typ,
			"description": strings.TrimSpace(toString(node(ch, "description"))) + " Derived from api/asyncapi.yaml; NATS subject " + bus.EventSubject(c.entity, c.action, c.about) + ".",
		}
		defs := map[string]any{}
		schema["allOf"] = localRefs(t, doc, node(msg, "payload", "allOf"), defs)
		schema["$defs"] = defs
		b, err := json.MarshalIndent(schema, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		want[typ+".json"] = append(b, '\n')
	}
	if *updateSchemas {
		if err := os.MkdirAll(eventSchemasDir, 0o755); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(eventSchemasDir, "*.json"))
		for _, f := range old {
			if _, ok := want[filepath.Base(f)]; !ok {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		}
		for name, b := range want {
			if err := os.WriteFile(filepath.Join(eventSchemasDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	have, err := filepath.Glob(filepath.Join(eventSchemasDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range have {
		if _, ok := want[filepath.Base(f)]; !ok {
			t.Errorf("%s: no event of that type is published (remove it: go test ./libs/bus -run TestEventSchemas -update)", f)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		got, err := os.ReadFile(filepath.Join(eventSchemasDir, name))
		if err != nil || !bytes.Equal(got, want[name]) {
			t.Errorf("api/events/%s is missing or differs from api/asyncapi.yaml (%v): go test ./libs/bus -run TestEventSchemas -update", name, err)
		}
	}
}

// localRefs copies v, turning every "#/components/schemas/X" reference
// into "#/$defs/X" and copying X (and what it refers to) into defs.
func localRefs(t *testing.T, doc, v any, defs map[string]any) any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if ref, ok := e.(string); k == "$ref" && ok {
				name, found := strings.CutPrefix(ref, "#/components/schemas/")
				if !found {
					t.Fatalf("$ref %q outside components/schemas", ref)
				}
				if _, done := defs[name]; !done {
					defs[name] = nil // before the walk: schemas may refer to each other
					defs[name] = localRefs(t, doc, node(doc, "components", "schemas", name), defs)
				}
				out[k] = "#/$defs/" + name
				continue
			}
			out[k] = localRefs(t, doc, e, defs)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = localRefs(t, doc, e, defs)
		}
		return out
	default:
		return v
	}
}
