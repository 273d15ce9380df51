package bandwidth

import (
	"context"
	"io"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Burst bounds, in bytes: the token bucket holds a twentieth of a second
// of the rate, within these, so a transfer never runs ahead of its budget
// by more than that.
const (
	minBurst = 4 << 10
	maxBurst = 256 << 10
)

// recheck bounds how long a waiting transfer sleeps before it looks at
// the schedule again (which SetSchedule may have changed).
const recheck = time.Minute

// Shaper shares one site's link among the transfers of its site-agent:
// every byte read through a Reader takes a token of one bucket that fills
// at the schedule's rate of the moment, a closed window holds transfers
// until it opens, and while an urgent transfer runs the normal ones wait.
// It is safe for concurrent use.
type Shaper struct {
	mu      sync.Mutex
	sched   Schedule
	lim     *rate.Limiter
	rate    int64 // lim's rate
	urgent  int   // urgent transfers running
	changed chan struct{}
	now     func() time.Time
}

// NewShaper returns a shaper following s.
func NewShaper(s Schedule) *Shaper {
	return &Shaper{sched: s, changed: make(chan struct{}), now: time.Now}
}

// SetSchedule makes the shaper follow s from now on (the site's settings
// changed); waiting transfers look again at once.
func (s *Shaper) SetSchedule(n Schedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sched = n
	s.wake()
}

// Rate is the rate the schedule allows now, in bytes/s: Unlimited, a
// positive rate, or 0 while transfers must wait for a window.
func (s *Shaper) Rate() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, _ := s.sched.At(s.now())
	return r
}

// wake tells waiting transfers that something changed; s.mu is held.
func (s *Shaper) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Transfer is one transfer through a Shaper.
type Transfer struct {
	s      *Shaper
	urgent bool
	once   sync.Once
}

// Begin starts a transfer; urgent ones hold the normal ones back until
// they End.
func (s *Shaper) Begin(urgent bool) *Transfer {
	if urgent {
		s.mu.Lock()
		s.urgent++
		s.wake()
		s.mu.Unlock()
	}
	return &Transfer{s: s, urgent: urgent}
}

// End ends the transfer; a second call does nothing.
func (t *Transfer) End() {
	t.once.Do(func() {
		if !t.urgent {
			return
		}
		t.s.mu.Lock()
		t.s.urgent--
		t.s.wake()
		t.s.mu.Unlock()
	})
}

// Reader returns r read at the pace the shaper allows; a read waits (until
// ctx ends) while the link is closed to this transfer.
func (t *Transfer) Reader(ctx context.Context, r io.Reader) io.Reader {
	return &shapedReader{ctx: ctx, t: t, r: r}
}

type shapedReader struct {
	ctx context.Context
	t   *Transfer
	r   io.Reader
}

func (sr *shapedReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return sr.r.Read(p)
	}
	lim, err := sr.t.wait(sr.ctx)
	if err != nil {
		return 0, err
	}
	if lim == nil {
		return sr.r.Read(p)
	}
	// Read at most a burst, then pay for what was read: a short read (the
	// end of a chunk, EOF) costs only its bytes.
	n, err := sr.r.Read(p[:min(len(p), lim.Burst())])
	if n > 0 {
		if werr := lim.WaitN(sr.ctx, n); werr != nil && err == nil {
			if sr.ctx.Err() != nil {
				werr = sr.ctx.Err()
			}
			err = werr
		}
	}
	return n, err
}

// wait waits until the transfer may read and returns the token bucket
// to pay with, nil when the link is unlimited.
func (t *Transfer) wait(ctx context.Context) (*rate.Limiter, error) {
	s := t.s
	for {
		s.mu.Lock()
		r, until := s.sched.At(s.now())
		held := !t.urgent && s.urgent > 0
		changed := s.changed
		lim := s.limiter(r)
		s.mu.Unlock()
		if r != 0 && !held {
			return lim, nil
		}
		wait := recheck
		if r == 0 {
			wait = min(wait, max(time.Until(until), time.Second))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// limiter returns the token bucket set to r bytes/s, nil when r is
// Unlimited (or 0: nothing flows then anyway); s.mu is held.
func (s *Shaper) limiter(r int64) *rate.Limiter {
	if r <= 0 {
		return nil
	}
	if r != s.rate || s.lim == nil {
		// A new bucket, full: at most one burst ahead of the new rate.
		s.lim = rate.NewLimiter(rate.Limit(r), int(min(max(r/20, minBurst), maxBurst)))
		s.rate = r
	}
	return s.lim
}
