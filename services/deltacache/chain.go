package deltacache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bandwidth"
)

// Chains of stored deltas. A site far behind (at X while the tree is at
// Z) can get one direct delta X→Z, computed once, or be stepped along
// packs already stored, X→Y→Z, which costs no CPU but may carry more
// bytes (what Y changed and Z changed again). The delta-cache takes the
// chain when the transfer time it costs the sites more than the direct
// delta would is less than the CPU time the direct delta would take — the
// cost model of Refiner, at the same link rate.

// BuildMSMeta is the object metadata key holding the milliseconds a pack
// took to build: what the chain cost model expects a direct delta over
// the same versions to take.
const BuildMSMeta = "pulpdist-build-ms"

// hop is one stored pack: of a chain, or one collection judges.
type hop struct {
	info                 *jetstream.ObjectInfo
	from, to, name, hash string
	size                 int64
	build                time.Duration
}

// listPacks lists the stored packs by tree (objects not named like a
// pack left out: not ours to judge).
func (s *Service) listPacks(ctx context.Context) (map[string][]hop, error) {
	infos, err := s.layout.Deltas.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	out := map[string][]hop{}
	for _, info := range infos {
		t, from, to, ok := parsePackName(info.Name)
		if info.Deleted || !ok {
			continue
		}
		ms, _ := strconv.ParseInt(info.Metadata[BuildMSMeta], 10, 64) // absent: unknown, 0
		out[t] = append(out[t], hop{info: info, from: from, to: to, name: info.Name, hash: info.Metadata[PackHashMeta],
			size: int64(info.Size), build: time.Duration(ms) * time.Millisecond})
	}
	return out, nil
}

// storedPacks lists the tree's stored packs by base version (full packs,
// from none, left out).
func (s *Service) storedPacks(ctx context.Context, treeName string) (map[string][]hop, error) {
	all, err := s.listPacks(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]hop{}
	for _, h := range all[treeName] {
		if h.from != "" {
			out[h.from] = append(out[h.from], h)
		}
	}
	return out, nil
}

// chain returns the stored packs leading from from to to with the fewest
// bytes, of two hops or more (nil when there is none).
func chain(packs map[string][]hop, from, to string) []hop {
	// Dijkstra over versions, by bytes; trees hold few packs at once.
	type state struct {
		bytes int64
		via   *hop
	}
	best := map[string]state{from: {}}
	done := map[string]bool{}
	for {
		cur, found := "", false
		for v, st := range best {
			if !done[v] && (!found || st.bytes < best[cur].bytes) {
				cur, found = v, true
			}
		}
		if !found || cur == to {
			break
		}
		done[cur] = true
		for i := range packs[cur] {
			h := &packs[cur][i]
			next := best[cur].bytes + h.size
			if st, ok := best[h.to]; !ok || next < st.bytes {
				best[h.to] = state{bytes: next, via: h}
			}
		}
	}
	if _, ok := best[to]; !ok || to == from {
		return nil
	}
	var path []hop
	for v := to; v != from; v = best[v].via.from {
		path = append([]hop{*best[v].via}, path...)
	}
	if len(path) < 2 {
		return nil // the direct pack itself: the caller looked for it first
	}
	return path
}

// chainPays is the cost model for a chain: the direct delta is assumed to
// be as small as the chain's largest pack and to cost the chain's build
// times; the chain is taken when the extra bytes, fetched by sites sites
// at the link rate, take less time than that.
func (c Config) chainPays(path []hop, sites int) bool {
	var total, largest int64
	var build time.Duration
	for _, h := range path {
		total += h.size
		largest = max(largest, h.size)
		build += h.build
	}
	rate, _ := c.linkRate() // checked by Validate
	if rate == bandwidth.Unlimited {
		return true // bytes cost no time: the CPU is all there is
	}
	extra := float64(max(sites, 1)) * float64(total-largest) / float64(rate)
	return extra <= build.Seconds()
}
