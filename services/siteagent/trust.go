package siteagent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// keyring is the set of public keys a pack must be signed by: the keys of
// the PULPDIST_TRUSTED_KEYS file, fixed at start, and the keys the
// inventory publishes in the signing-keys bucket, followed while the agent
// runs. When both are empty, packs need no signature.
type keyring struct {
	log  *slog.Logger
	file []ed25519.PublicKey

	mu     sync.RWMutex
	bucket map[string]ed25519.PublicKey
}

func newKeyring(file []ed25519.PublicKey, log *slog.Logger) *keyring {
	return &keyring{log: log, file: file, bucket: map[string]ed25519.PublicKey{}}
}

// trusted returns the keys packs must be signed by now, nil for none.
func (k *keyring) trusted() []ed25519.PublicKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if len(k.file)+len(k.bucket) == 0 {
		return nil
	}
	out := make([]ed25519.PublicKey, 0, len(k.file)+len(k.bucket))
	out = append(out, k.file...)
	for _, pub := range k.bucket {
		out = append(out, pub)
	}
	return out
}

// keyWatch is a watch of the signing-keys bucket.
type keyWatch struct {
	w jetstream.KeyWatcher
	// stop ends the watch. The watch has a context of its own, not the
	// agent's: the client unsubscribes when a watch's context ends, and
	// follow must tell that from a watch lost under it.
	stop context.CancelFunc
}

// watch starts following the bucket and returns once the keys it holds
// now are known, so that no pack is opened with a set that lacks them.
// follow must then run until the agent stops.
func (k *keyring) watch(ctx context.Context, kv jetstream.KeyValue) (*keyWatch, error) {
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	w, err := kv.WatchAll(wctx)
	if err != nil {
		stop()
		return nil, fmt.Errorf("watch signing keys: %w", err)
	}
	kw := &keyWatch{w: w, stop: stop}
	for {
		select {
		case <-ctx.Done():
			kw.close()
			return nil, fmt.Errorf("watch signing keys: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				kw.close()
				return nil, errors.New("watch signing keys: the watch ended")
			}
			if e == nil { // the current keys are in
				k.log.Info("signing keys loaded", "file_keys", len(k.file), "bucket_keys", k.bucketLen())
				return kw, nil
			}
			k.apply(e)
		}
	}
}

func (kw *keyWatch) close() {
	_ = kw.w.Stop() // unsubscribing: the subscription goes with the connection anyway
	kw.stop()
}

// follow applies the changes of the bucket until ctx ends, then ends the
// watch. A watch that ends otherwise (the connection closed) is an error:
// the agent must not go on with keys it can no longer update.
func (k *keyring) follow(ctx context.Context, kw *keyWatch) error {
	defer kw.close()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-kw.w.Updates():
			if !ok {
				return errors.New("watch signing keys: the watch ended")
			}
			if e != nil {
				k.apply(e)
			}
		}
	}
}

func (k *keyring) bucketLen() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.bucket)
}

// apply takes one change of the bucket. A deleted key, or one whose entry
// does not hold a valid key under its own id, is not trusted.
func (k *keyring) apply(e jetstream.KeyValueEntry) {
	id := e.Key()
	var pub ed25519.PublicKey
	if e.Operation() == jetstream.KeyValuePut {
		var err error
		if pub, err = bus.SigningKeyFromEntry(id, e.Value()); err != nil {
			k.log.Warn("signing key entry ignored", "key", id, "err", err)
		}
	}
	k.mu.Lock()
	before := len(k.file) + len(k.bucket)
	_, had := k.bucket[id]
	if pub != nil {
		k.bucket[id] = pub
	} else {
		delete(k.bucket, id)
	}
	after := len(k.file) + len(k.bucket)
	k.mu.Unlock()
	switch {
	case pub != nil && !had:
		k.log.Info("signing key trusted", "key", id)
	case pub == nil && had:
		k.log.Info("signing key no longer trusted", "key", id)
	}
	if before > 0 && after == 0 {
		k.log.Warn("no trusted signing key left: packs are accepted unsigned until a key is added")
	}
}

// ids lists the ids of the bucket's keys, sorted.
func (k *keyring) ids() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return slices.Sorted(maps.Keys(k.bucket))
}
