package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const finished = `{"specversion":"1.0","id":"e1","source":"/pulpdist/siteagent/lab-brno","type":"org.pulpdist.sync.finished.v1",
"subject":"tree/fedora-40/site/lab-brno","time":"2026-12-06T02:00:41Z","datacontenttype":"application/json",
"data":{"run_id":"r1","site":"lab-brno","tree":"fedora-40","kind":"apply","result":"COMPLETED","bytes":4096}}`

func created(id string) string {
	return `{"specversion":"1.0","id":"` + id + `","source":"/pulpdist/inventory","type":"org.pulpdist.tree.created.v1",
"subject":"tree/docs","time":"2026-12-06T03:00:00Z","datacontenttype":"application/json","data":{"name":"docs"}}`
}

func TestDescribe(t *testing.T) {
	got, err := Describe([]byte(finished))
	if want := "2026-12-06T02:00:41Z sync.finished.v1 tree/fedora-40/site/lab-brno COMPLETED 4096 bytes"; err != nil || got != want {
		t.Errorf("Describe = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"not json", `{"id":"x","type":"com.example.thing"}`, `{"type":"org.pulpdist.tree.created.v1"}`,
		strings.Replace(finished, `"result":"COMPLETED"`, `"result":7`, 1)} {
		if _, err := Describe([]byte(bad)); err == nil {
			t.Errorf("Describe(%s) accepted", bad)
		}
	}
}

// lines is an io.Writer the consumer writes to while the test reads; each
// line written is signalled on ch.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan struct{}
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range bytes.Count(p, []byte("\n")) {
		l.ch <- struct{}{}
	}
	return l.buf.Write(p)
}

func (l *lines) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.String() }

// TestRunResumes replays what the stream kept on a first start and, started
// again, carries on with what it has not seen, against a real server.
func TestRunResumes(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PULPDIST_EVENTS", Subjects: []string{"pulpdist.evt.>"}}); err != nil {
		t.Fatal(err)
	}
	publish := func(subject, body string) {
		t.Helper()
		if _, err := js.Publish(ctx, subject, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	publish("pulpdist.evt.sync.finished.fedora-40.lab-brno", finished)
	publish("pulpdist.evt.tree.created.docs._", "junk")
	publish("pulpdist.evt.tree.created.docs._", created("e2"))

	o := Options{Server: srv.ClientURL(), Durable: "test", Filter: "pulpdist.evt.>", Since: time.Hour}
	follow := func(want int) string {
		t.Helper()
		out := lines{ch: make(chan struct{}, 100)}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- Run(rctx, o, &out) }()
		deadline := time.After(10 * time.Second)
	wait:
		for range want {
			select {
			case <-out.ch:
			case <-deadline:
				t.Errorf("fewer than %d lines within 10 s", want)
				break wait
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	first := follow(3)
	if !strings.Contains(first, "sync.finished.v1 tree/fedora-40/site/lab-brno COMPLETED") ||
		!strings.Contains(first, "skipped a message") || !strings.Contains(first, "tree.created.v1 tree/docs") {
		t.Fatalf("first start printed:\n%s", first)
	}
	publish("pulpdist.evt.tree.created.docs._", created("e3"))
	again := follow(1)
	if strings.Count(again, "\n") != 1 || !strings.Contains(again, "tree.created.v1 tree/docs") {
		t.Fatalf("second start printed (want only the new event):\n%s", again)
	}
}
