package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ScanKey is the key of a tree's scan in flight in the scans bucket.
func ScanKey(tree string) string { return tree }

// scanEntry is the value under ScanKey.
type scanEntry struct {
	Run              string `json:"run"`
	Again            bool   `json:"again,omitempty"`
	ConfirmDeletions bool   `json:"confirm_deletions,omitempty"`
}

// Scans records the scans in flight in the scans bucket, so that several
// scheduler instances coalesce a tree's triggers into one follow-up scan.
type Scans struct{ kv jetstream.KeyValue }

// NewScans returns the record kept in kv (Layout.Scans).
func NewScans(kv jetstream.KeyValue) *Scans { return &Scans{kv: kv} }

// maxCASRetries bounds the retries of a compare-and-set that others keep
// winning.
const maxCASRetries = 16

// Begin records that run scans tree and returns true, unless another scan
// of the tree is in flight: then it marks that one to be followed by one
// more (confirming deletions if confirm is set) and returns false and the
// run in flight. Beginning the run in flight again returns true (a
// redelivered trigger).
func (s *Scans) Begin(ctx context.Context, tree, run string, confirm bool) (bool, string, error) {
	for range maxCASRetries {
		b, _ := json.Marshal(scanEntry{Run: run}) // a plain struct always encodes
		if _, err := s.kv.Create(ctx, ScanKey(tree), b); err == nil {
			return true, "", nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return false, "", fmt.Errorf("scans %s: %w", tree, err)
		}
		e, err := s.kv.Get(ctx, ScanKey(tree))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // it just ended
		}
		if err != nil {
			return false, "", fmt.Errorf("scans %s: %w", tree, err)
		}
		var cur scanEntry
		if err := json.Unmarshal(e.Value(), &cur); err != nil || cur.Run == "" {
			// Not ours to read: replace it.
			if _, err := s.kv.Update(ctx, ScanKey(tree), b, e.Revision()); err == nil {
				return true, "", nil
			}
			continue
		}
		if cur.Run == run {
			return true, "", nil
		}
		cur.Again, cur.ConfirmDeletions = true, cur.ConfirmDeletions || confirm
		nb, _ := json.Marshal(cur)
		if _, err := s.kv.Update(ctx, ScanKey(tree), nb, e.Revision()); err == nil {
			return false, cur.Run, nil
		}
	}
	return false, "", fmt.Errorf("scans %s: too many concurrent updates", tree)
}

// End records that run's scan of tree finished and says whether a trigger
// came meanwhile (again), and whether one of those confirmed deletions. A
// run that is not the one in flight ends nothing.
func (s *Scans) End(ctx context.Context, tree, run string) (again, confirm bool, err error) {
	for range maxCASRetries {
		e, err := s.kv.Get(ctx, ScanKey(tree))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, false, nil
		}
		if err != nil {
			return false, false, fmt.Errorf("scans %s: %w", tree, err)
		}
		var cur scanEntry
		if json.Unmarshal(e.Value(), &cur) == nil && cur.Run != run {
			return false, false, nil
		}
		if err := s.kv.Delete(ctx, ScanKey(tree), jetstream.LastRevision(e.Revision())); err == nil {
			return cur.Again, cur.ConfirmDeletions, nil
		}
	}
	return false, false, fmt.Errorf("scans %s: too many concurrent updates", tree)
}

// InFlight lists the scans in flight, by tree.
func (s *Scans) InFlight(ctx context.Context) ([]ScanInFlight, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("scans: %w", err)
	}
	defer func() { _ = w.Stop() }() // the watcher's consumer goes with it; nothing to report
	out := []ScanInFlight{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok || e == nil { // nil: every current entry was sent
				slices.SortFunc(out, func(a, b ScanInFlight) int { return strings.Compare(a.Tree, b.Tree) })
				return out, nil
			}
			var cur scanEntry
			if err := json.Unmarshal(e.Value(), &cur); err != nil || cur.Run == "" {
				continue // not a scan Begin recorded: Begin replaces it
			}
			out = append(out, ScanInFlight{Tree: e.Key(), Run: cur.Run, Again: cur.Again})
		case <-ctx.Done():
			return nil, fmt.Errorf("scans: %w", ctx.Err())
		}
	}
}
