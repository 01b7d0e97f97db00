package proxy

import (
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/nft"
)

// TestOtherQueueBase: the range a graceful restart's other process uses is
// the one queueBase gives with the alternate range flipped, with and
// without the proven clients' extra queue, so that rules restored after a
// failed restart point at queues someone reads.
func TestOtherQueueBase(t *testing.T) {
	for _, proven := range []*nft.Proven{nil, {Size: 1024, Timeout: time.Minute}} {
		for _, alt := range []bool{false, true} {
			s := &Server{cfg: ServerConfig{Queue: 100, Workers: 3, ProvenClients: proven}}
			s.rs.alternate = !alt
			want := s.queueBase()
			s.rs.alternate = alt
			if got := s.otherQueueBase(); got != want {
				t.Errorf("proven %v, alternate %v: otherQueueBase %d, want %d (queueBase of the other range)",
					proven != nil, alt, got, want)
			}
		}
	}
}
