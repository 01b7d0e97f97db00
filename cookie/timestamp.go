package cookie

// TSBitsMask selects the low bits of a TSval that carry the timestamp cookie.
const TSBitsMask = 0x3f

// NoWScale is the window-scale nibble that means "the SYN had no window-scale
// option".
const NoWScale = 0xf

// MaxWScale is the largest window-scale shift TCP allows (RFC 7323); larger
// shifts are clamped to it.
const MaxWScale = 14

// TSOptions are the SYN options a timestamp cookie remembers: the client's
// window-scale shift, SACK-permitted and ECN. They ride in the low 6 bits of
// the SYN-ACK's TSval and come back in the ACK's TSecr:
//
//	bit   5    4    3..0
//	    ECN  SACK  window-scale shift (0..14), 15 = no window scaling
type TSOptions struct {
	WScale    uint8 // the client's shift; clamped to MaxWScale when encoded
	HasWScale bool  // the SYN carried a window-scale option
	SACK      bool  // SACK-permitted was offered (and allowed)
	ECN       bool  // ECN was requested (ECE and CWR) and allowed
}

// Bits returns the 6 option bits of o.
func (o TSOptions) Bits() uint32 {
	b := uint32(NoWScale)
	if o.HasWScale {
		b = uint32(min(o.WScale, MaxWScale))
	}
	if o.SACK {
		b |= 1 << 4
	}
	if o.ECN {
		b |= 1 << 5
	}
	return b
}

// TSval returns the SYN-ACK's TSval as netfilter SYNPROXY builds it: the
// millisecond clock msNow with its low 6 bits replaced by the option bits. It
// can be up to 63 ms ahead of the clock; the kernel does not correct that.
func TSval(msNow uint32, o TSOptions) uint32 {
	return msNow&^TSBitsMask | o.Bits()
}

// TSvalStack returns the timestamp the kernel's TCP stack puts in a cookie
// SYN-ACK before adding the connection's random offset: like TSval on the
// 64-bit millisecond clock, moved back 64 ms when it would be ahead of it.
func TSvalStack(msNow uint64, o TSOptions) uint32 {
	ts := msNow&^TSBitsMask | uint64(o.Bits())
	if ts > msNow {
		ts -= TSBitsMask + 1
	}
	return uint32(ts)
}

// DecodeTSecr reads the options a timestamp cookie carries from the TSecr of
// the client's ACK, as netfilter SYNPROXY does: the upper 26 bits are not
// checked.
func DecodeTSecr(tsecr uint32) TSOptions {
	var o TSOptions
	if ws := uint8(tsecr & 0xf); ws != NoWScale {
		o.WScale, o.HasWScale = ws, true
	}
	o.SACK = tsecr&(1<<4) != 0
	o.ECN = tsecr&(1<<5) != 0
	return o
}
