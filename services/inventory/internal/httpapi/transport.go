package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// MaxBody bounds a request body.
const MaxBody = 1 << 20

// ContentTypeProblem is the content type of error responses (RFC 9457).
const ContentTypeProblem = "application/problem+json"

// errMalformed marks a request the transport could not decode.
var errMalformed = errors.New("malformed request")

// Register adds the /api/v1 routes to mux, each guarded by auth.
func Register(mux *http.ServeMux, e Endpoints, auth *Auth, log *slog.Logger) {
	opts := []httptransport.ServerOption{
		httptransport.ServerBefore(httptransport.PopulateRequestContext, populateConditions),
		httptransport.ServerErrorEncoder(encodeError(log)),
	}
	handle := func(pattern string, ep endpoint.Endpoint, dec httptransport.DecodeRequestFunc, status int) {
		mux.Handle(pattern, auth.Guard(pattern, checkQuery(pattern, httptransport.NewServer(ep, dec, encodeJSON(status), opts...))))
	}
	handle("POST /api/v1/sites", e.CreateSite, decodeSite, http.StatusCreated)
	handle("GET /api/v1/sites", e.ListSites, decodeList(sortName, noFilter), http.StatusOK)
	handle("GET /api/v1/sites/{name}", e.GetSite, decodePathValue("name"), http.StatusOK)
	handle("POST /api/v1/trees", e.CreateTree, decodeTree, http.StatusCreated)
	handle("GET /api/v1/trees", e.ListTrees, decodeList(sortName, noFilter), http.StatusOK)
	handle("GET /api/v1/trees/{name}", e.GetTree, decodePathValue("name"), http.StatusOK)
	handle("GET /api/v1/trees/{name}/subscriptions", e.TreeSubscriptions, decodeList(sortTreeSit, pathName("name")), http.StatusOK)
	handle("POST /api/v1/trees/{name}/sync", e.RequestSync, decodeSyncRequest, http.StatusAccepted)
	handle("GET /api/v1/trees/{name}/versions", e.TreeVersions, decodeVersionList, http.StatusOK)
	handle("POST /api/v1/subscriptions", e.CreateSubscription, decodeSubscription, http.StatusCreated)
	handle("GET /api/v1/subscriptions", e.ListSubscriptions, decodeList(sortTreeSit, subscriptionFilter), http.StatusOK)
	handle("GET /api/v1/runs", e.ListRuns, decodeRunList, http.StatusOK)
	handle("GET /api/v1/runs/{id}", e.GetRun, decodePathValue("id"), http.StatusOK)
	handle("GET /api/v1/overview", e.Overview, decodeSortedList(overviewSorts, subscriptionFilter), http.StatusOK)
	handle("GET /api/v1/keys", e.ListSigningKeys, decodeNothing, http.StatusOK)
	handle("POST /api/v1/keys", e.AddSigningKey, decodeSigningKey, http.StatusCreated)
	handle("POST /api/v1/keys/{id}/revoke", e.RevokeSigningKey, decodePathValue("id"), http.StatusOK)
	handle("GET /api/v1/tokens", e.ListTokens, decodeList(sortTokens, decodeTokenFilter), http.StatusOK)
	handle("POST /api/v1/tokens", e.CreateToken, decodeTokenCreate, http.StatusCreated)
	handle("POST /api/v1/tokens/{id}/revoke", e.RevokeToken, decodePathValue("id"), http.StatusOK)
	registerControl(handle, e.ControlEndpoints)
	registerEntities(handle, e.EntityEndpoints)
	registerRemovals(handle, e.RemovalEndpoints)
	mux.Handle("/api/v1/", auth.Guard("/api/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, inventoryapi.Problem{
			Title:  http.StatusText(http.StatusNotFound),
			Status: http.StatusNotFound,
			Detail: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path),
		})
	})))
}

func decodeNothing(context.Context, *http.Request) (any, error) { return noRequest{}, nil }

func decodePathValue(name string) httptransport.DecodeRequestFunc {
	return func(_ context.Context, r *http.Request) (any, error) { return r.PathValue(name), nil }
}

func decodeSite(_ context.Context, r *http.Request) (any, error) {
	var in inventoryapi.Site
	if err := decodeJSON(r, &in); err != nil {
		return nil, err
	}
	return siteFromWire(in), nil
}

// decodeTree takes the wire Tree (treeFromWire).
func decodeTree(_ context.Context, r *http.Request) (any, error) {
	var in inventoryapi.Tree
	if err := decodeJSON(r, &in); err != nil {
		return nil, err
	}
	return treeFromWire(in)
}

func decodeSubscription(_ context.Context, r *http.Request) (any, error) {
	var in inventoryapi.Subscription
	if err := decodeJSON(r, &in); err != nil {
		return nil, err
	}
	return catalog.Subscription{Site: in.Site, Tree: in.Tree, Paused: in.Paused}, nil
}

func decodeSigningKey(_ context.Context, r *http.Request) (any, error) {
	var in inventoryapi.SigningKeyCreate
	if err := decodeJSON(r, &in); err != nil {
		return nil, err
	}
	return in, nil
}

// decodeSyncRequest takes the tree from the path and the options from an
// optional body (none: the defaults).
func decodeSyncRequest(_ context.Context, r *http.Request) (any, error) {
	out := catalog.SyncRequest{Tree: r.PathValue("name")}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBody))
	if err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return out, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in inventoryapi.SyncRequest
	if err := decodeJSON(r, &in); err != nil {
		return nil, err
	}
	out.ConfirmDeletions = in.ConfirmDeletions
	return out, nil
}

// decodeJSON reads exactly one JSON value of at most MaxBody bytes into v,
// refusing fields v does not have.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return fmt.Errorf("request body: %w", err)
		case errors.Is(err, io.EOF):
			return fmt.Errorf("%w: empty request body, want a JSON object", errMalformed)
		}
		return fmt.Errorf("%w: request body: %w", errMalformed, err)
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("request body: %w", err)
		}
		return fmt.Errorf("%w: request body must hold exactly one JSON value", errMalformed)
	}
	return nil
}

// encodeJSON writes resp with status, or with its own status when it has
// one (httptransport.StatusCoder).
func encodeJSON(status int) httptransport.EncodeResponseFunc {
	return func(ctx context.Context, w http.ResponseWriter, resp any) error {
		code := status
		if sc, ok := resp.(httptransport.StatusCoder); ok {
			code = sc.StatusCode()
		}
		if h, ok := resp.(httptransport.Headerer); ok {
			for k, vs := range h.Headers() {
				w.Header()[k] = vs
			}
		}
		if b, ok := resp.(interface{ body() any }); ok {
			resp = b.body()
		}
		body, err := encodeBody(resp)
		if err != nil {
			return err
		}
		if c, _ := ctx.Value(conditionKey{}).(conditions); (c.method == http.MethodGet || c.method == http.MethodHead) && code == http.StatusOK && w.Header().Get("ETag") == "" {
			w.Header().Set("ETag", etagOf(body, w.Header().Get(HeaderNextCursor)))
		}
		if tag := w.Header().Get("ETag"); tag != "" && notModified(ctx, tag) {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, err = w.Write(body)
		return err
	}
}

// Problem maps an error to its problem detail. It is the one place where
// domain errors become HTTP statuses; a server error's cause is not shown.
func Problem(err error) inventoryapi.Problem {
	var tooBig *http.MaxBytesError
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &tooBig):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, errMalformed), errors.Is(err, catalog.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, catalog.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, catalog.ErrAlreadyExists), errors.Is(err, catalog.ErrInUse):
		status = http.StatusConflict
	case errors.Is(err, catalog.ErrUnauthenticated):
		status = http.StatusUnauthorized
	case errors.Is(err, errForbidden):
		status = http.StatusForbidden
	case errors.Is(err, errPreconditionFailed):
		status = http.StatusPreconditionFailed
	case errors.Is(err, errPreconditionRequired):
		status = http.StatusPreconditionRequired
	case errors.Is(err, catalog.ErrUnavailable):
		status = http.StatusServiceUnavailable
	}
	p := inventoryapi.Problem{Title: http.StatusText(status), Status: status, Detail: err.Error()}
	switch status {
	case http.StatusRequestEntityTooLarge:
		p.Detail = fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit)
	case http.StatusInternalServerError:
		p.Detail = "internal error; the inventory log has the cause"
	case http.StatusServiceUnavailable:
		p.Detail = "the database is unavailable; nothing was changed, retry later"
	}
	return p
}

func encodeError(log *slog.Logger) httptransport.ErrorEncoder {
	return func(ctx context.Context, err error, w http.ResponseWriter) {
		p := Problem(err)
		if p.Status >= http.StatusInternalServerError {
			log.ErrorContext(ctx, "request failed",
				"method", ctx.Value(httptransport.ContextKeyRequestMethod),
				"path", ctx.Value(httptransport.ContextKeyRequestPath), "err", err)
		}
		writeProblem(w, p)
	}
}

func writeProblem(w http.ResponseWriter, p inventoryapi.Problem) {
	w.Header().Set("Content-Type", ContentTypeProblem)
	w.WriteHeader(p.Status)
	// The status line is out; a client that left cannot be told more.
	_ = json.NewEncoder(w).Encode(p)
}
