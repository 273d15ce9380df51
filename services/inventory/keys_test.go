package inventory_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/services/inventory"
)

// signer is a key pair's public half, as a client sends it.
type signer struct {
	id  string
	pem string
}

func newSigner(t *testing.T) signer {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	mustOK(t, err)
	text, err := bus.EncodeSigningKey(pub)
	mustOK(t, err)
	return signer{id: bus.SigningKeyID(pub), pem: string(text)}
}

// bucket returns the signing-keys bucket as key → value.
func (h *harness) bucket(t *testing.T) map[string]string {
	t.Helper()
	kv, err := h.js.KeyValue(t.Context(), bus.BucketSigningKeys)
	mustOK(t, err)
	out := map[string]string{}
	lister, err := kv.ListKeys(t.Context())
	mustOK(t, err)
	for k := range lister.Keys() {
		e, err := kv.Get(t.Context(), k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted between the listing and the read (republish)
		}
		mustOK(t, err)
		out[k] = string(e.Value())
	}
	return out
}

// keyEvent returns the data of the last event of entity key and action.
func (h *harness) keyEvent(t *testing.T, action string) (inventoryapi.SigningKey, error) {
	t.Helper()
	st, err := h.js.Stream(t.Context(), bus.StreamEvents)
	mustOK(t, err)
	raw, err := st.GetLastMsgForSubject(t.Context(), bus.EventFilter(bus.EntityKey, action))
	if err != nil {
		return inventoryapi.SigningKey{}, err
	}
	ev, k, err := bus.DecodeEvent[inventoryapi.SigningKey](raw.Data)
	if err != nil {
		return k, err
	}
	if ev.Source() != inventory.EventSource || ev.Subject() != "key/"+k.ID {
		return k, errors.New("event source " + ev.Source() + ", subject " + ev.Subject())
	}
	return k, nil
}

func TestSigningKeys(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { testSigningKeys(t, start(t, db.url(t))) })
	}
}

func testSigningKeys(t *testing.T, h *harness) {
	ctx := context.Background()
	a, b := newSigner(t), newSigner(t)

	keys, err := h.client.SigningKeys(ctx)
	mustOK(t, err)
	if len(keys) != 0 {
		t.Fatalf("keys of a new inventory = %+v", keys)
	}
	if got := h.bucket(t); len(got) != 0 {
		t.Fatalf("bucket of a new inventory = %v", got)
	}

	// A key sent with extra white space is stored in canonical PEM.
	body, err := json.Marshal(inventoryapi.SigningKeyCreate{Name: "signer-a", PublicKey: "\n" + a.pem + "\n\n"})
	mustOK(t, err)
	code, raw := h.do(t, http.MethodPost, "/api/v1/keys", string(body))
	if code != http.StatusCreated {
		t.Fatalf("add key: %d %s", code, raw)
	}
	var ka inventoryapi.SigningKey
	mustOK(t, json.Unmarshal([]byte(raw), &ka))
	if ka.ID != a.id || ka.Name != "signer-a" || ka.PublicKey != a.pem || ka.CreatedAt.IsZero() || ka.RevokedAt != nil {
		t.Fatalf("added key = %+v, want id %s", ka, a.id)
	}
	// Once the answer is in, the bucket holds the key.
	if got := h.bucket(t); !maps.Equal(got, map[string]string{a.id: a.pem}) {
		t.Fatalf("bucket after add = %v", got)
	}
	eventually(t, "key.added event", func() (bool, string) {
		ev, err := h.keyEvent(t, bus.ActionAdded)
		return err == nil && ev.ID == a.id && ev.Name == "signer-a" && ev.PublicKey == a.pem, jsonString(ev, err)
	})

	// Adding it again is idempotent: 200, the key as first stored.
	code, raw = h.do(t, http.MethodPost, "/api/v1/keys", string(body))
	var again inventoryapi.SigningKey
	if code != http.StatusOK || json.Unmarshal([]byte(raw), &again) != nil || !again.CreatedAt.Equal(ka.CreatedAt) || again.ID != a.id {
		t.Fatalf("add again: %d %s", code, raw)
	}
	kb, err := h.client.AddSigningKey(ctx, "signer-b", b.pem)
	mustOK(t, err)
	if got := h.bucket(t); !maps.Equal(got, map[string]string{a.id: a.pem, b.id: b.pem}) {
		t.Fatalf("bucket after a second key = %v", got)
	}

	testBadKeys(t, h, a, b)

	// Revoking a: gone from the bucket at once, listed with revoked_at.
	code, raw = h.do(t, http.MethodPost, "/api/v1/keys/"+a.id+"/revoke", "")
	var ra inventoryapi.SigningKey
	if code != http.StatusOK || json.Unmarshal([]byte(raw), &ra) != nil || ra.ID != a.id || ra.RevokedAt == nil {
		t.Fatalf("revoke: %d %s", code, raw)
	}
	if got := h.bucket(t); !maps.Equal(got, map[string]string{b.id: b.pem}) {
		t.Fatalf("bucket after revoking a = %v", got)
	}
	eventually(t, "key.revoked event", func() (bool, string) {
		ev, err := h.keyEvent(t, bus.ActionRevoked)
		return err == nil && ev.ID == a.id && ev.RevokedAt != nil && ev.RevokedAt.Equal(*ra.RevokedAt), jsonString(ev, err)
	})
	// Revoking again changes nothing.
	ra2, err := h.client.RevokeSigningKey(ctx, a.id)
	mustOK(t, err)
	if ra2.RevokedAt == nil || !ra2.RevokedAt.Equal(*ra.RevokedAt) {
		t.Fatalf("revoked again: %+v, want revoked_at %s", ra2, ra.RevokedAt)
	}
	// A revoked key cannot come back, under any name.
	for _, name := range []string{"signer-a", "signer-c"} {
		_, err = h.client.AddSigningKey(ctx, name, a.pem)
		if p := problem(err); p == nil || p.Status != http.StatusConflict || !strings.Contains(p.Detail, "revoked") {
			t.Fatalf("re-adding a revoked key as %s: %v", name, err)
		}
	}
	keys, err = h.client.SigningKeys(ctx)
	mustOK(t, err)
	if len(keys) != 2 || keys[0].ID != a.id || keys[0].RevokedAt == nil || keys[1] != kb {
		t.Fatalf("keys = %s", jsonString(keys, nil))
	}
	if got := h.bucket(t); !maps.Equal(got, map[string]string{b.id: b.pem}) {
		t.Fatalf("bucket after the refused adds = %v", got)
	}
}

func problem(err error) *inventoryapi.Problem {
	var p *inventoryapi.Problem
	if errors.As(err, &p) {
		return p
	}
	return nil
}

// testBadKeys: every refusal says why, and changes neither the keys nor
// the bucket. a and b are registered as signer-a and signer-b.
func testBadKeys(t *testing.T, h *harness, a, b signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	mustOK(t, err)
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	mustOK(t, err)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mustOK(t, err)
	ecDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	mustOK(t, err)
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}))
	c := newSigner(t)
	body := func(name, key string) string {
		b, err := json.Marshal(inventoryapi.SigningKeyCreate{Name: name, PublicKey: key})
		mustOK(t, err)
		return string(b)
	}
	before := h.bucket(t)
	for _, tc := range []struct {
		name, body string
		status     int
		detail     string
	}{
		{"malformed json", `{"name":`, 400, "malformed request"},
		{"unknown field", `{"name":"x","public_key":"","id":"abc"}`, 400, `unknown field "id"`},
		{"no name", body("", c.pem), 400, "invalid name"},
		{"bad name", body("Signer A", c.pem), 400, "invalid name"},
		{"no key", body("signer-c", ""), 400, "public_key: invalid signing key: empty"},
		{"not pem", body("signer-c", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"), 400, "not PEM"},
		{"private key", body("signer-c", privPEM), 400, `"PRIVATE KEY": send the public key only`},
		{"ecdsa key", body("signer-c", ecPEM), 400, "want an ed25519 key"},
		{"two keys", body("signer-c", c.pem+b.pem), 400, "exactly one public key"},
		{"corrupt base64", body("signer-c", "-----BEGIN PUBLIC KEY-----\n%%%\n-----END PUBLIC KEY-----\n"), 400, "does not decode"},
		{"key under another name", body("signer-c", b.pem), 409, `registered as "signer-b"`},
		{"name of another key", body("signer-b", c.pem), 409, `the name "signer-b" belongs to key ` + b.id},
		{"revoke a bad id", "", 400, "32 lower-case hex digits"},
		{"revoke an unknown key", "", 404, "signing key not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, path := http.MethodPost, "/api/v1/keys"
			switch tc.name {
			case "revoke a bad id":
				path = "/api/v1/keys/" + strings.ToUpper(a.id) + "/revoke"
			case "revoke an unknown key":
				path = "/api/v1/keys/" + c.id + "/revoke"
			}
			code, hdr, raw := h.doHeader(t, method, path, tc.body)
			var p inventoryapi.Problem
			if code != tc.status || hdr.Get("Content-Type") != "application/problem+json" ||
				json.Unmarshal([]byte(raw), &p) != nil || !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("%s %s: %d %s, want %d with %q", method, path, code, raw, tc.status, tc.detail)
			}
			if strings.Contains(raw, "MC4CAQAw") {
				t.Fatalf("the answer quotes a private key: %s", raw)
			}
		})
	}
	keys, err := h.client.SigningKeys(context.Background())
	mustOK(t, err)
	if len(keys) != 2 {
		t.Fatalf("keys after refused requests = %s", jsonString(keys, nil))
	}
	if got := h.bucket(t); !maps.Equal(got, before) {
		t.Fatalf("bucket after refused requests = %v, was %v", got, before)
	}
}

// TestSigningKeysRepublished: the bucket follows the database whatever
// happens to it: at start, a stray entry goes and a missing key comes
// back; while running, the same within the republish interval.
func TestSigningKeysRepublished(t *testing.T) {
	natsURL := natstest.Start(t)
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "inventory.db")
	h := startWith(t, inventory.Config{NATSURL: natsURL, DatabaseURL: dbURL})
	a := newSigner(t)
	_, err := h.client.AddSigningKey(context.Background(), "signer-a", a.pem)
	mustOK(t, err)
	h.stop()

	kv, err := h.js.KeyValue(t.Context(), bus.BucketSigningKeys)
	mustOK(t, err)
	mustOK(t, kv.Delete(t.Context(), a.id))
	_, err = kv.Put(t.Context(), "stray", []byte("not a key"))
	mustOK(t, err)
	want := map[string]string{a.id: a.pem}

	h = startWith(t, inventory.Config{NATSURL: natsURL, DatabaseURL: dbURL, KeyRepublish: 20 * time.Millisecond})
	// New publishes before it returns.
	if got := h.bucket(t); !maps.Equal(got, want) {
		t.Fatalf("bucket after restart = %v, want %v", got, want)
	}
	mustOK(t, kv.Delete(t.Context(), a.id))
	_, err = kv.Put(t.Context(), newSigner(t).id, []byte(newSigner(t).pem))
	mustOK(t, err)
	eventually(t, "bucket repaired", func() (bool, string) {
		got := h.bucket(t)
		return maps.Equal(got, want), jsonString(slices.Sorted(maps.Keys(got)), nil)
	})
}
