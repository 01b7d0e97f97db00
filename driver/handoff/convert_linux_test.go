package handoff_test

import (
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// The engine's handshake converts to ours: the same fields in the same
// order. This stops compiling if either changes. (Linux only: package
// driver builds only there.)
var _ = handoff.Handshake(driver.Handshake{})
