package hairpin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Hairpin is the program, attached to one interface.
type Hairpin struct {
	objs hairpinObjects
	lnk  link.Link
	// Mode is "native" or "generic", the mode it attached in.
	Mode string
}

// Attach loads the program and attaches it to the interface of index
// ifindex in the calling thread's network namespace, in mode "native",
// "generic" or "" (native, else generic): it reflects the SYNs from src to
// port. On a veth in native mode the peer must run NAPI (an XDP program of
// its own, or GRO on) to receive what XDP_TX sends it.
func Attach(ifindex int, src netip.Prefix, port uint16, mode string) (*Hairpin, error) {
	if !src.Addr().Is4() {
		return nil, errors.New("hairpin: an IPv4 source prefix is needed")
	}
	_ = rlimit.RemoveMemlock()
	h := &Hairpin{}
	if err := loadHairpinObjects(&h.objs, nil); err != nil {
		return nil, fmt.Errorf("hairpin: load: %w", err)
	}
	net4 := src.Masked().Addr().As4()
	var mask [4]byte
	binary.BigEndian.PutUint32(mask[:], ^uint32(0)<<(32-src.Bits()))
	var pb [2]byte
	binary.BigEndian.PutUint16(pb[:], port)
	m := hairpinMatch{Net: binary.NativeEndian.Uint32(net4[:]), Mask: binary.NativeEndian.Uint32(mask[:]),
		Port: uint32(binary.NativeEndian.Uint16(pb[:]))}
	if err := h.objs.Config.Put(uint32(0), m); err != nil {
		h.objs.Close()
		return nil, fmt.Errorf("hairpin: config: %w", err)
	}
	modes := []link.XDPAttachFlags{link.XDPDriverMode, link.XDPGenericMode}
	switch mode {
	case "native":
		modes = modes[:1]
	case "generic":
		modes = modes[1:]
	}
	var errs []error
	for _, f := range modes {
		l, err := link.AttachXDP(link.XDPOptions{Program: h.objs.Hairpin, Interface: ifindex, Flags: f})
		if err == nil {
			h.lnk, h.Mode = l, "native"
			if f == link.XDPGenericMode {
				h.Mode = "generic"
			}
			return h, nil
		}
		errs = append(errs, err)
	}
	h.objs.Close()
	return nil, fmt.Errorf("hairpin: attach: %w", errors.Join(errs...))
}

// Close detaches the program.
func (h *Hairpin) Close() error {
	return errors.Join(h.lnk.Close(), h.objs.Close())
}
