package bandwidth

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseWindowRates(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "* 22:00-06:00 unlimited", want: "* 22:00-06:00 unlimited"},
		{in: "Mon-Fri 08:00-18:00 20M", want: "Mon-Fri 08:00-18:00 20M"},
		{in: "Sat 00:00-24:00 1500000", want: "Sat 00:00-24:00 1500k"},
		{in: "Sat 00:00-24:00 1234", want: "Sat 00:00-24:00 1234"},
		{in: "Sun 01:00-02:00 UNLIMITED", want: "Sun 01:00-02:00 unlimited"},
		{in: "Mon 22:00-06:00 extra", err: `rate "extra"`},
		{in: "Mon 22:00-06:00 0", err: "positive"},
		{in: "Mon 22:00-06:00 -5M", err: "rate"},
		{in: "Mon 22:00-06:00 5T", err: "rate"},
		{in: "Mon 22:00-06:00 2000G", err: "at most 1000G"},
		{in: "Mon 22:00-06:00 99999999999999999999", err: "at most"},
		{in: "Mon 22:00-06:00 1M 2M", err: "4 fields"},
	} {
		w, err := ParseWindow(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseWindow(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || w.String() != tc.want {
			t.Errorf("ParseWindow(%q) = %q, %v; want %q", tc.in, w.String(), err, tc.want)
		}
		if again, err := ParseWindow(w.String()); err != nil || again != w {
			t.Errorf("%q does not read back: %+v %v", w.String(), again, err)
		}
	}
}

// at is a time in the local zone on the week of Monday 2026-11-30.
func at(day, hour, minute int) time.Time {
	return time.Date(2026, 11, 30+day, hour, minute, 0, 0, time.Local)
}

func schedule(t *testing.T, limit int64, windows ...string) Schedule {
	t.Helper()
	s, err := NewSchedule(limit, windows)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScheduleAt(t *testing.T) {
	dayNight := schedule(t, 20_000_000, "* 22:00-06:00 unlimited")
	nights := schedule(t, 5_000_000, "Mon-Fri 22:00-06:00")
	mixed := schedule(t, 0, "Sat-Sun 00:00-24:00 1M", "Mon-Fri 09:00-17:00 100k")
	for _, tc := range []struct {
		name  string
		s     Schedule
		t     time.Time
		rate  int64
		until time.Time
	}{
		{"no limit", Schedule{}, at(0, 12, 0), Unlimited, at(7, 12, 0)},
		{"limit only", schedule(t, 1000), at(2, 3, 4), 1000, at(9, 3, 4)},
		{"by day", dayNight, at(0, 12, 30), 20_000_000, at(0, 22, 0)},
		{"at night", dayNight, at(0, 23, 0), Unlimited, at(1, 6, 0)},
		{"after midnight", dayNight, at(1, 5, 59), Unlimited, at(1, 6, 0)},
		{"at the end", dayNight, at(1, 6, 0), 20_000_000, at(1, 22, 0)},
		{"weeknight", nights, at(4, 23, 0), 5_000_000, at(5, 6, 0)},  // Friday night into Saturday
		{"weekend closed", nights, at(5, 12, 0), 0, at(7, 22, 0)},    // Saturday: until Monday 22:00
		{"weekday closed", nights, at(2, 8, 0), 0, at(2, 22, 0)},     // Wednesday morning
		{"office hours", mixed, at(1, 10, 0), 100_000, at(1, 17, 0)}, // rates in every window: outside is the limit
		{"evening", mixed, at(1, 18, 0), Unlimited, at(2, 9, 0)},     // limit 0: unlimited
		{"weekend", mixed, at(6, 23, 59), 1_000_000, at(7, 0, 0)},    // Sunday's last minute
		{"seconds ignored", dayNight, at(0, 21, 59).Add(59 * time.Second), 20_000_000, at(0, 22, 0)},
	} {
		r, until := tc.s.At(tc.t)
		if r != tc.rate || !until.Equal(tc.until) {
			t.Errorf("%s: At(%s) = %d until %s, want %d until %s", tc.name, tc.t.Format("Mon 15:04"), r, until.Format("Mon 15:04"), tc.rate, tc.until.Format("Mon 15:04"))
		}
	}
	if _, err := NewSchedule(-1, nil); !errors.Is(err, ErrSchedule) {
		t.Errorf("negative limit: %v", err)
	}
	if _, err := NewSchedule(0, []string{"nights"}); !errors.Is(err, ErrSchedule) {
		t.Errorf("bad window: %v", err)
	}
}

// TestShaperHoldsTheRate measures what a transfer reads over time: within
// 10% of the budget.
func TestShaperHoldsTheRate(t *testing.T) {
	const budget = 2_000_000
	sh := NewShaper(schedule(t, budget))
	tr := sh.Begin(false)
	defer tr.End()
	data := make([]byte, 3*budget/2)
	start := time.Now()
	n, err := io.Copy(io.Discard, tr.Reader(t.Context(), bytes.NewReader(data)))
	took := time.Since(start)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("copied %d, %v", n, err)
	}
	// The bucket starts full: one burst is free.
	got := float64(n-budget/20) / took.Seconds()
	if got > 1.1*budget || got < 0.9*budget {
		t.Errorf("read %d bytes in %s: %.0f bytes/s, want %d ± 10%%", n, took, got, budget)
	}
}

func TestShaperWaitsForAWindow(t *testing.T) {
	sh := NewShaper(schedule(t, 0, "Mon 01:00-02:00"))
	sh.now = func() time.Time { return at(2, 12, 0) } // Wednesday: closed until Monday
	tr := sh.Begin(false)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	n, err := tr.Reader(ctx, strings.NewReader("data")).Read(make([]byte, 4))
	if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read %d, %v in a closed window; want nothing until the context ends", n, err)
	}
	// The window opens (the site's settings changed): the waiting read goes on.
	done := make(chan error, 1)
	go func() {
		_, err := tr.Reader(t.Context(), strings.NewReader("data")).Read(make([]byte, 4))
		done <- err
	}()
	sh.SetSchedule(Schedule{})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read did not resume when the schedule opened")
	}
}

func TestUrgentTransfersHoldNormalOnes(t *testing.T) {
	sh := NewShaper(Schedule{})
	normal := sh.Begin(false)
	urgent := sh.Begin(true)
	if _, err := urgent.Reader(t.Context(), strings.NewReader("x")).Read(make([]byte, 1)); err != nil {
		t.Fatalf("urgent read: %v", err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := normal.Reader(t.Context(), strings.NewReader("y")).Read(make([]byte, 1))
		read <- err
	}()
	select {
	case err := <-read:
		t.Fatalf("a normal read ran during an urgent transfer (%v)", err)
	case <-time.After(50 * time.Millisecond): // the absence of a read: nothing to wait on
	}
	urgent.End()
	urgent.End() // a second End does not release another urgent transfer's hold
	select {
	case err := <-read:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the normal read did not resume after the urgent transfer")
	}
	if sh.urgent != 0 {
		t.Errorf("urgent count %d after End", sh.urgent)
	}
}
