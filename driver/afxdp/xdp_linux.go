package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/localaddr"
)

// program is the loaded XDP program and its maps, attached to one
// interface through a BPF link: closing the link (or the process dying)
// detaches it.
type program struct {
	objs xdpObjects
	lnk  link.Link
	mode Mode

	mu     sync.Mutex // held while the local address maps are synced
	in4    map[xdpLpm4]struct{}
	in6    map[xdpLpm6]struct{}
	syncEr error
}

// loadProgram loads the program and its maps and sets the protected port
// and, when proven is not nil, proven clients first.
func loadProgram(port uint16, proven *driver.Proven) (*program, error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	_ = rlimit.RemoveMemlock()
	p := &program{in4: map[xdpLpm4]struct{}{}, in6: map[xdpLpm6]struct{}{}}
	spec, err := loadXdp()
	if err != nil {
		return nil, driver.NewOpError("load XDP program", err)
	}
	if proven != nil {
		spec.Maps[xdpMapProven4].MaxEntries = proven.SizeOrDefault()
		spec.Maps[xdpMapProven6].MaxEntries = proven.SizeOrDefault()
	}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("afxdp: the kernel refused the XDP program: %+v", ve)
		}
		return nil, driver.NewOpError("load XDP program", err)
	}
	if err := p.objs.Config.Put(uint32(configPort), netPort(port)); err != nil {
		p.close()
		return nil, driver.NewOpError("set the XDP program's port", err)
	}
	if proven != nil {
		if err := p.objs.Config.Put(uint32(configProven), provenTimeoutMs(proven)); err != nil {
			p.close()
			return nil, driver.NewOpError("set the XDP program's proven timeout", err)
		}
	}
	return p, nil
}

// netPort is port in network byte order, as the program compares it with
// the TCP header's field read from memory.
func netPort(port uint16) uint32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], port)
	return uint32(binary.NativeEndian.Uint16(b[:]))
}

// attach attaches the program to the interface in the mode asked for (auto:
// native, else generic).
func (p *program) attach(ifindex int, mode Mode) error {
	try := []Mode{mode}
	if mode == ModeAuto {
		try = []Mode{ModeNative, ModeGeneric}
	}
	var errs []error
	for _, m := range try {
		flags := link.XDPDriverMode
		if m == ModeGeneric {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: p.objs.SynproxyLite, Interface: ifindex, Flags: flags})
		if err == nil {
			p.lnk, p.mode = l, m
			return nil
		}
		errs = append(errs, fmt.Errorf("%s mode: %w", m, err))
	}
	err := errs[0]
	for _, e := range errs[1:] {
		err = fmt.Errorf("%w; %w", err, e) // one line, for the log
	}
	return driver.NewOpError("attach XDP program", err)
}

// setSocket puts the AF_XDP socket fd in the map for receive queue q.
func (p *program) setSocket(q int, fd int) error {
	return driver.NewOpError(fmt.Sprintf("add the socket of queue %d to the XSK map", q),
		p.objs.Xsks.Put(uint32(q), uint32(fd)))
}

// setProvenSocket puts the proven sources' AF_XDP socket fd in the map for
// receive queue q.
func (p *program) setProvenSocket(q int, fd int) error {
	return driver.NewOpError(fmt.Sprintf("add the proven socket of queue %d to the XSK map", q),
		p.objs.ProvenXsks.Put(uint32(q), uint32(fd)))
}

// syncLocals makes the program's local address maps hold l: the new entries
// are added before the old ones go.
func (p *program) syncLocals(l *localaddr.Set) {
	p.mu.Lock()
	defer p.mu.Unlock()
	want4, want6 := map[xdpLpm4]struct{}{}, map[xdpLpm6]struct{}{}
	add := func(pf netip.Prefix) {
		a := pf.Addr()
		if a.Is4() {
			b := a.As4()
			want4[xdpLpm4{Prefixlen: uint32(pf.Bits()), Addr: binary.NativeEndian.Uint32(b[:])}] = struct{}{}
			return
		}
		b := a.As16()
		k := xdpLpm6{Prefixlen: uint32(pf.Bits())}
		for i := range k.Addr {
			k.Addr[i] = binary.NativeEndian.Uint32(b[4*i:])
		}
		want6[k] = struct{}{}
	}
	for a := range l.Addrs {
		add(netip.PrefixFrom(a, a.BitLen()))
	}
	for _, n := range l.Nets {
		add(n.Masked())
	}
	var errs []error
	one := uint8(1)
	for k := range want4 {
		if _, ok := p.in4[k]; !ok {
			errs = append(errs, p.objs.Local4.Put(k, one))
		}
	}
	for k := range want6 {
		if _, ok := p.in6[k]; !ok {
			errs = append(errs, p.objs.Local6.Put(k, one))
		}
	}
	for k := range p.in4 {
		if _, ok := want4[k]; !ok {
			errs = append(errs, p.objs.Local4.Delete(k))
		}
	}
	for k := range p.in6 {
		if _, ok := want6[k]; !ok {
			errs = append(errs, p.objs.Local6.Delete(k))
		}
	}
	p.in4, p.in6 = want4, want6
	p.syncEr = driver.NewOpError("update the local address maps", errors.Join(errs...))
}

// syncErr is the error of the last update of the local address maps; the
// watch's goroutine makes them.
func (p *program) syncErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.syncEr
}

// counts returns the program's counters, summed over the CPUs.
func (p *program) counts() (c ProgramCounters) {
	var per []uint64
	get := func(i uint32) uint64 {
		if p.objs.Counters.Lookup(i, &per) != nil {
			return 0
		}
		var s uint64
		for _, v := range per {
			s += v
		}
		return s
	}
	return ProgramCounters{Redirected: get(countRedirected), Socket: get(countSocket), NotLocal: get(countNotLocal),
		Allowed: get(countAllowed), Denied: get(countDenied), SYNs: get(countSYN),
		SYNsPassed: get(countSYNPassed), FlowPassed: get(countFlowPassed), Proven: get(countProven)}
}

func (p *program) close() error {
	var errs []error
	if p.lnk != nil {
		errs = append(errs, p.lnk.Close())
	}
	errs = append(errs, p.objs.Close())
	return errors.Join(errs...)
}

// ProgramCounters are the XDP program's counters.
type ProgramCounters struct {
	// Redirected counts the segments sent to the sockets (or to the stack
	// when their queue has none).
	Redirected uint64
	// Socket counts the segments of the protected port passed to the
	// stack because a socket owns them: established traffic.
	Socket uint64
	// NotLocal counts the segments to the protected port for an address
	// that is not the host's, passed to the stack.
	NotLocal uint64
	// Allowed and Denied count the segments to the port of the allowed
	// sources (passed to the stack) and the denied ones (dropped).
	Allowed, Denied uint64
	// SYNs counts the SYNs to the port of the sources not listed, whoever
	// answers them: the rate an on-demand daemon follows.
	SYNs uint64
	// SYNsPassed counts the SYNs an on-demand program passed to the
	// service while not engaged, FlowPassed the other segments of their
	// connections.
	SYNsPassed, FlowPassed uint64
	// Proven counts the segments of proven sources sent to the proven
	// sockets (Config.Proven).
	Proven uint64
}

// Probe reports whether the driver's XDP program attaches to the interface
// called iface, and in which mode (native, else generic). It attaches the
// program and detaches it at once.
func Probe(iface string) (Mode, error) {
	ifi, err := interfaceByName(iface)
	if err != nil {
		return 0, err
	}
	p, err := loadProgram(1, nil)
	if err != nil {
		return 0, err
	}
	defer p.close()
	if err := p.attach(ifi.Index, ModeAuto); err != nil {
		return 0, err
	}
	return p.mode, nil
}
