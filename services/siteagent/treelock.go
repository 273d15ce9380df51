package siteagent

import (
	"context"
	"errors"
	"sync"
)

// errRunStarted is why a verify stops: a run of its tree started.
var errRunStarted = errors.New("a run of the tree started")

// treeLock serialises the runs of one tree (normal and urgent commands
// run side by side, never two of one tree) and keeps its verifications out
// of their way: a verify holds the tree only while no run holds it or
// waits for it, and a run that arrives cancels the verify, then takes the
// tree once the verify has let go. A run never waits for a verify, and a
// verify never reads a version a run is pruning.
type treeLock struct {
	held sync.Mutex // by the run in progress, or the verify
	mu   sync.Mutex // guards runs and stopVerify
	// runs counts the runs holding the tree or waiting for it.
	runs int
	// stopVerify cancels the verify holding the tree, if one does.
	stopVerify context.CancelCauseFunc
}

// lockOf is the lock of tree.
func (s *Service) lockOf(tree string) *treeLock {
	l, _ := s.trees.LoadOrStore(tree, new(treeLock))
	return l.(*treeLock)
}

// run takes the tree for a run, once the run before it (if any) has ended,
// cancelling the verify in progress (if any) with errRunStarted as its
// cause; unlock gives the tree back.
func (l *treeLock) run() (unlock func()) {
	l.mu.Lock()
	l.runs++
	if l.stopVerify != nil {
		l.stopVerify(errRunStarted)
	}
	l.mu.Unlock()
	l.held.Lock()
	return func() {
		l.held.Unlock()
		l.mu.Lock()
		l.runs--
		l.mu.Unlock()
	}
}

// verify takes the tree for a verify, unless a run holds it or waits for
// it (ok false). The verify is to run within vctx, which a run arriving
// cancels (context.Cause: errRunStarted); unlock gives the tree back.
func (l *treeLock) verify(ctx context.Context) (vctx context.Context, unlock func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runs > 0 || !l.held.TryLock() {
		return nil, nil, false
	}
	vctx, cancel := context.WithCancelCause(ctx)
	l.stopVerify = cancel
	return vctx, func() {
		l.mu.Lock()
		l.stopVerify = nil
		l.mu.Unlock()
		cancel(nil)
		l.held.Unlock()
	}, true
}
