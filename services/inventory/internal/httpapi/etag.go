package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/wire"
)

// Conditional requests (RFC 9110 §13). Every GET answer carries an ETag:
// a strong validator computed from the exact bytes of the body (and, for
// a list, the cursor of the next page), so equal answers have equal tags
// whatever produced them. If-None-Match with a current tag gets 304.
// Updates (PATCH) need If-Match with the tag of the resource as a GET
// returns it: without one they are refused with 428, with a stale one
// with 412, so that two clients cannot overwrite each other's changes.

// Precondition errors, mapped to 412 and 428 in Problem.
var (
	errPreconditionFailed   = errors.New("precondition failed")
	errPreconditionRequired = errors.New("precondition required")
)

type conditionKey struct{}

// conditions are the conditional headers of a request.
type conditions struct {
	method      string
	ifNoneMatch string
}

// populateConditions puts the request's conditional headers in ctx
// (an httptransport.RequestFunc).
func populateConditions(ctx context.Context, r *http.Request) context.Context {
	return context.WithValue(ctx, conditionKey{}, conditions{method: r.Method, ifNoneMatch: strings.Join(r.Header.Values("If-None-Match"), ",")})
}

// encodeBody is what encodeJSON writes for v: its JSON and a newline.
func encodeBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// etagOf is the entity tag of a body, extra included.
func etagOf(body []byte, extra string) string {
	h := sha256.New()
	h.Write(body)
	h.Write([]byte(extra))
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}

// ETag is the entity tag a GET of v answers with.
func ETag(v any) (string, error) {
	b, err := encodeBody(v)
	if err != nil {
		return "", err
	}
	return etagOf(b, ""), nil
}

// matches reports whether an If-None-Match list names tag or is "*".
// Weak tags match by their value (the weak comparison If-None-Match
// uses, RFC 9110 §13.1.2).
func matches(list, tag string) bool { return matchesTag(list, tag, true) }

// matchesStrong is matches for If-Match, which compares strongly: a weak
// tag never matches (RFC 9110 §13.1.1).
func matchesStrong(list, tag string) bool { return matchesTag(list, tag, false) }

func matchesTag(list, tag string, weak bool) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if weak {
			t = strings.TrimPrefix(t, "W/")
		}
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

// notModified reports whether a GET whose answer has tag can be answered
// 304 Not Modified.
func notModified(ctx context.Context, tag string) bool {
	c, _ := ctx.Value(conditionKey{}).(conditions)
	return (c.method == http.MethodGet || c.method == http.MethodHead) && c.ifNoneMatch != "" && matches(c.ifNoneMatch, tag)
}

// ifMatch reads the If-Match header an update needs.
func ifMatch(r *http.Request) (string, error) {
	v := strings.Join(r.Header.Values("If-Match"), ",")
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("%w: send If-Match with the ETag of a GET of %s, so that a change made meanwhile is not overwritten", errPreconditionRequired, r.URL.Path)
	}
	return v, nil
}

// checkTag returns the check an update runs on the stored resource: its
// current tag (that of conv(current)) must be among those of If-Match.
func checkTag[T, W any](ifMatch string, conv func(T) W) func(T) error {
	return func(current T) error {
		tag, err := ETag(conv(current))
		if err != nil {
			return fmt.Errorf("entity tag: %w", err)
		}
		if !matchesStrong(ifMatch, tag) {
			return fmt.Errorf("%w: the resource changed since If-Match %s was read (now %s); GET it again", errPreconditionFailed, ifMatch, tag)
		}
		return nil
	}
}

// tagged is an update's answer: the resource and its new tag.
type tagged struct {
	v   any
	tag string
}

func (t tagged) body() any { return t.v }

// Headers implements httptransport.Headerer.
func (t tagged) Headers() http.Header {
	h := http.Header{}
	if t.tag != "" {
		h.Set("ETag", t.tag)
	}
	return h
}

// siteSettings is what a site's entity tag covers: the site without its
// last heartbeat, which the bus moves whenever the site's agent reports.
// An administrator's If-Match stays good while agents report; a GET with
// If-None-Match may then answer 304 although last_heartbeat moved (the
// site lists and the overview are tagged by their whole bodies).
func siteSettings(s catalog.Site) inventoryapi.Site {
	s.LastHeartbeat = nil
	return wire.Site(s)
}

// siteTagged answers a site with the tag of its settings.
func siteTagged(s catalog.Site) tagged {
	t := withTag(siteSettings(s))
	t.v = wire.Site(s)
	return t
}

// withTag answers v with its entity tag.
func withTag(v any) tagged {
	tag, err := ETag(v)
	if err != nil { // wire values always encode; answer without a tag
		tag = ""
	}
	return tagged{v: v, tag: tag}
}
