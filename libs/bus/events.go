package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pulpdist/pulpdist/libs/telemetry"
)

// EventTypePrefix and EventTypeVersion frame the CloudEvents type of
// every pulpdist event: sync.finished has type
// org.pulpdist.sync.finished.v1. The version changes only when the data
// of the event changes incompatibly (a field removed or its meaning
// changed); new fields may appear within a version.
const (
	EventTypePrefix  = "org.pulpdist."
	EventTypeVersion = "v1"
)

// EventType is the CloudEvents type of the event entity.action.
func EventType(entity, action string) string {
	return EventTypePrefix + entity + "." + action + "." + EventTypeVersion
}

// About names what an event is about: the tree and the site, either or
// both (a site's run of a tree), or neither (a signing key, named by Key).
// Tree and Site are the last two tokens of the event's subject, so a tool
// can take the events of one site or one tree (SiteEventsFilter,
// TreeEventsFilter); the CloudEvents subject says the same in words:
// "tree/T/site/S", "tree/T", "site/S" or "key/K".
type About struct {
	Tree, Site string
	// Key is a signing key id, for the key events (subject key/K).
	Key string
}

// Subject is the CloudEvents subject of an event about a.
func (a About) Subject() string {
	var parts []string
	if a.Tree != "" {
		parts = append(parts, "tree/"+a.Tree)
	}
	if a.Site != "" {
		parts = append(parts, "site/"+a.Site)
	}
	if a.Key != "" {
		parts = append(parts, "key/"+a.Key)
	}
	return strings.Join(parts, "/")
}

// validate checks that a's tree and site can be subject tokens.
func (a About) validate() error {
	if a.Tree != "" {
		if err := ValidateName("tree", a.Tree); err != nil {
			return err
		}
	}
	if a.Site != "" {
		if err := ValidateName("site", a.Site); err != nil {
			return err
		}
	}
	return nil
}

// ContentTypeCloudEvents is the content type of an event message.
const ContentTypeCloudEvents = "application/cloudevents+json"

// Events publishes CloudEvents 1.0 (structured JSON) on pulpdist.evt.….
type Events struct {
	js     jetstream.JetStream
	source string
	// signer and key sign every event (SignReportsWith); "" for none.
	signer string
	key    []byte
}

// SignReportsWith makes e sign every event it publishes with the agent
// token tokenID whose ReportKey is key (reports.go).
func (e *Events) SignReportsWith(tokenID string, key []byte) *Events {
	e.signer, e.key = tokenID, key
	return e
}

// NewEvents returns a publisher whose events carry the given source, such as
// "/pulpdist/scheduler" or "/pulpdist/siteagent/site-a".
func NewEvents(js jetstream.JetStream, source string) *Events {
	return &Events{js: js, source: source}
}

// eventNamespace derives deterministic event ids from keys.
var eventNamespace = uuid.MustParse("9d7c2f4e-1a3b-4c5d-8e6f-7a8b9c0d1e2f")

// EventID is the id of the event entity.action about key: the same fact
// always gets the same id, so a handler that runs again after a redelivery
// publishes a duplicate that JetStream drops and consumers recognise.
func EventID(entity, action, key string) string {
	return uuid.NewSHA1(eventNamespace, []byte(entity+"."+action+"|"+key)).String()
}

// Publish sends one event with a random id and waits for the stream to
// store it. Use PublishKeyed for facts a retried handler may state again.
func (e *Events) Publish(ctx context.Context, entity, action string, about About, data any) error {
	return e.PublishKeyed(ctx, entity, action, about, "", data)
}

// PublishTransient sends one event with a random id that the stream keeps
// for ttl only (a per-message TTL), not the stream's retention: news that
// is stale soon, such as an agent's heartbeat, which would otherwise fill
// the replayable history.
func (e *Events) PublishTransient(ctx context.Context, entity, action string, about About, ttl time.Duration, data any) error {
	return e.publish(ctx, entity, action, about, "", data, jetstream.WithMsgTTL(ttl))
}

// PublishKeyed sends one event and waits for the stream to store it. key
// names the fact the event states (a run id, a delta id); the event id is
// derived from it (EventID) and doubles as Nats-Msg-Id, so publishing the
// same fact twice within DuplicateWindow stores it once. An empty key gives
// a random id.
func (e *Events) PublishKeyed(ctx context.Context, entity, action string, about About, key string, data any) error {
	return e.publish(ctx, entity, action, about, key, data)
}

func (e *Events) publish(ctx context.Context, entity, action string, about About, key string, data any, opts ...jetstream.PublishOpt) (err error) {
	subject := EventSubject(entity, action, about)
	ctx, end := startSpan(ctx, "publish "+subject, trace.SpanKindProducer, subject)
	defer func() { end(err) }()
	msg, id, err := e.Render(ctx, entity, action, about, key, data)
	if err != nil {
		return err
	}
	if _, err := e.js.PublishMsg(ctx, msg, append(opts, jetstream.WithMsgID(id))...); err != nil {
		return fmt.Errorf("publish event %s.%s: %w", entity, action, err)
	}
	return nil
}

// Render makes the message PublishKeyed sends, and returns it with the
// event id that PublishKeyed uses as Nats-Msg-Id, without sending it: an
// outbox stores it with the change it announces and publishes it later.
// The trace context of ctx goes into the event (the CloudEvents
// distributed-tracing extension: traceparent, tracestate) and into the
// message's headers.
func (e *Events) Render(ctx context.Context, entity, action string, about About, key string, data any) (*nats.Msg, string, error) {
	if err := about.validate(); err != nil {
		return nil, "", fmt.Errorf("event %s.%s: %w", entity, action, err)
	}
	ev := event.New()
	if key == "" {
		ev.SetID(uuid.NewString())
	} else {
		ev.SetID(EventID(entity, action, key))
	}
	ev.SetSource(e.source)
	ev.SetType(EventType(entity, action))
	ev.SetTime(time.Now().UTC())
	if subject := about.Subject(); subject != "" {
		ev.SetSubject(subject)
	}
	tc := propagation.MapCarrier{}
	telemetry.Propagator.Inject(ctx, tc)
	for _, k := range []string{"traceparent", "tracestate"} {
		if v := tc[k]; v != "" {
			ev.SetExtension(k, v)
		}
	}
	if err := ev.SetData("application/json", data); err != nil {
		return nil, "", fmt.Errorf("event %s.%s: %w", entity, action, err)
	}
	if e.signer != "" {
		if err := SignReport(&ev, e.signer, e.key); err != nil {
			return nil, "", fmt.Errorf("event %s.%s: %w", entity, action, err)
		}
	}
	if err := ev.Validate(); err != nil {
		return nil, "", fmt.Errorf("event %s.%s: %w", entity, action, err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, "", fmt.Errorf("event %s.%s: %w", entity, action, err)
	}
	msg := nats.NewMsg(EventSubject(entity, action, about))
	msg.Header.Set("Content-Type", ContentTypeCloudEvents)
	InjectTrace(ctx, msg.Header)
	msg.Data = body
	return msg, ev.ID(), nil
}

// DecodeEvent parses a structured CloudEvent and unmarshals its data into T.
func DecodeEvent[T any](body []byte) (event.Event, T, error) {
	var ev event.Event
	var data T
	if err := json.Unmarshal(body, &ev); err != nil {
		return ev, data, fmt.Errorf("decode cloudevent: %w", err)
	}
	if err := ev.Validate(); err != nil {
		return ev, data, fmt.Errorf("invalid cloudevent: %w", err)
	}
	if err := ev.DataAs(&data); err != nil {
		return ev, data, fmt.Errorf("cloudevent %s data: %w", ev.Type(), err)
	}
	return ev, data, nil
}

// Event entities and actions published by pulpdist services.
const (
	EntityTree         = "tree"
	EntitySite         = "site"
	EntitySubscription = "subscription"
	EntitySync         = "sync"
	EntitySnapshot     = "snapshot"
	EntityDelta        = "delta"
	EntityKey          = "key"
	EntityGuard        = "guard"
	EntityAlarm        = "alarm"
	EntityAgent        = "agent"
	EntityMessage      = "message"

	ActionCreated      = "created"
	ActionUpdated      = "updated"
	ActionDeleted      = "deleted"
	ActionRequested    = "requested"
	ActionStarted      = "started"
	ActionFinished     = "finished"
	ActionPublished    = "published"
	ActionComputed     = "computed"
	ActionReady        = "ready"
	ActionAdded        = "added"
	ActionRevoked      = "revoked"
	ActionTripped      = "tripped"
	ActionRaised       = "raised"
	ActionCleared      = "cleared"
	ActionServed       = "served"
	ActionProgress     = "progress"
	ActionOnline       = "online"
	ActionOffline      = "offline"
	ActionHeartbeat    = "heartbeat"
	ActionDeadLettered = "deadlettered"
)

// SyncRequested is the data of sync.requested (a trigger was accepted).
type SyncRequested struct {
	TriggerID string `json:"trigger_id"`
	Tree      string `json:"tree"`
	Reason    string `json:"reason"`
}

// SyncStarted is the data of sync.started: the scheduler sent a command.
type SyncStarted struct {
	RunID     string      `json:"run_id"`
	TriggerID string      `json:"trigger_id"`
	Site      string      `json:"site"`
	Tree      string      `json:"tree"`
	Kind      CommandKind `json:"kind"`
	From      string      `json:"from,omitempty"`
	To        string      `json:"to,omitempty"`
	StartedAt time.Time   `json:"started_at"`
}

// SyncFinished is the data of sync.finished: a run ended with a result.
type SyncFinished struct {
	RunID      string      `json:"run_id"`
	TriggerID  string      `json:"trigger_id"`
	Site       string      `json:"site"`
	Tree       string      `json:"tree"`
	Kind       CommandKind `json:"kind"`
	From       string      `json:"from,omitempty"`
	To         string      `json:"to,omitempty"`
	Result     Result      `json:"result"`
	Error      string      `json:"error,omitempty"`
	Files      int64       `json:"files"`
	Bytes      int64       `json:"bytes"`
	DurationMS int64       `json:"duration_ms"`
	FinishedAt time.Time   `json:"finished_at"`
}

// The phases of a run (SyncProgress.Phase).
const (
	// PhaseScan: an origin scans the tree's source.
	PhaseScan = "scan"
	// PhaseUpload: an origin stores the contents the blob store lacks.
	PhaseUpload = "upload"
	// PhaseFetch: a site fetches the pack.
	PhaseFetch = "fetch"
	// PhaseApply: a site builds the version beside the served one,
	// verifies it and switches to it.
	PhaseApply = "apply"
)

// SyncProgress is the data of sync.progress: how far a running sync is.
// A site-agent publishes it at most once per its progress interval while
// a run lasts, so none for a run shorter than that, and always before the
// run's sync.finished.
type SyncProgress struct {
	RunID     string      `json:"run_id"`
	TriggerID string      `json:"trigger_id"`
	Site      string      `json:"site"`
	Tree      string      `json:"tree"`
	Kind      CommandKind `json:"kind"`
	From      string      `json:"from,omitempty"`
	To        string      `json:"to,omitempty"`
	// Phase is PhaseScan, PhaseUpload, PhaseFetch or PhaseApply.
	Phase string `json:"phase"`
	// BytesDone is what the run has moved so far: the pack's bytes on
	// disk (a resumed fetch's included) once fetching, the contents
	// stored once uploading. It never decreases within one delivery of
	// the command. BytesTotal is the pack's size, or the size of the
	// contents an upload may have to store (those found stored are
	// skipped); 0 while unknown.
	BytesDone  int64 `json:"bytes_done"`
	BytesTotal int64 `json:"bytes_total,omitempty"`
	// FilesDone and FilesTotal count the contents an upload stored and
	// may have to store; 0 where files are not counted.
	FilesDone  int64 `json:"files_done"`
	FilesTotal int64 `json:"files_total,omitempty"`
	// ElapsedMS is the time since the run started.
	ElapsedMS int64 `json:"elapsed_ms"`
}

// FreshnessAlarm is the data of alarm.raised (a site is further behind
// its tree's origin than the tree's allowed lag) and alarm.cleared (it no
// longer is, or the subscription went or was paused).
type FreshnessAlarm struct {
	Site string `json:"site"`
	Tree string `json:"tree"`
	// Version is what the site serves ("" for nothing), Latest the
	// origin's newest version; both as the inventory last saw them.
	Version string `json:"version,omitempty"`
	Latest  string `json:"latest,omitempty"`
	// LagSeconds is how long the site has been behind, AllowedLagSeconds
	// the tree's allowed lag (raised only).
	LagSeconds        int64 `json:"lag_seconds,omitempty"`
	AllowedLagSeconds int64 `json:"allowed_lag_seconds,omitempty"`
	// RaisedAt is when the alarm was raised; ClearedAt when it cleared.
	RaisedAt  time.Time  `json:"raised_at"`
	ClearedAt *time.Time `json:"cleared_at,omitempty"`
}

// DeadLettered is the data of message.deadlettered: a consumer gave up on
// a message (refused it as permanent, or it failed on every delivery) and
// copied it to the dead-letter stream (Consume, WithDeadLetter). The event
// is about the tree and site the message's subject names (MessageAbout);
// its id is derived from Stream and StreamSequence, so the same message
// dead-lettered again states the same fact.
type DeadLettered struct {
	// Stream and StreamSequence locate the original message.
	Stream         string `json:"stream"`
	StreamSequence uint64 `json:"stream_sequence"`
	// Subject is the subject the message was published on.
	Subject string `json:"subject"`
	// Consumer is the durable consumer that gave up.
	Consumer string `json:"consumer"`
	// Reason says why: "refused: …" or "gave up after N deliveries: …".
	Reason string `json:"reason"`
	// Deliveries counts the deliveries of the message, the last included.
	Deliveries uint64 `json:"deliveries"`
	// DeadLetterSubject is where its copy is (DeadLetterSubject(Stream)).
	DeadLetterSubject string `json:"dead_letter_subject"`
}

// DeltaDeleted is the data of delta.deleted: a delta-cache deleted a pack
// no site can need any more (its target is not the newest version, or no
// site serves its base).
type DeltaDeleted struct {
	Tree   string `json:"tree"`
	From   string `json:"from"`
	To     string `json:"to"`
	Pack   string `json:"pack"`
	Size   int64  `json:"size"`
	Reason string `json:"reason"`
}

// GuardTripped is the data of guard.tripped: an origin did not publish a
// version of a tree because it would delete more entries than the tree's
// max_deletions. A sync with confirm_deletions publishes it.
type GuardTripped struct {
	RunID     string `json:"run_id"`
	TriggerID string `json:"trigger_id"`
	Site      string `json:"site"`
	Tree      string `json:"tree"`
	// From is the version the origin serves; Root the one refused.
	From string `json:"from"`
	Root string `json:"root"`
	// Deletions is how many entries of From the new version lacks, Limit
	// the tree's max_deletions, Sample the first of those paths.
	Deletions int64    `json:"deletions"`
	Limit     int64    `json:"limit"`
	Sample    []string `json:"sample"`
}

// MaxGuardSample bounds GuardTripped.Sample.
const MaxGuardSample = 20

// DeltaComputed is the data of delta.computed: a pack was built (not served
// from the store).
type DeltaComputed struct {
	Tree       string `json:"tree"`
	From       string `json:"from"`
	To         string `json:"to"`
	Pack       string `json:"pack"`
	Size       int64  `json:"size"`
	Parts      int    `json:"parts"`
	Instance   string `json:"instance"`
	DurationMS int64  `json:"duration_ms"`
	// Effort is the pack effort ("best", "default" or "fast") for Sites,
	// the fan-out the request announced; Refined counts the Segments the
	// cost model had encoded again at the best level.
	Effort   string `json:"effort"`
	Sites    int    `json:"sites"`
	Segments int    `json:"segments"`
	Refined  int    `json:"refined"`
}

// The ways a site-agent fetches a pack (DeltaServed.Method).
const (
	// FetchDirect: one direct get per chunk (a pack of a few chunks).
	FetchDirect = "direct"
	// FetchConsumer: an ordered consumer on the chunks (a larger pack).
	FetchConsumer = "consumer"
	// FetchNone: nothing was left to fetch; an interrupted fetch had
	// received the whole pack.
	FetchNone = "none"
)

// DeltaServed is the data of delta.served: a site-agent fetched a pack
// from the deltas store for a run. A pack computed once (one
// delta.computed) and applied at N sites is served N times.
type DeltaServed struct {
	RunID     string `json:"run_id"`
	TriggerID string `json:"trigger_id"`
	Site      string `json:"site"`
	Tree      string `json:"tree"`
	From      string `json:"from"`
	To        string `json:"to"`
	Pack      string `json:"pack"`
	// Size is the pack's; FetchedBytes crossed the site's link for this
	// fetch, ResumedBytes were on disk already from an interrupted one
	// (FetchedBytes + ResumedBytes = Size).
	Size         int64 `json:"size"`
	FetchedBytes int64 `json:"fetched_bytes"`
	ResumedBytes int64 `json:"resumed_bytes"`
	// Method is FetchDirect, FetchConsumer or FetchNone.
	Method     string `json:"method"`
	DurationMS int64  `json:"duration_ms"`
}

// Why an agent is online or offline (AgentOnline.Reason,
// AgentOffline.Reason).
const (
	// AgentStarted: the agent announced its start.
	AgentStarted = "started"
	// AgentStopped: the agent announced a clean stop.
	AgentStopped = "stopped"
	// AgentHeartbeatLost: the inventory heard nothing from the agent for
	// longer than its PULPDIST_AGENT_OFFLINE_AFTER.
	AgentHeartbeatLost = "heartbeat lost"
	// AgentHeartbeatResumed: the inventory heard again from an agent it
	// had reported offline.
	AgentHeartbeatResumed = "heartbeat resumed"
)

// AgentHeartbeatTTL is how long the events stream keeps an agent's
// heartbeat (bus.Events.PublishTransient): long enough for a consumer
// that was away a while, not the replayable history.
const AgentHeartbeatTTL = time.Hour

// SyncProgressTTL is how long the events stream keeps a run's progress
// report (bus.Events.PublishTransient): the run's sync.finished, kept for
// the stream's retention, says how it ended.
const SyncProgressTTL = time.Hour

// AgentTree is a tree an agent serves and the version it serves.
type AgentTree struct {
	Tree    string `json:"tree"`
	Version string `json:"version"`
}

// AgentOnline is the data of agent.online: a site-agent started (its own
// event, Reason AgentStarted, saying what it runs), or the inventory
// heard again from the agent of a site it had reported offline (Reason
// AgentHeartbeatResumed).
type AgentOnline struct {
	Site   string `json:"site"`
	Reason string `json:"reason"`
	// Since is when the agent started (its clock), or was heard from
	// again (when NATS stored what the inventory heard).
	Since time.Time `json:"since"`
	// Version, Hostname, HeartbeatSeconds (how often it sends
	// agent.heartbeat) and Trees (the replicas on disk with the version
	// each serves) describe the agent that started; the agent's own
	// event only.
	Version          string      `json:"version,omitempty"`
	Hostname         string      `json:"hostname,omitempty"`
	HeartbeatSeconds int64       `json:"heartbeat_seconds,omitempty"`
	Trees            []AgentTree `json:"trees,omitempty"`
}

// AgentOffline is the data of agent.offline: a site-agent stops cleanly
// (its own event, Reason AgentStopped), or the inventory has not heard
// from it for too long (Reason AgentHeartbeatLost, with LastSeen).
type AgentOffline struct {
	Site   string `json:"site"`
	Reason string `json:"reason"`
	// Since is when the agent stopped, or the inventory found it silent.
	Since time.Time `json:"since"`
	// LastSeen is when NATS stored the agent's last event the inventory
	// had.
	LastSeen *time.Time `json:"last_seen,omitempty"`
}

// AgentHeartbeat is the data of agent.heartbeat, which a site-agent sends
// every HeartbeatSeconds, so that an idle agent is not taken for a lost
// one. The stream keeps it AgentHeartbeatTTL.
type AgentHeartbeat struct {
	Site      string    `json:"site"`
	StartedAt time.Time `json:"started_at"`
	// HeartbeatSeconds is the interval to the next one.
	HeartbeatSeconds int64 `json:"heartbeat_seconds"`
	// Running counts the commands the agent is working on.
	Running int `json:"running"`
}
