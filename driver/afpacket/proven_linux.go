package afpacket

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/monotonic"
)

// Proven clients first (Config.Proven). The sources of connections handed
// over are written, with the time (CLOCK_MONOTONIC, what bpf_ktime_get_ns
// reads), into two LRU hash maps:
//
//	proven4: key [4]byte (source), value uint64 (ns of the last Prove)
//	proven6: key [16]byte (source), value uint64
//
// Every socket's filter is then an eBPF socket filter: the port filter
// (portFilter, the same tests), then the source's age in the maps. The
// proven socket, outside the fanout group, accepts the port's segments of
// sources proven less than Timeout ago; the workers' sockets accept the
// others. A packet is copied into one ring, not two: the flood, from
// sources that never completed a handshake, fills the workers' rings and
// never the proven one.

// provenMaps are the maps of proven sources.
type provenMaps struct {
	v4, v6  *ebpf.Map
	timeout time.Duration
	// workers and proven are the socket filters, attached to every
	// worker's socket and to the proven socket.
	workers, proven *ebpf.Program
}

func newProvenMaps(p *driver.Proven, port uint16) (*provenMaps, error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	_ = rlimit.RemoveMemlock()
	m := &provenMaps{timeout: p.TimeoutOrDefault()}
	var err error
	for _, s := range []struct {
		m    **ebpf.Map
		name string
		key  uint32
	}{{&m.v4, "proven4", 4}, {&m.v6, "proven6", 16}} {
		*s.m, err = ebpf.NewMap(&ebpf.MapSpec{Name: s.name, Type: ebpf.LRUHash, KeySize: s.key, ValueSize: 8,
			MaxEntries: p.SizeOrDefault()})
		if err != nil {
			m.close()
			return nil, driver.NewOpError("create BPF map "+s.name, err)
		}
	}
	for _, s := range []struct {
		p      **ebpf.Program
		name   string
		proven bool
	}{{&m.workers, "synproxy_work", false}, {&m.proven, "synproxy_prov", true}} {
		*s.p, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: s.name, Type: ebpf.SocketFilter, License: "MIT",
			Instructions: provenFilter(port, m.v4.FD(), m.v6.FD(), m.timeout, s.proven)})
		if err != nil {
			m.close()
			return nil, driver.NewOpError("load BPF socket filter", err)
		}
	}
	return m, nil
}

func (m *provenMaps) close() {
	for _, p := range []*ebpf.Program{m.workers, m.proven} {
		if p != nil {
			p.Close()
		}
	}
	for _, mp := range []*ebpf.Map{m.v4, m.v6} {
		if mp != nil {
			mp.Close()
		}
	}
}

// prove writes now as src's last proof.
func (m *provenMaps) prove(src netip.Addr) error {
	now := uint64(monotonic.NS())
	src = src.Unmap()
	var err error
	switch {
	case src.Is4():
		k := src.As4()
		err = m.v4.Put(k[:], now)
	case src.Is6():
		k := src.As16()
		err = m.v6.Put(k[:], now)
	default:
		return errors.New("afpacket: prove: invalid address")
	}
	return driver.NewOpError("update BPF map of proven sources", err)
}

// forget removes src from the maps (tests).
func (m *provenMaps) forget(src netip.Addr) {
	src = src.Unmap()
	if src.Is4() {
		k := src.As4()
		_ = m.v4.Delete(k[:])
		return
	}
	k := src.As16()
	_ = m.v6.Delete(k[:])
}

// attach attaches the filter of a worker's socket (proven false) or of the
// proven socket to fd.
func (m *provenMaps) attach(fd int, proven bool) error {
	p := m.workers
	if proven {
		p = m.proven
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, p.FD()); err != nil {
		return driver.NewOpError("attach eBPF socket filter", err)
	}
	return nil
}

// Stack slot of the source address, the lookup key.
const keySlot = -16

// provenFilter is the eBPF socket filter of a worker's socket (proven
// false) or of the proven socket over an Ethernet frame: portFilter's
// tests, with ld_abs and ld_ind loads (R7 takes classic BPF's X: the
// offset of the next header from the IP header), then the source's last
// proof, looked up in map v4 or v6:
//
//	    r6 = r1                        ctx, for ld_abs
//	    (portFilter's tests, to tcp4 or tcp6, or reject)
//	tcp4 r0 = skb_load_bytes(r6, 26, fp-16, 4)     IPv4 source
//	    if r0 != 0 goto other
//	    r1 = map v4
//	    goto lookup
//	tcp6 r0 = skb_load_bytes(r6, 22, fp-16, 16)    IPv6 source
//	    if r0 != 0 goto other
//	    r1 = map v6
//	lookup r2 = fp-16
//	    r0 = map_lookup_elem(r1, r2)
//	    if r0 == 0 goto other
//	    r7 = *(u64 *)r0                the last proof
//	    r0 = ktime_get_ns()
//	    r0 -= r7
//	    if r0 < timeout goto proven    (unsigned: a proof in the future is none)
//	other  return proven ? 0 : 262144
//	proven return proven ? 262144 : 0
//	reject return 0
func provenFilter(port uint16, v4, v6 int, timeout time.Duration, proven bool) asm.Instructions {
	in := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadAbs(12, asm.Half),
		asm.JEq.Imm(asm.R0, 0x86dd, "ip6"),
		asm.JNE.Imm(asm.R0, 0x0800, "reject"),
		asm.LoadAbs(23, asm.Byte),
		asm.JNE.Imm(asm.R0, 6, "reject"),
		asm.LoadAbs(20, asm.Half),
		asm.JSet.Imm(asm.R0, 0x3fff, "reject"),
		asm.LoadAbs(14, asm.Byte),
		asm.And.Imm(asm.R0, 0xf),
		asm.LSh.Imm(asm.R0, 2),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.LoadInd(asm.R0, asm.R7, 16, asm.Half),
		asm.JNE.Imm(asm.R0, int32(port), "reject"),
	}
	in = append(in, loadSource(26, 4, v4)...)
	in = append(in,
		asm.Ja.Label("lookup"),

		asm.LoadAbs(20, asm.Byte).WithSymbol("ip6"),
		asm.Mov.Imm(asm.R7, 40),
	)
	for i := range filterExtHeaders {
		ext := fmt.Sprintf("ext%d", i)
		in = append(in, asm.JEq.Imm(asm.R0, 6, "tcp6"))
		for _, nh := range extHeaders {
			in = append(in, asm.JEq.Imm(asm.R0, int32(nh), ext))
		}
		in = append(in,
			asm.Ja.Label("reject"),
			asm.LoadInd(asm.R0, asm.R7, 14, asm.Byte).WithSymbol(ext), // next header
			asm.Mov.Reg(asm.R8, asm.R0),
			asm.LoadInd(asm.R0, asm.R7, 15, asm.Byte), // length
			asm.Add.Imm(asm.R0, 1),
			asm.LSh.Imm(asm.R0, 3),
			asm.Add.Reg(asm.R7, asm.R0),
			asm.Mov.Reg(asm.R0, asm.R8),
		)
	}
	accept, other := int32(acceptSnap), int32(0)
	if !proven {
		accept, other = other, accept
	}
	in = append(in,
		asm.JNE.Imm(asm.R0, 6, "reject"),
		asm.LoadInd(asm.R0, asm.R7, 16, asm.Half).WithSymbol("tcp6"),
		asm.JNE.Imm(asm.R0, int32(port), "reject"),
	)
	in = append(in, loadSource(22, 16, v6)...)
	in = append(in,
		asm.Mov.Reg(asm.R2, asm.RFP).WithSymbol("lookup"),
		asm.Add.Imm(asm.R2, keySlot),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "other"),
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord),
		asm.FnKtimeGetNs.Call(),
		asm.Sub.Reg(asm.R0, asm.R7),
		asm.LoadImm(asm.R1, int64(timeout), asm.DWord),
		asm.JLT.Reg(asm.R0, asm.R1, "proven"),

		asm.Mov.Imm(asm.R0, other).WithSymbol("other"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, accept).WithSymbol("proven"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("reject"),
		asm.Return(),
	)
	return in
}

// loadSource copies the size bytes of the frame at off (the source
// address) into the key's stack slot and points R1 at the map of that
// family, or goes to "other" when the frame is too short.
func loadSource(off, size int32, m int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, off),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, keySlot),
		asm.Mov.Imm(asm.R4, size),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "other"),
		asm.LoadMapPtr(asm.R1, m),
	}
}
