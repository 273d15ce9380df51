// Command event-consumer follows pulpdist's events with nothing but
// nats.go: a durable JetStream consumer on the PULPDIST_EVENTS stream that
// prints one line per event and acks it once handled. Stopped and started
// again, it carries on where it stopped; started for the first time with
// -since or -from-seq, it first replays what the stream kept.
//
//	go run . -server nats://127.0.0.1:7422 -filter 'pulpdist.evt.sync.finished.>'
//	go run . -filter 'pulpdist.evt.*.*.*.lab-brno' -since 24h   # one site, the last day too
//
// Copy it: the event format is in pulpdist's api/asyncapi.yaml and
// api/events/*.json.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Event is a CloudEvent in structured JSON mode, as pulpdist publishes it.
type Event struct {
	ID      string          `json:"id"`
	Source  string          `json:"source"`
	Type    string          `json:"type"`    // org.pulpdist.<entity>.<action>.v1
	Subject string          `json:"subject"` // tree/<tree>/site/<site>, tree/<tree>, site/<site>, key/<id>
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data"`
}

// SyncFinished is the part of a sync.finished event's data this example
// prints (api/events/org.pulpdist.sync.finished.v1.json has all of it).
type SyncFinished struct {
	Result string `json:"result"`
	Bytes  int64  `json:"bytes"`
	Error  string `json:"error"`
}

// Options are the command line.
type Options struct {
	Server, Durable, Filter string
	Since                   time.Duration
	FromSeq                 uint64
}

func main() {
	var o Options
	flag.StringVar(&o.Server, "server", envOr("NATS_URL", nats.DefaultURL), "NATS server URL")
	flag.StringVar(&o.Durable, "durable", "event-consumer", "durable consumer name: where this consumer resumes")
	flag.StringVar(&o.Filter, "filter", "pulpdist.evt.>", "subject filter: pulpdist.evt.<entity>.<action>.<tree>.<site>")
	flag.DurationVar(&o.Since, "since", 0, "first start only: replay the events of this last period (default: only new ones)")
	flag.Uint64Var(&o.FromSeq, "from-seq", 0, "first start only: replay from this stream sequence")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, o, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// Run follows the events until ctx ends.
func Run(ctx context.Context, o Options, out io.Writer) error {
	nc, err := nats.Connect(o.Server, nats.Name(o.Durable), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := consumer(ctx, js, o)
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		line, err := Describe(m.Data())
		if err != nil {
			// Not an event this code understands: a retry will not help.
			fmt.Fprintf(out, "skipped a message on %s: %v\n", m.Subject(), err)
			_ = m.Term()
			return
		}
		fmt.Fprintln(out, line)
		_ = m.Ack() // after the work: a crash before it redelivers the event
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

// consumer opens the durable consumer, creating it on the first start
// with where to begin: a consumer's start cannot change afterwards.
func consumer(ctx context.Context, js jetstream.JetStream, o Options) (jetstream.Consumer, error) {
	c, err := js.Consumer(ctx, "PULPDIST_EVENTS", o.Durable)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	cfg := jetstream.ConsumerConfig{
		Durable: o.Durable, FilterSubject: o.Filter, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Minute, MaxDeliver: 10, DeliverPolicy: jetstream.DeliverNewPolicy,
	}
	switch {
	case o.FromSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.FromSeq
	case o.Since > 0:
		start := time.Now().Add(-o.Since)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	return js.CreateConsumer(ctx, "PULPDIST_EVENTS", cfg)
}

// Describe renders one event as a line: time, type, subject, and for a
// sync.finished its result.
func Describe(body []byte) (string, error) {
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return "", err
	}
	if !strings.HasPrefix(ev.Type, "org.pulpdist.") || ev.ID == "" {
		return "", fmt.Errorf("not a pulpdist event (type %q)", ev.Type)
	}
	line := fmt.Sprintf("%s %s %s", ev.Time.UTC().Format(time.RFC3339), strings.TrimPrefix(ev.Type, "org.pulpdist."), ev.Subject)
	if ev.Type == "org.pulpdist.sync.finished.v1" {
		var f SyncFinished
		if err := json.Unmarshal(ev.Data, &f); err != nil {
			return "", fmt.Errorf("sync.finished data: %w", err)
		}
		line += fmt.Sprintf(" %s %d bytes", f.Result, f.Bytes)
		if f.Error != "" {
			line += ": " + f.Error
		}
	}
	return line, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
