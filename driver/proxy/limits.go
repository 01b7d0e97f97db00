package proxy

import "github.com/synproxy-lite/synproxy-lite/driver/handoff"

// HandoffStats returns the stats of the Server's handoff.Proxy (open
// connections, backend dials, the limit in force): zeros for a Server
// without a Backend, or one not started. Call it once Start returned (from
// OnEngine's metrics, say); it does not wait for a graceful restart in
// progress.
func (s *Server) HandoffStats() handoff.ProxyStats {
	// s.px is set once, by Start, before OnEngine is called.
	if s.px != nil {
		return s.px.Stats()
	}
	return handoff.ProxyStats{}
}
