package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "Mon-Fri 22:00-06:00", want: "Mon-Fri 22:00-06:00"},
		{in: "  mon-FRI   22:00-06:00 ", want: "Mon-Fri 22:00-06:00"},
		{in: "Sat,Sun 00:00-24:00", want: "Sat-Sun 00:00-24:00"},
		{in: "Fri-Mon 20:00-23:30", want: "Mon,Fri-Sun 20:00-23:30"},
		{in: "Mon,Wed,Fri 01:00-02:00", want: "Mon,Wed,Fri 01:00-02:00"},
		{in: "Mon-Sun 00:00-24:00", want: "* 00:00-24:00"},
		{in: "* 23:59-00:00", want: "* 23:59-00:00"},
		{in: "", err: "0 fields"},
		{in: "Mon-Fri", err: "1 fields"},
		{in: "Mon 22:00-06:00 extra", err: `rate "extra"`},
		{in: "Mon 22:00-06:00 10M", want: "Mon 22:00-06:00 10M"},
		{in: "Mon 22:00-06:00 1M 2M", err: "4 fields"},
		{in: "Mo 22:00-06:00", err: `unknown day "Mo"`},
		{in: "Mon- 22:00-06:00", err: `unknown day ""`},
		{in: "Mon,,Tue 22:00-06:00", err: `unknown day ""`},
		{in: "Mon 22:00", err: "HH:MM-HH:MM"},
		{in: "Mon 2:00-06:00", err: "not HH:MM"},
		{in: "Mon +1:00-06:00", err: "not HH:MM"},
		{in: "Mon 22:60-06:00", err: "not a time of day"},
		{in: "Mon 22:00-24:01", err: "not a time of day"},
		{in: "Mon 24:00-06:00", err: "23:59 at the latest"},
		{in: "Mon 06:00-06:00", err: "empty window"},
	} {
		w, err := ParseWindow(tc.in)
		if tc.err != "" {
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseWindow(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || w.String() != tc.want {
			t.Errorf("ParseWindow(%q) = %q, %v; want %q", tc.in, w.String(), err, tc.want)
		}
	}
}

// A window's canonical form reads back as the same window.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"Mon-Fri 22:00-06:00", "Sat,Sun 00:00-24:00", "* 01:00-05:00", "Fri-Mon 1:00-2:00", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWindow(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		again, err := ParseWindow(w.String())
		if err != nil || again != w {
			t.Fatalf("%q → %q → %+v, %v", s, w.String(), again, err)
		}
	})
}

func TestLag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"6h", 6 * time.Hour, "6h"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"45m", 45 * time.Minute, "45m"},
		{"1h0m30s", time.Hour + 30*time.Second, "1h0m30s"},
		{"24h", 24 * time.Hour, "24h"},
	} {
		d, err := ParseLag(tc.in)
		if err != nil || d != tc.want || FormatLag(d) != tc.out {
			t.Errorf("ParseLag(%q) = %v, %v; FormatLag = %q, want %v, %q", tc.in, d, err, FormatLag(d), tc.want, tc.out)
		}
	}
	if _, err := ParseLag("6 hours"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseLag(6 hours) err = %v", err)
	}
}

func TestCheckTreeEntity(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Tree
		err  string
	}{
		{"defaults", Tree{}, ""},
		{"all set", Tree{Type: TreeSnapshot, MaxDeletions: 10, ProtectedPaths: []string{"/etc/***", "**/keep", "*.conf"}, AllowedLag: time.Hour}, ""},
		{"type", Tree{Type: "Simple"}, `type "Simple"`},
		{"deletions", Tree{MaxDeletions: -1}, "negative"},
		{"lag small", Tree{AllowedLag: 59 * time.Second}, "out of range"},
		{"lag big", Tree{AllowedLag: MaxAllowedLag + time.Hour}, "out of range"},
		{"lag fraction", Tree{AllowedLag: time.Hour + time.Millisecond}, "whole number of seconds"},
		{"path space", Tree{ProtectedPaths: []string{" /etc"}}, "space"},
		{"path sign", Tree{ProtectedPaths: []string{"+ /etc"}}, "without"},
		{"path class", Tree{ProtectedPaths: []string{"[z-a]"}}, "protected path"},
		{"too many", Tree{ProtectedPaths: make([]string, maxProtectedPaths+1)}, "at most"},
	} {
		tr := tc.in
		err := checkTreeEntity(&tr)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
		case tc.err == "" && (tr.Type == "" || tr.AllowedLag == 0 || tr.ProtectedPaths == nil):
			t.Errorf("%s: defaults not filled: %+v", tc.name, tr)
		}
	}
}

func TestCheckSiteEntity(t *testing.T) {
	ok := Site{Location: "Brno", WANLink: "1 Gbit/s", BandwidthLimit: 1 << 20, BandwidthWindows: []string{"sat 00:00-24:00"}, AgentIdentity: "U123"}
	heartbeat := time.Now()
	ok.LastHeartbeat = &heartbeat
	if err := checkSiteEntity(&ok); err != nil {
		t.Fatal(err)
	}
	if ok.BandwidthWindows[0] != "Sat 00:00-24:00" || ok.LastHeartbeat != nil {
		t.Fatalf("site = %+v, want canonical windows and no heartbeat", ok)
	}
	for _, tc := range []struct {
		name string
		in   Site
		err  string
	}{
		{"limit", Site{BandwidthLimit: -1}, "negative"},
		{"window", Site{BandwidthWindows: []string{"weekdays 22:00-06:00"}}, "unknown day"},
		{"windows", Site{BandwidthWindows: make([]string, maxBandwidthWindows+1)}, "at most"},
		{"location", Site{Location: strings.Repeat("x", maxDescription+1)}, "location"},
		{"wan link", Site{WANLink: "\xff"}, "wan_link"},
		{"agent", Site{AgentIdentity: "a\x00b"}, "agent_identity"},
	} {
		s := tc.in
		if err := checkSiteEntity(&s); err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestActor(t *testing.T) {
	ctx := context.Background()
	if got := ActorFrom(ctx); got != Anonymous {
		t.Fatalf("actor of a bare context = %q", got)
	}
	if got := ActorFrom(WithActor(ctx, "")); got != Anonymous {
		t.Fatalf("empty actor = %q", got)
	}
	ctx = WithActor(ctx, "ops-token")
	e := NewAuditEntry(ctx, time.Date(2026, 1, 2, 3, 4, 5, 6789, time.FixedZone("x", 3600)), AuditPause, "site", "paris", map[string]bool{"paused": true})
	if e.Actor != "ops-token" || e.Summary != `{"paused":true}` || e.At.Location() != time.UTC || e.At.Nanosecond() != 6000 || e.ID == "" {
		t.Fatalf("entry = %+v", e)
	}
	bad := NewAuditEntry(ctx, time.Now(), AuditCreate, "site", "x", func() {})
	if !strings.Contains(bad.Summary, "summary not encoded") {
		t.Fatalf("entry with a summary that does not encode = %+v", bad)
	}
}
