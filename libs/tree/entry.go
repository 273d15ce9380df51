package tree

import "fmt"

// Validate checks one entry on its own: a safe path and the fields its kind
// may carry. Rules that need the other entries (order, parents) are the
// manifest's. The error wraps ErrInvalidManifest or ErrUnsafePath.
func (e *Entry) Validate() error {
	if err := ValidatePath(e.Path); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	if err := validateFields(e); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrInvalidManifest, e.Path, err)
	}
	return nil
}

// Equivalent reports whether e and o agree on everything the root covers:
// every field but the chunk list, which follows from the content.
func (e *Entry) Equivalent(o *Entry) bool {
	return e.Path == o.Path && e.Kind == o.Kind && e.Mode == o.Mode && e.Size == o.Size &&
		e.MTime == o.MTime && e.Hash == o.Hash && e.Target == o.Target
}
