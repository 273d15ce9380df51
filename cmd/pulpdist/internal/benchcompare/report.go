package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// record is one tool × corpus × number of sites: the JSON the harness
// writes (BENCH_JSON).
type record struct {
	Tool         string  `json:"tool"`
	Corpus       string  `json:"corpus"`
	Sites        int     `json:"sites"`
	OriginCPU    float64 `json:"origin_cpu_s"`
	BytesPerSite int64   `json:"bytes_per_site"`
	FloorBytes   int64   `json:"floor_bytes"`
	Wall         float64 `json:"wall_s"`
	PollCPU      float64 `json:"poll_cpu_s"`
	// OriginCPURuns is the origin CPU of every run when the measurement was
	// repeated (N = 1, BENCH_ONE_RUNS); the record's figures are those of
	// the run with the least.
	OriginCPURuns []float64 `json:"origin_cpu_runs_s,omitempty"`
	// OriginIdleCPU is what the origin side spends over the update's wall
	// time when nothing happens (its idle rate, measured just before the
	// update, times Wall): included in OriginCPU, reported beside it
	// (pulpdist; BENCH_IDLE_WINDOW).
	OriginIdleCPU float64 `json:"origin_idle_cpu_s,omitempty"`
}

// writeJSON writes the records to path, atomically.
func writeJSON(path string, recs []record) error {
	b, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// find returns the record of a tool, corpus and number of sites.
func find(recs []record, tool, corpus string, sites int) (record, bool) {
	for _, r := range recs {
		if r.Tool == tool && r.Corpus == corpus && r.Sites == sites {
			return r, true
		}
	}
	return record{}, false
}

// ratio formats a/b, or "–" when b is 0.
func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// table writes the markdown table of the records: for each corpus and
// number of sites, both tools, with the ratios the targets are about.
func table(w io.Writer, recs []record) {
	fmt.Fprintln(w, "| corpus | sites | tool | origin CPU s | ÷ N=1 | ÷ rsync | ÷ rsync-z | bytes/site | ÷ floor | wall s | poll CPU s |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range recs {
		one, _ := find(recs, r.Tool, r.Corpus, 1)
		rs, _ := find(recs, "rsync", r.Corpus, r.Sites)
		rz, _ := find(recs, "rsync-z", r.Corpus, r.Sites)
		vsRsync, vsRsyncZ := "–", "–"
		if r.Tool == "pulpdist" {
			vsRsync, vsRsyncZ = ratio(r.OriginCPU, rs.OriginCPU), ratio(r.OriginCPU, rz.OriginCPU)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %.2f | %s | %s | %s | %d | %s | %.1f | %.2f |\n",
			r.Corpus, r.Sites, r.Tool, r.OriginCPU, ratio(r.OriginCPU, one.OriginCPU), vsRsync, vsRsyncZ,
			r.BytesPerSite, ratio(float64(r.BytesPerSite), float64(r.FloorBytes)), r.Wall, r.PollCPU)
	}
}

// svg draws two panels: origin CPU against the number of sites (log
// scales), and bytes per site ÷ the floor; one line per tool and corpus.
func svg(w io.Writer, recs []record) {
	const W, H, pad, gap = 900, 380, 60, 60
	pw := (W - 2*pad - gap) / 2
	ph := H - 2*pad
	type series struct {
		name   string
		points [][2]float64
		dash   bool
		color  string
	}
	colors := map[string]string{"pulpdist": "#1f77b4", "rsync": "#d62728", "rsync-z": "#ff7f0e"}
	var cpu, bytes []series
	var corpora []string
	for _, r := range recs {
		if !slices.Contains(corpora, r.Corpus) {
			corpora = append(corpora, r.Corpus)
		}
	}
	var maxN, maxCPU, minCPU, maxB float64 = 1, 0, math.Inf(1), 0
	for ci, c := range corpora {
		for _, tool := range []string{"pulpdist", "rsync", "rsync-z"} {
			s1 := series{name: tool + " · " + c, dash: ci > 0, color: colors[tool]}
			s2 := s1
			for _, r := range recs {
				if r.Tool != tool || r.Corpus != c {
					continue
				}
				cpuv := math.Max(r.OriginCPU, 0.01)
				s1.points = append(s1.points, [2]float64{float64(r.Sites), cpuv})
				b := 0.0
				if r.FloorBytes > 0 {
					b = float64(r.BytesPerSite) / float64(r.FloorBytes)
				}
				s2.points = append(s2.points, [2]float64{float64(r.Sites), b})
				maxN, maxCPU, minCPU, maxB = math.Max(maxN, float64(r.Sites)), math.Max(maxCPU, cpuv), math.Min(minCPU, cpuv), math.Max(maxB, b)
			}
			if len(s1.points) > 0 {
				cpu, bytes = append(cpu, s1), append(bytes, s2)
			}
		}
	}
	if len(cpu) == 0 {
		// No figures: an empty plot (log10 of 0 would never end the ticks).
		minCPU, maxCPU = 0.01, 1
	}
	lx := func(n float64) float64 { return math.Log2(n) / math.Max(math.Log2(maxN), 1) }
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", W, H+40)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	panel := func(x0 int, title string, ss []series, y func(float64) float64, ticks []float64, label func(float64) string) {
		fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, pad-20, title)
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x0, pad, pw, ph)
		for _, t := range ticks {
			yy := float64(pad+ph) - y(t)*float64(ph)
			fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
				x0, x0+pw, yy, yy, x0-4, yy+4, label(t))
		}
		for n := 1.0; n <= maxN; n *= 2 {
			xx := float64(x0) + lx(n)*float64(pw)
			fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n", xx, pad+ph+16, n)
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">sites</text>`+"\n", x0+pw/2, pad+ph+34)
		for _, s := range ss {
			var pts []string
			for _, p := range s.points {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", float64(x0)+lx(p[0])*float64(pw), float64(pad+ph)-y(p[1])*float64(ph)))
			}
			dash := ""
			if s.dash {
				dash = ` stroke-dasharray="6 4"`
			}
			fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.color, dash)
		}
	}
	lo, hi := math.Log10(minCPU), math.Log10(maxCPU*1.5)
	if hi-lo < 1 {
		lo = hi - 1
	}
	var cpuTicks []float64
	for e := math.Floor(lo); e <= math.Ceil(hi); e++ {
		if v := math.Pow(10, e); v >= math.Pow(10, lo) && v <= math.Pow(10, hi) {
			cpuTicks = append(cpuTicks, v)
		}
	}
	panel(pad, "origin CPU seconds per update (log)", cpu, func(v float64) float64 { return (math.Log10(v) - lo) / (hi - lo) },
		cpuTicks, func(v float64) string { return fmt.Sprintf("%g", v) })
	top := math.Max(2, math.Ceil(maxB))
	var bTicks []float64
	for v := 0.0; v <= top; v += math.Max(1, math.Floor(top/5)) {
		bTicks = append(bTicks, v)
	}
	panel(pad+pw+gap, "bytes per site ÷ floor", bytes, func(v float64) float64 { return v / top }, bTicks,
		func(v float64) string { return fmt.Sprintf("%g", v) })
	for i, s := range cpu {
		x, y := pad+i%4*200, H+10+i/4*16
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s</text>`+"\n",
			x, x+24, y, y, s.color, dash, x+30, y+4, s.name)
	}
	fmt.Fprintln(w, "</svg>")
}
