package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/cmd/pulpdist/internal/demo"
	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/poll"
)

// TestDevRunsTheDemo is `make run` as a test: pulpdist dev on SQLite with
// an embedded NATS prints its addresses first, mirrors the demo tree to
// both demo replicas, and stops cleanly when cancelled.
func TestDevRunsTheDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runDev(ctx, devOptions{dataDir: t.TempDir(), apiAddr: "127.0.0.1:0", natsHost: "127.0.0.1", natsPort: -1, logLevel: "warn"}, outW, io.Discard)
		outW.Close()
		done <- err
	}()
	lines := bufio.NewScanner(outR)
	var head []string
	for len(head) < 3 && lines.Scan() {
		head = append(head, lines.Text())
	}
	go func() { // keep draining so the dev command never blocks on stdout
		for lines.Scan() {
		}
	}()
	if len(head) < 3 {
		t.Fatalf("dev printed %q, then stopped: %v", head, <-done)
	}
	if !strings.HasPrefix(head[0], "API: http://127.0.0.1:") ||
		!strings.HasPrefix(head[1], "NATS: nats://127.0.0.1:") || !strings.HasPrefix(head[2], "Data: /") {
		t.Fatalf("first lines %q", head)
	}
	c := inventoryapi.NewClient(strings.TrimPrefix(head[0], "API: "), nil)
	poll.Until(t, 60*time.Second, func() error {
		rows, err := c.Overview(ctx)
		if err != nil {
			return err
		}
		done := 0
		for _, r := range rows {
			if r.Tree == demo.Tree && r.Role == "replica" && r.State == string(bus.ResultCompleted) && r.Version != "" && r.Version == r.LatestVersion {
				done++
			}
		}
		if done != len(demo.Replicas) {
			return fmt.Errorf("overview %+v", rows)
		}
		return nil
	})
	// The dashboard shows the same.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimPrefix(head[0], "API: ")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("dashboard: %d %s %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	for _, want := range append([]string{demo.Origin, string(bus.ResultCompleted)}, demo.Replicas...) {
		if !strings.Contains(string(page), want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop within 30s of cancellation")
	}
}

func TestDevRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"dev", "--nats-port", "0"},
		{"dev", "--nats-port", "70000"},
		{"dev", "extra-arg"},
	} {
		root := newRoot(io.Discard, io.Discard)
		root.SetArgs(args)
		if err := root.ExecuteContext(t.Context()); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
