package bus

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrInvalidName is returned for a tree or site name that cannot be used in a
// subject, key or path.
var ErrInvalidName = errors.New("invalid name")

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidateName checks a tree or site name. Names become NATS subject tokens,
// KV keys and directory names, so they are restricted to lower-case letters,
// digits and dashes (no dots, slashes or wildcards), 1 to 63 characters.
func ValidateName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %s %q must match %s", ErrInvalidName, kind, name, nameRE)
	}
	return nil
}

// ErrInvalidVersion is returned for a version id that is not a root hash.
var ErrInvalidVersion = errors.New("invalid version")

var versionRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidateVersion checks a version id (hex BLAKE3 Merkle root). The empty
// string means "no version" and is accepted only when allowEmpty is set.
func ValidateVersion(v string, allowEmpty bool) error {
	if v == "" && allowEmpty {
		return nil
	}
	if !versionRE.MatchString(v) {
		return fmt.Errorf("%w: %q is not a 64-digit hex root", ErrInvalidVersion, v)
	}
	return nil
}

// versionToken renders a version for use in names: "none" for no version.
func versionToken(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// Subject prefixes and names of JetStream resources. They are part of the
// public contract (api/asyncapi.yaml).
const (
	StreamTriggers   = "PULPDIST_TRIGGERS"
	StreamSync       = "PULPDIST_SYNC"
	StreamSnapshots  = "PULPDIST_SNAPSHOTS"
	StreamDeltaReq   = "PULPDIST_DELTA_REQ"
	StreamDeltaReady = "PULPDIST_DELTA_READY"
	StreamEvents     = "PULPDIST_EVENTS"
	StreamDead       = "PULPDIST_DEAD"

	BucketSites       = "pulpdist-sites"
	BucketDeltaClaims = "pulpdist-delta-claims"
	BucketBlobs       = "pulpdist-blobs"
	BucketManifests   = "pulpdist-manifests"
	BucketDeltas      = "pulpdist-deltas"
	BucketSigningKeys = "pulpdist-signing-keys"
	BucketScans       = "pulpdist-scans"

	// EventsPrefix is the prefix of every engineering-bus event subject.
	EventsPrefix = "pulpdist.evt"
)

// TriggerSubject is where a request to sync a tree is published.
func TriggerSubject(tree string) string { return "pulpdist.trigger." + tree }

// SyncSubject is where the scheduler sends a command to one site-agent.
func SyncSubject(site, tree string) string { return "pulpdist.sync." + site + "." + tree }

// UrgentSyncSubject is where the scheduler sends a command of an urgent
// tree: the site-agent takes those at once, beside the normal ones.
func UrgentSyncSubject(site, tree string) string { return SyncSubject(site, tree) + ".urgent" }

// CommandSubject is the subject of c: urgent or normal.
func CommandSubject(c SyncCommand) string {
	if c.Urgent {
		return UrgentSyncSubject(c.Site, c.Tree)
	}
	return SyncSubject(c.Site, c.Tree)
}

// SyncFilter selects the normal commands addressed to one site.
func SyncFilter(site string) string { return "pulpdist.sync." + site + ".*" }

// UrgentSyncFilter selects the urgent commands addressed to one site.
func UrgentSyncFilter(site string) string { return "pulpdist.sync." + site + ".*.urgent" }

// SnapshotSubject is where an origin announces a new version of a tree.
func SnapshotSubject(tree string) string { return "pulpdist.snapshot." + tree }

// DeltaRequestSubject is where the delta for a tree is requested.
func DeltaRequestSubject(tree string) string { return "pulpdist.delta.req." + tree }

// DeltaReadySubject is where a stored delta pack is announced.
func DeltaReadySubject(tree string) string { return "pulpdist.delta.ready." + tree }

// DeadLetterSubject is where a consumer of stream puts what it gave up on.
func DeadLetterSubject(stream string) string { return "pulpdist.dead." + stream }

// NoneToken stands for "no tree" or "no site" in an event subject; no
// name can be "_" (ValidateName).
const NoneToken = "_"

// EventSubject is the subject of an engineering-bus event:
// pulpdist.evt.<entity>.<action>.<tree>.<site>, NoneToken for a tree or
// site the event is not about.
func EventSubject(entity, action string, about About) string {
	tree, site := about.Tree, about.Site
	if tree == "" {
		tree = NoneToken
	}
	if site == "" {
		site = NoneToken
	}
	return EventsPrefix + "." + entity + "." + action + "." + tree + "." + site
}

// EventFilter selects every event entity.action ("*" for any entity or
// action), whatever its tree and site.
func EventFilter(entity, action string) string {
	return EventsPrefix + "." + entity + "." + action + ".>"
}

// SiteEventsFilter selects every event about site: its runs, its alarms,
// its snapshots, the site's own changes.
func SiteEventsFilter(site string) string { return EventsPrefix + ".*.*.*." + site }

// TreeEventsFilter selects every event about tree, on any site.
func TreeEventsFilter(tree string) string { return EventsPrefix + ".*.*." + tree + ".*" }

// ParseEventSubject splits an event subject (EventSubject) into its
// entity, action, tree and site; ok is false for any other subject.
func ParseEventSubject(subject string) (entity, action string, about About, ok bool) {
	rest, found := strings.CutPrefix(subject, EventsPrefix+".")
	tok := strings.Split(rest, ".")
	if !found || len(tok) != 4 || tok[0] == "" || tok[1] == "" {
		return "", "", About{}, false
	}
	for i, name := range []*string{&about.Tree, &about.Site} {
		if t := tok[2+i]; t != NoneToken {
			if !nameRE.MatchString(t) {
				return "", "", About{}, false
			}
			*name = t
		}
	}
	return tok[0], tok[1], about, true
}

// ServicePrefix is the prefix of the subjects of the services'
// request-reply endpoints (NATS micro; libs/control).
const ServicePrefix = "pulpdist.svc"

// ServiceSubject is the subject of an endpoint that any instance of a
// service may answer (a queue group shares the requests):
// pulpdist.svc.<service>.<endpoint>.
func ServiceSubject(service, endpoint string) string {
	return ServicePrefix + "." + service + "." + endpoint
}

// InstanceSubject is the subject of an endpoint of one instance of a
// service (a site's agent, one delta-cache instance):
// pulpdist.svc.<service>.<instance>.<endpoint>, the instance as
// InstanceToken makes it a subject token.
func InstanceSubject(service, instance, endpoint string) string {
	return ServicePrefix + "." + service + "." + InstanceToken(instance) + "." + endpoint
}

// InstanceToken turns an instance name into one subject token: every
// character but ASCII letters, digits, '-' and '_' becomes '_' (a
// delta-cache instance is named after its host by default, and a host
// name may hold dots). Site names are tokens already and stay as they are.
func InstanceToken(instance string) string {
	if instance == "" {
		return NoneToken
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, instance)
}

// MessageAbout is what a message on one of pulpdist's subjects is about,
// as its subject names it: the tree of a trigger, snapshot, delta request
// or ready delta; the site and tree of a sync command; the tree and site
// of an event. A token that is not a valid name, and any other subject,
// name nothing. A dead-letter event is filed under it
// (message.deadlettered).
func MessageAbout(subject string) About {
	if _, _, about, ok := ParseEventSubject(subject); ok {
		return about
	}
	tok := strings.Split(subject, ".")
	name := func(i int) string {
		if i < len(tok) && nameRE.MatchString(tok[i]) {
			return tok[i]
		}
		return ""
	}
	switch {
	case len(tok) == 3 && tok[0] == "pulpdist" && (tok[1] == "trigger" || tok[1] == "snapshot"):
		return About{Tree: name(2)}
	case len(tok) == 4 && tok[0] == "pulpdist" && tok[1] == "delta" && (tok[2] == "req" || tok[2] == "ready"):
		return About{Tree: name(3)}
	case (len(tok) == 4 || len(tok) == 5 && tok[4] == "urgent") && tok[0] == "pulpdist" && tok[1] == "sync":
		return About{Site: name(2), Tree: name(3)}
	}
	return About{}
}

// DeltaID names the delta (tree, from, to): it is the object name of its
// pack and the start of the Nats-Msg-Id of requests for it.
func DeltaID(tree, from, to string) string {
	return tree + "/" + versionToken(from) + "/" + to
}

// DeltaClaimKey is the key in the delta-claims bucket that one delta-cache
// instance creates before computing a delta (KV keys cannot hold "/").
func DeltaClaimKey(tree, from, to string) string {
	return tree + "." + versionToken(from) + "." + to
}

// ObjectStream is the stream that holds the object store bucket.
func ObjectStream(bucket string) string { return "OBJ_" + bucket }

// ObjectChunkSubject is the subject of the chunks of the object stored as
// nuid in the object store bucket, and ObjectMetaSubject that of the meta
// message of the object name: the store's own layout, which the object
// store's Put writes and PutSmallObject, ObjectReader and the site-agent's
// resumable fetch read and write directly.
func ObjectChunkSubject(bucket, nuid string) string { return "$O." + bucket + ".C." + nuid }

// ObjectMetaSubject: see ObjectChunkSubject.
func ObjectMetaSubject(bucket, name string) string {
	return "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
}

// ManifestObject names a manifest in the manifests object store.
func ManifestObject(tree, root string) string { return tree + "/" + root }

// SiteVersionKey is the key in the sites KV bucket holding the version of a
// tree that a site currently serves.
func SiteVersionKey(site, tree string) string { return site + "." + tree }
