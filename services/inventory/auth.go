package inventory

import "github.com/pulpdist/pulpdist/services/inventory/internal/httpapi"

// ValidateAdminToken checks a bootstrap admin token (Config.AdminToken,
// PULPDIST_ADMIN_TOKEN): empty, or at least 32 printable ASCII characters
// without spaces. The error never quotes the token.
func ValidateAdminToken(tok string) error { return httpapi.ValidateAdminToken(tok) }
