package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// FuzzDecode feeds request bodies from outside to the strict decoder: it
// never panics, refuses with ErrInvalid, and what it accepts encodes to
// a body it decodes back to the same request (an empty list of sites and
// none are the same request).
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"tree":"demo"}`, `{"tree":"demo","sites":["lyon","oslo"],"confirm_deletions":true}`,
		``, ` `, `{}`, `{"tree":7}`, `{"tree":"demo"} {}`, `{"tree":"demo","x":1}`, `[]`, `null`, `{"sites":null}`, `{"tree":"x","sites":[]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r bus.TriggerRequest
		if err := decode(data, &r, false); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode %q: %v, not ErrInvalid", data, err)
			}
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back bus.TriggerRequest
		if err := decode(again, &back, false); err != nil {
			t.Fatalf("%q decoded as %+v, which encodes as %s, refused: %v", data, r, again, err)
		}
		if b, _ := json.Marshal(back); !bytes.Equal(b, again) {
			t.Fatalf("%q decoded as %+v, encoded as %s, decoded as %+v", data, r, again, back)
		}
	})
}
