package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/pgtest"
	"github.com/pulpdist/pulpdist/libs/poll"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago, for a child process that must be told its port in advance.
func freeAddr(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func getStatus(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestServicesRunAloneAndStopOnSIGTERM builds the four service programs and
// runs each as its own process against an external NATS and PostgreSQL,
// configured only by PULPDIST_* variables: each answers /healthz and
// /readyz, and exits 0 on SIGTERM.
func TestServicesRunAloneAndStopOnSIGTERM(t *testing.T) {
	natsURL := natstest.Start(t)
	dbURL := pgtest.NewDatabase(t)
	bin := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin+string(os.PathSeparator),
		"./services/inventory/cmd/inventory", "./services/scheduler/cmd/scheduler",
		"./services/deltacache/cmd/deltacache", "./services/siteagent/cmd/siteagent")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	invAddr := freeAddr(t)
	programs := []struct {
		name string
		env  []string
	}{
		{"inventory", []string{"PULPDIST_DATABASE_URL=" + dbURL, "PULPDIST_HTTP_ADDR=" + invAddr, "PULPDIST_ADMIN_TOKEN=" + testToken, "PULPDIST_MIGRATE=true"}},
		{"scheduler", []string{"PULPDIST_INVENTORY_URL=http://" + invAddr, "PULPDIST_INVENTORY_TOKEN=" + testToken}},
		{"deltacache", []string{"PULPDIST_WORK_DIR=" + t.TempDir(), "PULPDIST_INSTANCE=solo"}},
		{"siteagent", []string{"PULPDIST_SITE=site-a", "PULPDIST_DATA_DIR=" + t.TempDir()}},
	}
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			addr := invAddr
			env := append(os.Environ(), "PULPDIST_NATS_URL="+natsURL, "PULPDIST_LOG_FORMAT=json")
			env = append(env, p.env...)
			if p.name != "inventory" {
				addr = freeAddr(t)
				env = append(env, "PULPDIST_HTTP_ADDR="+addr)
			}
			var stderr strings.Builder
			cmd := exec.Command(filepath.Join(bin, p.name)) //nolint:noctx // stopped by SIGTERM below, not by a context
			cmd.Env, cmd.Stderr = env, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			waited := false
			t.Cleanup(func() {
				if !waited { // the test failed early: do not leave the process behind
					_ = cmd.Process.Kill() // best effort; Wait below reports nothing useful either
					t.Logf("%s killed: %v", p.name, <-exited)
				}
			})
			for _, path := range []string{"/healthz", "/readyz"} {
				poll.Until(t, 30*time.Second, func() error {
					select {
					case err := <-exited:
						waited = true
						t.Fatalf("%s exited early: %v\n%s", p.name, err, stderr.String())
					default:
					}
					code, err := getStatus(t.Context(), "http://"+addr+path)
					if err != nil {
						return err
					}
					if code != http.StatusOK {
						return fmt.Errorf("%s %s: %d", p.name, path, code)
					}
					return nil
				})
			}
			// Each serves its own metrics: the runtime's, and its build.
			fams := scrape(t.Context(), t, "http://"+addr+"/metrics")
			service := map[string]string{"deltacache": "deltacache-solo", "siteagent": "siteagent-site-a"}[p.name]
			if v, err := sample(fams, "pulpdist_build_info", map[string]string{"service": cmp.Or(service, p.name)}); err != nil || v != 1 {
				t.Errorf("%s build info: %v, %v", p.name, v, err)
			}
			if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
				t.Errorf("%s serves no runtime or process metrics", p.name)
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				waited = true
				if err != nil {
					t.Fatalf("%s did not stop cleanly on SIGTERM: %v\n%s", p.name, err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s still running 30s after SIGTERM", p.name)
			}
			if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
				t.Errorf("%s logged no clean stop:\n%s", p.name, stderr.String())
			}
		})
	}
}
