package bandwidth

import (
	"fmt"
	"time"
)

// minutesPerWeek is the length of the weekly cycle windows repeat on.
const minutesPerWeek = 7 * 24 * 60

// Schedule is what a site may receive over time: Limit bytes/s (0 is
// unlimited) and Windows.
//
//   - Inside a window, the rate is the window's own rate, or Limit when it
//     has none. The first window that holds the time decides.
//   - Outside every window: when some window has no rate of its own, the
//     windows are when transfers may run at all, and transfers wait for
//     the next one ("Mon-Fri 22:00-06:00": weeknights only); when every
//     window has its own rate, the windows are exceptions and Limit
//     applies ("limit 20M, * 22:00-06:00 unlimited": 20 MB/s by day,
//     unlimited at night). Without windows Limit applies at all times.
type Schedule struct {
	Limit   int64
	Windows []Window
}

// NewSchedule reads a site's bandwidth_limit and bandwidth_windows.
func NewSchedule(limit int64, windows []string) (Schedule, error) {
	if limit < 0 {
		return Schedule{}, fmt.Errorf("%w: bandwidth limit %d is negative", ErrSchedule, limit)
	}
	s := Schedule{Limit: limit}
	for _, w := range windows {
		pw, err := ParseWindow(w)
		if err != nil {
			return Schedule{}, fmt.Errorf("%w: %w", ErrSchedule, err)
		}
		s.Windows = append(s.Windows, pw)
	}
	return s, nil
}

// base is the rate Limit stands for.
func (s Schedule) base() int64 {
	if s.Limit == 0 {
		return Unlimited
	}
	return s.Limit
}

// At returns the rate at t in bytes/s (Unlimited, or positive), or 0 when
// transfers must wait, and the time the answer may next change (at most a
// week ahead). Times of day are read in t's location.
func (s Schedule) At(t time.Time) (rate int64, until time.Time) {
	m := minuteOfWeek(t)
	closedOutside, found := false, false
	for _, w := range s.Windows {
		if w.Rate == 0 {
			closedOutside = true
		}
		if !found && w.holds(m) {
			found = true
			rate = s.base()
			if w.Rate != 0 {
				rate = w.Rate
			}
		}
	}
	switch {
	case found:
	case closedOutside:
		rate = 0
	default:
		rate = s.base()
	}
	next := minutesPerWeek
	for _, w := range s.Windows {
		next = min(next, w.nextEdge(m))
	}
	start := t.Truncate(time.Minute)
	return rate, start.Add(time.Duration(next) * time.Minute)
}

// minuteOfWeek is t's minute since Monday 00:00 in t's location.
func minuteOfWeek(t time.Time) int {
	day := (int(t.Weekday()) + 6) % 7
	return day*24*60 + t.Hour()*60 + t.Minute()
}

// length is how many minutes one occurrence of w lasts.
func (w Window) length() int {
	if w.End > w.Start {
		return w.End - w.Start
	}
	return w.End + 24*60 - w.Start
}

// holds reports whether minute of the week m lies in an occurrence of w.
func (w Window) holds(m int) bool {
	for d, on := range w.Days {
		if on && (m-(d*24*60+w.Start)+minutesPerWeek)%minutesPerWeek < w.length() {
			return true
		}
	}
	return false
}

// nextEdge is how many minutes after m (1 at least) an occurrence of w
// next starts or ends.
func (w Window) nextEdge(m int) int {
	best := minutesPerWeek
	for d, on := range w.Days {
		if !on {
			continue
		}
		for _, edge := range []int{d*24*60 + w.Start, d*24*60 + w.Start + w.length()} {
			ahead := ((edge-m)%minutesPerWeek + minutesPerWeek) % minutesPerWeek
			if ahead == 0 {
				ahead = minutesPerWeek
			}
			best = min(best, ahead)
		}
	}
	return best
}
