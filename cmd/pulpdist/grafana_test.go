package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string     `json:"name"`
			Datasource datasource `json:"datasource"`
			Query      struct {
				Query string `json:"query"`
			} `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title      string     `json:"title"`
		Datasource datasource `json:"datasource"`
		Targets    []struct {
			Datasource datasource `json:"datasource"`
			Expr       string     `json:"expr"`
			Query      string     `json:"query"`
		} `json:"targets"`
	} `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// readDashboards reads every dashboard of deployments/grafana/dashboards.
func readDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deployments", "grafana", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// promQueries lists the PromQL of every Prometheus target and template
// variable of d.
func promQueries(d dashboard) []string {
	var out []string
	for _, v := range d.Templating.List {
		if v.Datasource.Type == "prometheus" {
			out = append(out, v.Query.Query)
		}
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if cmpDatasource(tg.Datasource, p.Datasource).Type == "prometheus" {
				out = append(out, tg.Expr)
			}
		}
	}
	return out
}

func cmpDatasource(a, b datasource) datasource {
	if a.UID != "" {
		return a
	}
	return b
}

// metricName matches the metric names a query can use: pulpdist's own,
// the Go runtime's and the process's.
var metricName = regexp.MustCompile(`\b(?:pulpdist|go|process)_[a-zA-Z0-9_]+\b`)

// checkDashboards checks that every metric the dashboards query is one the
// running services export (fams, scraped from them).
func checkDashboards(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	exported := func(name string) bool {
		if fams[name] != nil {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f := fams[strings.TrimSuffix(name, suffix)]; f != nil && strings.HasSuffix(name, suffix) &&
				(f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				return true
			}
		}
		return false
	}
	for file, d := range readDashboards(t) {
		for _, q := range promQueries(d) {
			names := metricName.FindAllString(q, -1)
			if len(names) == 0 {
				t.Errorf("%s: query %q names no metric", file, q)
			}
			for _, n := range names {
				if !exported(n) {
					t.Errorf("%s: query %q uses %s, which no service exports", file, q, n)
				}
			}
		}
	}
}

// TestObservabilityDeployment checks the compose stack's observability
// (no Docker engine is needed): every service exports traces to the
// collector, which forwards them to Tempo; Prometheus scrapes every
// service's metrics port; Grafana is provisioned with both data sources
// and the dashboards, whose panels use only those. That the dashboards'
// metrics exist is checked against the running services in
// TestDevRunsTheDemo.
func TestObservabilityDeployment(t *testing.T) {
	root := repoRoot(t)
	var c compose
	readYAML(t, filepath.Join(root, "docker-compose.yml"), &c)
	for _, name := range []string{"otel-collector", "tempo", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("docker-compose.yml runs no %s", name)
		}
	}

	// Traces: services → collector (OTLP/HTTP) → Tempo (OTLP/gRPC).
	var col struct {
		Receivers map[string]struct {
			Protocols map[string]struct {
				Endpoint string `yaml:"endpoint"`
			} `yaml:"protocols"`
		} `yaml:"receivers"`
		Exporters map[string]struct {
			Endpoint string `yaml:"endpoint"`
		} `yaml:"exporters"`
		Service struct {
			Pipelines map[string]struct {
				Receivers []string `yaml:"receivers"`
				Exporters []string `yaml:"exporters"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	readYAML(t, mounted(t, root, c.Services["otel-collector"].Volumes, "/etc/otelcol/config.yaml"), &col)
	if ep := col.Receivers["otlp"].Protocols["http"].Endpoint; !strings.HasSuffix(ep, ":4318") {
		t.Errorf("collector's OTLP/HTTP receiver listens on %q, want :4318", ep)
	}
	traces := col.Service.Pipelines["traces"]
	if !slices.Contains(traces.Receivers, "otlp") || len(traces.Exporters) != 1 || col.Exporters[traces.Exporters[0]].Endpoint != "tempo:4317" {
		t.Errorf("collector's traces pipeline %+v does not take OTLP to tempo:4317", traces)
	}
	var tempo struct {
		Distributor struct {
			Receivers map[string]struct {
				Protocols map[string]struct {
					Endpoint string `yaml:"endpoint"`
				} `yaml:"protocols"`
			} `yaml:"receivers"`
		} `yaml:"distributor"`
	}
	readYAML(t, mounted(t, root, c.Services["tempo"].Volumes, "/etc/tempo/tempo.yaml"), &tempo)
	if ep := tempo.Distributor.Receivers["otlp"].Protocols["grpc"].Endpoint; !strings.HasSuffix(ep, ":4317") {
		t.Errorf("tempo's OTLP/gRPC receiver listens on %q, want :4317", ep)
	}

	// Metrics: every pulpdist service is a target on its HTTP port.
	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, mounted(t, root, c.Services["prometheus"].Volumes, "/etc/prometheus/prometheus.yml"), &prom)
	targets := map[string]bool{}
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[tg] = true
			}
		}
		for _, dns := range sc.DNSSDConfigs {
			for _, n := range dns.Names {
				targets["dns:"+n+":"+strconv.Itoa(dns.Port)] = true
			}
		}
	}
	for name, svc := range c.Services {
		if svc.Build.Dockerfile == "" || svc.Build.Args["SERVICE"] == "pulpdist" {
			continue
		}
		if ep := svc.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]; ep != "http://otel-collector:4318" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q, want http://otel-collector:4318", name, ep)
		}
		addr := svc.Environment["PULPDIST_HTTP_ADDR"]
		port := addr[strings.LastIndex(addr, ":")+1:]
		want := name + ":" + port
		if svc.Deploy.Replicas > 1 {
			want = "dns:" + name + ":" + port // one name, several addresses
		}
		if !targets[want] {
			t.Errorf("prometheus does not scrape %s (%s); targets %v", name, want, targets)
		}
	}

	// Grafana: the data sources the dashboards name, and the dashboards
	// where the provider looks for them.
	g := c.Services["grafana"]
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(mounted(t, root, g.Volumes, "/etc/grafana/provisioning"), "datasources", "datasources.yaml"), &ds)
	uids := map[string]string{}
	for _, d := range ds.Datasources {
		uids[d.UID] = d.Type
	}
	if uids["prometheus"] != "prometheus" || uids["tempo"] != "tempo" {
		t.Errorf("data sources %v, want prometheus and tempo", uids)
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(mounted(t, root, g.Volumes, "/etc/grafana/provisioning"), "dashboards", "dashboards.yaml"), &prov)
	if len(prov.Providers) != 1 {
		t.Fatalf("dashboard providers %+v, want one", prov.Providers)
	}
	dir := mounted(t, root, g.Volumes, prov.Providers[0].Options.Path)
	if dir != filepath.Join(root, "deployments", "grafana", "dashboards") {
		t.Errorf("grafana loads dashboards from %s", dir)
	}
	seen := map[string]string{}
	var tempoPanels int
	for file, d := range readDashboards(t) {
		if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
			t.Errorf("%s: uid %q, title %q, %d panels", file, d.UID, d.Title, len(d.Panels))
		}
		if other, dup := seen[d.UID]; dup {
			t.Errorf("%s and %s share uid %s", file, other, d.UID)
		}
		seen[d.UID] = file
		for _, p := range d.Panels {
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q queries nothing", file, p.Title)
			}
			for _, tg := range p.Targets {
				src := cmpDatasource(tg.Datasource, p.Datasource)
				if uids[src.UID] == "" || uids[src.UID] != src.Type {
					t.Errorf("%s: panel %q uses data source %+v, not provisioned", file, p.Title, src)
				}
				if (src.Type == "prometheus" && tg.Expr == "") || (src.Type == "tempo" && tg.Query == "") {
					t.Errorf("%s: panel %q has an empty query", file, p.Title)
				}
				if src.Type == "tempo" {
					tempoPanels++
				}
			}
		}
	}
	for _, want := range []string{"pulpdist-overview", "pulpdist-tree", "pulpdist-site", "pulpdist-deltacache", "pulpdist-traces"} {
		if seen[want] == "" {
			t.Errorf("no dashboard %s", want)
		}
	}
	if tempoPanels == 0 {
		t.Error("no dashboard shows traces")
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// mounted is the repository path that volumes mount at target (a bind
// mount ./x:target or a file or directory inside one).
func mounted(t *testing.T, root string, volumes []string, target string) string {
	t.Helper()
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], "./") {
			continue
		}
		if rest, ok := strings.CutPrefix(target, parts[1]); ok && (rest == "" || strings.HasPrefix(rest, "/")) {
			p := filepath.Join(root, parts[0], rest)
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("%s mounted at %s: %v", parts[0], target, err)
			}
			return p
		}
	}
	t.Fatalf("nothing of the repository is mounted at %s (volumes %v)", target, volumes)
	return ""
}
