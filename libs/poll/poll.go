// Package poll waits in tests for a condition to hold, checking it on a
// ticker until a deadline: the alternative to sleeping.
package poll

import (
	"testing"
	"time"
)

// Until checks cond every 20ms until it returns nil, and fails the test
// with cond's last error once timeout has passed.
func Until(tb testing.TB, timeout time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-deadline.C:
			tb.Fatalf("condition not met after %s: %v", timeout, err)
		case <-tick.C:
		}
	}
}
