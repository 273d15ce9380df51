package siteagent_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/poll"
)

// randomTree writes n bytes that do not compress into dir/blob and
// returns dir.
func randomTree(t *testing.T, seed uint64, n int) string {
	t.Helper()
	dir := t.TempDir()
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(b) // ChaCha8 never fails
	if err := os.WriteFile(filepath.Join(dir, "blob"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// partialSize is how much of pack the agent has written to its partial
// file (0 when there is none).
func (h *harness) partialSize(pack string) int64 {
	key := fmt.Sprintf("%x", blake3.Sum256([]byte(pack)))[:32]
	fi, err := os.Stat(filepath.Join(h.dataDir, "partial", key+".part"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitPartial waits until the agent has written at least n bytes of pack.
func (h *harness) waitPartial(t *testing.T, pack string, n int64) {
	t.Helper()
	poll.Until(t, 20*time.Second, func() error {
		if got := h.partialSize(pack); got < n {
			return fmt.Errorf("fetch of %s at %d bytes, waiting for %d", pack, got, n)
		}
		return nil
	})
}

// sample is the size of a partial fetch at a time.
type sample struct {
	at   time.Time
	size int64
}

// watch samples the partial file of pack every few milliseconds until
// stop is closed, and returns the samples.
func (h *harness) watch(pack string, stop <-chan struct{}) <-chan []sample {
	out := make(chan []sample, 1)
	go func() {
		var got []sample
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				out <- got
				return
			case now := <-tick.C:
				got = append(got, sample{now, h.partialSize(pack)})
			}
		}
	}()
	return out
}

// TestFetchKeepsToTheBandwidthBudget: bytes received over time stay
// within 10% of the site's bandwidth_limit.
func TestFetchKeepsToTheBandwidthBudget(t *testing.T) {
	const budget, size = 2_000_000, 3_000_000
	h := start(t, "site-a")
	name, hash, root := h.storePack(t, "big", randomTree(t, 1, size), nil)
	stop := make(chan struct{})
	samples := h.watch(name, stop)
	fin := h.run(t, bus.SyncCommand{RunID: "r1", TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "big", To: root,
		Pack: name, PackHash: hash, BandwidthLimit: budget})
	close(stop)
	if fin.Result != bus.ResultCompleted || current(t, h, "big") != root {
		t.Fatalf("apply: %+v", fin)
	}
	// Between 10% and 90% of the pack: past the bucket's first burst and
	// the start of the consumer.
	var first, last *sample
	for _, s := range <-samples {
		if first == nil && s.size >= size/10 {
			first = &s
		}
		if s.size >= size*9/10 {
			last = &s
			break
		}
	}
	if first == nil || last == nil {
		t.Fatal("the fetch was not seen in progress")
	}
	rate := float64(last.size-first.size) / last.at.Sub(first.at).Seconds()
	if rate > 1.1*budget || rate < 0.9*budget {
		t.Errorf("received %.0f bytes/s, want %d ± 10%%", rate, budget)
	}
	if fin.Bytes < size || fin.Bytes > size+size/100 {
		t.Errorf("run reports %d bytes received, want the pack's (about %d)", fin.Bytes, size)
	}
}

// TestInterruptedFetchResumes: an agent stopped in the middle of a fetch
// leaves what it received; the next agent receives only the rest. A pack
// of up to 16 chunks (8 MiB) is fetched with direct gets, a larger one
// through a consumer: both resume.
func TestInterruptedFetchResumes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		size       int
		rate       int64
		stopAfter  int64
		randomSeed uint64
		method     string
	}{
		{"consumer", 12 << 20, 8_000_000, 6 << 20, 2, bus.FetchConsumer},
		{"direct gets", 7 << 20, 3_000_000, 5 << 20, 3, bus.FetchDirect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testInterruptedFetchResumes(t, tc.size, tc.rate, tc.stopAfter, tc.randomSeed, tc.method)
		})
	}
}

func testInterruptedFetchResumes(t *testing.T, size int, rate, stopAfter int64, seed uint64, method string) {
	h := start(t, "site-a")
	served := follow[bus.DeltaServed](t, h, bus.EntityDelta, bus.ActionServed)
	name, hash, root := h.storePack(t, "big", randomTree(t, seed, size), nil)
	cmd := bus.SyncCommand{RunID: "r1", TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "big", To: root,
		Pack: name, PackHash: hash, BandwidthLimit: rate}
	h.send(t, cmd)
	// Past the first checkpoint (4 MiB), then the agent goes away.
	h.waitPartial(t, name, stopAfter)
	h.stop()
	if got := h.partialSize(name); got == 0 || got >= int64(size) {
		t.Fatalf("after the stop the partial file holds %d bytes", got)
	}
	h.startAgent(t) // the command is delivered again
	fin := h.wait(t, "r1", 30*time.Second)
	if fin.Result != bus.ResultCompleted || current(t, h, "big") != root {
		t.Fatalf("resumed apply: %+v", fin)
	}
	info, err := h.layout.Deltas.GetInfo(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if fin.Bytes > int64(info.Size)-(4<<20) || fin.Bytes == 0 {
		t.Errorf("the resumed fetch received %d bytes of a %d-byte pack: want the rest after the 4 MiB checkpoint at most", fin.Bytes, info.Size)
	}
	if h.partialSize(name) != 0 {
		t.Error("the partial file outlived the apply")
	}
	// The interrupted fetch served nothing; the resumed one says what it
	// took from disk and what from the link.
	ds := waitFor(t, "delta.served events", 1, served)
	if len(ds) != 1 || ds[0].ResumedBytes < 4<<20 || ds[0].FetchedBytes != fin.Bytes ||
		ds[0].FetchedBytes+ds[0].ResumedBytes != int64(info.Size) || ds[0].Method != method {
		t.Errorf("delta.served %+v: want one, %s, resumed from the 4 MiB checkpoint or later, fetched %d of %d bytes", ds, method, fin.Bytes, info.Size)
	}
}

// TestUrgentTreeOvertakes: while an urgent tree's pack is fetched, a
// normal tree's fetch on the same link makes no progress.
func TestUrgentTreeOvertakes(t *testing.T) {
	const budget = 2_000_000
	h := start(t, "site-a")
	slow, slowHash, slowRoot := h.storePack(t, "mirror", randomTree(t, 3, 6_000_000), nil)
	fast, fastHash, fastRoot := h.storePack(t, "security", randomTree(t, 4, 2_000_000), nil)
	h.send(t, bus.SyncCommand{RunID: "normal", TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "mirror", To: slowRoot,
		Pack: slow, PackHash: slowHash, BandwidthLimit: budget})
	h.waitPartial(t, slow, 1_000_000)
	h.send(t, bus.SyncCommand{RunID: "urgent", TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: "security", To: fastRoot,
		Pack: fast, PackHash: fastHash, BandwidthLimit: budget, Urgent: true})
	// From when the urgent fetch has started until it is nearly done, the
	// normal one stands still (but for the chunk it was writing).
	var before, after int64 = -1, -1
	poll.Until(t, 20*time.Second, func() error {
		switch n := h.partialSize(fast); {
		case before < 0 && n >= 200_000:
			before = h.partialSize(slow)
		case before >= 0 && n >= 1_800_000:
			after = h.partialSize(slow)
			return nil
		}
		return fmt.Errorf("urgent fetch at %d bytes, normal at %d", h.partialSize(fast), h.partialSize(slow))
	})
	if grew := after - before; grew > 256<<10 {
		t.Errorf("the normal fetch received %d bytes during the urgent one", grew)
	}
	urgent := h.wait(t, "urgent", 20*time.Second)
	normal := h.wait(t, "normal", 30*time.Second)
	if urgent.Result != bus.ResultCompleted || normal.Result != bus.ResultCompleted {
		t.Fatalf("urgent %+v, normal %+v", urgent, normal)
	}
	if !urgent.FinishedAt.Before(normal.FinishedAt) {
		t.Error("the urgent tree finished after the normal one")
	}
}

// TestSmallPackFetchedWithDirectGets: a pack of a few chunks costs the
// server no consumer (no JetStream API call), a large one does.
func TestSmallPackFetchedWithDirectGets(t *testing.T) {
	h := start(t, "site-a")
	calls := func(tree string, size int, seed uint64) uint64 {
		t.Helper()
		name, hash, root := h.storePack(t, tree, randomTree(t, seed, size), nil)
		before := h.srv.APICalls()
		fin := h.run(t, bus.SyncCommand{RunID: "r-" + tree, TriggerID: "t", Kind: bus.CommandApply, Site: "site-a", Tree: tree, To: root,
			Pack: name, PackHash: hash})
		if fin.Result != bus.ResultCompleted || current(t, h, tree) != root {
			t.Fatalf("apply %s: %+v", tree, fin)
		}
		return h.srv.APICalls() - before
	}
	if n := calls("small", 1<<20, 4); n != 0 {
		t.Errorf("a 1 MiB pack cost %d JetStream API calls, want none", n)
	}
	if n := calls("large", 12<<20, 5); n == 0 {
		t.Error("a 12 MiB pack cost no JetStream API call: no consumer?")
	}
}
