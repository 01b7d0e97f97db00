package proxy

// restartState is where a Server stands in graceful restarts: which of
// its two ranges of queues it serves, and whether it runs on rules it
// inherited and has not taken over yet.
type restartState struct {
	// alternate: the Server serves queues Queue+Workers and up rather
	// than Queue and up. Each graceful restart moves to the other range,
	// so that the new process binds its queues while the old one still
	// serves its own.
	alternate bool
	// inherited: the rules were the old process's, moved to this
	// process's queues, and this process has not taken over yet. If it
	// fails, it puts them back as they were; it never removes them.
	inherited bool
}

// queueBase is the first queue the Server serves.
func (s *Server) queueBase() uint16 {
	if s.rs.alternate {
		return s.cfg.Queue + uint16(s.cfg.Workers+s.provenQueues())
	}
	return s.cfg.Queue
}
