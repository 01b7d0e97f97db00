package afxdp

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/monotonic"
)

// Proven clients first (Config.Proven). The engine proves a source when it
// hands over a connection of it after a cookie handshake: Prove writes the
// time (CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns) under the source
// in the program's proven4 or proven6, LRU hash maps of Config.Proven.Size
// entries. The program refreshes the time in place for the segments of a
// proven source's live connections, which it passes to the stack, so the
// timeout runs from the last packet; it never adds a source, so the
// flood's spoofed sources never enter, and a proven source leaves only by
// expiring or (a full map) as the least recently used. The segments to the
// port of a source proven within the timeout that no live connection owns
// (its SYNs and handshake ACKs) go to the second socket of their receive
// queue: it shares the first socket's UMEM and fill ring and has an RX
// ring of its own, which ReadBatch drains first. The flood can fill the
// first socket's ring and overrun it; the proven ring stays empty, and the
// receive frames are split so that the flood's ring cannot take them all.

// Prove makes src a proven source from now on: its SYNs and handshake ACKs
// go to the proven sockets until the timeout passes without a new proof or
// a segment of a live connection of it. It costs one map update (a system
// call); the engine calls it once per handed-over connection. On a driver
// without Config.Proven it does nothing; a failure is counted
// (Counters.ProveErrors).
func (d *Driver) Prove(src netip.Addr) {
	if d.cfg.Proven == nil {
		return
	}
	if err := d.prog.prove(src); err != nil {
		d.proveErrs.Add(1)
	}
}

func (p *program) prove(src netip.Addr) error {
	now := uint64(monotonic.NS())
	src = src.Unmap()
	if src.Is4() {
		b := src.As4()
		return driver.NewOpError("prove a source", p.objs.Proven4.Put(binary.NativeEndian.Uint32(b[:]), now))
	}
	if !src.Is6() {
		return errors.New("afxdp: prove an invalid address")
	}
	b := src.As16()
	var k xdpSrc6
	for i := range k.Addr {
		k.Addr[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return driver.NewOpError("prove a source", p.objs.Proven6.Put(k, now))
}

// ProvenPackets returns the segments of proven sources the program sent to
// the proven sockets (Counters.ProvenPackets).
func (d *Driver) ProvenPackets() uint64 { return d.prog.counts().Proven }

// ProvenOverruns returns the frames of proven sources the kernel could not
// put on a proven socket's RX ring (Counters.ProvenOverruns).
func (d *Driver) ProvenOverruns() uint64 {
	var n uint64
	for _, q := range d.queues {
		_, p := q.overruns()
		n += p
	}
	return n
}
