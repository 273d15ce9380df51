package bus_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/natstest"
)

// blobReader returns the layout and a reader of the blob store.
func blobReader(t *testing.T, js jetstream.JetStream) (*bus.Layout, *bus.ObjectReader) {
	t.Helper()
	l, err := bus.Ensure(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	r, err := bus.NewObjectReader(t.Context(), js, bus.BucketBlobs)
	if err != nil {
		t.Fatal(err)
	}
	return l, r
}

func TestObjectReader(t *testing.T) {
	js := connect(t)
	l, r := blobReader(t, js)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, bus.ObjectChunkSize - 1, bus.ObjectChunkSize, bus.ObjectChunkSize + 1,
		3*bus.ObjectChunkSize + 17, bus.DirectChunks * bus.ObjectChunkSize, bus.DirectChunks*bus.ObjectChunkSize + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			want := make([]byte, size)
			for i := range want {
				want[i] = byte(rng.Uint32())
			}
			name := fmt.Sprintf("obj-%d", size)
			if _, err := l.Blobs.Put(t.Context(), bus.ObjectMeta(name, nil), bytes.NewReader(want)); err != nil {
				t.Fatal(err)
			}
			// Another object in between, so that chunks are not the
			// stream's only messages.
			if _, err := l.Blobs.PutBytes(t.Context(), name+"-other", []byte("other")); err != nil {
				t.Fatal(err)
			}
			rc, err := r.Open(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, not the %d stored", len(got), len(want))
			}
		})
	}
	if _, err := r.Open(t.Context(), "missing"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("Open(missing) = %v, want ErrObjectNotFound", err)
	}
	// A chunk replaced by other bytes of the same length: the digest
	// no longer matches.
	if _, err := l.Blobs.PutBytes(t.Context(), "tampered", bytes.Repeat([]byte("a"), 100)); err != nil {
		t.Fatal(err)
	}
	info, err := l.Blobs.GetInfo(t.Context(), "tampered")
	if err != nil {
		t.Fatal(err)
	}
	subject := "$O." + bus.BucketBlobs + ".C." + info.NUID
	stream, err := js.Stream(t.Context(), bus.ObjectStream(bus.BucketBlobs))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(t.Context(), jetstream.WithPurgeSubject(subject)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), subject, bytes.Repeat([]byte("b"), 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(t.Context(), "tampered"); !errors.Is(err, bus.ErrObjectCorrupt) {
		t.Fatalf("Open(tampered) = %v, want ErrObjectCorrupt", err)
	}
	// Its chunk gone: not found, as if deleted meanwhile.
	if err := stream.Purge(t.Context(), jetstream.WithPurgeSubject(subject)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(t.Context(), "tampered"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("Open(chunk purged) = %v, want ErrObjectNotFound", err)
	}
}

// TestObjectReaderAsksLess: a small object costs its info and one direct
// get per chunk, where the store's Get also creates and deletes a
// consumer (JetStream API calls, the expensive part).
func TestObjectReaderAsksLess(t *testing.T) {
	srv := natstest.Serve(t)
	nc, js, err := bus.Connect(t.Context(), srv.URL, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	l, r := blobReader(t, js)
	content := bytes.Repeat([]byte("content "), 3*bus.ObjectChunkSize/8) // three chunks
	if _, err := l.Blobs.Put(t.Context(), bus.ObjectMeta("x", nil), bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	asked := func(read func() (io.ReadCloser, error)) (msgs, api uint64) {
		before, apiBefore := srv.Received(), srv.APICalls()
		rc, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, content) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		rc.Close()
		return srv.Received() - before, srv.APICalls() - apiBefore
	}
	msgs, api := asked(func() (io.ReadCloser, error) { return r.Open(t.Context(), "x") })
	if msgs != 4 || api != 0 {
		t.Errorf("Open sent %d messages with %d API calls, want 4 (the info and three chunks) and none", msgs, api)
	}
	if _, api := asked(func() (io.ReadCloser, error) { return l.Blobs.Get(t.Context(), "x") }); api < 1 {
		t.Errorf("the store's Get made %d API calls, want at least the consumer's creation (its deletion may come later)", api)
	}
}

// TestPutSmallObject checks that an object PutSmallObject stores reads as
// one the store's Put stored: the store's Get (which checks size and
// digest), its info and listing, and the ObjectReader.
func TestPutSmallObject(t *testing.T) {
	js := connect(t)
	l, r := blobReader(t, js)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 1, 1000, bus.ObjectChunkSize} {
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(rng.Uint32())
		}
		name := fmt.Sprintf("small-%d", size)
		put, err := bus.PutSmallObject(ctx, js, bus.BucketBlobs, bus.ObjectMeta(name, map[string]string{"k": "v"}), want)
		if err != nil {
			t.Fatal(err)
		}
		// The same bytes through Put, for the reference info.
		ref, err := l.Blobs.Put(ctx, bus.ObjectMeta(name+"-ref", map[string]string{"k": "v"}), bytes.NewReader(want))
		if err != nil {
			t.Fatal(err)
		}
		info, err := l.Blobs.GetInfo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != ref.Size || info.Chunks != ref.Chunks || info.Digest != ref.Digest || info.Digest != put.Digest ||
			info.NUID != put.NUID || info.Bucket != bus.BucketBlobs || info.Metadata["k"] != "v" ||
			info.Opts == nil || info.Opts.ChunkSize != bus.ObjectChunkSize {
			t.Fatalf("size %d: info %+v, want as Put's %+v", size, info, ref)
		}
		got, err := l.Blobs.GetBytes(ctx, name)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d: Get = %d bytes, %v", size, len(got), err)
		}
		rc, err := r.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d: ObjectReader = %d bytes, %v", size, len(got), err)
		}
	}
	// Listed like any object.
	objs, err := l.Blobs.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, o := range objs {
		listed[o.Name] = true
	}
	if !listed["small-1000"] || !listed["small-0"] {
		t.Fatalf("listing lacks the small objects: %v", listed)
	}
	// What does not fit one chunk, or names no object, stores nothing.
	if _, err := bus.PutSmallObject(ctx, js, bus.BucketBlobs, bus.ObjectMeta("too-big", nil), make([]byte, bus.ObjectChunkSize+1)); err == nil {
		t.Fatal("a content over one chunk was stored")
	}
	if _, err := bus.PutSmallObject(ctx, js, bus.BucketBlobs, bus.ObjectMeta("", nil), []byte("x")); !errors.Is(err, jetstream.ErrBadObjectMeta) {
		t.Fatalf("no name: %v, want ErrBadObjectMeta", err)
	}
	if _, err := l.Blobs.GetInfo(ctx, "too-big"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("too-big: %v, want not found", err)
	}
}
