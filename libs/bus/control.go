package bus

import (
	"fmt"
	"time"
)

// The request-reply side of the bus: each service is a NATS micro service
// (libs/control) answering on ServiceSubject or InstanceSubject. Requests
// are typed by people (`nats req`), so they carry no "v": an endpoint that
// changes incompatibly gets a new name instead. Unknown request fields are
// refused, so a misspelt option is an error, not ignored.

// The services' names on the bus: the micro service of each is named
// "pulpdist-" + its name, and its subjects start ServicePrefix.<name>.
const (
	ServiceInventory  = "inventory"
	ServiceScheduler  = "scheduler"
	ServiceDeltaCache = "deltacache"
	ServiceSiteAgent  = "siteagent"
)

// The endpoints' names (the last token of their subjects).
const (
	EndpointStatus  = "status"
	EndpointTrigger = "trigger"
	EndpointVerify  = "verify"
)

// ServiceStatus is what the status endpoint of every service answers;
// each service adds what it is doing (InventoryStatus, SchedulerStatus,
// DeltaCacheStatus, AgentStatus).
type ServiceStatus struct {
	// Service is the service's name (ServiceScheduler …).
	Service string `json:"service"`
	// Instance names the instance that answered.
	Instance string `json:"instance"`
	// Version is the version the program was built as (program.Version).
	Version string `json:"version"`
	// Ready is the service's readiness, as its /readyz says.
	Ready         bool      `json:"ready"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds int64     `json:"uptime_seconds"`
}

// InventoryStatus answers the inventory's status request: what its
// database holds, and how the subscriptions stand.
type InventoryStatus struct {
	ServiceStatus
	Sites         int `json:"sites"`
	Trees         int `json:"trees"`
	Subscriptions int `json:"subscriptions"`
	Versions      int `json:"versions"`
	// Running counts the site × tree pairs whose newest run is running;
	// Failing those whose newest run FAILED; Behind the replicas that do
	// not serve their tree's latest version.
	Running int `json:"running"`
	Failing int `json:"failing"`
	Behind  int `json:"behind"`
}

// SchedulerStatus answers the scheduler's status request: the trees as
// the instance that answered last read them, with their schedules, and the
// scans in flight (shared by every instance).
type SchedulerStatus struct {
	ServiceStatus
	Trees []ScheduledTree `json:"trees"`
	// TreesReadAt is when the tree list was read from the inventory
	// (absent before the first read).
	TreesReadAt *time.Time     `json:"trees_read_at,omitempty"`
	Scans       []ScanInFlight `json:"scans"`
}

// ScheduledTree is one tree as the scheduler's cron sees it.
type ScheduledTree struct {
	Tree string `json:"tree"`
	// Schedule is the five-field cron expression; "" for manual syncs only.
	Schedule string `json:"schedule,omitempty"`
	// Enabled and Paused are the tree's: a disabled or paused tree is not
	// scheduled.
	Enabled bool `json:"enabled"`
	Paused  bool `json:"paused"`
	// LastFired is the minute this instance last fired the schedule;
	// NextFire the next minute it will (absent when not scheduled).
	LastFired *time.Time `json:"last_fired,omitempty"`
	NextFire  *time.Time `json:"next_fire,omitempty"`
}

// ScanInFlight is an origin's scan of a tree that has not finished.
type ScanInFlight struct {
	Tree string `json:"tree"`
	Run  string `json:"run"`
	// Again is set when triggers came during the scan: one more follows.
	Again bool `json:"again"`
}

// DeltaCacheStatus answers a delta-cache instance's status request: the
// deltas it is computing and how it chooses a pack's effort.
type DeltaCacheStatus struct {
	ServiceStatus
	Computing []DeltaInFlight `json:"computing"`
	// Effort is the configured pack effort ("auto": the cost model).
	Effort string `json:"effort"`
}

// DeltaInFlight is a delta one delta-cache instance is computing.
type DeltaInFlight struct {
	Tree      string    `json:"tree"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	TriggerID string    `json:"trigger_id"`
	Sites     int       `json:"sites"`
	StartedAt time.Time `json:"started_at"`
}

// AgentStatus answers a site-agent's status request: the replicas it
// holds on disk, the versions its origin trees published, and its runs in
// progress.
type AgentStatus struct {
	ServiceStatus
	Site  string     `json:"site"`
	Trees []HeldTree `json:"trees"`
	Runs  []AgentRun `json:"runs"`
}

// HeldTree is one tree at a site.
type HeldTree struct {
	Tree string `json:"tree"`
	// Current is the version the replica serves ("" for none); Held every
	// complete version on disk, current included (the delta bases).
	Current string   `json:"current"`
	Held    []string `json:"held"`
	// Published is the version this site, as the tree's origin, published
	// last since the agent started (absent otherwise).
	Published string `json:"published,omitempty"`
	// Error says why the replica could not be read.
	Error string `json:"error,omitempty"`
}

// AgentRun is a sync command a site-agent is running.
type AgentRun struct {
	RunID     string      `json:"run_id"`
	TriggerID string      `json:"trigger_id"`
	Tree      string      `json:"tree"`
	Kind      CommandKind `json:"kind"`
	From      string      `json:"from,omitempty"`
	To        string      `json:"to,omitempty"`
	StartedAt time.Time   `json:"started_at"`
}

// TriggerRequest asks the scheduler to sync a tree now
// (ServiceSubject(ServiceScheduler, EndpointTrigger)); it becomes a manual
// Trigger on the triggers stream, as the inventory's POST …/sync does.
type TriggerRequest struct {
	Tree string `json:"tree"`
	// Sites, when not empty, limits the sync to these subscribed sites.
	Sites []string `json:"sites,omitempty"`
	// ConfirmDeletions lets the origin publish a version that deletes
	// more than the tree's max_deletions.
	ConfirmDeletions bool `json:"confirm_deletions,omitempty"`
}

// Validate checks a decoded trigger request.
func (r TriggerRequest) Validate() error {
	if err := ValidateName("tree", r.Tree); err != nil {
		return err
	}
	return validateTriggerSites(r.Sites)
}

// TriggerReply answers a TriggerRequest.
type TriggerReply struct {
	TriggerID string `json:"trigger_id"`
	Tree      string `json:"tree"`
	// RunTriggerID is the trigger id the runs, snapshot and deltas of this
	// sync carry: TriggerID, followed by "~" and the sites for a sync
	// limited to sites.
	RunTriggerID string   `json:"run_trigger_id"`
	Sites        []string `json:"sites,omitempty"`
}

// VerifyRequest asks a site-agent to check the version of a tree it
// serves against its manifest (InstanceSubject(ServiceSiteAgent, site,
// EndpointVerify)).
type VerifyRequest struct {
	Tree string `json:"tree"`
}

// Validate checks a decoded verify request.
func (r VerifyRequest) Validate() error { return ValidateName("tree", r.Tree) }

// VerifyReply answers a VerifyRequest: OK, or the first difference found.
type VerifyReply struct {
	Site    string `json:"site"`
	Tree    string `json:"tree"`
	Version string `json:"version"`
	OK      bool   `json:"ok"`
	// Problem names the first path that differs from the manifest.
	Problem string `json:"problem,omitempty"`
	// DurationMS is how long the check took.
	DurationMS int64 `json:"duration_ms"`
}

// ControlError is the body of an endpoint's error reply, beside micro's
// Nats-Service-Error and Nats-Service-Error-Code headers that say the same.
type ControlError struct {
	Code        string `json:"code"`
	Description string `json:"description"`
}

// validateTriggerSites checks the sites a trigger is limited to.
func validateTriggerSites(sites []string) error {
	if len(sites) > MaxTriggerSites {
		return fmt.Errorf("trigger: %d sites, at most %d", len(sites), MaxTriggerSites)
	}
	seen := make(map[string]bool, len(sites))
	for _, s := range sites {
		if err := ValidateName("trigger site", s); err != nil {
			return err
		}
		if seen[s] {
			return fmt.Errorf("trigger: site %q named twice", s)
		}
		seen[s] = true
	}
	return nil
}
