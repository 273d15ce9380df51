package natstest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// discoverTimeout bounds Discover.
const discoverTimeout = 30 * time.Second

// Discover asks the micro services named name ("" for every one) the
// discovery question verb ($SRV.PING, $SRV.INFO or $SRV.STATS), as
// `nats micro ls` does, and returns the latest answer of each instance
// (by service id, decoded as T: micro.Ping, micro.Info or micro.Stats)
// once check accepts them. The question is asked again every 100 ms, so
// instances that register meanwhile answer too; the test fails if check
// has not accepted the answers within 30 s, with check's last error.
// While none is registered, the server's "no responders" answers are
// passed over.
func Discover[T any](tb testing.TB, nc *nats.Conn, verb micro.Verb, name string, check func([]T) error) []T {
	tb.Helper()
	subject, err := micro.ControlSubject(verb, name, "")
	if err != nil {
		tb.Fatal(err)
	}
	inbox := nc.NewRespInbox()
	msgs := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }() // the test's connection; closing it ends the subscription anyway
	byID := map[string]T{}
	var ids []string
	deadline := time.NewTimer(discoverTimeout)
	defer deadline.Stop()
	ask := time.NewTicker(100 * time.Millisecond)
	defer ask.Stop()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		tb.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // asked before check first looks
		tb.Fatal(err)
	}
	last := check(nil)
	if last == nil {
		return nil
	}
	for {
		select {
		case m := <-msgs:
			if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
				continue // no responders yet: the services are still starting
			}
			var id struct {
				ID string `json:"id"`
			}
			var v T
			if err := json.Unmarshal(m.Data, &id); err != nil || id.ID == "" {
				tb.Fatalf("%s: answer without a service id: %q", subject, m.Data)
			}
			if err := json.Unmarshal(m.Data, &v); err != nil {
				tb.Fatalf("%s: answer %q: %v", subject, m.Data, err)
			}
			if _, seen := byID[id.ID]; !seen {
				ids = append(ids, id.ID)
			}
			byID[id.ID] = v
			out := make([]T, 0, len(ids))
			for _, id := range slices.Sorted(slices.Values(ids)) {
				out = append(out, byID[id])
			}
			if last = check(out); last == nil {
				return out
			}
		case <-ask.C:
			if err := nc.PublishRequest(subject, inbox, nil); err != nil {
				tb.Fatal(err)
			}
		case <-deadline.C:
			tb.Fatalf("%s: answers not as expected after %s: %v", subject, discoverTimeout, last)
		}
	}
}
