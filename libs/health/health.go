// Package health serves /healthz and /readyz for a service.
package health

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
)

// Probe is one component's readiness. The zero value is not ready.
type Probe struct {
	name  string
	ready atomic.Bool
	check atomic.Pointer[func() bool]
}

// NewProbe returns a not-yet-ready probe for a component.
func NewProbe(name string) *Probe { return &Probe{name: name} }

// Name is the component the probe stands for.
func (p *Probe) Name() string { return p.name }

// SetReady marks the component ready or not.
func (p *Probe) SetReady(ok bool) { p.ready.Store(ok) }

// SetCheck adds a condition read at every readiness question, such as "the
// NATS connection is up": a running component that lost a dependency is
// not ready.
func (p *Probe) SetCheck(ok func() bool) { p.check.Store(&ok) }

// Ready reports whether the component is ready.
func (p *Probe) Ready() bool {
	if !p.ready.Load() {
		return false
	}
	if c := p.check.Load(); c != nil {
		return (*c)()
	}
	return true
}

// Register adds /healthz (the process answers) and /readyz (every probe is
// ready; otherwise 503 listing the ones that are not) to mux.
func Register(mux *http.ServeMux, probes ...*Probe) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		var waiting []string
		for _, p := range probes {
			if !p.Ready() {
				waiting = append(waiting, p.Name())
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(waiting) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", strings.Join(waiting, ", "))
			return
		}
		fmt.Fprintln(w, "ready")
	})
}

// Or returns p, or a new probe named name when p is nil.
func Or(p *Probe, name string) *Probe {
	if p != nil {
		return p
	}
	return NewProbe(name)
}
