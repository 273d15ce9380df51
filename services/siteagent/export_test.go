package siteagent

import "context"

// SetTestHookVerify makes every verify of s call hook once it holds the
// tree, before it reads it; set it before Run.
func (s *Service) SetTestHookVerify(hook func(ctx context.Context, tree string)) {
	s.testHookVerify = hook
}
