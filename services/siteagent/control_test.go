package siteagent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/control"
	"github.com/pulpdist/pulpdist/libs/natstest"
	"github.com/pulpdist/pulpdist/libs/poll"
	"github.com/pulpdist/pulpdist/libs/tree"
	"github.com/pulpdist/pulpdist/services/siteagent"
)

// ask sends body to the agent's endpoint and returns the reply.
func (h *harness) ask(t *testing.T, endpoint, body string) *nats.Msg {
	t.Helper()
	m, err := h.js.Conn().Request(bus.InstanceSubject(bus.ServiceSiteAgent, h.site, endpoint), []byte(body), 30*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", endpoint, body, err)
	}
	return m
}

func (h *harness) status(t *testing.T) bus.AgentStatus {
	t.Helper()
	var st bus.AgentStatus
	if m := h.ask(t, bus.EndpointStatus, ""); json.Unmarshal(m.Data, &st) != nil {
		t.Fatalf("status %q", m.Data)
	}
	return st
}

func (h *harness) verify(t *testing.T, tree string) (bus.VerifyReply, *nats.Msg) {
	t.Helper()
	m := h.ask(t, bus.EndpointVerify, `{"tree":"`+tree+`"}`)
	var r bus.VerifyReply
	if m.Header.Get(micro.ErrorCodeHeader) == "" {
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("verify reply %q: %v", m.Data, err)
		}
	}
	return r, m
}

// TestAgentOnTheBus: a site-agent is found as pulpdist-siteagent with its
// site; its status lists the versions it holds and the runs in progress;
// verify checks a served tree, finds a tampered file, refuses bad
// requests, and answers busy while the tree's run goes on.
func TestAgentOnTheBus(t *testing.T) {
	h := start(t, "lyon")
	info := natstest.Discover(t, h.js.Conn(), micro.InfoVerb, "pulpdist-siteagent", func(is []micro.Info) error {
		if len(is) != 1 {
			return fmt.Errorf("%d agents", len(is))
		}
		return nil
	})[0]
	var subjects []string
	for _, e := range info.Endpoints {
		subjects = append(subjects, e.Subject)
	}
	if want := []string{"pulpdist.svc.siteagent.lyon.status", "pulpdist.svc.siteagent.lyon.verify"}; !slices.Equal(subjects, want) || info.Metadata["site"] != "lyon" {
		t.Errorf("agent info %+v: want endpoints %v and site lyon", info, want)
	}
	// Answering before it is ready: daemon.Run registers the service,
	// then starts the consumers and marks it ready.
	poll.Until(t, 10*time.Second, func() error {
		if st := h.status(t); !st.Ready {
			return fmt.Errorf("status %+v: not ready", st)
		}
		return nil
	})
	if st := h.status(t); st.Site != "lyon" || st.Service != bus.ServiceSiteAgent || len(st.Trees) != 0 || len(st.Runs) != 0 {
		t.Errorf("status of an empty site %+v", st)
	}

	src := t.TempDir()
	write(t, src, "a.txt", "alpha")
	write(t, src, "dir/b.txt", "beta")
	name, hash, root := h.storePack(t, "demo", src, nil)
	if fin := h.run(t, bus.SyncCommand{RunID: "r1", TriggerID: "t", Kind: bus.CommandApply, Site: "lyon", Tree: "demo", To: root, Pack: name, PackHash: hash}); fin.Result != bus.ResultCompleted {
		t.Fatalf("apply: %+v", fin)
	}
	if st := h.status(t); !slices.EqualFunc(st.Trees, []bus.HeldTree{{Tree: "demo", Current: root, Held: []string{root}}}, func(a, b bus.HeldTree) bool {
		return a.Tree == b.Tree && a.Current == b.Current && slices.Equal(a.Held, b.Held) && a.Error == ""
	}) {
		t.Errorf("trees %+v, want demo at %s", st.Trees, root)
	}

	if r, m := h.verify(t, "demo"); !r.OK || r.Version != root || r.Site != "lyon" || r.Problem != "" {
		t.Errorf("verify of an intact tree: %+v %q", r, m.Data)
	}
	served := filepath.Join(h.dataDir, "trees", "demo", "versions", root, "dir", "b.txt")
	if err := os.WriteFile(served, []byte("BETA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, m := h.verify(t, "demo"); r.OK || r.Version != root || !strings.Contains(r.Problem, `"dir/b.txt"`) {
		t.Errorf("verify of a tampered tree: %+v %q", r, m.Data)
	}

	for _, c := range []struct{ body, code string }{
		{`{"tree":"nothing"}`, control.CodeNotFound},
		{`{"tree":"Demo"}`, control.CodeInvalid},
		{`{}`, control.CodeInvalid},
		{`{"tree":"demo","deep":true}`, control.CodeInvalid},
		{`demo`, control.CodeInvalid},
	} {
		if m := h.ask(t, bus.EndpointVerify, c.body); m.Header.Get(micro.ErrorCodeHeader) != c.code {
			t.Errorf("verify %s: %q %v, want code %s", c.body, m.Data, m.Header, c.code)
		}
	}

	// A run held back by the link's budget (400 kB at 20 kB/s) shows in
	// the status while it goes on, and the tree cannot be verified meanwhile.
	slow, slowHash, slowRoot := h.storePack(t, "slow", randomTree(t, 2, 400_000), nil)
	h.send(t, bus.SyncCommand{RunID: "slow-1", TriggerID: "t2", Kind: bus.CommandApply, Site: "lyon", Tree: "slow", To: slowRoot,
		Pack: slow, PackHash: slowHash, BandwidthLimit: 20_000})
	poll.Until(t, 20*time.Second, func() error {
		st := h.status(t)
		if len(st.Runs) != 1 || st.Runs[0].RunID != "slow-1" || st.Runs[0].Tree != "slow" || st.Runs[0].Kind != bus.CommandApply || st.Runs[0].To != slowRoot {
			return fmt.Errorf("runs %+v", st.Runs)
		}
		return nil
	})
	if _, m := h.verify(t, "slow"); m.Header.Get(micro.ErrorCodeHeader) != control.CodeBusy {
		t.Errorf("verify during a run: %q %v, want busy", m.Data, m.Header)
	}
}

// verifyGate holds the agent's verifies once they hold their tree, until
// released or cancelled, and says when one starts; once released it holds
// none. It makes a verify as slow as a very large tree's, deterministically.
type verifyGate struct {
	started chan string
	release chan struct{}
}

func newVerifyGate() *verifyGate {
	return &verifyGate{started: make(chan string), release: make(chan struct{})}
}

func (g *verifyGate) hook(ctx context.Context, tree string) {
	select {
	case g.started <- tree:
	case <-g.release:
		return
	case <-ctx.Done():
		return
	}
	select {
	case <-g.release:
	case <-ctx.Done():
	}
}

// waitStarted waits for a verify of tree to hold it.
func (g *verifyGate) waitStarted(t *testing.T, tree string) {
	t.Helper()
	select {
	case got := <-g.started:
		if got != tree {
			t.Fatalf("verify of %q started, want %q", got, tree)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no verify of %q started", tree)
	}
}

// answer is the reply to a request, or why there was none.
type answer struct {
	m   *nats.Msg
	err error
}

// verifyAsync asks the agent to verify tree, waiting up to within, and
// returns where the answer comes.
func (h *harness) verifyAsync(tree string, within time.Duration) <-chan answer {
	out := make(chan answer, 1)
	go func() {
		m, err := h.js.Conn().Request(bus.InstanceSubject(bus.ServiceSiteAgent, h.site, bus.EndpointVerify), []byte(`{"tree":"`+tree+`"}`), within)
		out <- answer{m, err}
	}()
	return out
}

// receive waits for an answer of verifyAsync.
func receive(t *testing.T, answers <-chan answer) *nats.Msg {
	t.Helper()
	select {
	case a := <-answers:
		if a.err != nil {
			t.Fatalf("verify: %v", a.err)
		}
		return a.m
	case <-time.After(time.Minute):
		t.Fatal("no answer to the verify")
		return nil
	}
}

// applyTree stores a full pack of the tree in dir and applies it as
// treeName's first version; it returns the version's manifest.
func (h *harness) applyTree(t *testing.T, treeName, dir string) *tree.Manifest {
	t.Helper()
	name, hash, root := h.storePack(t, treeName, dir, nil)
	if fin := h.run(t, bus.SyncCommand{RunID: treeName + "-1", TriggerID: "t", Kind: bus.CommandApply, Site: h.site, Tree: treeName, To: root, Pack: name, PackHash: hash}); fin.Result != bus.ResultCompleted {
		t.Fatalf("apply of %s: %+v", treeName, fin)
	}
	m, err := tree.Scan(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRunPreemptsVerify: a sync of a tree that arrives while the tree is
// being verified does not wait for the verify (which would last until
// siteagent.VerifyTimeout): the verify stops and answers busy, the run
// moves the tree to its next version, pruning the one the verify read,
// and a verify afterwards checks the new version.
func TestRunPreemptsVerify(t *testing.T) {
	g := newVerifyGate()
	h := startWith(t, "lyon", func(s *siteagent.Service) { s.SetTestHookVerify(g.hook) })
	src := randomTree(t, 7, 8<<20)
	m1 := h.applyTree(t, "big", src)

	verifying := h.verifyAsync("big", siteagent.VerifyTimeout)
	g.waitStarted(t, "big")
	name, hash, m2 := h.storeDelta(t, "big", m1, grow(t, src, "more/c.bin", 1<<20))
	began := time.Now()
	h.send(t, bus.SyncCommand{RunID: "big-2", TriggerID: "t2", Kind: bus.CommandApply, Site: "lyon", Tree: "big", From: m1.Root(), To: m2.Root(), Pack: name, PackHash: hash})
	if fin := h.wait(t, "big-2", 20*time.Second); fin.Result != bus.ResultCompleted || fin.To != m2.Root() {
		t.Fatalf("apply during a verify: %+v", fin)
	}
	t.Logf("the run finished %s after it was sent, during a verify", time.Since(began))
	if m := receive(t, verifying); m.Header.Get(micro.ErrorCodeHeader) != control.CodeBusy || !strings.Contains(m.Header.Get(micro.ErrorHeader), "a run of the tree started") {
		t.Errorf("verify pre-empted by a run: %q %v, want busy", m.Data, m.Header)
	}

	close(g.release)
	if r, m := h.verify(t, "big"); !r.OK || r.Version != m2.Root() {
		t.Errorf("verify after the run: %+v %q", r, m.Data)
	}
}

// TestOneVerifyAtATime: while a verify runs, another one at the same site,
// of another tree or the same, answers busy at once instead of waiting
// behind it; once it ends, the next one runs.
func TestOneVerifyAtATime(t *testing.T) {
	g := newVerifyGate()
	h := startWith(t, "lyon", func(s *siteagent.Service) { s.SetTestHookVerify(g.hook) })
	mA := h.applyTree(t, "a", randomTree(t, 1, 10_000))
	mB := h.applyTree(t, "b", randomTree(t, 2, 10_000))

	first := h.verifyAsync("a", siteagent.VerifyTimeout)
	g.waitStarted(t, "a")
	for _, tr := range []string{"b", "a"} {
		m := receive(t, h.verifyAsync(tr, 10*time.Second))
		if m.Header.Get(micro.ErrorCodeHeader) != control.CodeBusy {
			t.Errorf("verify of %s during a verify of a: %q %v, want busy", tr, m.Data, m.Header)
		}
	}
	if st := h.status(t); len(st.Trees) != 2 {
		t.Errorf("status during a verify: %+v", st)
	}
	close(g.release)
	var r bus.VerifyReply
	if m := receive(t, first); json.Unmarshal(m.Data, &r) != nil || !r.OK || r.Version != mA.Root() {
		t.Errorf("first verify: %q %v", m.Data, m.Header)
	}
	if r, m := h.verify(t, "b"); !r.OK || r.Version != mB.Root() {
		t.Errorf("verify of b after a's: %+v %q", r, m.Data)
	}
}
