package bus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// DirectChunks is the most chunks an ObjectReader fetches one by one with
// direct gets; larger objects stream through the object store's ordered
// consumer.
const DirectChunks = 4

// ObjectReader reads small objects of one object store without a
// consumer. The store's Get creates an ordered consumer for every object
// and deletes it after: for thousands of small contents, those two
// JetStream API calls cost the server more than serving the bytes (about a
// quarter of its CPU when the delta-cache reads a changed tree of small
// files). An object of at most DirectChunks chunks is read with one direct
// get per chunk instead, its size and SHA-256 digest checked as Get
// checks them.
type ObjectReader struct {
	store  jetstream.ObjectStore
	stream jetstream.Stream
	bucket string
}

// NewObjectReader returns a reader of the object store bucket, which
// Ensure created (direct gets allowed).
func NewObjectReader(ctx context.Context, js jetstream.JetStream, bucket string) (*ObjectReader, error) {
	store, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", bucket, err)
	}
	stream, err := js.Stream(ctx, ObjectStream(bucket))
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", bucket, err)
	}
	if !stream.CachedInfo().Config.AllowDirect {
		return nil, fmt.Errorf("object store %s: direct gets are not allowed on its stream", bucket)
	}
	return &ObjectReader{store: store, stream: stream, bucket: bucket}, nil
}

// ErrObjectCorrupt is returned for an object whose chunks do not add up
// to its recorded size or digest.
var ErrObjectCorrupt = errors.New("object does not match its recorded size or digest")

// Open returns the content of the object name: jetstream.ErrObjectNotFound
// when there is none.
func (r *ObjectReader) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	info, err := r.store.GetInfo(ctx, name)
	if err != nil {
		return nil, err
	}
	if info.Opts != nil && info.Opts.Link != nil || info.Chunks > DirectChunks {
		return r.store.Get(ctx, name)
	}
	if info.NUID == "" {
		return nil, fmt.Errorf("object %s: %w", name, jetstream.ErrBadObjectMeta)
	}
	subject := ObjectChunkSubject(r.bucket, info.NUID)
	buf := make([]byte, 0, info.Size)
	seq := uint64(1)
	for range info.Chunks {
		m, err := r.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			// Replaced or deleted since its info was read.
			return nil, fmt.Errorf("object %s: %w", name, jetstream.ErrObjectNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("object %s: %w", name, err)
		}
		if uint64(len(buf))+uint64(len(m.Data)) > info.Size {
			return nil, fmt.Errorf("object %s: %w", name, ErrObjectCorrupt)
		}
		buf = append(buf, m.Data...)
		seq = m.Sequence + 1
	}
	sum := sha256.Sum256(buf)
	if uint64(len(buf)) != info.Size || info.Digest != "SHA-256="+base64.URLEncoding.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("object %s: %w", name, ErrObjectCorrupt)
	}
	return io.NopCloser(bytes.NewReader(buf)), nil
}

// PutSmallObject stores data, at most one chunk of meta's chunk size, as
// the object meta.Name of the object store bucket: a chunk message and the
// meta message, laid out as the store's own Put lays them out, so that
// every reader of the store reads it (its size and SHA-256 digest
// recorded as Put records them). Put costs more than a small content is
// worth: it looks the name up first (to remove a former object's chunks),
// makes a JetStream context and a reply subscription of its own, and
// allocates and clears a chunk-size buffer, for every object — for the
// hundreds of small contents of an update, more of the origin's CPU than
// sending them. So the caller must know the name is free (a content the
// store was found to lack): the chunks of a former object of the name
// would stay, unreferenced.
func PutSmallObject(ctx context.Context, js jetstream.JetStream, bucket string, meta jetstream.ObjectMeta, data []byte) (*jetstream.ObjectInfo, error) {
	chunk := uint32(DefaultObjectChunkSize)
	if meta.Opts != nil {
		if meta.Opts.Link != nil {
			return nil, jetstream.ErrLinkNotAllowed
		}
		if meta.Opts.ChunkSize > 0 {
			chunk = meta.Opts.ChunkSize
		}
	} else {
		meta.Opts = &jetstream.ObjectMetaOptions{}
	}
	meta.Opts.ChunkSize = chunk
	if meta.Name == "" {
		return nil, jetstream.ErrBadObjectMeta
	}
	if len(data) > int(chunk) {
		return nil, fmt.Errorf("object %s: %d bytes do not fit one %d-byte chunk", meta.Name, len(data), chunk)
	}
	sum := sha256.Sum256(data)
	info := &jetstream.ObjectInfo{
		ObjectMeta: meta, Bucket: bucket, NUID: nuid.Next(), Size: uint64(len(data)),
		Digest: "SHA-256=" + base64.URLEncoding.EncodeToString(sum[:]),
	}
	chunkSubj := ObjectChunkSubject(bucket, info.NUID)
	var acks []jetstream.PubAckFuture
	if len(data) > 0 {
		info.Chunks = 1
		f, err := js.PublishMsgAsync(&nats.Msg{Subject: chunkSubj, Data: data})
		if err != nil {
			return nil, fmt.Errorf("object %s: %w", meta.Name, err)
		}
		acks = append(acks, f)
	}
	body, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", meta.Name, err)
	}
	mm := nats.NewMsg(ObjectMetaSubject(bucket, meta.Name))
	mm.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	mm.Data = body
	f, err := js.PublishMsgAsync(mm)
	if err != nil {
		purgeChunk(ctx, js, bucket, chunkSubj)
		return nil, fmt.Errorf("object %s: %w", meta.Name, err)
	}
	acks = append(acks, f)
	for _, a := range acks {
		select {
		case <-a.Ok():
		case err := <-a.Err():
			purgeChunk(ctx, js, bucket, chunkSubj)
			return nil, fmt.Errorf("object %s: %w", meta.Name, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("object %s: %w", meta.Name, ctx.Err())
		}
	}
	info.ModTime = time.Now().UTC()
	return info, nil
}

// purgeChunk removes what a failed PutSmallObject stored of its chunk, as
// the store's Put does with a partial object (best effort: a leftover
// chunk is unreferenced, never read).
func purgeChunk(ctx context.Context, js jetstream.JetStream, bucket, subject string) {
	if s, err := js.Stream(context.WithoutCancel(ctx), ObjectStream(bucket)); err == nil {
		_ = s.Purge(context.WithoutCancel(ctx), jetstream.WithPurgeSubject(subject)) // see above
	}
}
