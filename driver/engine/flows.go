package engine

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/dchest/siphash"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// The engine's memory of the connections a worker handed over. A segment of
// such a connection must never be handed over again: once its client has
// sent as many bytes as it received, its numbers pass the cookie check like
// the handshake ACK's. docs/handoff.md ("One handshake, one connection")
// has the reasoning.

const (
	// recentTTL is how long after a handoff a segment of the connection
	// is given to the kernel as one that may have been queued before its
	// socket existed (ms).
	recentTTL = 5000
	// flowTTL is how long a connection is remembered after the last
	// segment the worker saw of it (ms). It must exceed a cookie's life
	// (cookie.MaxAge slots): afterwards no segment of the connection
	// passes the check, short of the odds of a forgery.
	flowTTL = 10 * 60 * 1000
	// flowWays is the number of slots a connection may occupy: a hash
	// picks a bucket of flowWays slots, and a new connection takes the
	// slot that expires first.
	flowWays = 4
)

// flowKey is a tuple as bytes, so that the table holds no pointers:
// client and server address (16 bytes each), client and server port, and
// the family.
type flowKey [40]byte

func makeFlowKey(t *cookie.Tuple) flowKey {
	var k flowKey
	c, s := t.Client.Addr().As16(), t.Server.Addr().As16()
	copy(k[0:16], c[:])
	copy(k[16:32], s[:])
	binary.BigEndian.PutUint16(k[32:], t.Client.Port())
	binary.BigEndian.PutUint16(k[34:], t.Server.Port())
	if t.Client.Addr().Is6() {
		k[36] = 6
	}
	return k
}

// flow is a remembered connection.
type flow struct {
	key     flowKey
	handed  int64 // ms: when it was handed over
	expires int64 // ms; not after now: free
}

// flowTable is a worker's fixed-size, set-associative table of flows.
type flowTable struct {
	slots  []flow // buckets of flowWays slots
	k0, k1 uint64 // hash key
}

func newFlowTable(n int, seed [2]uint64) flowTable {
	n = max((n+flowWays-1)/flowWays, 1) * flowWays
	return flowTable{slots: make([]flow, n), k0: seed[0], k1: seed[1]}
}

func newSeed() [2]uint64 {
	var b [16]byte
	rand.Read(b[:])
	return [2]uint64{binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:])}
}

func (ft *flowTable) hash(k *flowKey) uint64 { return siphash.Hash(ft.k0, ft.k1, k[:]) }

// slot returns t's index in a table of n entries, with the flow table's
// key (the SYN-ACK re-send table uses it too).
func (ft *flowTable) slot(t *cookie.Tuple, n int) int {
	k := makeFlowKey(t)
	return int(ft.hash(&k) % uint64(n))
}

func (ft *flowTable) bucket(k *flowKey) []flow {
	i := int(ft.hash(k)%uint64(len(ft.slots)/flowWays)) * flowWays
	return ft.slots[i : i+flowWays]
}

// find returns the live flow of t, or nil.
func (ft *flowTable) find(t *cookie.Tuple, now int64) *flow {
	k := makeFlowKey(t)
	b := ft.bucket(&k)
	for i := range b {
		if b[i].expires > now && b[i].key == k {
			return &b[i]
		}
	}
	return nil
}

// add remembers t as handed over at handed: in its own slot if it has one,
// else in the slot of its bucket that expires first.
func (ft *flowTable) add(t *cookie.Tuple, now, handed int64) {
	k := makeFlowKey(t)
	b := ft.bucket(&k)
	v := &b[0]
	for i := range b {
		if b[i].key == k {
			v = &b[i]
			break
		}
		if b[i].expires < v.expires {
			v = &b[i]
		}
	}
	*v = flow{key: k, handed: handed, expires: now + flowTTL}
}
