package afxdp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// The protection policy in the XDP program: the allow and deny lists (two
// generations of LPM tries, switched by one word of the config map) and the
// on-demand mode (SYNs pass to the service's listener until the daemon
// engages the cookies; the rest of a connection passed so follows it). The
// limits, the reflection budget and the monitor mode's counts are the
// engine's.

// Indices of the program's config map and the values of its mode word (see
// bpf/xdp.c).
const (
	configPort   = 0
	configMode   = 1
	configLists  = 2
	configProven = 3

	modeOnDemand = 1
	modeEngaged  = 2

	listAllow = 1
	listDeny  = 2
)

// Indices of the program's counters (COUNT_ in bpf/xdp.c).
const (
	countRedirected = iota
	countSocket
	countNotLocal
	countAllowed
	countDenied
	countSYN
	countSYNPassed
	countFlowPassed
	countProven
	countMax
)

// SetLists replaces the allow and deny lists the program applies, at once:
// it fills the tries of the generation not in force and then switches the
// program to them, so every packet sees the old lists or the new ones. A
// denied source's packets to the port are dropped (before any socket), an
// allowed source's are passed to the stack (where the nft rules send them
// to the service); a source in both is denied.
func (d *Driver) SetLists(allow, deny []netip.Prefix) error {
	return d.prog.setLists(allow, deny)
}

// SetEngaged engages the cookies of an on-demand driver (Config.OnDemand):
// from then on the SYNs go to the sockets; disengaged, they pass to the
// stack. The connections the program passed keep passing either way.
func (d *Driver) SetEngaged(engaged bool) error {
	if !d.cfg.OnDemand {
		return errors.New("afxdp: SetEngaged on a driver not on demand (Config.OnDemand)")
	}
	m := uint32(modeOnDemand)
	if engaged {
		m |= modeEngaged
	}
	return driver.NewOpError("set the XDP program's mode", d.prog.objs.Config.Put(uint32(configMode), m))
}

// setLists fills the tries of the other generation with the lists and
// switches the program to it.
func (p *program) setLists(allow, deny []netip.Prefix) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var cur uint32
	if err := p.objs.Config.Lookup(uint32(configLists), &cur); err != nil {
		return driver.NewOpError("read the XDP program's lists generation", err)
	}
	next := 1 - cur&1
	m4, m6 := p.objs.Lists40, p.objs.Lists60
	if next == 1 {
		m4, m6 = p.objs.Lists41, p.objs.Lists61
	}
	var errs []error
	errs = append(errs, clearMap[xdpLpm4](m4), clearMap[xdpLpm6](m6))
	for pf, v := range listEntries(allow, deny) {
		if pf.Addr().Is4() {
			errs = append(errs, m4.Put(lpm4(pf), v))
		} else {
			errs = append(errs, m6.Put(lpm6(pf), v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return driver.NewOpError("fill the XDP program's lists", err)
	}
	return driver.NewOpError("switch the XDP program's lists", p.objs.Config.Put(uint32(configLists), next))
}

// listEntries are the tries' entries: each prefix with LIST_ALLOW or
// LIST_DENY, an allowed prefix inside a denied one (the longest match in
// the trie) denied.
func listEntries(allow, deny []netip.Prefix) map[netip.Prefix]uint8 {
	e := map[netip.Prefix]uint8{}
	var denied []netip.Prefix
	for _, p := range deny {
		if p.IsValid() {
			p = p.Masked()
			e[p] = listDeny
			denied = append(denied, p)
		}
	}
	for _, p := range allow {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		if _, ok := e[p]; ok {
			continue
		}
		e[p] = listAllow
		if slices.ContainsFunc(denied, func(q netip.Prefix) bool { return q.Bits() <= p.Bits() && q.Contains(p.Addr()) }) {
			e[p] = listDeny
		}
	}
	return e
}

func lpm4(p netip.Prefix) xdpLpm4 {
	b := p.Addr().As4()
	return xdpLpm4{Prefixlen: uint32(p.Bits()), Addr: binary.NativeEndian.Uint32(b[:])}
}

func lpm6(p netip.Prefix) xdpLpm6 {
	b := p.Addr().As16()
	k := xdpLpm6{Prefixlen: uint32(p.Bits())}
	for i := range k.Addr {
		k.Addr[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return k
}

// clearMap deletes every entry of m.
func clearMap[K any](m *ebpf.Map) error {
	var keys []K
	var k K
	var v uint8
	it := m.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		return err
	}
	var errs []error
	for _, k := range keys {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
