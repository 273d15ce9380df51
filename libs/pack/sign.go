package pack

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// SignatureMagic starts a signed pack: a signature envelope, then the pack.
const SignatureMagic = "PDSG"

// signatureVersion is the envelope format this package writes and reads.
const signatureVersion = 1

// envelopeSize is magic, version, public key and signature.
const envelopeSize = len(SignatureMagic) + 1 + ed25519.PublicKeySize + ed25519.SignatureSize

// ErrSignature marks a pack whose signature is missing, malformed, made by
// a key that is not trusted, or does not verify.
var ErrSignature = errors.New("pack signature refused")

// SignatureMessage is what a pack's signature covers: the tree, the base
// and target versions, and every part's hash and size, in a canonical,
// length-prefixed encoding. The target root covers the whole target
// manifest (a reader checks To == Manifest.Root()), and each part's content
// is checked against its hash, so signing these covers the whole pack.
func SignatureMessage(h Header) []byte {
	var b bytes.Buffer
	b.WriteString("pulpdist pack signature v1\x00")
	for _, s := range []string{h.Tree, h.From, h.To} {
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		b.WriteString(s)
	}
	b.Write(binary.BigEndian.AppendUint64(nil, uint64(len(h.Parts))))
	for _, p := range h.Parts {
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(p.Hash))))
		b.WriteString(p.Hash)
		b.Write(binary.BigEndian.AppendUint64(nil, uint64(p.Size)))
	}
	return b.Bytes()
}

// WriteSigned writes a signature envelope made with key, then the pack
// (see Write). It returns the bytes written in all.
func WriteSigned(ctx context.Context, w io.Writer, h Header, open func(ctx context.Context, hash string) (io.ReadCloser, error), key ed25519.PrivateKey) (int64, error) {
	if len(key) != ed25519.PrivateKeySize {
		return 0, fmt.Errorf("sign pack: private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if err := h.Validate(); err != nil {
		return 0, err
	}
	env := make([]byte, 0, envelopeSize)
	env = append(env, SignatureMagic...)
	env = append(env, signatureVersion)
	env = append(env, key.Public().(ed25519.PublicKey)...)
	env = append(env, ed25519.Sign(key, SignatureMessage(h))...)
	if _, err := w.Write(env); err != nil {
		return 0, fmt.Errorf("write pack signature: %w", err)
	}
	n, err := Write(ctx, w, h, open)
	return n + int64(len(env)), err
}

// Open reads a pack, signed or not. With trusted keys, the pack must carry
// a signature by one of them over its header (ErrSignature otherwise),
// checked before any part is read. Without trusted keys a signature, if
// present, is skipped unchecked.
func Open(r io.Reader, lim Limits, trusted []ed25519.PublicKey) (*Reader, error) {
	head := make([]byte, len(Magic))
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("%w: reading magic: %w", ErrFormat, err)
	}
	if string(head) != SignatureMagic {
		if len(trusted) > 0 {
			return nil, fmt.Errorf("%w: the pack is not signed", ErrSignature)
		}
		return NewReader(io.MultiReader(bytes.NewReader(head), r), lim)
	}
	rest := make([]byte, envelopeSize-len(SignatureMagic))
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, fmt.Errorf("%w: truncated signature: %w", ErrFormat, err)
	}
	if rest[0] != signatureVersion {
		return nil, fmt.Errorf("%w: signature format %d, want %d", ErrSignature, rest[0], signatureVersion)
	}
	pub := ed25519.PublicKey(rest[1 : 1+ed25519.PublicKeySize])
	sig := rest[1+ed25519.PublicKeySize:]
	pr, err := NewReader(r, lim)
	if err != nil {
		return nil, err
	}
	if len(trusted) == 0 {
		return pr, nil
	}
	known := false
	for _, k := range trusted {
		if k.Equal(pub) {
			known = true
			break
		}
	}
	if !known {
		return nil, fmt.Errorf("%w: signed by an untrusted key %x", ErrSignature, []byte(pub))
	}
	if !ed25519.Verify(pub, SignatureMessage(pr.Header()), sig) {
		return nil, fmt.Errorf("%w: the signature does not match the pack header", ErrSignature)
	}
	return pr, nil
}
