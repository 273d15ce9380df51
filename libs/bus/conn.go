package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// Connect dials NATS with reconnects forever and returns the connection and
// its JetStream context. Close the connection with Drain when done.
func Connect(ctx context.Context, url, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("connect nats %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := ctx.Err(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// Publish marshals m as JSON and publishes it on a stream subject, waiting
// for the stream's ack, with the trace context of ctx in its headers.
// msgID, when not empty, is the Nats-Msg-Id that deduplicates the publish
// within DuplicateWindow.
func Publish(ctx context.Context, js jetstream.JetStream, subject, msgID string, m any) error {
	_, err := PublishStored(ctx, js, subject, msgID, m)
	return err
}

// PublishStored is Publish that also says whether the stream stored the
// message: false when it dropped it as a duplicate of msgID (a retried
// handler, or another instance, published it first). What counts facts,
// such as a metric, counts the stored ones.
func PublishStored(ctx context.Context, js jetstream.JetStream, subject, msgID string, m any) (bool, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return false, fmt.Errorf("publish %s: %w", subject, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = body
	ack, err := publishMsg(ctx, js, msg, msgID)
	if err != nil {
		return false, err
	}
	return !ack.Duplicate, nil
}

// PublishMsg publishes msg on a stream subject within a producer span,
// with the span's trace context in its headers, and waits for the
// stream's ack. msgID is as for Publish.
func PublishMsg(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, msgID string) error {
	_, err := publishMsg(ctx, js, msg, msgID)
	return err
}

func publishMsg(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, msgID string) (_ *jetstream.PubAck, err error) {
	ctx, end := startSpan(ctx, "publish "+msg.Subject, trace.SpanKindProducer, msg.Subject)
	defer func() { end(err) }()
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	InjectTrace(ctx, msg.Header)
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	return ack, nil
}

// DrainBudget bounds how long Drain waits for a connection to drain.
const DrainBudget = 10 * time.Second

// Drain lets nc's in-flight publishes and acks finish, then closes it;
// after DrainBudget it closes nc anyway and says so. A connection closed
// already is no error.
func Drain(nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		return fmt.Errorf("drain nats: %w", err)
	}
	select {
	case <-closed:
		return nil
	case <-time.After(DrainBudget):
		nc.Close()
		return fmt.Errorf("drain nats: not done after %s", DrainBudget)
	}
}
