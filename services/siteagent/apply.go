package siteagent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/replica"
	"github.com/pulpdist/pulpdist/libs/telemetry"
)

// ErrPackHash means the fetched pack does not hash to what was announced.
var ErrPackHash = errors.New("pack hash mismatch")

// apply moves this site's replica of a tree to cmd.To, reporting how far
// it is to prog.
func (s *Service) apply(ctx context.Context, cmd bus.SyncCommand, prog *progress) (_ outcome, err error) {
	ctx, end := telemetry.StartSpan(ctx, "siteagent", "apply", trace.WithAttributes(attribute.String("pulpdist.site", cmd.Site),
		attribute.String("pulpdist.tree", cmd.Tree), attribute.String("pulpdist.to", cmd.To)))
	defer func() { end(err) }()
	keep := cmd.Keep
	if keep < 1 {
		keep = 1
	}
	rep, err := replica.Open(filepath.Join(treesDir(s.cfg.DataDir), cmd.Tree), keep)
	if err != nil {
		return outcome{}, fmt.Errorf("open replica %s: %w", cmd.Tree, err)
	}
	rep.SetLogger(s.log.With("tree", cmd.Tree))
	cur, err := rep.Current()
	if err != nil {
		return outcome{}, fmt.Errorf("replica %s: %w", cmd.Tree, err)
	}
	if cur == cmd.To {
		if err := bus.PutSiteVersion(ctx, s.layout.Sites, s.cfg.Site, cmd.Tree, cur); err != nil {
			return outcome{}, err
		}
		return outcome{result: bus.ResultUpToDate, to: cur}, nil
	}
	if cmd.Pack == "" {
		return outcome{}, bus.Permanent(fmt.Errorf("site serves %q, not %s, and no pack was sent", cur, cmd.To))
	}
	if cur != cmd.From {
		return s.mismatch(ctx, cmd, cur)
	}
	// A fetched pack is kept for a retry of this command, unless it cannot
	// help: it does not apply, or the disk is full (it gives the space
	// back; the run fails at once).
	got, err := s.fetch(ctx, cmd, prog)
	if err == nil {
		// What the event tells is observability: the run goes on without it.
		if serr := s.reportServed(ctx, cmd, got); serr != nil {
			s.log.Warn("delta.served not published", "tree", cmd.Tree, "run", cmd.RunID, "err", serr)
		}
	}
	if err == nil {
		prog.enter(bus.PhaseApply, got.size, 0)
		var st replica.Stats
		if st, err = applyFile(ctx, rep, got.path, cmd, s.keys.trusted()); err == nil {
			dropPartial(s.cfg.DataDir, cmd.Pack)
			if err := bus.PutSiteVersion(ctx, s.layout.Sites, s.cfg.Site, cmd.Tree, cmd.To); err != nil {
				return outcome{}, err
			}
			return outcome{result: bus.ResultCompleted, to: cmd.To, files: st.FilesWritten, bytes: got.received}, nil
		}
	}
	if bus.IsPermanent(err) || diskFull(err) {
		dropPartial(s.cfg.DataDir, cmd.Pack)
	}
	return outcome{}, err
}

// reportServed publishes delta.served for a pack fetched for cmd: the
// evidence that a pack computed once is fanned out, one fetch per site.
// It is keyed by the run, so a retried command that finds the pack on
// disk states the fact once (within bus.DuplicateWindow).
func (s *Service) reportServed(ctx context.Context, cmd bus.SyncCommand, got fetched) error {
	ev := bus.DeltaServed{
		RunID: cmd.RunID, TriggerID: cmd.TriggerID, Site: cmd.Site, Tree: cmd.Tree, From: cmd.From, To: cmd.To,
		Pack: cmd.Pack, Size: got.size, FetchedBytes: got.received, ResumedBytes: got.resumed,
		Method: got.method, DurationMS: got.took.Milliseconds(),
	}
	return s.events.PublishKeyed(ctx, bus.EntityDelta, bus.ActionServed, bus.About{Tree: cmd.Tree, Site: cmd.Site}, cmd.RunID, ev)
}

// mismatch handles a command whose pack does not apply to the version the
// site serves: the site moved, or was offline, since the command was
// planned. It never moves a site back to an older version.
func (s *Service) mismatch(ctx context.Context, cmd bus.SyncCommand, cur string) (outcome, error) {
	latest := ""
	if cmd.Origin != "" {
		var err error
		if latest, err = bus.GetSiteVersion(ctx, s.layout.Sites, cmd.Origin, cmd.Tree); err != nil {
			return outcome{}, err
		}
	}
	switch {
	case cur != "" && cur == latest:
		// Already at the newest version: the command is stale.
		if err := bus.PutSiteVersion(ctx, s.layout.Sites, s.cfg.Site, cmd.Tree, cur); err != nil {
			return outcome{}, err
		}
		return outcome{result: bus.ResultUpToDate, to: cur}, nil
	case latest == "" || latest == cmd.To:
		// Ask for the delta from what the site serves; the scheduler sends
		// it here when it is ready.
		req := bus.DeltaRequest{V: bus.MessageVersion, TriggerID: cmd.TriggerID, Tree: cmd.Tree, From: cur, To: cmd.To}
		if err := bus.Publish(ctx, s.js, bus.DeltaRequestSubject(cmd.Tree), bus.DeltaID(cmd.Tree, cur, cmd.To)+"/"+cmd.TriggerID, req); err != nil {
			return outcome{}, err
		}
		return outcome{}, bus.Permanent(fmt.Errorf("%w: site serves %q, pack applies to %q; requested the delta from %q",
			replica.ErrBaseMismatch, cur, cmd.From, cur))
	default:
		return outcome{}, bus.Permanent(fmt.Errorf("%w: site serves %q, pack applies to %q, and %s is no longer the newest version",
			replica.ErrBaseMismatch, cur, cmd.From, cmd.To))
	}
}

// applyFile applies a fetched pack after checking it is the one commanded.
func applyFile(ctx context.Context, rep *replica.Replica, path string, cmd bus.SyncCommand, trusted []ed25519.PublicKey) (replica.Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return replica.Stats{}, fmt.Errorf("open pack: %w", err)
	}
	defer f.Close()
	pr, err := pack.Open(f, pack.Limits{}, trusted)
	if err != nil {
		return replica.Stats{}, bus.Permanent(fmt.Errorf("pack %s: %w", cmd.Pack, err))
	}
	h := pr.Header()
	if h.Tree != cmd.Tree || h.From != cmd.From || h.To != cmd.To {
		return replica.Stats{}, bus.Permanent(fmt.Errorf("pack %s is %s %q→%s, not the commanded %s %q→%s",
			cmd.Pack, h.Tree, h.From, h.To, cmd.Tree, cmd.From, cmd.To))
	}
	st, err := rep.Apply(ctx, pr)
	if err != nil {
		if errors.Is(err, pack.ErrHashMismatch) || errors.Is(err, pack.ErrFormat) || errors.Is(err, pack.ErrTooLarge) || errors.Is(err, pack.ErrBase) ||
			errors.Is(err, replica.ErrVerify) || errors.Is(err, replica.ErrBaseMismatch) {
			return st, bus.Permanent(fmt.Errorf("apply %s: %w", cmd.Pack, err))
		}
		return st, fmt.Errorf("apply %s: %w", cmd.Pack, err)
	}
	return st, nil
}
