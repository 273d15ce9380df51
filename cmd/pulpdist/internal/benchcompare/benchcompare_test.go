package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (rsync (x) d) S 1 2 3 4 5 6 7 8 9 10 150 50 30 20 20 0 1 0 123"
	got, err := parseStat(line)
	if err != nil || got != 2500*time.Millisecond {
		t.Fatalf("parseStat = %s, %v; want 2.5s (250 ticks)", got, err)
	}
	for _, bad := range []string{"", "1 rsync S 1", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 a 50 30 20 20"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) passed", bad)
		}
	}
	// This process's CPU grows as it works (10 ms ticks).
	before, err := cpuOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		for i := range 1_000_000 {
			x ^= i * i
		}
		if now, err := cpuOf(os.Getpid()); err != nil || now > before {
			return
		}
	}
	t.Fatalf("the CPU of a busy process did not grow (%d)", x)
}

func TestParseCPULine(t *testing.T) {
	got, err := parseCPULine("cpu  100 5 50 800 20 3 2 10 0 0")
	if err != nil || got != (cpuTimes{busy: 170, total: 990}) {
		t.Fatalf("parseCPULine = %+v, %v; want busy 170 of 990", got, err)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3 4 5 6 7", "cpu 1 2 3 x 5 6 7 8"} {
		if _, err := parseCPULine(bad); err == nil {
			t.Errorf("parseCPULine(%q) passed", bad)
		}
	}
	if _, err := cpuStat(); err != nil {
		t.Fatal(err)
	}
}

func TestStatsField(t *testing.T) {
	out := "Number of files: 334\nTotal bytes sent: 43,422\nTotal bytes received: 6,542,182\n"
	if n, err := statsField(out, "Total bytes received"); err != nil || n != 6542182 {
		t.Fatalf("received = %d, %v", n, err)
	}
	if _, err := statsField(out, "Literal data"); err == nil {
		t.Error("a missing field was found")
	}
	if _, err := statsField("Total bytes received: many", "Total bytes received"); err == nil {
		t.Error("a bad number was read")
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Setenv("BENCH_QUICK", "1")
	o, err := optionsFromEnv()
	if err != nil || len(o.sites) != 2 || o.sites[1] != 16 || o.scale != "tiny" || o.jsonPath != "docs/bench/latest.json" || !o.pulpdist || !o.rsync {
		t.Fatalf("quick options %+v, %v", o, err)
	}
	if o.oneRuns != 1 {
		t.Errorf("quick: N = 1 measured %d times, want once", o.oneRuns)
	}
	t.Setenv("BENCH_ONE_RUNS", "5")
	if o, err := optionsFromEnv(); err != nil || o.oneRuns != 5 {
		t.Fatalf("BENCH_ONE_RUNS=5: %+v, %v", o, err)
	}
	t.Setenv("BENCH_ONE_RUNS", "")
	if o.idleWindow != 2*time.Second {
		t.Errorf("quick: idle window %s, want 2s", o.idleWindow)
	}
	t.Setenv("BENCH_IDLE_WINDOW", "0")
	if o, err := optionsFromEnv(); err != nil || o.idleWindow != 0 {
		t.Fatalf("BENCH_IDLE_WINDOW=0: %+v, %v", o, err)
	}
	t.Setenv("BENCH_IDLE_WINDOW", "")
	t.Setenv("BENCH_TOOLS", "pulpdist")
	if o, err := optionsFromEnv(); err != nil || !o.pulpdist || o.rsync {
		t.Fatalf("BENCH_TOOLS=pulpdist: %+v, %v", o, err)
	}
	t.Setenv("BENCH_TOOLS", "")
	for _, bad := range []map[string]string{
		{"BENCH_SITES": "4,16"}, {"BENCH_SITES": "1,x"}, {"BENCH_SITES": "1,0"}, {"BENCH_CORPORA": "generated,ubuntu"},
		{"BENCH_TOOLS": "pulpdist,scp"}, {"BENCH_TOOLS": ","}, {"BENCH_ONE_RUNS": "0"}, {"BENCH_ONE_RUNS": "three"},
		{"BENCH_IDLE_WINDOW": "-1s"}, {"BENCH_IDLE_WINDOW": "20"}, {"BENCH_IDLE_WINDOW": "1h"},
	} {
		for k, v := range bad {
			t.Setenv(k, v)
		}
		if _, err := optionsFromEnv(); err == nil {
			t.Errorf("%v accepted", bad)
		}
		for k := range bad {
			t.Setenv(k, "")
		}
	}
}

func TestReport(t *testing.T) {
	recs := []record{
		{Tool: "pulpdist", Corpus: "c", Sites: 1, OriginCPU: 1, BytesPerSite: 110, FloorBytes: 100, Wall: 1, PollCPU: 0.01},
		{Tool: "rsync", Corpus: "c", Sites: 1, OriginCPU: 0.5, BytesPerSite: 400, FloorBytes: 100, Wall: 1},
		{Tool: "pulpdist", Corpus: "c", Sites: 4, OriginCPU: 1.1, BytesPerSite: 110, FloorBytes: 100, Wall: 2},
		{Tool: "rsync", Corpus: "c", Sites: 4, OriginCPU: 2, BytesPerSite: 400, FloorBytes: 100, Wall: 2},
	}
	var md bytes.Buffer
	table(&md, recs)
	if !strings.Contains(md.String(), "| c | 4 | pulpdist | 1.10 | 1.10 | 0.55 | – | 110 | 1.10 |") {
		t.Errorf("table:\n%s", md.String())
	}
	var pic bytes.Buffer
	svg(&pic, recs)
	dec := xml.NewDecoder(&pic)
	lines := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != 4 { // two tools, two panels
		t.Errorf("%d lines in the plot, want 4", lines)
	}
	// No records (BENCH_TOOLS left nothing to run in a corpus): an empty
	// plot, at once.
	pic.Reset()
	svg(&pic, nil)
	if !strings.Contains(pic.String(), "</svg>") || pic.Len() > 10_000 {
		t.Errorf("plot of nothing: %d bytes", pic.Len())
	}
	path := filepath.Join(t.TempDir(), "sub", "latest.json")
	if err := writeJSON(path, recs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(b, &back); err != nil || len(back) != 4 {
		t.Fatalf("json: %v", err)
	}
	for _, k := range []string{"tool", "sites", "origin_cpu_s", "bytes_per_site", "floor_bytes", "wall_s", "poll_cpu_s"} {
		if _, ok := back[0][k]; !ok {
			t.Errorf("json lacks %s", k)
		}
	}
}

// TestHarnessRuns runs the whole harness on the tiny generated corpus
// with one and two sites: both tools put B at every site (the harness
// verifies it), and pulpdist's figures are those of a pack near the floor.
func TestMeasureKeepsTheLeast(t *testing.T) {
	cpu := []float64{2.1, 1.7, 1.9}
	i := 0
	r, err := measure(3, func() (record, error) {
		i++
		return record{OriginCPU: cpu[i-1], Wall: float64(i)}, nil
	})
	if err != nil || r.OriginCPU != 1.7 || r.Wall != 2 || !slices.Equal(r.OriginCPURuns, cpu) {
		t.Fatalf("measure: %+v, %v", r, err)
	}
	if r, _ := measure(1, func() (record, error) { return record{OriginCPU: 3}, nil }); r.OriginCPU != 3 || r.OriginCPURuns != nil {
		t.Errorf("one run: %+v", r)
	}
	calls := 0
	if _, err := measure(3, func() (record, error) { calls++; return record{}, errors.New("site 3 never got B") }); err == nil || calls != 1 {
		t.Errorf("a failed run: %v after %d calls", err, calls)
	}
}

func TestHarnessRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the services and runs both tools")
	}
	repo, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := options{
		sites: []int{1, 2}, corpora: []string{"generated"}, scale: "tiny",
		jsonPath: filepath.Join(dir, "out.json"), svgPath: filepath.Join(dir, "out.svg"),
		work: filepath.Join(dir, "work"), keepWork: true, repo: repo, goTool: "go", cache: filepath.Join(dir, "cache"),
		pulpdist: true, rsync: true, oneRuns: 2, idleWindow: time.Second,
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 {
		t.Fatalf("%d records, want 6 (three tools, two sizes): %+v", len(recs), recs)
	}
	if z, _ := find(recs, "rsync-z", "generated-tiny", 2); z.BytesPerSite == 0 {
		t.Errorf("no rsync -z figures: %+v", recs)
	}
	for _, r := range recs {
		if r.FloorBytes <= 0 || r.BytesPerSite <= 0 || r.Wall <= 0 {
			t.Errorf("record %+v", r)
		}
		// The idle share is a part of the update's CPU, and pulpdist's only.
		if r.OriginIdleCPU < 0 || r.OriginIdleCPU > 0 && r.OriginIdleCPU >= r.OriginCPU || r.Tool != "pulpdist" && r.OriginIdleCPU != 0 {
			t.Errorf("%s, %d sites: idle share %.3f s of %.3f s", r.Tool, r.Sites, r.OriginIdleCPU, r.OriginCPU)
		}
		if r.Tool == "pulpdist" && r.BytesPerSite > 2*r.FloorBytes {
			t.Errorf("pulpdist sent %d bytes per site, floor %d", r.BytesPerSite, r.FloorBytes)
		}
	}
	for _, r := range recs {
		want := map[int]int{1: 2, 2: 0}[r.Sites] // N = 1 measured twice, the least kept
		if len(r.OriginCPURuns) != want || want > 0 && r.OriginCPU != min(r.OriginCPURuns[0], r.OriginCPURuns[1]) {
			t.Errorf("%s, %d sites: origin CPU %.3f, runs %v", r.Tool, r.Sites, r.OriginCPU, r.OriginCPURuns)
		}
	}
	one, _ := find(recs, "pulpdist", "generated-tiny", 1)
	two, _ := find(recs, "pulpdist", "generated-tiny", 2)
	// Two sites share one pack, at the best effort (one site: default).
	if d := one.BytesPerSite - two.BytesPerSite; d < 0 || d > one.BytesPerSite/20 {
		t.Errorf("bytes per site %d for one site, %d for two", one.BytesPerSite, two.BytesPerSite)
	}
}
