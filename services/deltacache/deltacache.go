// Package deltacache computes each delta (tree, from, to) exactly once
// across all its instances, stores the pack in the deltas object store and
// announces it. A request for a pack already stored is answered from the
// store; two instances never build the same pack at once, because each
// first claims the delta in a KV bucket (create-only key with a TTL).
package deltacache

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/pulpdist/pulpdist/libs/bandwidth"
	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/libs/daemon"
	"github.com/pulpdist/pulpdist/libs/health"
	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/telemetry"
	"github.com/pulpdist/pulpdist/libs/tree"
	"github.com/pulpdist/pulpdist/services/deltacache/internal/build"
)

// PackHashMeta is the object metadata key holding a pack's hex BLAKE3.
const PackHashMeta = "pulpdist-blake3"

// Config is the delta-cache's configuration.
type Config struct {
	daemon.Options
	// Instance names this instance in events and claims.
	Instance string
	// WorkDir holds packs while they are written.
	WorkDir string
	// SigningKey is a PEM ed25519 private key file; when set, every pack
	// is signed with it (site-agents that trust its public key require it).
	SigningKey string
	// Effort is "auto" (the cost model: EffortFor and Refiner) or a pack
	// effort every pack is built with (best, default, fast).
	Effort string
	// LinkRate is the WAN rate, bytes/s, the cost model assumes a site
	// fetches packs at (bandwidth.ParseRate: "12500k", "unlimited").
	LinkRate string
	// RefineBudget bounds the CPU the cost model's refinements may add to a
	// pack's build, in percent of what the build costs without them
	// (estimated from the content it carries); 0 refines nothing.
	RefineBudget int
	// GCInterval is how often packs nobody can need are deleted (0: never);
	// GCGrace how old such a pack must be.
	GCInterval, GCGrace time.Duration
}

// DefaultLinkRate is the default of Config.LinkRate: 100 Mbit/s.
const DefaultLinkRate = "12500k"

// DefaultRefineBudget is the default of Config.RefineBudget: refinements
// add at most a fifth to a pack's build, which keeps the origin's CPU for
// an update within 1.2 × from one site to many (issue 6's target).
const DefaultRefineBudget = 20

// EffortAuto lets the cost model choose each pack's effort.
const EffortAuto = "auto"

// The cost model's constants, measured on the benchmark corpora
// (docs/operations.md, "Delta effort").
const (
	// refineGain is the share of a segment's compressed bytes that zstd's
	// best level saves over the "better" level (9% on the generated
	// corpus, 13% on the Debian one).
	refineGain = 0.10
	// refineCost is the CPU the best level costs per byte of content with
	// a dictionary (building its dictionary tables included): 0.8 s for
	// four 1 MiB segments of the Debian update, 2026-12-04.
	refineCost = 200 * time.Nanosecond
	// buildCost is the CPU of a default-effort build per byte of content
	// it carries: 1.0 s for the 55 MB of the Debian update.
	buildCost = 18 * time.Nanosecond
	// refineMaxRatio: a segment that compresses to more than this share
	// of its content is mostly compressed data already; the best level
	// saves it about 1%, not refineGain.
	refineMaxRatio = 0.5
)

// EffortFor is the pack effort for a pack sites sites will fetch: the
// configured one, or with auto the default effort, refined segment by
// segment (Refiner).
func (c Config) EffortFor(sites int) pack.Effort {
	if c.Effort != EffortAuto && c.Effort != "" {
		e, _ := pack.ParseEffort(c.Effort) // checked by Validate
		return e
	}
	return pack.EffortDefault
}

// Refiner is the cost model for a pack carrying carried bytes of content:
// a pack is computed once and goes over the WAN once per site, so a
// segment is encoded again at zstd's best level when the transfer time
// that saves all the fetching sites together, at LinkRate, is at least the
// CPU time it costs — sites × refineGain × compressed / LinkRate ≥ content
// × refineCost — and while the refinements so far stay within
// RefineBudget percent of the build's own CPU (carried × buildCost). With
// one site nothing is refined; with 64 sites at 100 Mbit/s, segments
// compressing to more than about two fifths of their content are, up to
// the budget. Nil when the effort is configured, the link unlimited (no
// transfer time to save) or the budget 0.
func (c Config) Refiner(sites int, carried int64) func(content, compressed int64) bool {
	if c.Effort != EffortAuto && c.Effort != "" || c.RefineBudget <= 0 {
		return nil
	}
	rate, _ := c.linkRate() // checked by Validate
	if rate == bandwidth.Unlimited {
		return nil
	}
	n := float64(max(sites, 1))
	budget := float64(c.RefineBudget) / 100 * float64(carried) * buildCost.Seconds() // seconds of CPU
	var spent float64
	return func(content, compressed int64) bool {
		if content <= 0 || float64(compressed) > refineMaxRatio*float64(content) {
			return false
		}
		saved := n * refineGain * float64(compressed) / float64(rate) // seconds of transfer
		cost := float64(content) * refineCost.Seconds()
		if saved < cost || spent+cost > budget {
			return false
		}
		spent += cost
		return true
	}
}

// carried is the content a pack from from (nil for none) to to carries:
// the sizes of the file contents to has and from lacks, each once.
func carried(from, to *tree.Manifest) int64 {
	have := map[string]bool{}
	if from != nil {
		for _, e := range from.Entries {
			if e.Kind == tree.KindFile {
				have[e.Hash] = true
			}
		}
	}
	var n int64
	for _, e := range to.Entries {
		if e.Kind == tree.KindFile && !have[e.Hash] {
			have[e.Hash] = true
			n += e.Size
		}
	}
	return n
}

// linkRate is LinkRate in bytes/s (DefaultLinkRate when empty).
func (c Config) linkRate() (int64, error) {
	return bandwidth.ParseRate(cmp.Or(c.LinkRate, DefaultLinkRate))
}

// Bind registers the configuration's flags and environment variables.
func (c *Config) Bind(s *config.Set) {
	host, _ := os.Hostname() // a default only; an empty name is replaced below
	if host == "" {
		host = "deltacache"
	}
	c.Options.Bind(s, "127.0.0.1:7402")
	s.String(&c.Instance, "instance", "PULPDIST_INSTANCE", fmt.Sprintf("%s-%d", host, os.Getpid()), "name of this instance")
	s.String(&c.WorkDir, "work-dir", "PULPDIST_WORK_DIR", os.TempDir(), "directory for packs being built")
	s.String(&c.SigningKey, "signing-key", "PULPDIST_SIGNING_KEY", "", "PEM ed25519 private key that signs every pack (empty: packs are not signed)")
	s.String(&c.Effort, "effort", "PULPDIST_DELTA_EFFORT", EffortAuto, "pack effort: auto (the cost model, see --link-rate), best, default or fast")
	s.String(&c.LinkRate, "link-rate", "PULPDIST_DELTA_LINK_RATE", DefaultLinkRate, "with effort auto: the WAN rate (bytes/s, such as 12500k or unlimited) the cost model weighs transfer time at")
	s.Int(&c.RefineBudget, "refine-budget", "PULPDIST_DELTA_REFINE_BUDGET", DefaultRefineBudget, "with effort auto: the most CPU the cost model's refinements may add to a pack's build, in percent (0: none)")
	s.Duration(&c.GCInterval, "gc-interval", "PULPDIST_GC_INTERVAL", time.Hour, "how often packs no site can need are deleted (0: never)")
	s.Duration(&c.GCGrace, "gc-grace", "PULPDIST_GC_GRACE", 24*time.Hour, "how old a pack no site can need must be before it is deleted")
}

// Validate checks the configuration.
func (c Config) Validate() error {
	errs := []error{c.Options.Validate()}
	if c.Instance == "" {
		errs = append(errs, errors.New("instance name required"))
	}
	if c.WorkDir == "" {
		errs = append(errs, errors.New("work dir required"))
	}
	if c.Effort != EffortAuto && c.Effort != "" {
		if _, err := pack.ParseEffort(c.Effort); err != nil {
			errs = append(errs, fmt.Errorf("%w (or auto)", err))
		}
	}
	if c.GCInterval < 0 || c.GCGrace < 0 {
		errs = append(errs, errors.New("gc interval and grace must not be negative"))
	}
	if _, err := c.linkRate(); err != nil {
		errs = append(errs, fmt.Errorf("link rate: %w", err))
	}
	if c.RefineBudget < 0 || c.RefineBudget > 10000 {
		errs = append(errs, fmt.Errorf("refine budget %d%%: want 0 to 10000", c.RefineBudget))
	}
	return errors.Join(errs...)
}

// Service is a delta-cache instance connected to the bus.
type Service struct {
	cfg    Config
	d      *daemon.Daemon
	log    *slog.Logger
	layout *bus.Layout
	js     jetstream.JetStream
	events *bus.Events
	key    ed25519.PrivateKey
	blobs  *bus.ObjectReader // contents, small ones without a consumer each
	// metrics count the requests answered and the deltas computed.
	metrics *cacheMetrics
	// computing is what this instance is building now, for the status.
	computing sync.Map // delta id → bus.DeltaInFlight
}

// New connects to NATS, declares the streams and binds the health server.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("deltacache config: %w", err)
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o750); err != nil {
		return nil, fmt.Errorf("deltacache work dir: %w", err)
	}
	var key ed25519.PrivateKey
	if cfg.SigningKey != "" {
		var err error
		if key, err = pack.LoadPrivateKey(cfg.SigningKey); err != nil {
			return nil, fmt.Errorf("deltacache config: %w", err)
		}
	}
	log = log.With("instance", cfg.Instance)
	d, err := daemon.New(ctx, "deltacache-"+cfg.Instance, cfg.Options, log)
	if err != nil {
		return nil, err
	}
	blobs, err := bus.NewObjectReader(ctx, d.JS, bus.BucketBlobs)
	if err != nil {
		d.Close()
		return nil, err
	}
	packs, err := d.JS.Stream(ctx, bus.ObjectStream(bus.BucketDeltas))
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("packs' stream: %w", err)
	}
	m, err := newCacheMetrics(d.Metrics, cfg.Instance, packs)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &Service{
		cfg: cfg, d: d, log: log, layout: d.Layout, js: d.JS, key: key, blobs: blobs, metrics: m,
		events: bus.NewEvents(d.JS, "/pulpdist/deltacache/"+cfg.Instance),
	}, nil
}

// Probe is the instance's readiness.
func (s *Service) Probe() *health.Probe { return s.d.Probe }

// ConsumerName is the durable work-queue consumer every instance shares.
const ConsumerName = "deltacache"

// Run serves delta requests, and its status requests, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	// A request for a delta another instance is building is retried with
	// backoff until the pack is stored (bus.DefaultMaxDeliver bounds it).
	cc := bus.ConsumerConfig(ConsumerName, "pulpdist.delta.req.>")
	var parts []func(context.Context) error
	if s.cfg.GCInterval > 0 {
		parts = append(parts, func(ctx context.Context) error { return s.collectEvery(ctx, s.cfg.GCInterval) })
	}
	return s.d.Run(ctx, s.control(), s.events, []daemon.Consumer{{Stream: bus.StreamDeltaReq, Config: cc, Handle: s.handle}}, parts...)
}

// errClaimed means another instance is building the delta right now.
var errClaimed = errors.New("delta claimed by another instance")

func (s *Service) handle(ctx context.Context, m jetstream.Msg) error {
	req, err := bus.Decode[bus.DeltaRequest](m.Data())
	if err != nil {
		return bus.Permanent(err)
	}
	return s.Serve(ctx, req)
}

// Serve answers one delta request: from the store if the pack exists,
// otherwise by building it under a claim.
func (s *Service) Serve(ctx context.Context, req bus.DeltaRequest) error {
	id := bus.DeltaID(req.Tree, req.From, req.To)
	log := s.log.With("tree", req.Tree, "from", req.From, "to", req.To)
	if info, err := s.layout.Deltas.GetInfo(ctx, id); err == nil {
		log.Debug("delta served from store")
		return s.metrics.answered(req.Tree, outcomeStored, s.ready(ctx, req, id, info.Size, info.Metadata[PackHashMeta], false))
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("look up pack %s: %w", id, err)
	}
	if req.From != "" {
		packs, err := s.storedPacks(ctx, req.Tree)
		if err != nil {
			return err
		}
		if path := chain(packs, req.From, req.To); path != nil && s.cfg.chainPays(path, req.Sites) {
			var total int64
			for _, h := range path {
				total += h.size
			}
			log.Info("delta served by a chain of stored packs", "hops", len(path), "bytes", total, "first", path[0].name)
			first := path[0]
			hopReq := req
			hopReq.To = first.to
			return s.metrics.answered(req.Tree, outcomeChain, s.announce(ctx, hopReq, first.name, uint64(first.size), first.hash, false, req.To))
		}
	}
	claim := bus.DeltaClaimKey(req.Tree, req.From, req.To)
	rev, err := s.layout.DeltaClaims.Create(ctx, claim, []byte(s.cfg.Instance))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			s.metrics.claimWaits.WithLabelValues(req.Tree).Inc()
			return fmt.Errorf("%s: %w", id, errClaimed)
		}
		return fmt.Errorf("claim %s: %w", id, err)
	}
	renewed := s.holdClaim(ctx, claim, rev)
	defer func() {
		// The claim only guards the build; the stored pack answers from now
		// on. Delete it only if it is still ours.
		if err := s.layout.DeltaClaims.Delete(context.WithoutCancel(ctx), claim, jetstream.LastRevision(renewed())); err != nil {
			log.Warn("release claim", "err", err)
		}
	}()
	// Another instance may have stored the pack and released its claim
	// between our look-up and our claim.
	if info, err := s.layout.Deltas.GetInfo(ctx, id); err == nil {
		return s.metrics.answered(req.Tree, outcomeStored, s.ready(ctx, req, id, info.Size, info.Metadata[PackHashMeta], false))
	}
	start := time.Now()
	defer s.track(req, id, start)()
	effort := s.cfg.EffortFor(req.Sites)
	res, err := s.build(ctx, req, id, effort)
	if err != nil {
		return err
	}
	log.Info("delta computed", "size", res.Size, "parts", res.Parts, "effort", effort, "sites", req.Sites,
		"segments", res.Segments, "refined", res.Refined, "took", time.Since(start))
	s.metrics.computed(req.Tree, res.Size, time.Since(start))
	if err := s.events.PublishKeyed(ctx, bus.EntityDelta, bus.ActionComputed, bus.About{Tree: req.Tree}, id, bus.DeltaComputed{
		Tree: req.Tree, From: req.From, To: req.To, Pack: id, Size: res.Size, Parts: res.Parts,
		Instance: s.cfg.Instance, DurationMS: time.Since(start).Milliseconds(), Effort: effort.String(), Sites: max(req.Sites, 1),
		Segments: res.Segments, Refined: res.Refined,
	}); err != nil {
		return err
	}
	return s.metrics.answered(req.Tree, outcomeComputed, s.ready(ctx, req, id, uint64(res.Size), res.Hash, true))
}

// holdClaim renews the claim while a build runs, so a build longer than
// the claim's TTL is not taken over by another instance. The returned
// function stops the renewal and gives the claim's last revision.
func (s *Service) holdClaim(ctx context.Context, key string, rev uint64) func() uint64 {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(bus.DeltaClaimTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				next, err := s.layout.DeltaClaims.Update(ctx, key, []byte(s.cfg.Instance), rev)
				if err != nil {
					s.log.Warn("renew delta claim", "key", key, "err", err)
					continue
				}
				rev = next
			}
		}
	}()
	return func() uint64 { cancel(); <-done; return rev }
}

func (s *Service) build(ctx context.Context, req bus.DeltaRequest, id string, effort pack.Effort) (_ build.Result, err error) {
	ctx, end := telemetry.StartSpan(ctx, "deltacache", "compute delta", trace.WithAttributes(attribute.String("pulpdist.tree", req.Tree),
		attribute.String("pulpdist.from", req.From), attribute.String("pulpdist.to", req.To), attribute.Int("pulpdist.sites", req.Sites)))
	defer func() { end(err) }()
	to, err := s.manifest(ctx, req.Tree, req.To)
	if err != nil {
		return build.Result{}, err
	}
	var from *tree.Manifest
	if req.From != "" {
		if from, err = s.manifest(ctx, req.Tree, req.From); err != nil {
			return build.Result{}, err
		}
	}
	f, err := os.CreateTemp(s.cfg.WorkDir, "pack-*")
	if err != nil {
		return build.Result{}, fmt.Errorf("build %s: %w", id, err)
	}
	defer func() {
		_ = f.Close()           // already closed on success; the error is of no use here
		_ = os.Remove(f.Name()) // a temp file; nothing depends on it
	}()
	refine := s.cfg.Refiner(req.Sites, carried(from, to))
	start := time.Now()
	res, err := build.Write(ctx, f, req.Tree, req.From, from, to, s.openBlob, s.key, s.cfg.WorkDir, effort, refine)
	if err != nil {
		return res, err
	}
	took := time.Since(start)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, fmt.Errorf("build %s: %w", id, err)
	}
	meta := bus.ObjectMeta(id, map[string]string{PackHashMeta: res.Hash, BuildMSMeta: strconv.FormatInt(took.Milliseconds(), 10)})
	if _, err := s.layout.Deltas.Put(ctx, meta, f); err != nil {
		return res, fmt.Errorf("store pack %s: %w", id, err)
	}
	return res, nil
}

func (s *Service) manifest(ctx context.Context, treeName, root string) (*tree.Manifest, error) {
	name := bus.ManifestObject(treeName, root)
	r, err := s.layout.Manifests.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, bus.Permanent(fmt.Errorf("manifest %s not published", name))
	}
	if err != nil {
		return nil, fmt.Errorf("get manifest %s: %w", name, err)
	}
	defer r.Close()
	return readManifest(r, name, root)
}

// readManifest decodes the manifest object name of version root. A
// manifest that breaks the format, or is another version's, is refused
// for good; a failed read (NATS going away in the middle) is retried.
func readManifest(r io.Reader, name, root string) (*tree.Manifest, error) {
	m, err := tree.Decode(r)
	if errors.Is(err, tree.ErrInvalidManifest) {
		return nil, bus.Permanent(fmt.Errorf("manifest %s: %w", name, err))
	}
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", name, err)
	}
	if m.Root() != root {
		return nil, bus.Permanent(fmt.Errorf("manifest %s: root is %s", name, m.Root()))
	}
	return m, nil
}

func (s *Service) openBlob(ctx context.Context, hash string) (io.ReadCloser, error) {
	r, err := s.blobs.Open(ctx, hash)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("get blob %s: %w: %w", hash, pack.ErrNotStored, err)
	}
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", hash, err)
	}
	return r, nil
}

func (s *Service) ready(ctx context.Context, req bus.DeltaRequest, id string, size uint64, hash string, computed bool) error {
	return s.announce(ctx, req, id, size, hash, computed, "")
}

// announce publishes the delta ready message for pack id, req.From to
// req.To, the first step towards target when it is not "" (a chain).
func (s *Service) announce(ctx context.Context, req bus.DeltaRequest, id string, size uint64, hash string, computed bool, target string) error {
	msg := bus.DeltaReady{
		V: bus.MessageVersion, TriggerID: req.TriggerID, Tree: req.Tree, From: req.From, To: req.To, Stage: req.Stage,
		Pack: id, PackHash: hash, Size: int64(size), Computed: computed, Target: target,
	}
	// One announcement per request: a redelivered request is stored once, a
	// later request for the same pair is answered again.
	msgID := "ready/" + id + "/" + req.TriggerID + bus.StageSuffix(req.Stage)
	if err := s.events.PublishKeyed(ctx, bus.EntityDelta, bus.ActionReady, bus.About{Tree: req.Tree}, msgID, msg); err != nil {
		return err
	}
	return bus.Publish(ctx, s.js, bus.DeltaReadySubject(req.Tree), msgID, msg)
}
