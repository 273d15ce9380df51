package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// permanentError marks an error that redelivery cannot fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as permanent: the consumer terminates the message
// instead of asking for redelivery. Use it for undecodable or invalid input.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Handler processes one message. It returns nil once the work is durable;
// the message is then acked. It must be idempotent: JetStream redelivers.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// ConsumerDefaults are applied by ConsumerConfig: with Backoff, fifty
// deliveries span about 23 minutes, enough to ride out a restarting
// dependency (the inventory, the database, the object store) without
// retrying a hopeless message for ever; what is given up goes to the
// dead-letter stream. AckWait is how long a delivery that never reached
// its consumer waits to be delivered again: JetStream counts a message
// sent as NATS shuts down as delivered, though it may never leave the
// server. Handlers at work say so every AckWait/3 (Consume), however
// long they take.
const (
	DefaultMaxDeliver = 50
	DefaultAckWait    = 30 * time.Second
)

// ConsumerConfig returns a durable pull consumer configuration with
// explicit acks and bounded redelivery.
func ConsumerConfig(durable, filter string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       DefaultAckWait,
		MaxDeliver:    DefaultMaxDeliver,
		MaxAckPending: 64,
	}
}

// Backoff is the redelivery delay after the n-th failed delivery.
func Backoff(n uint64) time.Duration {
	d := 500 * time.Millisecond
	for i := uint64(1); i < n && d < 30*time.Second; i++ {
		d *= 2
	}
	return d
}

// ConsumeOption adjusts Consume.
type ConsumeOption func(*consumeOptions)

type consumeOptions struct {
	dead    jetstream.JetStream
	events  *Events
	backoff func(deliveries uint64) time.Duration
}

// WithDeadLetter makes Consume copy every message it gives up on (refused
// as permanent, or out of deliveries) to DeadLetterSubject(stream) with the
// reason in its headers, and announce it with events as the event
// message.deadlettered (DeadLettered), before terminating it. events is the
// consuming service's publisher: the event's source names the service, and
// a site-agent's is signed as its reports are. A nil events copies the
// message without announcing it.
func WithDeadLetter(js jetstream.JetStream, events *Events) ConsumeOption {
	return func(o *consumeOptions) { o.dead, o.events = js, events }
}

// WithBackoff replaces Backoff as the redelivery delay after the n-th
// failed delivery: a test reaches MaxDeliver in milliseconds with it.
func WithBackoff(f func(n uint64) time.Duration) ConsumeOption {
	return func(o *consumeOptions) { o.backoff = f }
}

// Consume runs h for every message of c until ctx ends, then drains. The
// ack is chosen in this one place: nil → Ack; Permanent → Term; otherwise
// NakWithDelay with backoff, and Term once MaxDeliver is reached. Messages
// are pulled one at a time, so one waiting behind a long handler is not
// counted as delivered (and redelivered) while it waits.
//
// Each message is taken by a pull of its own (nats.go's Consume stopped
// after one message): a long-lived Consume of one message at a time can
// miss the moment to ask for the next one (its check runs while the
// previous request is still marked in flight) and then waits for two
// missed heartbeats, a minute, with messages pending. nats.go renews the
// request when the connection comes back (a restarted server has
// forgotten it) and keeps listening after a server's shutdown notice,
// which a message may still follow.
func Consume(ctx context.Context, c jetstream.Consumer, log *slog.Logger, h Handler, opts ...ConsumeOption) error {
	o := consumeOptions{backoff: Backoff}
	for _, opt := range opts {
		opt(&o)
	}
	info := c.CachedInfo()
	maxDeliver, ackWait := DefaultMaxDeliver, DefaultAckWait
	if info != nil && info.Config.MaxDeliver > 0 {
		maxDeliver = info.Config.MaxDeliver
	}
	if info != nil && info.Config.AckWait > 0 {
		ackWait = info.Config.AckWait
	}
	var failures uint64
	for {
		var handled atomic.Bool
		cc, err := c.Consume(func(m jetstream.Msg) {
			handled.Store(true)
			stop := keepAlive(ctx, m, ackWait/3)
			defer stop()
			handle(ctx, m, log, h, maxDeliver, &o)
		}, jetstream.PullMaxMessages(1), jetstream.StopAfter(1),
			jetstream.PullExpiry(ConsumeExpiry), jetstream.PullHeartbeat(ConsumeHeartbeat),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				log.Warn("consumer error", "err", err)
			}))
		if err == nil {
			select {
			case <-cc.Closed():
			case <-ctx.Done():
				cc.Drain()
				select {
				case <-cc.Closed():
				case <-time.After(10 * time.Second):
					cc.Stop()
				}
				return nil
			}
		}
		if handled.Load() {
			failures = 0
			continue
		}
		// Stopped without a message (the consumer or the connection is
		// gone for now): ask again after a while.
		failures++
		if err != nil {
			log.Warn("consume", "err", err, "failures", failures)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(Backoff(failures)):
		}
	}
}

// ConsumeExpiry and ConsumeHeartbeat are how long a consumer's pull
// request waits and how often the server says it is alive while nothing
// comes (nats.go allows at most 30 s). A message is delivered the moment
// it is stored whatever these are; they only set the idle traffic, per
// consumer: nats.go's defaults (30 s, 15 s) are a good part of what 64
// idle site-agents cost nats-server (docs/benchmarks.md). A request lost
// without the connection noticing is sent again once two heartbeats are
// missed.
const (
	ConsumeExpiry    = 5 * time.Minute
	ConsumeHeartbeat = 30 * time.Second
)

func handle(ctx context.Context, m jetstream.Msg, log *slog.Logger, h Handler, maxDeliver int, o *consumeOptions) {
	meta, _ := m.Metadata() // nil only for non-JetStream messages, which Consume never delivers
	var delivered uint64 = 1
	if meta != nil {
		delivered = meta.NumDelivered
	}
	// The handler's work is a span of the trace the message carries.
	var attrs []attribute.KeyValue
	if meta != nil {
		attrs = append(attrs, attribute.String("messaging.consumer.group.name", meta.Consumer), attribute.Int64("messaging.nats.delivered", int64(delivered)))
	}
	ctx, end := startSpan(ExtractTrace(ctx, m.Headers()), "process "+m.Subject(), trace.SpanKindConsumer, m.Subject(), attrs...)
	err := safeHandle(ctx, m, h)
	end(err)
	switch {
	case err == nil:
		if aerr := m.Ack(); aerr != nil {
			log.Warn("ack failed", "subject", m.Subject(), "err", aerr)
		}
	case IsPermanent(err):
		log.Error("message refused", "subject", m.Subject(), "err", err)
		deadLetter(ctx, o, m, meta, "refused: "+err.Error(), log)
		if terr := m.TermWithReason(err.Error()); terr != nil {
			log.Warn("term failed", "subject", m.Subject(), "err", terr)
		}
	case ctx.Err() != nil:
		// Shutting down: let another instance (or our restart) take it.
		_ = m.Nak() // best effort; AckWait redelivers anyway
	case int(delivered) >= maxDeliver:
		log.Error("message failed, giving up", "subject", m.Subject(), "deliveries", delivered, "err", err)
		deadLetter(ctx, o, m, meta, fmt.Sprintf("gave up after %d deliveries: %v", delivered, err), log)
		_ = m.TermWithReason("max deliveries: " + err.Error()) // best effort: MaxDeliver stops it anyway
	default:
		log.Warn("message failed, will retry", "subject", m.Subject(), "deliveries", delivered, "err", err)
		_ = m.NakWithDelay(o.backoff(delivered)) // best effort: AckWait redelivers anyway
	}
}

// Headers of a dead letter.
const (
	HeaderDeadReason   = "Pulpdist-Dead-Reason"
	HeaderDeadSubject  = "Pulpdist-Dead-Subject"
	HeaderDeadStream   = "Pulpdist-Dead-Stream"
	HeaderDeadSequence = "Pulpdist-Dead-Sequence"
	HeaderDeadConsumer = "Pulpdist-Dead-Consumer"
)

// deadLetter copies a message given up on to the dead-letter stream and
// announces it (message.deadlettered). It is best effort: the message is
// terminated either way, and the log says what failed. Both the copy and
// the event are keyed by the message's stream and sequence, so a message
// dead-lettered again (the service stopped before its Term) is stored and
// announced once.
func deadLetter(ctx context.Context, o *consumeOptions, m jetstream.Msg, meta *jetstream.MsgMetadata, reason string, log *slog.Logger) {
	if o.dead == nil || meta == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	seq := strconv.FormatUint(meta.Sequence.Stream, 10)
	dl := nats.NewMsg(DeadLetterSubject(meta.Stream))
	dl.Data = m.Data()
	dl.Header.Set(HeaderDeadReason, reason)
	dl.Header.Set(HeaderDeadSubject, m.Subject())
	dl.Header.Set(HeaderDeadStream, meta.Stream)
	dl.Header.Set(HeaderDeadSequence, seq)
	dl.Header.Set(HeaderDeadConsumer, meta.Consumer)
	key := meta.Stream + "/" + seq
	if _, err := o.dead.PublishMsg(ctx, dl, jetstream.WithMsgID(key)); err != nil {
		log.Error("dead letter not stored", "subject", m.Subject(), "err", err)
		return
	}
	if o.events == nil {
		return
	}
	data := DeadLettered{
		Stream: meta.Stream, StreamSequence: meta.Sequence.Stream, Subject: m.Subject(), Consumer: meta.Consumer,
		Reason: reason, Deliveries: meta.NumDelivered, DeadLetterSubject: dl.Subject,
	}
	if err := o.events.PublishKeyed(ctx, EntityMessage, ActionDeadLettered, MessageAbout(m.Subject()), key, data); err != nil {
		log.Error("dead letter not announced", "subject", m.Subject(), "err", err)
	}
}

// keepAlive tells JetStream every interval that the message is still being
// worked on, so a long scan, build or apply is not redelivered elsewhere.
func keepAlive(ctx context.Context, m jetstream.Msg, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = m.InProgress() // best effort: a missed one costs a redelivery, which handlers absorb
			}
		}
	}()
	return func() { cancel(); <-done }
}

func safeHandle(ctx context.Context, m jetstream.Msg, h Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return h(ctx, m)
}
