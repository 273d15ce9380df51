package control

import (
	"context"
	"errors"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// Classes of errors an endpoint's handler returns, wrapped with what
// failed (fmt.Errorf("tree %q: %w", name, control.ErrNotFound)).
var (
	// ErrInvalid: the request does not decode or validate; nothing was done.
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: the request names something that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrBusy: the request conflicts with work in progress; try again later.
	ErrBusy = errors.New("busy")
	// ErrUnavailable: a dependency of the service did not answer.
	ErrUnavailable = errors.New("unavailable")
)

// The codes of error replies (header Nats-Service-Error-Code and the
// body's code), as HTTP's statuses.
const (
	CodeInvalid     = "400"
	CodeNotFound    = "404"
	CodeBusy        = "409"
	CodeInternal    = "500"
	CodeUnavailable = "503"
)

// Code is the code an error is answered with: the one place errors are
// classified for the bus's request-reply side.
func Code(err error) string {
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, bus.ErrInvalidName), errors.Is(err, bus.ErrInvalidVersion):
		return CodeInvalid
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrBusy):
		return CodeBusy
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return CodeUnavailable
	}
	return CodeInternal
}
