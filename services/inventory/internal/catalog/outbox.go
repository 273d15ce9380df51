package catalog

import (
	"context"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// Event is a fact the catalog announces on the bus: entity.action
// (bus.EntityTree, bus.ActionCreated) about Subject, with Data one of
// Site, Tree, Subscription, SigningKey or bus.Trigger. The Repository
// writes the events of a change in the change's transaction (the outbox),
// so a change is never stored unannounced nor announced unstored.
type Event struct {
	Entity string
	Action string
	About  bus.About
	Data   any
}

// Message is an Event as sent on the bus: what the outbox stores.
type Message struct {
	// ID orders the outbox (a UUIDv7).
	ID      string
	Subject string
	// MsgID is the Nats-Msg-Id: the same message published twice is
	// stored once.
	MsgID       string
	ContentType string
	Body        []byte
	CreatedAt   time.Time
	// Attempts counts failed publications; LastError is the latest.
	Attempts  int64
	LastError string
	// TraceParent and TraceState are the W3C trace context of the change
	// that made the message ("" outside a trace): it is published within
	// that trace.
	TraceParent string
	TraceState  string
}

// Encoder turns an event into the messages that announce it; ctx is the
// change's, whose trace the messages carry.
type Encoder func(ctx context.Context, ev Event) ([]Message, error)

// SiteEvent is the event of a change to site s.
func SiteEvent(action string, s Site) Event {
	return Event{Entity: bus.EntitySite, Action: action, About: bus.About{Site: s.Name}, Data: s}
}

// TreeEvent is the event of a change to tree t.
func TreeEvent(action string, t Tree) Event {
	return Event{Entity: bus.EntityTree, Action: action, About: bus.About{Tree: t.Name}, Data: t}
}

// SubscriptionEvent is the event of a change to subscription s.
func SubscriptionEvent(action string, s Subscription) Event {
	return Event{Entity: bus.EntitySubscription, Action: action, About: bus.About{Tree: s.Tree, Site: s.Site}, Data: s}
}

// KeyEvent is the event of a change to signing key k.
func KeyEvent(action string, k SigningKey) Event {
	return Event{Entity: bus.EntityKey, Action: action, About: bus.About{Key: k.ID}, Data: k}
}

// SyncRequestedEvent carries trigger t to the scheduler (and announces it
// as sync.requested).
func SyncRequestedEvent(t bus.Trigger) Event {
	return Event{Entity: bus.EntitySync, Action: bus.ActionRequested, About: bus.About{Tree: t.Tree}, Data: t}
}
