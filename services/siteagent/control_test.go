package siteagent_test

import (
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
