package packet

import "encoding/binary"

// TCP option kinds.
const (
	OptEOL       = 0
	OptNOP       = 1
	OptMSS       = 2
	OptWScale    = 3
	OptSACKPerm  = 4
	OptSACK      = 5
	OptTimestamp = 8
)

// MaxWScale is the largest window-scale shift (RFC 7323); the parser clamps
// larger values to it, as the kernel does.
const MaxWScale = 14

// MaxSACKBlocks is the most SACK blocks a TCP header has room for.
const MaxSACKBlocks = 4

// SACKBlock is one block of a SACK option: the left and right edges.
type SACKBlock struct{ Left, Right uint32 }

// Options are the TCP options of a segment in a fixed struct: no slices, so
// decoding them allocates nothing. The zero value is "no options".
//
// Parsing follows the kernel's synproxy parser (synproxy_parse_options): it
// stops at EOL, at an option whose length is below 2 or runs past the end of
// the header, and when a single byte is left; it takes MSS only with length
// 4, window scale only with length 3, SACK-permitted only with length 2 and
// timestamps only with length 10, and skips every other option by its length.
// A later option of a kind replaces an earlier one. SACK blocks, which the
// synproxy parser ignores, are recorded as the TCP stack reads them (length
// 2 + 8·n, n ≥ 1).
//
// The builders emit options from the same struct, in the order synproxy
// uses: MSS; timestamps (with SACK-permitted in the first two bytes when both
// are set: 04 02 08 0a, else 01 01 08 0a); SACK-permitted alone as 01 01 04 02;
// window scale as 01 03 03 ws; SACK blocks as 01 01 05 len. Every group is
// 4-byte aligned with NOPs, never EOL.
type Options struct {
	// MSS is the maximum segment size (HasMSS).
	MSS    uint16
	HasMSS bool
	// WScale is the window-scale shift clamped to MaxWScale, the value the
	// kernel uses; WScaleRaw is the byte on the wire. The builders write
	// WScale.
	WScale    uint8
	WScaleRaw uint8
	HasWScale bool
	// SACKPermitted: the SACK-permitted option.
	SACKPermitted bool
	// TSval and TSecr are the timestamp option's values (HasTS).
	TSval, TSecr uint32
	HasTS        bool
	// SACK holds the first NumSACK blocks of a SACK option.
	SACK    [MaxSACKBlocks]SACKBlock
	NumSACK uint8
	// Malformed is set when parsing stopped at an option with a bad length
	// (below 2, past the end, or a lone trailing byte). The options before it
	// are kept, as the kernel keeps them.
	Malformed bool
}

func (o *Options) parse(b []byte) {
	for len(b) > 0 {
		switch b[0] {
		case OptEOL:
			return
		case OptNOP:
			b = b[1:]
			continue
		}
		if len(b) < 2 {
			o.Malformed = true
			return
		}
		l := int(b[1])
		if l < 2 || l > len(b) {
			o.Malformed = true
			return
		}
		switch b[0] {
		case OptMSS:
			if l == 4 {
				o.MSS, o.HasMSS = be16(b[2:]), true
			}
		case OptWScale:
			if l == 3 {
				o.WScaleRaw, o.WScale, o.HasWScale = b[2], min(b[2], MaxWScale), true
			}
		case OptSACKPerm:
			if l == 2 {
				o.SACKPermitted = true
			}
		case OptTimestamp:
			if l == 10 {
				o.TSval, o.TSecr, o.HasTS = be32(b[2:]), be32(b[6:]), true
			}
		case OptSACK:
			if l >= 10 && (l-2)%8 == 0 {
				n := (l - 2) / 8 // at most 4: l ≤ 40
				for i := range n {
					o.SACK[i] = SACKBlock{be32(b[2+8*i:]), be32(b[6+8*i:])}
				}
				o.NumSACK = uint8(n)
			}
		}
		b = b[l:]
	}
}

// Len returns the number of bytes the builders emit for o, or -1 when that
// is more than MaxTCPOptionsLen.
func (o *Options) Len() int {
	n := 0
	if o.HasMSS {
		n += 4
	}
	if o.HasTS {
		n += 12
	} else if o.SACKPermitted {
		n += 4
	}
	if o.HasWScale {
		n += 4
	}
	if o.NumSACK > MaxSACKBlocks {
		return -1
	}
	if o.NumSACK > 0 {
		n += 4 + 8*int(o.NumSACK)
	}
	if n > MaxTCPOptionsLen {
		return -1
	}
	return n
}

// put writes the options into b, which is exactly o.Len() bytes long, and
// returns the sum of their 16-bit words (unfolded).
func (o *Options) put(b []byte) uint64 {
	var sum uint64
	if o.HasMSS {
		w := uint32(OptMSS)<<24 | 4<<16 | uint32(o.MSS)
		binary.BigEndian.PutUint32(b, w)
		sum += sum32(w)
		b = b[4:]
	}
	if o.HasTS {
		w := uint32(OptNOP)<<24 | OptNOP<<16 | OptTimestamp<<8 | 10
		if o.SACKPermitted {
			w = uint32(OptSACKPerm)<<24 | 2<<16 | OptTimestamp<<8 | 10
		}
		binary.BigEndian.PutUint32(b, w)
		binary.BigEndian.PutUint32(b[4:], o.TSval)
		binary.BigEndian.PutUint32(b[8:], o.TSecr)
		sum += sum32(w) + sum32(o.TSval) + sum32(o.TSecr)
		b = b[12:]
	} else if o.SACKPermitted {
		w := uint32(OptNOP)<<24 | OptNOP<<16 | OptSACKPerm<<8 | 2
		binary.BigEndian.PutUint32(b, w)
		sum += sum32(w)
		b = b[4:]
	}
	if o.HasWScale {
		w := uint32(OptNOP)<<24 | OptWScale<<16 | 3<<8 | uint32(o.WScale)
		binary.BigEndian.PutUint32(b, w)
		sum += sum32(w)
		b = b[4:]
	}
	if n := int(o.NumSACK); n > 0 {
		w := uint32(OptNOP)<<24 | OptNOP<<16 | OptSACK<<8 | uint32(2+8*n)
		binary.BigEndian.PutUint32(b, w)
		sum += sum32(w)
		for i := range n {
			blk := o.SACK[i]
			binary.BigEndian.PutUint32(b[4+8*i:], blk.Left)
			binary.BigEndian.PutUint32(b[8+8*i:], blk.Right)
			sum += sum32(blk.Left) + sum32(blk.Right)
		}
	}
	return sum
}

// AppendOptions appends the options' wire bytes, in the builders' order, to
// dst. It returns ErrOptionsTooLong if they exceed MaxTCPOptionsLen.
func AppendOptions(dst []byte, o *Options) ([]byte, error) {
	n := o.Len()
	if n < 0 {
		return dst, ErrOptionsTooLong
	}
	dst, b := grow(dst, n)
	o.put(b)
	return dst, nil
}

// grow extends dst by n bytes and returns it with the new bytes, zeroed.
// It allocates only when dst lacks the capacity.
func grow(dst []byte, n int) ([]byte, []byte) {
	l := len(dst)
	if cap(dst)-l < n {
		nd := make([]byte, l, l+n)
		copy(nd, dst)
		dst = nd
	}
	dst = dst[:l+n]
	b := dst[l:]
	clear(b)
	return dst, b
}
