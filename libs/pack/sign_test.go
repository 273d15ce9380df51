package pack

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"testing"
)

func signedPack(t *testing.T, files map[string][]byte, key ed25519.PrivateKey) []byte {
	t.Helper()
	m, s := build(t, files)
	var buf bytes.Buffer
	res, err := Build(context.Background(), &buf, Options{Tree: "demo", To: m, Key: key, TempDir: t.TempDir()}, s.open)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != int64(buf.Len()) {
		t.Fatalf("Build returned %d, wrote %d", res.Bytes, buf.Len())
	}
	return buf.Bytes()
}

func readOpened(t *testing.T, data []byte, trusted []ed25519.PublicKey) error {
	t.Helper()
	pr, err := Open(bytes.NewReader(data), Limits{}, trusted)
	if err != nil {
		return err
	}
	if _, err := pr.Target(nil, nil); err != nil {
		return err
	}
	for {
		_, r, err := pr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
	}
}

func TestSignedPacks(t *testing.T) {
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	otherPub, otherPriv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"a.txt": []byte("alpha"), "dir/b.txt": []byte("beta")}
	signed := signedPack(t, files, priv)
	m, s := build(t, files)
	unsigned, _ := buildPack(t, nil, m, s)

	// The envelope of another pack (same key) does not verify for this one.
	otherFiles := map[string][]byte{"a.txt": []byte("ALPHA")}
	other := signedPack(t, otherFiles, priv)
	spliced := append(append([]byte{}, other[:envelopeSize]...), signed[envelopeSize:]...)
	flipped := append([]byte{}, signed...)
	flipped[envelopeSize-1] ^= 1 // last signature byte

	for _, tc := range []struct {
		name    string
		data    []byte
		trusted []ed25519.PublicKey
		want    error
	}{
		{"signed, trusted", signed, []ed25519.PublicKey{otherPub, pub}, nil},
		{"signed, no keys configured", signed, nil, nil},
		{"unsigned, no keys configured", unsigned, nil, nil},
		{"unsigned, keys required", unsigned, []ed25519.PublicKey{pub}, ErrSignature},
		{"untrusted signer", signed, []ed25519.PublicKey{otherPub}, ErrSignature},
		{"signature of another pack", spliced, []ed25519.PublicKey{pub}, ErrSignature},
		{"altered signature", flipped, []ed25519.PublicKey{pub}, ErrSignature},
		{"truncated envelope", signed[:20], []ed25519.PublicKey{pub}, ErrFormat},
		{"empty", nil, nil, ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := readOpened(t, tc.data, tc.trusted)
			if tc.want == nil && err != nil {
				t.Fatalf("Open: %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := Build(context.Background(), io.Discard, Options{Tree: "demo", To: m, Key: otherPriv[:10]}, s.open); err == nil {
		t.Fatal("a short private key was accepted")
	}
}

func TestKeyFiles(t *testing.T) {
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := EncodePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	gotPriv, err := ParsePrivateKey(privPEM)
	if err != nil || !gotPriv.Equal(priv) {
		t.Fatalf("private key round trip: %v", err)
	}
	pub2, _, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub2PEM, err := EncodePublicKey(pub2)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParsePublicKeys(append(pubPEM, pub2PEM...))
	if err != nil || len(keys) != 2 || !keys[0].Equal(pub) || !keys[1].Equal(pub2) {
		t.Fatalf("public keys round trip: %v %v", keys, err)
	}
	for _, bad := range [][]byte{nil, []byte("not pem"), pubPEM} {
		if _, err := ParsePrivateKey(bad); err == nil {
			t.Errorf("ParsePrivateKey(%.20q) accepted", bad)
		}
	}
	for _, bad := range [][]byte{nil, []byte("garbage"), privPEM} {
		if _, err := ParsePublicKeys(bad); err == nil {
			t.Errorf("ParsePublicKeys(%.20q) accepted", bad)
		}
	}
}
