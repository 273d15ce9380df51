package main

import (
	"bufio"
	"context"
	"errors"
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
	"github.com/pulpdist/pulpdist/services/inventory"
)

// TestDevRunsTheDemo is `make run` as a test: pulpdist dev on SQLite with
// an embedded NATS prints its addresses and an admin token first, mirrors
// the demo tree to both demo replicas, and stops cleanly when cancelled.
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
	for len(head) < 5 && lines.Scan() {
		head = append(head, lines.Text())
	}
	dashboard := make(chan string, 1)
	go func() { // keep draining so the dev command never blocks on stdout
		for lines.Scan() {
			if u, ok := strings.CutPrefix(lines.Text(), "Dashboard: "); ok {
				dashboard <- u
			}
		}
	}()
	if len(head) < 5 {
		t.Fatalf("dev printed %q, then stopped: %v", head, <-done)
	}
	if !strings.HasPrefix(head[0], "API: http://127.0.0.1:") || !strings.HasPrefix(head[1], "Token: ") ||
		!strings.HasPrefix(head[2], "NATS: nats://127.0.0.1:") || !strings.HasPrefix(head[3], "Data: /") ||
		head[4] != "Metrics: "+strings.TrimPrefix(head[0], "API: ")+"/metrics" {
		t.Fatalf("first lines %q", head)
	}
	api, token := strings.TrimPrefix(head[0], "API: "), strings.TrimPrefix(head[1], "Token: ")
	if err := inventory.ValidateAdminToken(token); err != nil || token == "" {
		t.Fatalf("token line %q: %v", head[1], err)
	}
	// The API wants the token; with it, the demo is there.
	var p *inventoryapi.Problem
	if _, err := inventoryapi.NewClient(api, nil).Overview(ctx); !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
		t.Fatalf("overview without a token: %v, want 401", err)
	}
	c := inventoryapi.NewClient(api, nil).WithToken(token)
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
	// Every service's metrics are on the inventory's /metrics, and they
	// saw the demo's first sync.
	checkDemoMetrics(ctx, t, strings.TrimPrefix(head[4], "Metrics: "))
	// The dev inventory requires signed reports: the demo's agents signed
	// every one with their own agent token, and none was refused.
	if ps, err := c.Problems(ctx, 0); err != nil || len(ps) != 0 {
		t.Fatalf("problems %+v, %v: want none", ps, err)
	}
	toks, err := c.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	agents := map[string]bool{}
	for _, tk := range toks {
		if tk.Role == "agent" && tk.RevokedAt == nil {
			agents[tk.Site] = true
		}
	}
	for _, site := range append([]string{demo.Origin}, demo.Replicas...) {
		if !agents[site] {
			t.Errorf("no agent token of %s among %+v", site, toks)
		}
	}
	// The dashboard URL carries the token in its fragment, which the
	// browser keeps to itself; the page is static, served without a token,
	// and its script reads the API with the token.
	var dash string
	select {
	case dash = <-dashboard:
	case <-time.After(30 * time.Second):
		t.Fatal("no Dashboard line")
	}
	if dash != api+"/#token="+token {
		t.Fatalf("dashboard URL %q, want %s/#token=%s", dash, api, token)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/", nil)
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
	for _, want := range []string{`"/api/v1/overview"`, "Authorization: ", "#token=", "localStorage"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	for _, leak := range append([]string{demo.Origin}, demo.Replicas...) {
		if strings.Contains(string(page), leak) {
			t.Errorf("the dashboard served without a token shows %q", leak)
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

// checkDemoMetrics checks what the metrics of `pulpdist dev` say once the
// demo tree reached every replica.
func checkDemoMetrics(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	fams := scrape(ctx, t, url)
	atLeast := func(name string, labels map[string]string, min float64) {
		t.Helper()
		v, err := sample(fams, name, labels)
		if err != nil || v < min {
			t.Errorf("%s%v = %v, %v; want at least %v", name, labels, v, err, min)
		}
	}
	for _, site := range demo.Replicas {
		atLeast("pulpdist_sync_results_total", map[string]string{"tree": demo.Tree, "site": site, "kind": "apply", "result": "COMPLETED"}, 1)
		atLeast("pulpdist_sync_received_bytes_total", map[string]string{"tree": demo.Tree, "site": site}, 1)
		atLeast("pulpdist_agent_link_received_bytes_total", map[string]string{"tree": demo.Tree, "site": site}, 1)
		atLeast("pulpdist_agent_run_duration_seconds", map[string]string{"site": site, "kind": "apply", "result": "COMPLETED"}, 1)
		if v, err := sample(fams, "pulpdist_subscription_versions_behind", map[string]string{"tree": demo.Tree, "site": site}); err != nil || v != 0 {
			t.Errorf("versions behind of %s: %v, %v; want 0", site, v, err)
		}
		atLeast("pulpdist_site_last_heartbeat_timestamp_seconds", map[string]string{"site": site}, 1)
	}
	atLeast("pulpdist_sync_results_total", map[string]string{"tree": demo.Tree, "site": demo.Origin, "kind": "snapshot", "result": "COMPLETED"}, 1)
	atLeast("pulpdist_deltacache_requests_total", map[string]string{"tree": demo.Tree, "outcome": "computed"}, 1)
	atLeast("pulpdist_scheduler_commands_total", map[string]string{"tree": demo.Tree, "kind": "apply", "urgent": "false"}, float64(len(demo.Replicas)))
	atLeast("pulpdist_http_requests_total", map[string]string{"route": "GET /api/v1/overview", "code": "200"}, 1)
	atLeast("pulpdist_inventory_database_up", nil, 1)
	for _, service := range append([]string{"inventory", "scheduler"}, "siteagent-"+demo.Origin) {
		atLeast("pulpdist_build_info", map[string]string{"service": service}, 1)
	}
	if _, err := sample(fams, "pulpdist_consumer_pending_messages", map[string]string{"service": "inventory", "consumer": "inventory"}); err != nil {
		t.Error(err)
	}
	// What the Grafana dashboards query is all there.
	checkDashboards(t, fams)
}
