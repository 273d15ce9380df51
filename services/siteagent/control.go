package siteagent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/control"
	"github.com/pulpdist/pulpdist/libs/replica"
)

// VerifyTimeout bounds a verify request: it reads every file of the
// tree's served version.
const VerifyTimeout = 10 * time.Minute

// verifiesAtOnce is how many verifies a site-agent runs at a time: each
// reads a whole tree, and another asked meanwhile is answered busy at
// once rather than queued until its requester has given up.
const verifiesAtOnce = 1

// control is the agent on the bus's request-reply side: status and
// verify, on subjects of this site alone.
func (s *Service) control() control.Config {
	return control.Config{
		Service:     bus.ServiceSiteAgent,
		Instance:    s.cfg.Site,
		PerInstance: true,
		Description: "pulpdist site-agent of " + s.cfg.Site + ": scans the trees it is the origin of, applies the others' packs",
		Metadata:    map[string]string{"site": s.cfg.Site},
		Status:      s.status,
		Endpoints: []control.Endpoint{
			control.Handle(bus.EndpointVerify, "check the version of a tree this site serves against its manifest, reading every file", s.verify).
				WithTimeout(VerifyTimeout).WithConcurrency(verifiesAtOnce),
		},
	}
}

// status adds the site's trees, with the versions held on disk, and the
// runs in progress to the common status.
func (s *Service) status(_ context.Context, common bus.ServiceStatus) (any, error) {
	ents, err := os.ReadDir(treesDir(s.cfg.DataDir))
	if err != nil {
		return nil, fmt.Errorf("read trees: %w", err)
	}
	byTree := map[string]*bus.HeldTree{}
	for _, e := range ents {
		if !e.IsDir() || bus.ValidateName("tree", e.Name()) != nil {
			continue
		}
		ht := &bus.HeldTree{Tree: e.Name(), Held: []string{}}
		// Read-only: an apply may be running.
		if ht.Current, ht.Held, err = replica.Held(filepath.Join(treesDir(s.cfg.DataDir), e.Name())); err != nil {
			ht.Error = err.Error()
		}
		byTree[ht.Tree] = ht
	}
	s.served.Range(func(k, v any) bool {
		name := k.(string)
		if byTree[name] == nil {
			byTree[name] = &bus.HeldTree{Tree: name, Held: []string{}}
		}
		byTree[name].Published = v.(servedVersion).root
		return true
	})
	st := bus.AgentStatus{ServiceStatus: common, Site: s.cfg.Site, Trees: make([]bus.HeldTree, 0, len(byTree)), Runs: []bus.AgentRun{}}
	for _, ht := range byTree {
		st.Trees = append(st.Trees, *ht)
	}
	slices.SortFunc(st.Trees, func(a, b bus.HeldTree) int { return strings.Compare(a.Tree, b.Tree) })
	s.runs.Range(func(_, v any) bool {
		st.Runs = append(st.Runs, v.(bus.AgentRun))
		return true
	})
	slices.SortFunc(st.Runs, func(a, b bus.AgentRun) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), strings.Compare(a.RunID, b.RunID))
	})
	return st, nil
}

// verify checks the version of r's tree this site serves against its
// manifest (replica.Verify), changing nothing. It never holds up a run of
// the tree: while one runs or waits, it answers busy, and a run that
// starts stops it, which then answers busy too (treeLock). A tree that
// differs is an answer (ok false, the first difference), not an error.
func (s *Service) verify(ctx context.Context, r bus.VerifyRequest) (bus.VerifyReply, error) {
	dir := filepath.Join(treesDir(s.cfg.DataDir), r.Tree)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return bus.VerifyReply{}, fmt.Errorf("site %q holds no replica of %q: %w", s.cfg.Site, r.Tree, control.ErrNotFound)
	}
	ctx, unlock, ok := s.lockOf(r.Tree).verify(ctx)
	if !ok {
		return bus.VerifyReply{}, fmt.Errorf("a run of %q is in progress or waiting at %q; ask again once it ends: %w", r.Tree, s.cfg.Site, control.ErrBusy)
	}
	defer unlock()
	cur, _, err := replica.Held(dir)
	if err != nil {
		return bus.VerifyReply{}, err
	}
	if cur == "" {
		return bus.VerifyReply{}, fmt.Errorf("site %q serves no version of %q: %w", s.cfg.Site, r.Tree, control.ErrNotFound)
	}
	if s.testHookVerify != nil {
		s.testHookVerify(ctx, r.Tree)
	}
	start := time.Now()
	root, err := replica.Verify(ctx, dir)
	reply := bus.VerifyReply{Site: s.cfg.Site, Tree: r.Tree, Version: cmp.Or(root, cur), DurationMS: time.Since(start).Milliseconds()}
	log := s.log.With("tree", r.Tree, "version", reply.Version)
	switch {
	case err == nil:
		reply.OK = true
		log.Info("replica verified")
	case errors.Is(context.Cause(ctx), errRunStarted):
		log.Info("verify stopped: a run of the tree started")
		return bus.VerifyReply{}, fmt.Errorf("verify of %q at %q stopped: %w; ask again once it ends: %w", r.Tree, s.cfg.Site, errRunStarted, control.ErrBusy)
	case ctx.Err() != nil: // a scan cancelled says ErrVerify too
		return bus.VerifyReply{}, fmt.Errorf("verify %q: %w", r.Tree, ctx.Err())
	case errors.Is(err, replica.ErrVerify):
		reply.Problem = err.Error()
		log.Warn("replica differs from its manifest", "err", err)
	default:
		return bus.VerifyReply{}, err
	}
	return reply, nil
}
