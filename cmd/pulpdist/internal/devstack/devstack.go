// Package devstack runs the whole of pulpdist in one process: optionally an
// embedded NATS server, the inventory, the scheduler, delta-cache instances
// and site-agents. Each service gets its own NATS connection and talks to
// the others only over the bus and the inventory's REST API, exactly as
// separate processes would. `pulpdist dev` and the end-to-end tests use it.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/sync/errgroup"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/daemon"
	"github.com/pulpdist/pulpdist/libs/health"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/libs/metrics"
	"github.com/pulpdist/pulpdist/libs/natsembed"
	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/services/deltacache"
	"github.com/pulpdist/pulpdist/services/inventory"
	"github.com/pulpdist/pulpdist/services/scheduler"
	"github.com/pulpdist/pulpdist/services/siteagent"
)

// Options choose what the stack runs and where.
type Options struct {
	// DataDir holds the embedded NATS store, the SQLite database and the
	// sites' trees.
	DataDir string
	// NATSURL uses an external NATS server; empty starts an embedded one on
	// NATSHost:NATSPort (-1 = random port).
	NATSURL  string
	NATSHost string
	NATSPort int
	// DatabaseURL of the inventory; empty means SQLite in DataDir.
	DatabaseURL string
	// APIAddr is where the inventory listens (host:port, port 0 = random).
	APIAddr string
	// Sites are the site-agents to run; each stores its trees in
	// DataDir/sites/<name>.
	Sites []string
	// DeltaCaches is the number of delta-cache instances (at least 1).
	DeltaCaches int
	// DeltaLinkRate is the delta-caches' cost-model link rate
	// (deltacache.Config.LinkRate; empty: its default).
	DeltaLinkRate string
	// ScheduleTick is how often cron schedules are checked (default 1s).
	ScheduleTick time.Duration
	// AdminToken is the inventory's bootstrap admin token; empty means the
	// one kept in DataDir/keys/admin.token, made on first use.
	AdminToken string
	Log        *slog.Logger
}

// Stack is a built set of services, ready to Run.
type Stack struct {
	// NATSURL is the client URL of the bus.
	NATSURL string
	// APIURL is the inventory's base URL.
	APIURL string
	// DataDir is the absolute data directory.
	DataDir string
	// SigningKeyID is the id of the stack's pack-signing key, which Run
	// registers in the inventory as KeyName.
	SigningKeyID string
	// Token is an admin bearer token of the inventory API (the inventory's
	// bootstrap token, which the scheduler uses too).
	Token string

	nats      *server.Server
	inventory func(context.Context) error
	publicKey string // PEM
	runs      []func(context.Context) error
	// agents are the site-agents to build once the inventory serves, so
	// that each gets its own agent token first.
	agents   []siteagent.Config
	agentLog *slog.Logger
}

// KeyName is the name under which the stack registers its signing key.
const KeyName = "pulpdist-dev"

// SiteDir is where the site-agent of site keeps its trees.
func (s *Stack) SiteDir(site string) string { return filepath.Join(s.DataDir, "sites", site) }

// New builds every service: it connects them to the bus, opens and
// migrates the database and binds the API. Nothing runs until Run.
func New(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.DeltaCaches < 1 {
		o.DeltaCaches = 1
	}
	if o.ScheduleTick <= 0 {
		o.ScheduleTick = time.Second
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	st := &Stack{DataDir: dir, NATSURL: o.NATSURL}
	defer func() {
		if err != nil {
			st.stopNATS()
		}
	}()
	if st.NATSURL == "" {
		st.nats, err = natsembed.Start(natsembed.Options{Host: o.NATSHost, Port: o.NATSPort, StoreDir: filepath.Join(dir, "nats")})
		if err != nil {
			return nil, err
		}
		st.NATSURL = st.nats.ClientURL()
	}
	// Packs are signed end to end, as in production: a key pair made once
	// per data directory, the private half for the delta-caches, the public
	// half registered in the inventory, which hands it to every site-agent.
	signingKey, publicKey, err := ensureKeys(filepath.Join(dir, "keys"))
	if err != nil {
		return nil, err
	}
	if err := st.readPublicKey(publicKey); err != nil {
		return nil, err
	}
	st.Token = o.AdminToken
	if st.Token == "" {
		if st.Token, err = ensureToken(filepath.Join(dir, "keys", "admin.token")); err != nil {
			return nil, err
		}
	}
	dbURL := o.DatabaseURL
	if dbURL == "" {
		dbURL = "sqlite://" + filepath.Join(dir, "inventory.db")
	}

	// Every other service reports into a probe that the inventory's /readyz
	// shows, so one URL says when the whole system is ready.
	schedProbe := health.NewProbe("scheduler")
	dcProbes := make([]*health.Probe, o.DeltaCaches)
	for i := range dcProbes {
		dcProbes[i] = health.NewProbe("deltacache-" + strconv.Itoa(i+1))
	}
	agentProbes := make([]*health.Probe, len(o.Sites))
	for i, site := range o.Sites {
		agentProbes[i] = health.NewProbe("siteagent-" + site)
	}
	extra := append(append([]*health.Probe{schedProbe}, dcProbes...), agentProbes...)
	// And one registry holds every service's metrics, served on the
	// inventory's /metrics.
	reg := metrics.NewRegistry()

	inv, err := inventory.New(ctx, inventory.Config{
		NATSURL: st.NATSURL, DatabaseURL: dbURL, HTTPAddr: o.APIAddr, ExtraProbes: extra, Metrics: reg, AdminToken: st.Token,
		Migrate: true, // the dev stack's own database: always brought up to date
		// Every agent signs its reports with its own token (Run).
	}, o.Log.With("service", "inventory"))
	if err != nil {
		return nil, err
	}
	st.APIURL = inv.URL()
	st.inventory = inv.Run

	sched, err := scheduler.New(ctx, scheduler.Config{
		Options:      daemon.Options{NATSURL: st.NATSURL, Probe: schedProbe, Metrics: reg},
		InventoryURL: st.APIURL, InventoryToken: st.Token, RefreshInterval: 10 * time.Second, TickInterval: o.ScheduleTick,
	}, o.Log.With("service", "scheduler"))
	if err != nil {
		return nil, err
	}
	st.runs = append(st.runs, sched.Run)

	for i, p := range dcProbes {
		name := "dev-" + strconv.Itoa(i+1)
		dc, err := deltacache.New(ctx, deltacache.Config{
			Options:  daemon.Options{NATSURL: st.NATSURL, Probe: p, Metrics: reg},
			Instance: name, WorkDir: filepath.Join(dir, "deltacache", name), SigningKey: signingKey, LinkRate: o.DeltaLinkRate,
			RefineBudget: deltacache.DefaultRefineBudget,
		}, o.Log.With("service", "deltacache"))
		if err != nil {
			return nil, err
		}
		st.runs = append(st.runs, dc.Run)
	}
	for i, site := range o.Sites {
		cfg := siteagent.Config{
			Options: daemon.Options{NATSURL: st.NATSURL, Probe: agentProbes[i], Metrics: reg},
			Site:    site, DataDir: st.SiteDir(site),
		}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		st.agents = append(st.agents, cfg)
	}
	st.agentLog = o.Log.With("service", "siteagent")
	return st, nil
}

// startAgents gives each site-agent its agent token (kept in
// keys/agent-<site>.token, made again when the inventory no longer
// accepts it), builds it and adds it to the services to run.
func (s *Stack) startAgents(ctx context.Context) error {
	admin := inventoryapi.NewClient(s.APIURL, &http.Client{Timeout: 30 * time.Second}).WithToken(s.Token)
	for _, cfg := range s.agents {
		cfg.AgentTokenFile = filepath.Join(s.DataDir, "keys", "agent-"+cfg.Site+".token")
		if _, _, err := inventoryapi.ProvisionAgentToken(ctx, admin, cfg.Site, cfg.AgentTokenFile, "pulpdist dev agent of "+cfg.Site); err != nil {
			return err
		}
		ag, err := siteagent.New(ctx, cfg, s.agentLog)
		if err != nil {
			return err
		}
		s.runs = append(s.runs, ag.Run)
	}
	return nil
}

// Run runs every service until ctx ends or one fails, then stops them all
// and the embedded NATS server. The inventory starts first: the stack's
// signing key is registered through its API before the other services
// start, so the site-agents trust it from their first command, and each
// site-agent gets its agent token to sign its reports with.
func (s *Stack) Run(ctx context.Context) error {
	defer s.stopNATS()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.inventory(ctx) })
	g.Go(func() error {
		err := s.registerKey(ctx)
		if err == nil {
			err = s.startAgents(ctx)
		}
		runCtx := ctx
		if err != nil {
			// The services only release what New acquired.
			var cancel context.CancelFunc
			runCtx, cancel = context.WithCancel(ctx)
			cancel()
		}
		for _, run := range s.runs {
			g.Go(func() error { return run(runCtx) })
		}
		return err
	})
	return g.Wait()
}

// readPublicKey reads the stack's public key file.
func (s *Stack) readPublicKey(path string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	pub, err := bus.ParseSigningKey(text)
	if err != nil {
		return fmt.Errorf("signing keys: %s: %w", path, err)
	}
	s.publicKey, s.SigningKeyID = string(text), bus.SigningKeyID(pub)
	return nil
}

// registerKey adds the stack's public key to the inventory (again, after a
// restart: that changes nothing).
func (s *Stack) registerKey(ctx context.Context) error {
	c := inventoryapi.NewClient(s.APIURL, &http.Client{Timeout: 30 * time.Second}).WithToken(s.Token)
	if _, err := c.AddSigningKey(ctx, KeyName, s.publicKey); err != nil {
		return fmt.Errorf("register the signing key %s in the inventory (if it was revoked, remove %s for a new pair): %w",
			s.SigningKeyID, filepath.Join(s.DataDir, "keys"), err)
	}
	return nil
}

func (s *Stack) stopNATS() {
	if s.nats != nil {
		s.nats.Shutdown()
		s.nats.WaitForShutdown()
		s.nats = nil
	}
}

// ensureKeys returns the paths of the stack's pack-signing key pair in dir,
// making the pair if it does not exist yet.
func ensureKeys(dir string) (private, public string, err error) {
	private, public = filepath.Join(dir, "deltacache.key"), filepath.Join(dir, "trusted.pub")
	if _, err := os.Stat(private); err == nil {
		return private, public, nil
	}
	pub, priv, err := pack.GenerateKey()
	if err != nil {
		return "", "", err
	}
	privPEM, err := pack.EncodePrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	pubPEM, err := pack.EncodePublicKey(pub)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("signing keys: %w", err)
	}
	if err := os.WriteFile(public, pubPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("signing keys: %w", err)
	}
	if err := os.WriteFile(private, privPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("signing keys: %w", err)
	}
	return private, public, nil
}

// ensureToken returns the admin token kept in path, making one if the file
// does not exist yet: 32 random bytes, base64url, readable by its owner only.
func ensureToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		if err := inventory.ValidateAdminToken(tok); err != nil {
			return "", fmt.Errorf("%s: %w (remove the file for a new one)", path, err)
		}
		return tok, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("admin token: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := "pdt_dev_" + base64.RawURLEncoding.EncodeToString(b[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return tok, nil
}
