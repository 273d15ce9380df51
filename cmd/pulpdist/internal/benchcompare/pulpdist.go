package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// binaries are the programs of a pulpdist run, built from the workspace.
type binaries struct {
	nats, inventory, scheduler, deltacache, siteagent string
	// profiles, when set, is where the origin side's programs write CPU
	// profiles of each measured update (BENCH_PROFILE); nats is then
	// natsprof, nats-server with the same profile switch as pulpdist's.
	profiles string
}

// buildBinaries builds the services and nats-server into dir.
func buildBinaries(ctx context.Context, goTool, repo, dir, profiles string) (binaries, error) {
	b := binaries{
		nats: filepath.Join(dir, "nats-server"), inventory: filepath.Join(dir, "inventory"),
		scheduler: filepath.Join(dir, "scheduler"), deltacache: filepath.Join(dir, "deltacache"), siteagent: filepath.Join(dir, "siteagent"),
		profiles: profiles,
	}
	if _, err := runCmd(ctx, repo, goTool, "build", "-o", dir+"/",
		"./services/inventory/cmd/inventory", "./services/scheduler/cmd/scheduler",
		"./services/deltacache/cmd/deltacache", "./services/siteagent/cmd/siteagent"); err != nil {
		return b, err
	}
	natsPkg := "github.com/nats-io/nats-server/v2"
	if profiles != "" {
		natsPkg = "./cmd/pulpdist/internal/benchcompare/natsprof"
		if err := os.MkdirAll(profiles, 0o755); err != nil {
			return b, err
		}
	}
	_, err := runCmd(ctx, repo, goTool, "build", "-o", b.nats, natsPkg)
	return b, err
}

// network is one pulpdist installation on this machine: NATS, the
// inventory (SQLite), the scheduler, one delta-cache and the origin's
// agent — the origin side — and one site-agent process per site.
type network struct {
	dir     string
	procs   []*proc
	origin  []*proc // the processes whose CPU counts: NATS, delta-cache, origin agent
	nc      *nats.Conn
	js      jetstream.JetStream
	layout  *bus.Layout
	api     *inventoryapi.Client
	mu      sync.Mutex
	runs    map[string]map[string]bus.SyncFinished // trigger → site → its run (apply, or the origin's snapshot)
	stopped bool
	// profiling: the origin side writes CPU profiles (BENCH_PROFILE).
	profiling bool
	// monitor is nats-server's monitoring URL.
	monitor string
}

const benchToken = "bench-admin-token-0123456789abcdef0123456789"

// startNetwork starts a network of sites (besides the origin) in dir.
func startNetwork(ctx context.Context, bin binaries, dir string, sites []string) (_ *network, err error) {
	prof := func(name string) []string {
		if bin.profiles == "" {
			return nil
		}
		return []string{"PULPDIST_CPU_PROFILE=" + filepath.Join(bin.profiles, filepath.Base(dir)+"-"+name+".pprof")}
	}
	n := &network{dir: dir, runs: map[string]map[string]bus.SyncFinished{}, profiling: bin.profiles != ""}
	defer func() {
		if err != nil {
			n.stop()
		}
	}()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	monPort, err := freePort()
	if err != nil {
		return nil, err
	}
	n.monitor = fmt.Sprintf("http://127.0.0.1:%d", monPort)
	ns, err := start("nats", logs, bin.nats, prof("nats"), "-js", "-sd", filepath.Join(dir, "nats"), "-a", "127.0.0.1", "-p", fmt.Sprint(natsPort),
		"-m", fmt.Sprint(monPort))
	if err != nil {
		return nil, err
	}
	n.procs, n.origin = append(n.procs, ns), append(n.origin, ns)
	if err := dialable(ctx, natsPort); err != nil {
		return nil, err
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	if n.nc, n.js, err = bus.Connect(ctx, url, "bench", slog.New(slog.DiscardHandler)); err != nil {
		return nil, err
	}
	if n.layout, err = bus.Ensure(ctx, n.js); err != nil {
		return nil, err
	}
	common := []string{"PULPDIST_NATS_URL=" + url, "PULPDIST_LOG_LEVEL=warn", "PULPDIST_HTTP_ADDR="}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	inv, err := start("inventory", logs, bin.inventory, append(common,
		fmt.Sprintf("PULPDIST_HTTP_ADDR=127.0.0.1:%d", apiPort), "PULPDIST_DATABASE_URL=sqlite://"+filepath.Join(dir, "inventory.db"),
		"PULPDIST_ADMIN_TOKEN="+benchToken, "PULPDIST_MIGRATE=true", "PULPDIST_ACCEPT_UNSIGNED_REPORTS=true"))
	if err != nil {
		return nil, err
	}
	n.procs = append(n.procs, inv)
	apiURL := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	if err := until(ctx, 60*time.Second, "inventory ready", func() error {
		if err := inv.exited(); err != nil {
			return err
		}
		resp, err := http.Get(apiURL + "/readyz") //nolint:noctx // a poll with its own deadline
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	n.api = inventoryapi.NewClient(apiURL, &http.Client{Timeout: time.Minute}).WithToken(benchToken)
	sch, err := start("scheduler", logs, bin.scheduler, append(common, "PULPDIST_INVENTORY_URL="+apiURL, "PULPDIST_INVENTORY_TOKEN="+benchToken))
	if err != nil {
		return nil, err
	}
	dc, err := start("deltacache", logs, bin.deltacache, append(append(common, prof("deltacache")...), "PULPDIST_INSTANCE=dc-1",
		"PULPDIST_WORK_DIR="+filepath.Join(dir, "deltacache"), "PULPDIST_GC_INTERVAL=0"))
	if err != nil {
		return nil, err
	}
	n.procs, n.origin = append(n.procs, sch, dc), append(n.origin, dc)
	for _, site := range append([]string{"origin"}, sites...) {
		env := common
		if site == "origin" {
			env = append(env, prof("agent-origin")...)
		}
		p, err := start("agent-"+site, logs, bin.siteagent, append(env, "PULPDIST_SITE="+site,
			"PULPDIST_DATA_DIR="+filepath.Join(dir, "sites", site)))
		if err != nil {
			return nil, err
		}
		n.procs = append(n.procs, p)
		if site == "origin" {
			n.origin = append(n.origin, p)
		}
	}
	cons, err := n.js.OrderedConsumer(ctx, bus.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.EventFilter(bus.EntitySync, bus.ActionFinished)},
	})
	if err != nil {
		return nil, err
	}
	if _, err := cons.Consume(func(m jetstream.Msg) {
		_, fin, err := bus.DecodeEvent[bus.SyncFinished](m.Data())
		if err != nil {
			return
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.runs[fin.TriggerID] == nil {
			n.runs[fin.TriggerID] = map[string]bus.SyncFinished{}
		}
		n.runs[fin.TriggerID][fin.Site] = fin
	}); err != nil {
		return nil, err
	}
	return n, nil
}

// stop ends every process.
func (n *network) stop() {
	if n.stopped {
		return
	}
	n.stopped = true
	if n.nc != nil {
		n.nc.Close()
	}
	for i := len(n.procs) - 1; i >= 0; i-- {
		n.procs[i].stop()
	}
}

// natsStats are nats-server's message counters (its /varz).
type natsStats struct {
	InMsgs    uint64 `json:"in_msgs"`
	OutMsgs   uint64 `json:"out_msgs"`
	InBytes   uint64 `json:"in_bytes"`
	OutBytes  uint64 `json:"out_bytes"`
	JetStream struct {
		Stats struct {
			API struct {
				Total uint64 `json:"total"`
			} `json:"api"`
		} `json:"stats"`
	} `json:"jetstream"`
}

// stats reads the server's counters; zero ones when it does not answer
// (a report only).
func (n *network) stats(ctx context.Context) natsStats {
	var st natsStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.monitor+"/varz", nil)
	if err != nil {
		return st
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&st) // a report only
	return st
}

// toggleProfiles starts or stops the origin side's CPU profiles
// (BENCH_PROFILE): SIGUSR1, as PULPDIST_CPU_PROFILE documents.
func (n *network) toggleProfiles() {
	if !n.profiling {
		return
	}
	for _, p := range n.origin {
		_ = p.cmd.Process.Signal(syscall.SIGUSR1) // a process that ended fails the run elsewhere
	}
}

// originCPU is the CPU the origin side used so far, in all and by
// process.
func (n *network) originCPU() (time.Duration, error) {
	var total time.Duration
	for _, p := range n.origin {
		c, err := p.cpu()
		if err != nil {
			return 0, err
		}
		total += c
	}
	return total, nil
}

// cpuByProc is the CPU each origin-side process used so far.
func (n *network) cpuByProc() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, p := range n.origin {
		c, _ := p.cpu() // a report only
		out[p.name] = c
	}
	return out
}

// sync triggers a sync of the tree and waits until each of sites has
// finished its apply run of it with one of results; it returns the runs.
func (n *network) sync(ctx context.Context, sites []string, results ...bus.Result) (map[string]bus.SyncFinished, error) {
	acc, err := n.api.Sync(ctx, "bench")
	if err != nil {
		return nil, err
	}
	var got map[string]bus.SyncFinished
	err = until(ctx, 30*time.Minute, "sync of every site", func() error {
		for _, p := range n.procs {
			if err := p.exited(); err != nil {
				return errors.Join(errStop, err)
			}
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		runs := n.runs[acc.TriggerID]
		if o, ok := runs["origin"]; ok && o.Result != bus.ResultCompleted && o.Result != bus.ResultUpToDate {
			return errors.Join(errStop, fmt.Errorf("origin snapshot %s: %s", o.Result, o.Error))
		}
		done := 0
		for _, s := range sites {
			r, ok := runs[s]
			if !ok {
				continue
			}
			if !contains(results, r.Result) {
				return errors.Join(errStop, fmt.Errorf("site %s: %s (%s)", s, r.Result, r.Error))
			}
			done++
		}
		if done < len(sites) {
			return fmt.Errorf("%d of %d sites done", done, len(sites))
		}
		got = make(map[string]bus.SyncFinished, len(runs))
		for k, v := range runs {
			got[k] = v
		}
		return nil
	})
	return got, err
}

// errStop ends a wait at once: something failed for good.
var errStop = errors.New("stop")

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// runPulpdist measures pulpdist on corpus c for the sites.
func runPulpdist(ctx context.Context, bin binaries, work string, c *corpus, nsites int, idleWindow time.Duration) (record, error) {
	dir := filepath.Join(work, fmt.Sprintf("pulpdist-%s-%d", c.name, nsites))
	sites := siteNames(nsites)
	n, err := startNetwork(ctx, bin, dir, sites)
	if err != nil {
		return record{}, err
	}
	defer n.stop()
	src := filepath.Join(dir, "source")
	if _, err := runCmd(ctx, "", "cp", "-a", c.a, src); err != nil {
		return record{}, err
	}
	for _, s := range append([]string{"origin"}, sites...) {
		if _, err := n.api.CreateSite(ctx, inventoryapi.Site{Name: s}); err != nil {
			return record{}, err
		}
	}
	if _, err := n.api.CreateTree(ctx, inventoryapi.Tree{Name: "bench", OriginSite: "origin", Source: src, Keep: 2}); err != nil {
		return record{}, err
	}
	for _, s := range sites {
		if _, err := n.api.Subscribe(ctx, inventoryapi.Subscription{Site: s, Tree: "bench"}); err != nil {
			return record{}, err
		}
	}
	// Every site gets A first (not measured).
	if _, err := n.sync(ctx, sites, bus.ResultCompleted); err != nil {
		return record{}, fmt.Errorf("first sync: %w", err)
	}
	// The origin's source becomes B.
	if _, err := runCmd(ctx, "", "rsync", "-a", "--delete", c.b+"/", src+"/"); err != nil {
		return record{}, err
	}
	quiesce(ctx, "update")
	idleRate, err := n.idleRate(ctx, idleWindow)
	if err != nil {
		return record{}, err
	}
	cpu0, err := n.originCPU()
	if err != nil {
		return record{}, err
	}
	by0 := n.cpuByProc()
	st0 := n.stats(ctx)
	n.toggleProfiles()
	t0 := time.Now()
	runs, err := n.sync(ctx, sites, bus.ResultCompleted)
	if err != nil {
		return record{}, fmt.Errorf("update: %w", err)
	}
	wall := time.Since(t0)
	n.toggleProfiles()
	idle := idleRate * wall.Seconds()
	var split []string
	for name, c := range n.cpuByProc() {
		split = append(split, fmt.Sprintf("%s %.2fs", name, (c-by0[name]).Seconds()))
	}
	slices.Sort(split)
	log.Printf("pulpdist origin CPU of the update: %s; idle, the same processes spend %.1f ms/s: %.2fs over the update's %.1fs", strings.Join(split, ", "), idleRate*1e3, idle, wall.Seconds())
	st1 := n.stats(ctx)
	log.Printf("nats during the update: %d messages in (%d MB), %d out (%d MB), %d JetStream API calls; per site %.0f in, %.0f out, %.1f API calls",
		st1.InMsgs-st0.InMsgs, (st1.InBytes-st0.InBytes)>>20, st1.OutMsgs-st0.OutMsgs, (st1.OutBytes-st0.OutBytes)>>20,
		st1.JetStream.Stats.API.Total-st0.JetStream.Stats.API.Total,
		float64(st1.InMsgs-st0.InMsgs)/float64(nsites), float64(st1.OutMsgs-st0.OutMsgs)/float64(nsites),
		float64(st1.JetStream.Stats.API.Total-st0.JetStream.Stats.API.Total)/float64(nsites))
	cpu1, err := n.originCPU()
	if err != nil {
		return record{}, err
	}
	var received int64
	for _, s := range sites {
		received += runs[s].Bytes
	}
	for _, s := range sites {
		if err := sameTree(ctx, filepath.Join(dir, "sites", s, "trees", "bench", "current"), c.mb); err != nil {
			return record{}, fmt.Errorf("site %s: %w", s, err)
		}
	}
	// Nothing changed: the cost of asking. The origin finds its source
	// unchanged (UP_TO_DATE) and the scheduler contacts no site, since
	// every one serves the version; the figure counts until the machine is
	// quiet again, so the scheduler's look at the sites' versions is in.
	quiesce(ctx, "poll")
	cpu2, err := n.originCPU()
	if err != nil {
		return record{}, err
	}
	if _, err := n.sync(ctx, []string{"origin"}, bus.ResultUpToDate); err != nil {
		return record{}, fmt.Errorf("poll: %w", err)
	}
	quiesce(ctx, "end of the poll")
	cpu3, err := n.originCPU()
	if err != nil {
		return record{}, err
	}
	return record{
		Tool: "pulpdist", Corpus: c.name, Sites: nsites, OriginCPU: (cpu1 - cpu0).Seconds(),
		BytesPerSite: received / int64(nsites), FloorBytes: c.floor, Wall: wall.Seconds(), PollCPU: (cpu3 - cpu2).Seconds(),
		OriginIdleCPU: idle,
	}, nil
}

// idleRate is the origin side's CPU per second of wall time while the
// network, every site connected, has nothing to do, watched for window
// (0: not measured). The agents' and the services' idle traffic (pull
// requests, heartbeats, consumer state) costs the origin side this much
// for as long as an update lasts, whatever the update does: on one
// machine 64 agents applying on the same cores make the update last ten
// times longer than one does.
func (n *network) idleRate(ctx context.Context, window time.Duration) (float64, error) {
	if window <= 0 {
		return 0, nil
	}
	c0, err := n.originCPU()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(window):
	}
	c1, err := n.originCPU()
	if err != nil {
		return 0, err
	}
	return (c1 - c0).Seconds() / time.Since(t0).Seconds(), nil
}

// siteNames names n sites.
func siteNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("site-%03d", i+1)
	}
	return out
}

// sameTree checks that dir holds exactly the tree of want.
func sameTree(ctx context.Context, dir string, want *tree.Manifest) error {
	got, err := tree.ScanWith(ctx, dir, tree.ScanOptions{NoChunks: true})
	if err != nil {
		return err
	}
	if got.Root() != want.Root() {
		return fmt.Errorf("%s holds %s, want %s", dir, got.Root(), want.Root())
	}
	return nil
}
