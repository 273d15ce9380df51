package siteagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/zeebo/blake3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/pulpdist/pulpdist/libs/bandwidth"
	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/telemetry"
)

// Fetching a pack. A pack is an object of the deltas store: its chunks are
// messages of the store's stream on one subject. The agent reads them with
// an ordered pull consumer, a few at a time, through the site's Shaper, and
// appends them to a partial file under <data>/partial. Every
// checkpointBytes it syncs the file and records how far it got (the
// object's NUID, the offset, the stream sequence of the last chunk) in a
// state file beside it, written atomically. An interrupted fetch — a lost
// connection, a stopped or killed agent — resumes from the last checkpoint
// when the command is delivered again: the file is cut back to the
// recorded offset and the consumer starts after the recorded sequence.
// What was written after the checkpoint is fetched again, nothing before.

const (
	// checkpointBytes is how much is fetched between checkpoints.
	checkpointBytes = 4 << 20
	// stallTimeout fails a fetch that receives nothing for this long; the
	// command is retried (and resumes).
	stallTimeout = 2 * time.Minute
	// prefetchLimited and prefetchUnlimited are how many bytes of chunks
	// the consumer asks ahead of what was written: little on a shaped
	// link, so that what crosses the link follows the budget, more on a
	// free one.
	prefetchLimited   = 512 << 10
	prefetchUnlimited = 8 << 20
	// partialMaxAge is how long an abandoned partial fetch is kept (as
	// long as a command lives, bus.CommandRetention).
	partialMaxAge = bus.CommandRetention
)

// partialState is what the state file of a partial fetch records.
type partialState struct {
	Pack   string `json:"pack"`
	NUID   string `json:"nuid"`
	Offset int64  `json:"offset"`
	Seq    uint64 `json:"seq"`
}

// fetched is a pack on local disk.
type fetched struct {
	path     string
	size     int64 // the pack's size
	received int64 // bytes received by this fetch (less when it resumed)
	resumed  int64 // bytes a former fetch had received
	// method is how the chunks were read: bus.FetchDirect,
	// bus.FetchConsumer, or bus.FetchNone when none were left to read.
	method string
	took   time.Duration
}

// partialPaths are the partial file and state file of a pack.
func partialPaths(data, pack string) (file, state string) {
	key := fmt.Sprintf("%x", blake3.Sum256([]byte(pack)))[:32]
	dir := partialDir(data)
	return filepath.Join(dir, key+".part"), filepath.Join(dir, key+".json")
}

func partialDir(data string) string { return filepath.Join(data, "partial") }

// dropPartial removes what a fetch of pack left.
func dropPartial(data, pack string) {
	file, state := partialPaths(data, pack)
	_ = os.Remove(state) // scratch: a leftover is replaced by the next fetch or expires
	_ = os.Remove(file)
}

// cleanPartials removes partial fetches older than partialMaxAge: their
// commands have expired.
func cleanPartials(data string, now time.Time) error {
	ents, err := os.ReadDir(partialDir(data))
	if err != nil {
		return err
	}
	for _, e := range ents {
		info, err := e.Info()
		if err == nil && now.Sub(info.ModTime()) > partialMaxAge {
			_ = os.Remove(filepath.Join(partialDir(data), e.Name())) // scratch
		}
	}
	return nil
}

// fetchConsumerIdle is how long the server keeps a fetch's consumer once
// the fetch has stopped asking (stallTimeout covers a slow link: the
// consumer keeps asking while it waits).
const fetchConsumerIdle = 30 * time.Second

// fetch downloads cmd's pack, resuming a former partial fetch of the same
// object, at the pace of the site's link, and checks its BLAKE3 against the
// announced hash. prog follows the bytes on disk.
func (s *Service) fetch(ctx context.Context, cmd bus.SyncCommand, prog *progress) (_ fetched, err error) {
	ctx, end := telemetry.StartSpan(ctx, "siteagent", "fetch", trace.WithAttributes(attribute.String("pulpdist.site", cmd.Site), attribute.String("pulpdist.pack", cmd.Pack)))
	defer func() { end(err) }()
	start := time.Now()
	info, err := s.layout.Deltas.GetInfo(ctx, cmd.Pack)
	if err != nil {
		return fetched{}, fmt.Errorf("fetch pack %s: %w", cmd.Pack, err)
	}
	path, statePath := partialPaths(s.cfg.DataDir, cmd.Pack)
	f, st, err := openPartial(path, statePath, cmd.Pack, info.NUID)
	if err != nil {
		return fetched{}, fmt.Errorf("fetch pack %s: %w", cmd.Pack, err)
	}
	out := fetched{path: path, size: int64(info.Size), resumed: st.Offset}
	prog.enter(bus.PhaseFetch, out.size, 0)
	prog.at(st.Offset)
	if st.Offset > 0 {
		s.log.Info("resuming a fetch", "pack", cmd.Pack, "offset", st.Offset, "size", info.Size)
	}
	out.received, out.method, err = s.receive(ctx, cmd, info, f, &st, statePath, prog)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return out, fmt.Errorf("fetch pack %s: %w", cmd.Pack, err)
	}
	got, err := hashFile(path)
	if err != nil {
		return out, fmt.Errorf("fetch pack %s: %w", cmd.Pack, err)
	}
	if got != cmd.PackHash {
		dropPartial(s.cfg.DataDir, cmd.Pack)
		return out, bus.Permanent(fmt.Errorf("%w: %s is %s, announced %s", ErrPackHash, cmd.Pack, got, cmd.PackHash))
	}
	out.took = time.Since(start)
	return out, nil
}

// openPartial opens the partial file of pack for appending, cut back to
// what its state says was fetched of the object nuid; a state of another
// object, or none, starts from zero.
func openPartial(path, statePath, pack, nuid string) (*os.File, partialState, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, partialState{}, err
	}
	st := partialState{Pack: pack, NUID: nuid}
	if b, err := os.ReadFile(statePath); err == nil {
		var old partialState
		if json.Unmarshal(b, &old) == nil && old.Pack == pack && old.NUID == nuid && old.Offset >= 0 {
			st = old
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, st, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, st, err
	}
	if fi.Size() < st.Offset { // the file lost what the state records: start over
		st = partialState{Pack: pack, NUID: nuid}
	}
	if err := f.Truncate(st.Offset); err != nil {
		_ = f.Close()
		return nil, st, err
	}
	if _, err := f.Seek(st.Offset, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, st, err
	}
	return f, st, nil
}

// receive appends the chunks of the object after st to f, checkpointing
// into statePath and telling prog, and returns the bytes received and how
// it read them (bus.FetchDirect, bus.FetchConsumer, or bus.FetchNone for
// nothing).
func (s *Service) receive(ctx context.Context, cmd bus.SyncCommand, info *jetstream.ObjectInfo, f *os.File, st *partialState, statePath string, prog *progress) (int64, string, error) {
	size := int64(info.Size)
	if st.Offset == size {
		return 0, bus.FetchNone, nil
	}
	if st.Offset > size {
		return 0, "", fmt.Errorf("partial fetch holds %d bytes of a %d-byte pack", st.Offset, size)
	}
	sched, err := bandwidth.NewSchedule(cmd.BandwidthLimit, cmd.BandwidthWindows)
	if err != nil {
		return 0, "", bus.Permanent(err)
	}
	s.link.SetSchedule(sched)
	tr := s.link.Begin(cmd.Urgent)
	defer tr.End()
	s.metrics.transfers.Inc()
	defer s.metrics.transfers.Dec()
	linkBytes := s.metrics.linkBytes.WithLabelValues(cmd.Tree)

	var next func(ctx context.Context) (data []byte, seq uint64, err error)
	method := bus.FetchDirect
	if info.Chunks <= fetchDirectChunks && s.packs.CachedInfo().Config.AllowDirect {
		next = s.directChunks(info.NUID, st.Seq)
	} else {
		method = bus.FetchConsumer
		it, err := s.orderedChunks(ctx, cmd, info, st.Seq)
		if err != nil {
			return 0, method, err
		}
		defer it.Stop()
		next = func(ctx context.Context) ([]byte, uint64, error) {
			m, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				return nil, 0, err
			}
			meta, err := m.Metadata()
			if err != nil {
				return nil, 0, err
			}
			return m.Data(), meta.Sequence.Stream, nil
		}
	}
	// A chunk asked for just before the connection dropped (NATS
	// restarting) is never answered: the wait ends with the connection
	// rather than after stallTimeout, and the command is retried (and
	// resumes) once NATS is back.
	cctx, stop := untilDisconnected(ctx, s.js.Conn())
	defer stop()
	var received, sinceCheckpoint int64
	for st.Offset < size {
		nctx, cancel := context.WithTimeout(cctx, stallTimeout)
		data, seq, err := next(nctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return received, method, ctx.Err()
			}
			if cause := context.Cause(cctx); cause != nil {
				err = cause
			}
			return received, method, fmt.Errorf("receive chunk at %d: %w", st.Offset, err)
		}
		n, err := io.Copy(f, tr.Reader(ctx, bytes.NewReader(data)))
		received += n
		linkBytes.Add(float64(n))
		if err != nil {
			return received, method, err
		}
		st.Offset += n
		st.Seq = seq
		prog.at(st.Offset)
		if sinceCheckpoint += n; sinceCheckpoint >= checkpointBytes {
			if err := checkpoint(f, *st, statePath); err != nil {
				return received, method, err
			}
			sinceCheckpoint = 0
		}
	}
	if st.Offset != size {
		return received, method, fmt.Errorf("received %d bytes of a %d-byte pack", st.Offset, size)
	}
	return received, method, checkpoint(f, *st, statePath)
}

// errDisconnected ends the wait for a chunk when the connection is lost.
var errDisconnected = errors.New("nats connection lost")

// untilDisconnected returns a context that ends with ctx, or when nc
// loses its server: the answer to a request sent before then went to the
// lost connection. stop releases it.
func untilDisconnected(ctx context.Context, nc *nats.Conn) (_ context.Context, stop func()) {
	lost := nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	ctx, cancel := context.WithCancelCause(ctx)
	if !nc.IsConnected() {
		cancel(errDisconnected)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-lost:
			cancel(errDisconnected)
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-done
		nc.RemoveStatusListener(lost)
	}
}

// fetchDirectChunks is the largest pack, in chunks (8 MiB), fetched with
// one direct get per chunk rather than through a consumer: creating and
// deleting an ordered consumer costs the server more than a few direct
// gets, for each site that fetches the pack.
const fetchDirectChunks = 16

// directChunks returns the chunks of the object nuid after stream sequence
// after, one direct get each.
func (s *Service) directChunks(nuid string, after uint64) func(ctx context.Context) ([]byte, uint64, error) {
	subject := bus.ObjectChunkSubject(bus.BucketDeltas, nuid)
	return func(ctx context.Context) ([]byte, uint64, error) {
		m, err := s.packs.GetMsg(ctx, after+1, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			return nil, 0, err // ErrMsgNotFound: the pack was replaced or collected
		}
		after = m.Sequence
		return m.Data, m.Sequence, nil
	}
}

// orderedChunks streams the chunks of a large pack after stream sequence
// after through an ordered consumer, prefetching as the link allows.
func (s *Service) orderedChunks(ctx context.Context, cmd bus.SyncCommand, info *jetstream.ObjectInfo, after uint64) (jetstream.MessagesContext, error) {
	occ := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.ObjectChunkSubject(bus.BucketDeltas, info.NUID)},
		// Gone soon after the fetch, not after nats.go's 5 minutes: at
		// 64 sites, 64 idle consumers on the packs' stream.
		InactiveThreshold: fetchConsumerIdle,
	}
	if after > 0 {
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := s.js.OrderedConsumer(ctx, bus.ObjectStream(bus.BucketDeltas), occ)
	if err != nil {
		return nil, err
	}
	prefetch := prefetchUnlimited
	if cmd.BandwidthLimit > 0 || len(cmd.BandwidthWindows) > 0 {
		prefetch = prefetchLimited
	}
	chunk := bus.DefaultObjectChunkSize
	if info.Opts != nil && info.Opts.ChunkSize > 0 {
		chunk = int(info.Opts.ChunkSize)
	}
	return cons.Messages(jetstream.PullMaxMessages(max(prefetch/chunk, 2)))
}

// checkpoint makes what f holds durable, then records it.
func checkpoint(f *os.File, st partialState, statePath string) error {
	if err := f.Sync(); err != nil {
		return err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := statePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statePath)
}

// hashFile is the hex BLAKE3 of a file.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := blake3.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
