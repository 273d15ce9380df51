package siteagent

import (
	"context"
	"sync"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// DefaultProgressInterval is how often a running sync reports its
// progress (sync.progress) by default.
const DefaultProgressInterval = 5 * time.Second

// MinProgressInterval bounds how often a run may report: progress is for
// people and dashboards, and every report is an event kept as long as the
// others.
const MinProgressInterval = 100 * time.Millisecond

// progress is how far a run is, as its parts say. Its methods do nothing
// on a nil *progress.
type progress struct {
	mu                    sync.Mutex
	phase                 string
	bytesDone, bytesTotal int64
	filesDone, filesTotal int64
}

// enter starts a phase whose totals are bytes and files (0: unknown or
// not counted). What was done before stays done: bytes never go back.
func (p *progress) enter(phase string, bytes, files int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.bytesTotal, p.filesTotal = phase, bytes, files
}

// at records that done bytes are done, unless more already are.
func (p *progress) at(done int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bytesDone = max(p.bytesDone, done)
}

// add records files more files and bytes more bytes done.
func (p *progress) add(files, bytes int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.filesDone += files
	p.bytesDone += bytes
}

// started reports whether the run has entered a phase.
func (p *progress) started() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.phase != ""
}

// event is the sync.progress of cmd's run as p stands, elapsed after its
// start.
func (p *progress) event(cmd bus.SyncCommand, elapsed time.Duration) bus.SyncProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bus.SyncProgress{
		RunID: cmd.RunID, TriggerID: cmd.TriggerID, Site: cmd.Site, Tree: cmd.Tree, Kind: cmd.Kind, From: cmd.From, To: cmd.To,
		Phase: p.phase, BytesDone: p.bytesDone, BytesTotal: p.bytesTotal, FilesDone: p.filesDone, FilesTotal: p.filesTotal,
		ElapsedMS: elapsed.Milliseconds(),
	}
}

// reportProgress publishes p as sync.progress of cmd's run every
// s.progressEvery from start, until the returned stop is called; stop
// waits until nothing more is published, so the run's sync.finished
// comes after its last progress. A run shorter than the interval reports
// none; a report that fails is logged, the next one tells as much.
func (s *Service) reportProgress(ctx context.Context, cmd bus.SyncCommand, p *progress, start time.Time) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	about := bus.About{Tree: cmd.Tree, Site: cmd.Site}
	go func() {
		defer close(done)
		t := time.NewTicker(s.progressEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if !p.started() {
					continue // nothing to tell yet
				}
				err := s.events.PublishTransient(ctx, bus.EntitySync, bus.ActionProgress, about, bus.SyncProgressTTL, p.event(cmd, time.Since(start)))
				if err != nil && ctx.Err() == nil {
					s.log.Warn("progress not reported", "tree", cmd.Tree, "run", cmd.RunID, "err", err)
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}
