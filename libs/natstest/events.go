package natstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// CheckEvents reads every event stored in the events stream of the server
// at url and returns what is wrong with those a pulpdist service
// published (CloudEvents source /pulpdist/…): each must validate against
// the JSON Schema of its type in api/events/ and be on the subject its
// type and CloudEvents subject say. Events of other sources — tests that
// publish malformed events on purpose — are not checked. No events
// stream, no events: nothing to say.
//
// Serve runs it when its test ends, so every test on an embedded server
// holds every event the services published to the documented contract.
func CheckEvents(ctx context.Context, url string) []error {
	nc, err := nats.Connect(url, nats.Name("natstest event check"))
	if err != nil {
		return []error{fmt.Errorf("event check: %w", err)}
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return []error{fmt.Errorf("event check: %w", err)}
	}
	st, err := js.Stream(ctx, bus.StreamEvents)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return []error{fmt.Errorf("event check: %w", err)}
	}
	info, err := st.Info(ctx)
	if err != nil {
		return []error{fmt.Errorf("event check: %w", err)}
	}
	var errs []error
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed (limits)
		}
		if err != nil {
			return append(errs, fmt.Errorf("event check: message %d: %w", seq, err))
		}
		if err := CheckEvent(m.Subject, m.Data); err != nil {
			errs = append(errs, fmt.Errorf("event %d on %s: %w", seq, m.Subject, err))
		}
	}
	return errs
}

// CheckEvent checks one event message (CheckEvents); nil for an event of
// a source outside pulpdist.
func CheckEvent(subject string, body []byte) error {
	var head struct {
		Source  string `json:"source"`
		Type    string `json:"type"`
		Subject string `json:"subject"`
	}
	if err := json.Unmarshal(body, &head); err != nil || !strings.HasPrefix(head.Source, "/pulpdist/") {
		return nil //nolint:nilerr // not a pulpdist service's event: not ours to judge
	}
	sch, err := eventSchema(head.Type)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", head.Type, err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s does not match api/events/%s.json: %w", head.Type, head.Type, err)
	}
	entity, action, about, ok := bus.ParseEventSubject(subject)
	if !ok || bus.EventType(entity, action) != head.Type {
		return fmt.Errorf("%s published on subject %s", head.Type, subject)
	}
	// The subject names the tree and site; a key event's key is in the
	// CloudEvents subject only.
	if key, isKey := strings.CutPrefix(head.Subject, "key/"); isKey {
		about.Key = key
	}
	if about.Subject() != head.Subject {
		return fmt.Errorf("%s about %q published on subject %s", head.Type, head.Subject, subject)
	}
	return nil
}

var schemas struct {
	sync.Mutex
	dir      string
	compiled map[string]*jsonschema.Schema
}

// eventSchema compiles api/events/<type>.json of the repository once.
func eventSchema(typ string) (*jsonschema.Schema, error) {
	if strings.ContainsAny(typ, `/\`) {
		return nil, fmt.Errorf("event type %q", typ)
	}
	schemas.Lock()
	defer schemas.Unlock()
	if s, ok := schemas.compiled[typ]; ok {
		return s, nil
	}
	if schemas.dir == "" {
		dir, err := eventsDir()
		if err != nil {
			return nil, err
		}
		schemas.dir, schemas.compiled = dir, map[string]*jsonschema.Schema{}
	}
	path := filepath.Join(schemas.dir, typ+".json")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("event type %s has no schema in api/events (is it in api/asyncapi.yaml?): %w", typ, err)
	}
	s, err := jsonschema.NewCompiler().Compile(path)
	if err != nil {
		return nil, fmt.Errorf("api/events/%s.json: %w", typ, err)
	}
	schemas.compiled[typ] = s
	return s, nil
}

// eventsDir finds api/events above the working directory (a test runs in
// its package's directory, inside the repository).
func eventsDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "api", "events")); err == nil && fi.IsDir() {
			return filepath.Join(dir, "api", "events"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("event check: no api/events directory above the working directory")
		}
		dir = parent
	}
}

// checkTimeout bounds the event check at the end of a test.
const checkTimeout = 30 * time.Second
