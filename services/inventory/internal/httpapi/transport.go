package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

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

// Register adds the /api/v1 routes to mux.
func Register(mux *http.ServeMux, e Endpoints, log *slog.Logger) {
	opts := []httptransport.ServerOption{
		httptransport.ServerBefore(httptransport.PopulateRequestContext),
		httptransport.ServerErrorEncoder(encodeError(log)),
	}
	handle := func(pattern string, ep endpoint.Endpoint, dec httptransport.DecodeRequestFunc, status int) {
		mux.Handle(pattern, httptransport.NewServer(ep, dec, encodeJSON(status), opts...))
	}
	handle("POST /api/v1/sites", e.CreateSite, decodeSite, http.StatusCreated)
	handle("GET /api/v1/sites", e.ListSites, decodeNothing, http.StatusOK)
	handle("GET /api/v1/sites/{name}", e.GetSite, decodePathValue("name"), http.StatusOK)
	handle("POST /api/v1/trees", e.CreateTree, decodeTree, http.StatusCreated)
	handle("GET /api/v1/trees", e.ListTrees, decodeNothing, http.StatusOK)
	handle("GET /api/v1/trees/{name}", e.GetTree, decodePathValue("name"), http.StatusOK)
	handle("GET /api/v1/trees/{name}/subscriptions", e.TreeSubscriptions, decodePathValue("name"), http.StatusOK)
	handle("POST /api/v1/trees/{name}/sync", e.RequestSync, decodePathValue("name"), http.StatusAccepted)
	handle("GET /api/v1/trees/{name}/versions", e.TreeVersions, decodePathValue("name"), http.StatusOK)
	handle("POST /api/v1/subscriptions", e.CreateSubscription, decodeSubscription, http.StatusCreated)
	handle("GET /api/v1/subscriptions", e.ListSubscriptions, decodeSubscriptionFilter, http.StatusOK)
	handle("GET /api/v1/runs", e.ListRuns, decodeRunFilter, http.StatusOK)
	handle("GET /api/v1/runs/{id}", e.GetRun, decodePathValue("id"), http.StatusOK)
	handle("GET /api/v1/overview", e.Overview, decodeNothing, http.StatusOK)
	handle("GET /api/v1/keys", e.ListSigningKeys, decodeNothing, http.StatusOK)
	handle("POST /api/v1/keys", e.AddSigningKey, decodeSigningKey, http.StatusCreated)
	handle("POST /api/v1/keys/{id}/revoke", e.RevokeSigningKey, decodePathValue("id"), http.StatusOK)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, inventoryapi.Problem{
			Title:  http.StatusText(http.StatusNotFound),
			Status: http.StatusNotFound,
			Detail: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path),
		})
	})
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
	return catalog.Site{Name: in.Name, Description: in.Description}, nil
}

// decodeTree takes the wire Tree; its read-only created_at is ignored and
// keep 0 (absent) means the default.
func decodeTree(_ context.Context, r *http.Request) (any, error) {
	var in inventoryapi.Tree
	if err := decodeJSON(r, &in); err != nil {
		return nil, err
	}
	return catalog.Tree{Name: in.Name, OriginSite: in.OriginSite, Source: in.Source, Schedule: in.Schedule, Filters: in.Filters, Keep: in.Keep}, nil
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

func decodeSubscriptionFilter(_ context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	return catalog.SubscriptionFilter{Site: q.Get("site"), Tree: q.Get("tree")}, nil
}

func decodeRunFilter(_ context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	f := catalog.RunFilter{Site: q.Get("site"), Tree: q.Get("tree")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: limit %q is not a positive integer", errMalformed, s)
		}
		f.Limit = n
	}
	return f, nil
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
	return func(_ context.Context, w http.ResponseWriter, resp any) error {
		w.Header().Set("Content-Type", "application/json")
		code := status
		if sc, ok := resp.(httptransport.StatusCoder); ok {
			code = sc.StatusCode()
		}
		w.WriteHeader(code)
		return json.NewEncoder(w).Encode(resp)
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
	case errors.Is(err, catalog.ErrAlreadyExists):
		status = http.StatusConflict
	}
	p := inventoryapi.Problem{Title: http.StatusText(status), Status: status, Detail: err.Error()}
	switch status {
	case http.StatusRequestEntityTooLarge:
		p.Detail = fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit)
	case http.StatusInternalServerError:
		p.Detail = "internal error; the inventory log has the cause"
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
