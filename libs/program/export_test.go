package program

// ProfileState reports the CPU profile's state: 0 waiting for SIGUSR1, 1
// running, 2 written; -1 without one.
func ProfileState() int {
	if current == nil {
		return -1
	}
	current.mu.Lock()
	defer current.mu.Unlock()
	return current.state
}
