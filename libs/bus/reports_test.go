package bus_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulpdist/pulpdist/libs/bus"
)

func signedBody(t *testing.T, key []byte, data any, edit func(*event.Event)) []byte {
	t.Helper()
	ev := event.New()
	ev.SetID("ev-1")
	ev.SetSource("/pulpdist/siteagent/site-a")
	ev.SetType("org.pulpdist.sync.finished.v1")
	ev.SetSubject("docs")
	ev.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC))
	if err := ev.SetData("application/json", data); err != nil {
		t.Fatal(err)
	}
	if err := bus.SignReport(&ev, "0123456789ab", key); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&ev)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSignedReports: a signature made with a token's key verifies after the
// event crossed the bus as JSON, and any change to what it says, or
// another key, fails.
func TestSignedReports(t *testing.T) {
	key := bus.ReportKey("pdt_0123456789ab_secret")
	data := map[string]any{"site": "site-a", "result": "COMPLETED"}
	decode := func(b []byte) event.Event {
		t.Helper()
		ev, _, err := bus.DecodeEvent[json.RawMessage](b)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	ev := decode(signedBody(t, key, data, nil))
	if id, ok := bus.ReportSigner(ev); !ok || id != "0123456789ab" {
		t.Fatalf("signer = %q, %t", id, ok)
	}
	if err := bus.VerifyReport(ev, key); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// The same JSON with other whitespace still verifies.
	var loose map[string]any
	if err := json.Unmarshal(signedBody(t, key, data, nil), &loose); err != nil {
		t.Fatal(err)
	}
	pretty, err := json.MarshalIndent(loose, "", "   ")
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.VerifyReport(decode(pretty), key); err != nil {
		t.Fatalf("verify re-indented: %v", err)
	}
	for name, b := range map[string][]byte{
		"other key":     signedBody(t, bus.ReportKey("pdt_0123456789ab_other"), data, nil),
		"other site":    signedBody(t, key, data, func(e *event.Event) { e.SetSource("/pulpdist/siteagent/site-b") }),
		"other data":    signedBody(t, key, data, func(e *event.Event) { _ = e.SetData("application/json", map[string]any{"site": "site-b"}) }),
		"other subject": signedBody(t, key, data, func(e *event.Event) { e.SetSubject("isos") }),
		"other time":    signedBody(t, key, data, func(e *event.Event) { e.SetTime(e.Time().Add(time.Nanosecond)) }),
		"no mac":        signedBody(t, key, data, func(e *event.Event) { _ = e.Context.SetExtension(bus.ExtReportMAC, nil) }),
		"bad mac":       signedBody(t, key, data, func(e *event.Event) { e.SetExtension(bus.ExtReportMAC, "!!") }),
	} {
		if err := bus.VerifyReport(decode(b), key); !errors.Is(err, bus.ErrBadReport) {
			t.Errorf("%s: err = %v, want ErrBadReport", name, err)
		}
	}
	if _, ok := bus.ReportSigner(decode(signedBody(t, key, data, func(e *event.Event) { _ = e.Context.SetExtension(bus.ExtReportToken, nil) }))); ok {
		t.Error("an event without the token extension has a signer")
	}
}

func TestReportTokenID(t *testing.T) {
	if id, err := bus.ReportTokenID("pdt_0123456789ab_c2VjcmV0"); err != nil || id != "0123456789ab" {
		t.Fatalf("id = %q, %v", id, err)
	}
	for _, bad := range []string{"", "pdt_", "pdt_abc", "pdt__x", "pdt_abc_", "xyz_abc_def", "pdt_" + strings.Repeat("a", 65) + "_x"} {
		if _, err := bus.ReportTokenID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
