package main

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/config"
	"github.com/pulpdist/pulpdist/services/deltacache"
	"github.com/pulpdist/pulpdist/services/inventory"
	"github.com/pulpdist/pulpdist/services/scheduler"
	"github.com/pulpdist/pulpdist/services/siteagent"
)

// compose is the part of docker-compose.yml the test reads.
type compose struct {
	Services map[string]struct {
		Image   string `yaml:"image"`
		Command []string
		Build   struct {
			Context    string            `yaml:"context"`
			Dockerfile string            `yaml:"dockerfile"`
			Args       map[string]string `yaml:"args"`
		} `yaml:"build"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   any               `yaml:"depends_on"`
		Volumes     []string          `yaml:"volumes"`
		Deploy      struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
	} `yaml:"services"`
}

type binder interface{ Bind(*config.Set) }

// envRead lists the environment variables each service program reads.
func envRead() map[string][]string {
	out := map[string][]string{}
	for name, cfg := range map[string]binder{
		"inventory":  &inventory.Config{},
		"scheduler":  &scheduler.Config{},
		"deltacache": &deltacache.Config{},
		"siteagent":  &siteagent.Config{},
	} {
		s := config.New(name, func(string) (string, bool) { return "", false })
		cfg.Bind(s)
		out[name] = s.EnvVars()
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestComposeMatchesPrograms parses docker-compose.yml (no Docker engine is
// needed) and checks it against what the programs really read.
func TestComposeMatchesPrograms(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	reads := envRead()
	seen := map[string]int{}
	httpPort := map[string]string{}
	for name, svc := range c.Services {
		if svc.Build.Dockerfile == "" {
			continue
		}
		prog := svc.Build.Args["SERVICE"]
		if prog == "pulpdist" { // the command line: checked with the agents below
			continue
		}
		vars, ok := reads[prog]
		if !ok {
			t.Errorf("%s builds SERVICE=%q, which is not a pulpdist service", name, prog)
			continue
		}
		seen[prog]++
		if _, err := os.Stat(filepath.Join(root, svc.Build.Context, svc.Build.Dockerfile)); err != nil {
			t.Errorf("%s: dockerfile: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(root, "services", prog, "cmd", prog, "main.go")); err != nil {
			t.Errorf("%s: no main for %s: %v", name, prog, err)
		}
		for k := range svc.Environment {
			if strings.HasPrefix(k, "PULPDIST_") && !slices.Contains(vars, k) {
				t.Errorf("%s sets %s, which %s does not read (it reads %v)", name, k, prog, vars)
			}
		}
		if !strings.HasPrefix(svc.Environment["PULPDIST_NATS_URL"], "nats://nats:") {
			t.Errorf("%s: PULPDIST_NATS_URL %q does not point at the nats service", name, svc.Environment["PULPDIST_NATS_URL"])
		}
		if addr := svc.Environment["PULPDIST_HTTP_ADDR"]; addr != "" {
			httpPort[name] = addr[strings.LastIndex(addr, ":")+1:]
		}
		switch prog {
		case "inventory":
			u, err := url.Parse(svc.Environment["PULPDIST_DATABASE_URL"])
			if err != nil || u.Scheme != "postgres" || u.Hostname() != "postgres" {
				t.Errorf("inventory database url %q must point at the postgres service", svc.Environment["PULPDIST_DATABASE_URL"])
			}
		case "siteagent":
			if err := bus.ValidateName("site", svc.Environment["PULPDIST_SITE"]); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if !filepath.IsAbs(svc.Environment["PULPDIST_DATA_DIR"]) {
				t.Errorf("%s: data dir must be absolute", name)
			}
		}
	}
	for prog := range reads {
		if seen[prog] == 0 {
			t.Errorf("docker-compose.yml runs no %s", prog)
		}
	}
	// The scheduler reaches the inventory on the port the inventory binds.
	for name, svc := range c.Services {
		if svc.Build.Args["SERVICE"] != "scheduler" {
			continue
		}
		u, err := url.Parse(svc.Environment["PULPDIST_INVENTORY_URL"])
		if err != nil || u.Hostname() != "inventory" || u.Port() != httpPort["inventory"] {
			t.Errorf("%s: inventory url %q does not match inventory's http addr port %q", name, svc.Environment["PULPDIST_INVENTORY_URL"], httpPort["inventory"])
		}
	}
	// The admin token comes from the environment of `docker compose up`,
	// never from the file; the others are provisioned (checkTokens).
	tokens := map[string]string{"inventory": "PULPDIST_ADMIN_TOKEN"}
	for name, svc := range c.Services {
		env, ok := tokens[svc.Build.Args["SERVICE"]]
		if !ok {
			continue
		}
		if v := svc.Environment[env]; !regexp.MustCompile(`^\$\{PULPDIST_[A-Z_]+(:\?|:-)`).MatchString(v) {
			t.Errorf("%s: %s is %q, want a ${PULPDIST_…:?…} or ${…:-…} reference to the environment", name, env, v)
		}
	}
	checkTokens(t, c, httpPort["inventory"])
	nats, ok := c.Services["nats"]
	if !ok || !slices.Contains(nats.Command, "--jetstream") {
		t.Errorf("the nats service must run with --jetstream")
	}
	if _, ok := c.Services["postgres"]; !ok {
		t.Errorf("no postgres service")
	}
}

// checkTokens: one `pulpdist token provision` job writes the token file of
// every site-agent (and a viewer token for the scheduler) into a volume, in
// the file each reads, and each starts only once the job has completed.
func checkTokens(t *testing.T, c compose, inventoryPort string) {
	t.Helper()
	var job string
	for name, svc := range c.Services {
		if svc.Build.Args["SERVICE"] == "pulpdist" {
			if job != "" {
				t.Errorf("two command-line jobs: %s and %s", job, name)
			}
			job = name
		}
	}
	if job == "" {
		t.Fatal("no job provisions the site-agents' tokens (a service built with SERVICE=pulpdist running token provision)")
	}
	j := c.Services[job]
	cmd := j.Command
	if len(cmd) < 4 || cmd[0] != "token" || cmd[1] != "provision" {
		t.Fatalf("%s runs %q, want token provision", job, cmd)
	}
	dir := ""
	var sites, viewers []string
	for i := 2; i < len(cmd); i++ {
		switch cmd[i] {
		case "--dir":
			i++
			dir = cmd[i]
		case "--wait":
			i++
		case "--viewer":
			i++
			viewers = append(viewers, cmd[i])
		default:
			sites = append(sites, cmd[i])
		}
	}
	if u, err := url.Parse(j.Environment["PULPDIST_API_URL"]); err != nil || u.Hostname() != "inventory" || u.Port() != inventoryPort {
		t.Errorf("%s: PULPDIST_API_URL %q is not the inventory's API", job, j.Environment["PULPDIST_API_URL"])
	}
	if !strings.HasPrefix(j.Environment["PULPDIST_TOKEN"], "${PULPDIST_ADMIN_TOKEN:?") {
		t.Errorf("%s: PULPDIST_TOKEN must be the admin token from the environment", job)
	}
	volume := ""
	for _, v := range j.Volumes {
		if src, dst, _ := strings.Cut(v, ":"); dst == dir {
			volume = src
		}
	}
	if volume == "" {
		t.Fatalf("%s writes %s, which is no volume of it (%v)", job, dir, j.Volumes)
	}
	var agentSites []string
	for name, svc := range c.Services {
		var env, file string
		switch svc.Build.Args["SERVICE"] {
		case "siteagent":
			site := svc.Environment["PULPDIST_SITE"]
			agentSites = append(agentSites, site)
			env, file = "PULPDIST_AGENT_TOKEN_FILE", site
		case "scheduler":
			if len(viewers) != 1 {
				t.Errorf("%s provisions viewer tokens %v, want one for %s", job, viewers, name)
				continue
			}
			env, file = "PULPDIST_INVENTORY_TOKEN_FILE", viewers[0]
			if _, ok := svc.Environment["PULPDIST_INVENTORY_TOKEN"]; ok {
				t.Errorf("%s gets PULPDIST_INVENTORY_TOKEN besides its token file", name)
			}
		default:
			continue
		}
		if got, want := svc.Environment[env], dir+"/"+file+".token"; got != want {
			t.Errorf("%s reads its token from %s=%q, the job writes %q", name, env, got, want)
		}
		if !slices.Contains(svc.Volumes, volume+":"+dir+":ro") {
			t.Errorf("%s does not mount %s read-only at %s (%v)", name, volume, dir, svc.Volumes)
		}
		deps, _ := svc.DependsOn.(map[string]any)
		dep, _ := deps[job].(map[string]any)
		if dep["condition"] != "service_completed_successfully" {
			t.Errorf("%s does not wait for %s to complete (depends_on %v)", name, job, svc.DependsOn)
		}
	}
	slices.Sort(agentSites)
	slices.Sort(sites)
	if !slices.Equal(sites, agentSites) {
		t.Errorf("%s provisions %v, the site-agents are %v", job, sites, agentSites)
	}
}

// TestDockerfileBuildsEveryService checks the shared Dockerfile builds the
// service named by its SERVICE argument from the workspace.
func TestDockerfileBuildsEveryService(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deployments", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	for _, want := range []string{
		"ARG SERVICE", "COPY go.work go.work.sum", "COPY libs/", "COPY migrations/", "COPY services/",
		"./services/${SERVICE}/cmd/${SERVICE}", "./cmd/pulpdist", "CGO_ENABLED=0",
		"--chown=65532:65532 /out/empty/ /var/lib/pulpdist/", "--chown=65532:65532 /out/empty/ /etc/pulpdist/",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^FROM `).FindAllString(df, -1)); n < 2 {
		t.Errorf("Dockerfile has %d stages, want a multi-stage build", n)
	}
}
