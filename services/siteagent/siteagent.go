// Package siteagent runs one site's trees on disk. At the origin of a tree
// it scans the source, uploads content the blob store lacks, stores the
// manifest and publishes the snapshot. At a replica it fetches the delta
// pack, verifies it, applies it beside the served version and switches
// atomically. Either way it reports the run's result as an event.
package siteagent

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bandwidth"
	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/libs/daemon"
	"github.com/pulpdist/pulpdist/libs/health"
	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/replica"
)

// Config is a site-agent's configuration.
type Config struct {
	daemon.Options
	// Site is the name of the site this agent runs.
	Site string
	// DataDir holds the replicas: <DataDir>/trees/<tree>/{current,versions,…}.
	DataDir string
	// SourceRoots, when set, are the only directories (comma-separated)
	// under which this site scans tree sources; any other source declared
	// in the inventory is refused.
	SourceRoots string
	// TrustedKeys is a PEM file of ed25519 public keys. A pack must be
	// signed by one of them or by one of the keys the inventory publishes
	// (the signing-keys bucket), unless there are none at all.
	TrustedKeys string
	// AgentToken is the site's agent token of the inventory API; when set,
	// every event the agent publishes is signed with it (bus.SignReport),
	// so the inventory knows the report comes from this site.
	AgentToken string
	// AgentTokenFile names a file holding AgentToken (a mounted secret,
	// or what `pulpdist token provision` wrote); one of the two at most.
	AgentTokenFile string
	// ProgressInterval is how often a running sync reports its progress
	// (sync.progress); 0 is DefaultProgressInterval.
	ProgressInterval time.Duration
	// HeartbeatInterval is how often the agent says it is alive
	// (agent.heartbeat); 0 is DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
}

// agentToken is the agent token configured, read from AgentTokenFile
// when that is set ("" when neither is).
func (c Config) agentToken() (string, error) {
	return config.SecretOrFile("agent token (PULPDIST_AGENT_TOKEN or PULPDIST_AGENT_TOKEN_FILE)", c.AgentToken, c.AgentTokenFile)
}

// Bind registers the configuration's flags and environment variables.
func (c *Config) Bind(s *config.Set) {
	c.Options.Bind(s, "127.0.0.1:7403")
	s.String(&c.Site, "site", "PULPDIST_SITE", "", "name of this site (required)")
	s.String(&c.DataDir, "data-dir", "PULPDIST_DATA_DIR", "/var/lib/pulpdist", "directory holding this site's trees")
	s.String(&c.SourceRoots, "source-roots", "PULPDIST_SOURCE_ROOTS", "", "comma-separated directories tree sources must be under (empty: any)")
	s.String(&c.TrustedKeys, "trusted-keys", "PULPDIST_TRUSTED_KEYS", "", "PEM file of ed25519 public keys trusted besides the inventory's signing keys (with neither, packs need no signature)")
	s.String(&c.AgentToken, "agent-token", "PULPDIST_AGENT_TOKEN", "", "this site's agent token of the inventory API (pulpdist token create --role agent --site SITE); signs every event the agent reports (prefer the env var: flags show in ps)")
	s.String(&c.AgentTokenFile, "agent-token-file", "PULPDIST_AGENT_TOKEN_FILE", "", "file holding this site's agent token, instead of PULPDIST_AGENT_TOKEN (pulpdist token provision writes one)")
	s.Duration(&c.ProgressInterval, "progress-interval", "PULPDIST_PROGRESS_INTERVAL", DefaultProgressInterval, "how often a running sync reports its progress (sync.progress events; none for a sync shorter than this)")
	s.Duration(&c.HeartbeatInterval, "heartbeat-interval", "PULPDIST_HEARTBEAT_INTERVAL", DefaultHeartbeatInterval, "how often the agent says it is alive (agent.heartbeat events); keep it well below the inventory's PULPDIST_AGENT_OFFLINE_AFTER")
}

// sourceRoots lists the configured source roots.
func (c Config) sourceRoots() []string {
	var out []string
	for r := range strings.SplitSeq(c.SourceRoots, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// Validate checks the configuration.
func (c Config) Validate() error {
	errs := []error{c.Options.Validate()}
	if err := bus.ValidateName("site", c.Site); err != nil {
		errs = append(errs, err)
	}
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		errs = append(errs, fmt.Errorf("data dir %q must be an absolute path", c.DataDir))
	}
	if tok, err := c.agentToken(); err != nil {
		errs = append(errs, err)
	} else if tok != "" {
		if _, err := bus.ReportTokenID(tok); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range c.sourceRoots() {
		if !filepath.IsAbs(r) || filepath.Clean(r) != r {
			errs = append(errs, fmt.Errorf("source root %q must be a clean absolute path", r))
		}
	}
	if c.ProgressInterval < 0 || c.ProgressInterval > 0 && c.ProgressInterval < MinProgressInterval {
		errs = append(errs, fmt.Errorf("progress interval %s: want %s or more (0: %s)", c.ProgressInterval, MinProgressInterval, DefaultProgressInterval))
	}
	if c.HeartbeatInterval < 0 || c.HeartbeatInterval > 0 && (c.HeartbeatInterval < MinHeartbeatInterval || c.HeartbeatInterval > MaxHeartbeatInterval) {
		errs = append(errs, fmt.Errorf("heartbeat interval %s: want %s to %s (0: %s)", c.HeartbeatInterval, MinHeartbeatInterval, MaxHeartbeatInterval, DefaultHeartbeatInterval))
	}
	return errors.Join(errs...)
}

// Service is a site-agent connected to the bus.
type Service struct {
	cfg    Config
	d      *daemon.Daemon
	log    *slog.Logger
	js     jetstream.JetStream
	layout *bus.Layout
	// packs is the stream of the packs' object store, for direct gets of
	// the chunks of small packs (directChunks).
	packs  jetstream.Stream
	events *bus.Events
	keys   *keyring
	// link shares the site's link among its transfers.
	link    *bandwidth.Shaper
	metrics *agentMetrics
	// trees serialises the runs of each tree and keeps its verifications
	// out of their way (treeLock).
	trees sync.Map // tree name → *treeLock
	// served is the manifest this origin published last, by tree.
	served sync.Map // tree name → servedVersion
	// progressEvery is how often a running sync reports its progress.
	progressEvery time.Duration
	// heartbeatEvery is how often the agent says it is alive; running
	// counts the commands in progress, which heartbeats tell.
	heartbeatEvery time.Duration
	running        atomic.Int64
	// runs are the commands running now, for the status.
	runs sync.Map // run id → bus.AgentRun
	// testHookVerify, when set, is called by a verify holding its tree
	// before it reads the tree.
	testHookVerify func(ctx context.Context, tree string)
}

// New connects to NATS, prepares the data directory and binds the health
// server.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("siteagent config: %w", err)
	}
	// tmp/ holds packs being fetched; what a stopped agent left there is
	// of no use.
	if err := os.RemoveAll(tmpDir(cfg.DataDir)); err != nil {
		return nil, fmt.Errorf("siteagent data dir: %w", err)
	}
	for _, d := range []string{treesDir(cfg.DataDir), tmpDir(cfg.DataDir), cacheDir(cfg.DataDir), partialDir(cfg.DataDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("siteagent data dir: %w", err)
		}
	}
	// partial/ holds interrupted fetches, which resume; those of expired
	// commands go.
	if err := cleanPartials(cfg.DataDir, time.Now()); err != nil {
		return nil, fmt.Errorf("siteagent data dir: %w", err)
	}
	var trusted []ed25519.PublicKey
	if cfg.TrustedKeys != "" {
		var err error
		if trusted, err = pack.LoadPublicKeys(cfg.TrustedKeys); err != nil {
			return nil, fmt.Errorf("siteagent config: %w", err)
		}
	}
	tok, err := cfg.agentToken()
	if err != nil { // read by Validate too, but the file may have gone since
		return nil, fmt.Errorf("siteagent config: %w", err)
	}
	log = log.With("site", cfg.Site)
	d, err := daemon.New(ctx, "siteagent-"+cfg.Site, cfg.Options, log)
	if err != nil {
		return nil, err
	}
	events := bus.NewEvents(d.JS, "/pulpdist/siteagent/"+cfg.Site)
	if tok != "" {
		id, _ := bus.ReportTokenID(tok) // checked by Validate
		events.SignReportsWith(id, bus.ReportKey(tok))
	} else {
		log.Warn("no agent token: an inventory that requires signed reports (the default) keeps this agent's reports as problems; set PULPDIST_AGENT_TOKEN_FILE or PULPDIST_AGENT_TOKEN")
	}
	packs, err := d.JS.Stream(ctx, bus.ObjectStream(bus.BucketDeltas))
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("packs' stream: %w", err)
	}
	link := bandwidth.NewShaper(bandwidth.Schedule{})
	m, err := newAgentMetrics(d.Metrics, cfg.Site, link)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &Service{
		cfg: cfg, d: d, log: log, js: d.JS, layout: d.Layout, packs: packs, keys: newKeyring(trusted, log),
		events: events, link: link, metrics: m,
		progressEvery:  cmp.Or(cfg.ProgressInterval, DefaultProgressInterval),
		heartbeatEvery: cmp.Or(cfg.HeartbeatInterval, DefaultHeartbeatInterval),
	}, nil
}

// Probe is the agent's readiness.
func (s *Service) Probe() *health.Probe { return s.d.Probe }

// ConsumerName is the durable consumer of a site's commands.
func ConsumerName(site string) string { return "siteagent-" + site }

// UrgentConsumerName is the durable consumer of a site's urgent commands.
func UrgentConsumerName(site string) string { return ConsumerName(site) + "-urgent" }

// Run announces the versions on disk and loads the trusted signing keys,
// publishes agent.online, then executes commands, following changes of
// the keys and sending heartbeats, and answers its requests (status,
// verify) until ctx ends; it publishes agent.offline before it returns.
func (s *Service) Run(ctx context.Context) error {
	started := time.Now().UTC()
	trees, err := s.announce(ctx)
	if err != nil {
		s.d.Close()
		return err
	}
	w, err := s.keys.watch(ctx, s.layout.SigningKeys)
	if err != nil {
		s.d.Close()
		return err
	}
	if err := s.online(ctx, started, trees); err != nil {
		s.d.Close()
		return err
	}
	// Normal and urgent commands have a consumer each, so an urgent one
	// starts while a normal transfer runs (which then waits: Shaper).
	return s.d.Run(ctx, s.control(), s.events, []daemon.Consumer{{
		Stream: bus.StreamSync,
		Config: bus.ConsumerConfig(ConsumerName(s.cfg.Site), bus.SyncFilter(s.cfg.Site)),
		Handle: s.handle,
	}, {
		Stream: bus.StreamSync,
		Config: bus.ConsumerConfig(UrgentConsumerName(s.cfg.Site), bus.UrgentSyncFilter(s.cfg.Site)),
		Handle: s.handle,
	}}, func(ctx context.Context) error { return s.keys.follow(ctx, w) },
		func(ctx context.Context) error { s.heartbeats(ctx, started); return nil })
}

// announce records in the sites bucket the version of every replica on
// disk, so the scheduler sends the right deltas after a restart, and
// returns them.
func (s *Service) announce(ctx context.Context) ([]bus.AgentTree, error) {
	ents, err := os.ReadDir(treesDir(s.cfg.DataDir))
	if err != nil {
		return nil, fmt.Errorf("read trees: %w", err)
	}
	var trees []bus.AgentTree
	for _, e := range ents {
		if !e.IsDir() || bus.ValidateName("tree", e.Name()) != nil {
			continue
		}
		rep, err := replica.Open(filepath.Join(treesDir(s.cfg.DataDir), e.Name()), 1)
		if err != nil {
			return nil, fmt.Errorf("open replica %s: %w", e.Name(), err)
		}
		cur, err := rep.Current()
		if err != nil {
			return nil, fmt.Errorf("replica %s: %w", e.Name(), err)
		}
		if cur == "" {
			continue
		}
		if err := bus.PutSiteVersion(ctx, s.layout.Sites, s.cfg.Site, e.Name(), cur); err != nil {
			return nil, err
		}
		trees = append(trees, bus.AgentTree{Tree: e.Name(), Version: cur})
	}
	return trees, nil
}

func (s *Service) handle(ctx context.Context, m jetstream.Msg) error {
	cmd, err := bus.Decode[bus.SyncCommand](m.Data())
	if err != nil {
		return bus.Permanent(err)
	}
	if cmd.Site != s.cfg.Site {
		return bus.Permanent(fmt.Errorf("command for site %q delivered to %q", cmd.Site, s.cfg.Site))
	}
	last := true
	if meta, err := m.Metadata(); err == nil {
		last = int(meta.NumDelivered) >= bus.DefaultMaxDeliver
	}
	s.running.Add(1)
	defer s.running.Add(-1)
	unlock := s.lockOf(cmd.Tree).run()
	defer unlock()
	start := time.Now()
	s.runs.Store(cmd.RunID, bus.AgentRun{RunID: cmd.RunID, TriggerID: cmd.TriggerID, Tree: cmd.Tree, Kind: cmd.Kind, From: cmd.From, To: cmd.To, StartedAt: start.UTC()})
	defer s.runs.Delete(cmd.RunID)
	log := s.log.With("tree", cmd.Tree, "run", cmd.RunID, "kind", cmd.Kind)
	var out outcome
	prog := new(progress)
	stopProgress := s.reportProgress(ctx, cmd, prog, start)
	defer stopProgress() // a panicking run (recovered by bus.Consume) stops it too
	switch cmd.Kind {
	case bus.CommandSnapshot:
		out, err = s.snapshot(ctx, cmd, prog)
	case bus.CommandApply:
		out, err = s.apply(ctx, cmd, prog)
	}
	stopProgress()
	if err != nil {
		if ctx.Err() != nil {
			return err // shutting down: the command is redelivered
		}
		if !bus.IsPermanent(err) && !diskFull(err) && !last {
			return err // transient: retried with backoff
		}
		log.Error("run failed", "err", err)
		out = outcome{result: bus.ResultFailed, err: err.Error()}
	}
	fin := bus.SyncFinished{
		RunID: cmd.RunID, TriggerID: cmd.TriggerID, Site: cmd.Site, Tree: cmd.Tree, Kind: cmd.Kind,
		From: cmd.From, To: out.to, Result: out.result, Error: out.err, Files: out.files, Bytes: out.bytes,
		DurationMS: time.Since(start).Milliseconds(), FinishedAt: time.Now().UTC(),
	}
	if fin.To == "" {
		fin.To = cmd.To
	}
	if err := s.events.PublishKeyed(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: cmd.Tree, Site: cmd.Site}, cmd.RunID, fin); err != nil {
		return err
	}
	s.metrics.observeRun(cmd.Kind, out.result, time.Since(start).Seconds())
	log.Info("run finished", "result", out.result, "files", out.files, "bytes", out.bytes, "to", fin.To)
	return nil
}

// diskFull reports whether err is a filesystem (the data directory's, as a
// rule) out of space or quota. Such a run fails at once rather than being
// retried: a full disk rarely empties itself within the retries, each of
// which would rebuild the tree, and until the last one nobody would see why
// the site is behind. The served version is intact (see replica.Apply);
// once space is freed, the next sync applies.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// outcome is what a run reports.
type outcome struct {
	result       bus.Result
	to           string
	files, bytes int64
	err          string
}

func treesDir(data string) string { return filepath.Join(data, "trees") }
func tmpDir(data string) string   { return filepath.Join(data, "tmp") }
func cacheDir(data string) string { return filepath.Join(data, "cache") }
