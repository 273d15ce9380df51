// Package cron fires the scheduled syncs of trees. Several scheduler
// instances may run it at once: each fire of a tree's schedule has one
// deterministic trigger id, used as Nats-Msg-Id, so JetStream keeps one.
package cron

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/adhocore/gronx"
	"github.com/google/uuid"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// TreeLister lists the trees and their schedules.
type TreeLister interface {
	Trees(ctx context.Context) ([]inventoryapi.Tree, error)
}

// TriggerSender publishes a trigger, deduplicated by its id.
type TriggerSender interface {
	Trigger(ctx context.Context, t bus.Trigger) error
}

// Cron checks every tree's schedule once a minute.
type Cron struct {
	trees   TreeLister
	out     TriggerSender
	log     *slog.Logger
	refresh time.Duration
	gron    *gronx.Gronx

	cached  []inventoryapi.Tree
	fetched time.Time
	fired   map[string]time.Time // tree → minute last fired

	// last is what Schedules reports: the state above as the last Tick
	// left it (Tick alone touches that state, Schedules is called from
	// request handlers).
	last atomic.Pointer[tickState]
}

// tickState is a copy of a cron's state after a tick.
type tickState struct {
	trees   []inventoryapi.Tree
	fetched time.Time
	fired   map[string]time.Time
}

// New returns a cron that re-reads the tree list every refresh interval.
func New(trees TreeLister, out TriggerSender, refresh time.Duration, log *slog.Logger) *Cron {
	return &Cron{trees: trees, out: out, log: log, refresh: refresh, gron: gronx.New(), fired: map[string]time.Time{}}
}

var cronNamespace = uuid.MustParse("6c1f3d2a-8e4b-4f7a-b0d9-3e5a7c9b1d24")

// TriggerID is the id of the fire of tree's schedule at minute.
func TriggerID(tree string, minute time.Time) string {
	return uuid.NewSHA1(cronNamespace, fmt.Appendf(nil, "%s|%d", tree, minute.Unix())).String()
}

// Tick fires every tree whose schedule is due at now and that has not fired
// for this minute yet.
func (c *Cron) Tick(ctx context.Context, now time.Time) error {
	defer func() { c.last.Store(&tickState{trees: c.cached, fetched: c.fetched, fired: maps.Clone(c.fired)}) }()
	if c.cached == nil || now.Sub(c.fetched) >= c.refresh {
		trees, err := c.trees.Trees(ctx)
		switch {
		case err == nil:
			c.cached, c.fetched = trees, now
		case c.cached == nil:
			return fmt.Errorf("cron: list trees: %w", err)
		default:
			// The inventory is away: keep firing the schedules we know.
			c.log.Warn("cron: list trees failed, using the last list", "err", err)
		}
	}
	minute := now.UTC().Truncate(time.Minute)
	for _, t := range c.cached {
		// A disabled tree is not scheduled; manual syncs still run. A
		// paused tree is not scheduled either (nor synced: see dispatch).
		if t.Schedule == "" || (t.Enabled != nil && !*t.Enabled) || t.Paused || c.fired[t.Name].Equal(minute) {
			continue
		}
		due, err := c.gron.IsDue(t.Schedule, minute)
		if err != nil {
			c.log.Warn("bad schedule", "tree", t.Name, "schedule", t.Schedule, "err", err)
			continue
		}
		if !due {
			continue
		}
		trig := bus.Trigger{V: bus.MessageVersion, TriggerID: TriggerID(t.Name, minute), Tree: t.Name, Reason: "schedule", RequestedAt: minute}
		if err := c.out.Trigger(ctx, trig); err != nil {
			return fmt.Errorf("cron: fire %s: %w", t.Name, err)
		}
		c.fired[t.Name] = minute
		c.log.Info("schedule fired", "tree", t.Name, "trigger", trig.TriggerID)
	}
	return nil
}

// Schedules lists the trees of the list last read from the inventory,
// each with the minute this cron last fired its schedule and the next one
// it will (none for a tree without a schedule, disabled or paused), after
// now; and when the list was read (zero before the first read).
func (c *Cron) Schedules(now time.Time) ([]bus.ScheduledTree, time.Time) {
	v := c.last.Load()
	if v == nil {
		return []bus.ScheduledTree{}, time.Time{}
	}
	out := make([]bus.ScheduledTree, 0, len(v.trees))
	for _, t := range v.trees {
		st := bus.ScheduledTree{Tree: t.Name, Schedule: t.Schedule, Enabled: t.Enabled == nil || *t.Enabled, Paused: t.Paused}
		if last, ok := v.fired[t.Name]; ok {
			st.LastFired = &last
		}
		if t.Schedule != "" && st.Enabled && !t.Paused {
			if next, err := gronx.NextTickAfter(t.Schedule, now.UTC(), false); err == nil {
				st.NextFire = &next
			}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b bus.ScheduledTree) int { return strings.Compare(a.Tree, b.Tree) })
	return out, v.fetched
}

// Run ticks every interval until ctx ends. A failed tick is logged and
// retried at the next one.
func (c *Cron) Run(ctx context.Context, interval time.Duration) error {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		if err := c.Tick(ctx, time.Now()); err != nil && ctx.Err() == nil {
			c.log.Warn("cron tick failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
	}
}
