// Package bandwidth is how a site's link is shared: the weekly schedule of
// what a site may receive (a limit in bytes/s and windows, each
// optionally with its own rate), and a Shaper that holds the transfers of
// a site-agent to it, token bucket and all, letting urgent transfers
// overtake normal ones.
package bandwidth

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Unlimited is the rate of a window without a limit.
const Unlimited int64 = -1

// Window is a weekly period: the days it starts on and its times of day
// in minutes since midnight. End <= Start means it runs past midnight
// into the next day. Rate is its own rate in bytes/s (Unlimited for
// none); 0 means the site's bandwidth_limit.
type Window struct {
	// Days[0] is Monday.
	Days       [7]bool
	Start, End int
	Rate       int64
}

var dayNames = [7]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// ParseWindow reads a window "DAYS HH:MM-HH:MM [RATE]". DAYS is a day (Mon,
// Tue, Wed, Thu, Fri, Sat, Sun, in any case), a range of days (Mon-Fri;
// Fri-Mon wraps over the weekend), a comma-separated list of those
// (Mon,Wed,Fri-Sun) or * for every day. The times are 00:00 to 24:00; a
// window whose end is before its start runs past midnight ("Mon-Fri
// 22:00-06:00" is each weeknight from 22:00 to 06:00 the next morning).
// Times are those of the site's agent. RATE, in bytes/s, is a whole number
// with an optional k, M or G (thousands, millions, billions: "20M" is
// 20,000,000 bytes/s) or "unlimited"; without it the window runs at the
// site's bandwidth_limit (see Schedule for what that means outside the
// windows).
func ParseWindow(s string) (Window, error) {
	bad := func(format string, args ...any) (Window, error) {
		return Window{}, fmt.Errorf("bandwidth window %q: "+format+` (want "DAYS HH:MM-HH:MM [RATE]", such as "Mon-Fri 22:00-06:00" or "* 22:00-06:00 unlimited")`, append([]any{s}, args...)...)
	}
	fields := strings.Fields(s)
	if len(fields) != 2 && len(fields) != 3 {
		return bad("%d fields, want 2 or 3", len(fields))
	}
	var w Window
	if fields[0] == "*" {
		w.Days = [7]bool{true, true, true, true, true, true, true}
	} else {
		for part := range strings.SplitSeq(fields[0], ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			a, ok := dayIndex(lo)
			if !ok {
				return bad("unknown day %q", lo)
			}
			b := a
			if isRange {
				if b, ok = dayIndex(hi); !ok {
					return bad("unknown day %q", hi)
				}
			}
			for d := a; ; d = (d + 1) % 7 {
				w.Days[d] = true
				if d == b {
					break
				}
			}
		}
	}
	from, to, ok := strings.Cut(fields[1], "-")
	if !ok {
		return bad("times must be HH:MM-HH:MM")
	}
	var err error
	if w.Start, err = clock(from); err != nil {
		return bad("start: %v", err)
	}
	if w.End, err = clock(to); err != nil {
		return bad("end: %v", err)
	}
	if w.Start == 24*60 {
		return bad("start 24:00: a window starts at 23:59 at the latest")
	}
	if w.Start == w.End {
		return bad("start and end are equal: an empty window")
	}
	if len(fields) == 3 {
		if w.Rate, err = ParseRate(fields[2]); err != nil {
			return bad("%v", err)
		}
	}
	return w, nil
}

// maxRate bounds a rate: 1 TB/s is no limit anyone means.
const maxRate = 1_000_000_000_000

// ParseRate reads a rate in bytes/s: "unlimited" (Unlimited), or a
// positive whole number with an optional k, M or G suffix.
func ParseRate(s string) (int64, error) {
	if strings.EqualFold(s, "unlimited") {
		return Unlimited, nil
	}
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1_000, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mult, s = 1_000_000, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1_000_000_000, strings.TrimSuffix(s, "G")
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("rate %q: want bytes/s such as 500k, 20M or unlimited", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > maxRate/mult {
		return 0, fmt.Errorf("rate %q: want a positive rate of at most 1000G bytes/s", s)
	}
	return n * mult, nil
}

// FormatRate writes a rate the way ParseRate reads it, with the largest
// exact suffix.
func FormatRate(r int64) string {
	switch {
	case r == Unlimited:
		return "unlimited"
	case r%1_000_000_000 == 0:
		return strconv.FormatInt(r/1_000_000_000, 10) + "G"
	case r%1_000_000 == 0:
		return strconv.FormatInt(r/1_000_000, 10) + "M"
	case r%1_000 == 0:
		return strconv.FormatInt(r/1_000, 10) + "k"
	}
	return strconv.FormatInt(r, 10)
}

func dayIndex(s string) (int, bool) {
	for i, n := range dayNames {
		if strings.EqualFold(s, n) {
			return i, true
		}
	}
	return 0, false
}

// clock reads HH:MM (00:00 to 24:00) as minutes since midnight.
func clock(s string) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || !twoDigits(hh) || !twoDigits(mm) {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	h, _ := strconv.Atoi(hh) // two digits always convert
	m, _ := strconv.Atoi(mm)
	if h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not a time of day (00:00 to 24:00)", s)
	}
	return h*60 + m, nil
}

func twoDigits(s string) bool {
	return len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9'
}

// String writes w in the canonical form ParseWindow reads: days as
// ranges of the week ("Mon-Fri", "Sat,Sun" stays "Sat-Sun"), "*" for all.
func (w Window) String() string {
	days := "*"
	if w.Days != [7]bool{true, true, true, true, true, true, true} {
		var parts []string
		for i := 0; i < 7; {
			if !w.Days[i] {
				i++
				continue
			}
			j := i
			for j+1 < 7 && w.Days[j+1] {
				j++
			}
			if j == i {
				parts = append(parts, dayNames[i])
			} else {
				parts = append(parts, dayNames[i]+"-"+dayNames[j])
			}
			i = j + 1
		}
		days = strings.Join(parts, ",")
	}
	s := fmt.Sprintf("%s %02d:%02d-%02d:%02d", days, w.Start/60, w.Start%60, w.End/60, w.End%60)
	if w.Rate != 0 {
		s += " " + FormatRate(w.Rate)
	}
	return s
}

// ErrSchedule marks a bad schedule.
var ErrSchedule = errors.New("bad bandwidth schedule")
