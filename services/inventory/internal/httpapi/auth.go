package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// Access control. Every /api/v1 route needs a bearer token; the route's
// policy says which roles may call it. The decision is made from the
// token and the request line alone, before the request is decoded or
// anything is looked up, so that a refusal never tells whether what was
// asked for exists.

// MaxTokenHeader bounds the Authorization header the API reads.
const MaxTokenHeader = 512

// errForbidden marks a request whose token may not call the route.
var errForbidden = errors.New("forbidden")

// Authenticator checks a token's secret: the catalog.
type Authenticator interface {
	// Authenticate fails with catalog.ErrUnauthenticated for a token
	// that is malformed, unknown or revoked.
	Authenticate(ctx context.Context, secret string) (catalog.Token, error)
}

// Auth authenticates requests and applies the route policies.
type Auth struct {
	tokens Authenticator
	// admin is the SHA-256 of the bootstrap admin token; nil when none.
	admin []byte
	log   *slog.Logger

	mu      sync.Mutex
	guarded []string
}

// NewAuth checks tokens with a, and also accepts adminToken (when not
// empty) as an admin token: the bootstrap token of PULPDIST_ADMIN_TOKEN.
func NewAuth(a Authenticator, adminToken string, log *slog.Logger) *Auth {
	au := &Auth{tokens: a, log: log}
	if adminToken != "" {
		sum := sha256.Sum256([]byte(adminToken))
		au.admin = sum[:]
	}
	return au
}

// BootstrapTokenID is the id under which the bootstrap admin token acts.
const BootstrapTokenID = "bootstrap"

// rank orders the roles that read everything; an agent has none of them.
var rank = map[catalog.Role]int{catalog.RoleViewer: 1, catalog.RoleOperator: 2, catalog.RoleAdmin: 3}

// policy says who may call a route: every role ranked at least min, and
// agent tokens when anyAgent is set or when site, which reads the request
// line only, names the agent's own site.
type policy struct {
	min      catalog.Role
	site     func(r *http.Request) (string, bool)
	anyAgent bool
}

var (
	read        = policy{min: catalog.RoleViewer}
	operate     = policy{min: catalog.RoleOperator}
	administer  = policy{min: catalog.RoleAdmin}
	anyoneKnown = policy{min: catalog.RoleViewer, anyAgent: true}
)

// readSite is read, and agents of the site that site names.
func readSite(site func(r *http.Request) (string, bool)) policy {
	return policy{min: catalog.RoleViewer, site: site}
}

func pathSite(name string) func(r *http.Request) (string, bool) {
	return func(r *http.Request) (string, bool) { return r.PathValue(name), true }
}

// querySite is the one value of the query parameter site; an agent must
// name its site, once.
func querySite(r *http.Request) (string, bool) {
	v := r.URL.Query()["site"]
	if len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// policies holds the policy of every route Register adds, by pattern. A
// route missing here is for admins only, and TestEveryRouteHasAPolicy
// fails.
var policies = map[string]policy{
	"POST /api/v1/sites":                     administer,
	"GET /api/v1/sites":                      read,
	"GET /api/v1/sites/{name}":               readSite(pathSite("name")),
	"POST /api/v1/trees":                     administer,
	"GET /api/v1/trees":                      read,
	"GET /api/v1/trees/{name}":               read,
	"GET /api/v1/trees/{name}/subscriptions": read,
	"POST /api/v1/trees/{name}/sync":         operate,
	"GET /api/v1/trees/{name}/versions":      read,
	"POST /api/v1/subscriptions":             administer,
	"GET /api/v1/subscriptions":              readSite(querySite),
	"GET /api/v1/runs":                       readSite(querySite),
	"GET /api/v1/runs/{id}":                  read,
	"GET /api/v1/overview":                   read,
	"GET /api/v1/keys":                       read,
	"POST /api/v1/keys":                      administer,
	"POST /api/v1/keys/{id}/revoke":          administer,
	"GET /api/v1/tokens":                     administer,
	"POST /api/v1/tokens":                    administer,
	"POST /api/v1/tokens/{id}/revoke":        administer,
	"PATCH /api/v1/trees/{name}":             administer,
	"PATCH /api/v1/sites/{name}":             administer,
	"GET /api/v1/trees/{name}/history":       read,
	"GET /api/v1/sites/{name}/history":       readSite(pathSite("name")),
	"GET /api/v1/failing":                    read,
	"GET /api/v1/alarms":                     read,
	"POST /api/v1/sites/{name}/pause":        operate,
	"POST /api/v1/sites/{name}/resume":       operate,
	"POST /api/v1/trees/{name}/pause":        operate,
	"POST /api/v1/trees/{name}/resume":       operate,
	// Syncing one subscription, like a tree, is an operator's act.
	"POST /api/v1/subscriptions/{site}/{tree}/sync": operate,
	// The audit log says which token did what: for admins, like tokens.
	"GET /api/v1/audit":    administer,
	"GET /api/v1/deltas":   read,
	"GET /api/v1/problems": read,
	// An agent may read its own site's subscriptions and preview their syncs.
	"GET /api/v1/subscriptions/{site}/{tree}":         readSite(pathSite("site")),
	"GET /api/v1/subscriptions/{site}/{tree}/dry-run": readSite(pathSite("site")),
	// Deleting is an admin's act, like creating.
	"DELETE /api/v1/trees/{name}":                administer,
	"DELETE /api/v1/sites/{name}":                administer,
	"DELETE /api/v1/subscriptions/{site}/{tree}": administer,
	// Unknown routes answer 404 to any valid token.
	"/api/v1/": anyoneKnown,
}

type tokenKey struct{}

// TokenFrom returns the token a request was authenticated with.
func TokenFrom(ctx context.Context) (catalog.Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(catalog.Token)
	return t, ok
}

// Guard wraps the handler of the route pattern: it answers 401 without a
// valid token and 403 when the token's role may not call the route, and
// otherwise calls h with the token in the request context.
func (a *Auth) Guard(pattern string, h http.Handler) http.Handler {
	a.mu.Lock()
	a.guarded = append(a.guarded, pattern)
	a.mu.Unlock()
	p, ok := policies[pattern]
	if !ok {
		p = administer
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := a.authenticate(r)
		if err == nil {
			err = p.allow(tok, r)
		}
		if err != nil {
			a.refuse(w, r, err)
			return
		}
		ctx := catalog.WithActor(context.WithValue(r.Context(), tokenKey{}, tok), Actor(tok))
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Actor is how the audit log names the holder of t: its name and id, or
// its id alone.
func Actor(t catalog.Token) string {
	if t.Name == "" {
		return "token " + t.ID
	}
	return t.Name + " (token " + t.ID + ")"
}

// Guarded lists the patterns Guard was called for, in order.
func (a *Auth) Guarded() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.guarded)
}

// BearerToken reads the token of an "Authorization: Bearer <token>"
// header (RFC 6750; the scheme is case-insensitive). Every other form is
// an error wrapping catalog.ErrUnauthenticated.
func BearerToken(h http.Header) (string, error) {
	vs := h.Values("Authorization")
	switch {
	case len(vs) == 0:
		return "", fmt.Errorf("%w: no bearer token (send Authorization: Bearer <token>)", catalog.ErrUnauthenticated)
	case len(vs) > 1:
		return "", fmt.Errorf("%w: more than one Authorization header", catalog.ErrUnauthenticated)
	case len(vs[0]) > MaxTokenHeader:
		return "", fmt.Errorf("%w: Authorization header longer than %d bytes", catalog.ErrUnauthenticated, MaxTokenHeader)
	}
	scheme, tok, ok := strings.Cut(vs[0], " ")
	switch {
	case !ok || !strings.EqualFold(scheme, "Bearer"):
		return "", fmt.Errorf("%w: Authorization header: want Bearer <token>", catalog.ErrUnauthenticated)
	case tok == "":
		return "", fmt.Errorf("%w: empty bearer token", catalog.ErrUnauthenticated)
	case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return "", fmt.Errorf("%w: the bearer token holds spaces or characters outside printable ASCII", catalog.ErrUnauthenticated)
	}
	return tok, nil
}

func (a *Auth) authenticate(r *http.Request) (catalog.Token, error) {
	secret, err := BearerToken(r.Header)
	if err != nil {
		return catalog.Token{}, err
	}
	if a.admin != nil {
		sum := sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(sum[:], a.admin) == 1 {
			return catalog.Token{ID: BootstrapTokenID, Name: "PULPDIST_ADMIN_TOKEN", Role: catalog.RoleAdmin}, nil
		}
	}
	return a.tokens.Authenticate(r.Context(), secret)
}

// allow decides from the token and the request line only.
func (p policy) allow(t catalog.Token, r *http.Request) error {
	if t.Role == catalog.RoleAgent {
		if p.anyAgent {
			return nil
		}
		if p.site != nil {
			if site, ok := p.site(r); ok && site == t.Site {
				return nil
			}
		}
		return fmt.Errorf("%w: the agent token of site %q may only read what concerns its own site (named in the path or as ?site=)", errForbidden, t.Site)
	}
	if rank[t.Role] < rank[p.min] {
		return fmt.Errorf("%w: role %s may not call %s (needs %s)", errForbidden, t.Role, r.Pattern, p.min)
	}
	return nil
}

func (a *Auth) refuse(w http.ResponseWriter, r *http.Request, err error) {
	p := Problem(err)
	switch p.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="pulpdist"`)
	case http.StatusInternalServerError:
		a.log.ErrorContext(r.Context(), "authentication failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeProblem(w, p)
}

// MinAdminToken is the shortest bootstrap admin token accepted.
const MinAdminToken = 32

// ValidateAdminToken checks a bootstrap admin token ("" means none). The
// error never quotes the token.
func ValidateAdminToken(tok string) error {
	switch {
	case tok == "":
		return nil
	case len(tok) < MinAdminToken:
		return fmt.Errorf("admin token: %d characters, want at least %d (make one with: openssl rand -base64 32)", len(tok), MinAdminToken)
	case len(tok) > MaxTokenHeader-len("Bearer "):
		return fmt.Errorf("admin token: longer than %d characters", MaxTokenHeader-len("Bearer "))
	case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return errors.New("admin token: want printable ASCII without spaces")
	}
	return nil
}
