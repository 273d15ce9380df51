package pack

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
)

// SignatureMagic starts a signed pack: a signature envelope, then the pack.
const SignatureMagic = "PDSG"

// signatureVersion is the envelope format this package writes and reads.
const signatureVersion = 2

// envelopeSize is magic, version, public key and signature.
const envelopeSize = len(SignatureMagic) + 1 + ed25519.PublicKeySize + ed25519.SignatureSize

// ErrSignature marks a pack whose signature is missing, malformed, made by
// a key that is not trusted, or does not verify.
var ErrSignature = errors.New("pack signature refused")

// SignatureMessage is what a pack's signature covers: a fixed prefix and
// the header's JSON exactly as the pack carries it (before compression).
// The header names tree, base and target, lists every change, segment,
// dictionary range, part and op, and each part's content is checked
// against its hash, so signing it covers everything the pack can make a
// site write.
func SignatureMessage(rawHeader []byte) []byte {
	msg := make([]byte, 0, len(signaturePrefix)+len(rawHeader))
	msg = append(msg, signaturePrefix...)
	return append(msg, rawHeader...)
}

// signaturePrefix starts every signature message.
const signaturePrefix = "pulpdist pack signature v2\x00"

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
	if !ed25519.Verify(pub, SignatureMessage(pr.raw), sig) {
		return nil, fmt.Errorf("%w: the signature does not match the pack header", ErrSignature)
	}
	return pr, nil
}
