package bus_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
)

func newKey(t testing.TB) (ed25519.PublicKey, []byte) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text, err := bus.EncodeSigningKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pub, text
}

// TestSigningKeyID pins the fingerprint: it is part of the contract (ids
// in the inventory, keys in the bucket), so it must never change.
func TestSigningKeyID(t *testing.T) {
	pub := make(ed25519.PublicKey, ed25519.PublicKeySize)
	for i := range pub {
		pub[i] = byte(i)
	}
	// The first 16 bytes of SHA-256(00 01 … 1f).
	if got, want := bus.SigningKeyID(pub), "630dcd2966c4336691125448bbb25b4f"; got != want {
		t.Fatalf("SigningKeyID = %s, want %s", got, want)
	}
	if err := bus.ValidateSigningKeyID(bus.SigningKeyID(pub)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "630dcd2966c4336691125448bbb25b4", "630DCD2966C4336691125448BBB25B4F", "630dcd2966c4336691125448bbb25b4f0", "../../../../etc/passwd0000000000", "630dcd2966c43366.1125448bbb25b4f"} {
		if err := bus.ValidateSigningKeyID(bad); !errors.Is(err, bus.ErrInvalidSigningKey) {
			t.Errorf("ValidateSigningKeyID(%q) = %v", bad, err)
		}
	}
}

func TestParseSigningKey(t *testing.T) {
	pub, text := newKey(t)
	_, other := newKey(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	der, _ := pem.Decode(text)
	withHeader := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Comment": "x"}, Bytes: der.Bytes})
	trailing := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: append(slices.Clone(der.Bytes), 0)})
	crlf := bytes.ReplaceAll(text, []byte("\n"), []byte("\r\n"))

	for _, tc := range []struct {
		name string
		in   []byte
		err  string
	}{
		{name: "canonical", in: text},
		{name: "white space around", in: append(append([]byte("\n  \t"), text...), "\n\n"...)},
		{name: "crlf line ends", in: crlf},
		{name: "empty", in: nil, err: "empty"},
		{name: "blank", in: []byte(" \n\t"), err: "empty"},
		{name: "not pem", in: []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"), err: "not PEM"},
		{name: "text before", in: append([]byte("my key:\n"), text...), err: "not PEM"},
		{name: "bad base64", in: []byte("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n"), err: "does not decode"},
		{name: "no end line", in: bytes.Split(text, []byte("-----END"))[0], err: "does not decode"},
		{name: "private key", in: privPEM, err: `"PRIVATE KEY": send the public key only`},
		{name: "certificate", in: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), err: `"CERTIFICATE", want "PUBLIC KEY"`},
		{name: "headers", in: withHeader, err: "headers"},
		{name: "two keys", in: append(slices.Clone(text), other...), err: "exactly one public key"},
		{name: "text after", in: append(slices.Clone(text), "thanks\n"...), err: "text after"},
		{name: "trailing der", in: trailing, err: "not a PKIX public key"},
		{name: "garbage der", in: []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), err: "not a PKIX public key"},
		{name: "ecdsa", in: ecPEM, err: "want an ed25519 key"},
		{name: "too big", in: append(slices.Clone(text), bytes.Repeat([]byte(" "), bus.MaxSigningKeyPEM)...), err: "at most 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bus.ParseSigningKey(tc.in)
			if tc.err == "" {
				if err != nil || !got.Equal(pub) {
					t.Fatalf("ParseSigningKey = %x, %v; want the key", got, err)
				}
				return
			}
			if !errors.Is(err, bus.ErrInvalidSigningKey) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("ParseSigningKey err = %v, want ErrInvalidSigningKey containing %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "MC4CAQAw") || strings.Contains(err.Error(), "MCowBQYDK2Vw") {
				t.Fatalf("the error quotes the key text: %v", err)
			}
		})
	}
}

func FuzzParseSigningKey(f *testing.F) {
	_, text := newKey(f)
	for _, s := range [][]byte{text, nil, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), append(slices.Clone(text), text...)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		pub, err := bus.ParseSigningKey(in)
		if err != nil {
			if !errors.Is(err, bus.ErrInvalidSigningKey) {
				t.Fatalf("error not marked invalid: %v", err)
			}
			return
		}
		// What parses re-encodes to a canonical form that parses to the
		// same key.
		canon, err := bus.EncodeSigningKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		again, err := bus.ParseSigningKey(canon)
		if err != nil || !again.Equal(pub) {
			t.Fatalf("canonical form %q: %x, %v", canon, again, err)
		}
	})
}

func TestSigningKeyFromEntry(t *testing.T) {
	pub, text := newKey(t)
	if got, err := bus.SigningKeyFromEntry(bus.SigningKeyID(pub), text); err != nil || !got.Equal(pub) {
		t.Fatalf("good entry: %x, %v", got, err)
	}
	_, other := newKey(t)
	if _, err := bus.SigningKeyFromEntry(bus.SigningKeyID(pub), other); !errors.Is(err, bus.ErrInvalidSigningKey) || !strings.Contains(err.Error(), "holds the key") {
		t.Fatalf("entry under another key's id: %v", err)
	}
	if _, err := bus.SigningKeyFromEntry(bus.SigningKeyID(pub), []byte("junk")); !errors.Is(err, bus.ErrInvalidSigningKey) {
		t.Fatalf("junk entry: %v", err)
	}
}

// bucketKeys reads the bucket as a map from key to value.
func bucketKeys(t *testing.T, kv jetstream.KeyValue) map[string]string {
	t.Helper()
	out := map[string]string{}
	lister, err := kv.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for k := range lister.Keys() {
		e, err := kv.Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = string(e.Value())
	}
	return out
}

func TestMirrorSigningKeys(t *testing.T) {
	js := connect(t)
	ctx := t.Context()
	kv, err := js.KeyValue(ctx, bus.BucketSigningKeys)
	if err != nil {
		t.Fatal(err)
	}
	a, aText := newKey(t)
	b, bText := newKey(t)
	c, cText := newKey(t)
	ida, idb, idc := bus.SigningKeyID(a), bus.SigningKeyID(b), bus.SigningKeyID(c)
	mirror := func(keys ...[]byte) {
		t.Helper()
		if err := bus.MirrorSigningKeys(ctx, kv, keys); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(want map[string][]byte) {
		t.Helper()
		got := bucketKeys(t, kv)
		if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
			t.Fatalf("bucket keys %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		for k, v := range want {
			if got[k] != string(v) {
				t.Fatalf("bucket %s = %q, want %q", k, got[k], v)
			}
		}
	}

	mirror() // an empty bucket stays empty
	expect(map[string][]byte{})
	// Keys given with white space are stored in canonical form.
	mirror(append([]byte("\n"), aText...), bText)
	expect(map[string][]byte{ida: aText, idb: bText})
	eb, err := kv.Get(ctx, idb)
	if err != nil {
		t.Fatal(err)
	}
	mirror(bText, cText)
	expect(map[string][]byte{idb: bText, idc: cText})
	// A key that stays is not rewritten.
	if eb2, err := kv.Get(ctx, idb); err != nil || eb2.Revision() != eb.Revision() {
		t.Fatalf("key b rewritten: revision %d → %v (%v)", eb.Revision(), eb2, err)
	}
	// A stray entry (written by hand) is removed.
	if _, err := kv.Put(ctx, "stray", []byte("junk")); err != nil {
		t.Fatal(err)
	}
	mirror(bText, cText)
	expect(map[string][]byte{idb: bText, idc: cText})
	// A bad key changes nothing.
	if err := bus.MirrorSigningKeys(ctx, kv, [][]byte{aText, []byte("junk")}); !errors.Is(err, bus.ErrInvalidSigningKey) {
		t.Fatalf("mirror with a bad key: %v", err)
	}
	expect(map[string][]byte{idb: bText, idc: cText})
	mirror()
	expect(map[string][]byte{})

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := bus.MirrorSigningKeys(cancelled, kv, [][]byte{aText}); err == nil {
		t.Fatal("mirror with a cancelled context succeeded")
	}
}
