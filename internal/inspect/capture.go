package inspect

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// captureReader reads frames with the link type each was captured on.
type captureReader interface {
	next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error)
}

type pcapReader struct{ r *pcapgo.Reader }

func (p pcapReader) next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := p.r.ReadPacketData()
	return data, ci, p.r.LinkType(), err
}

type ngReader struct{ r *pcapgo.NgReader }

func (p ngReader) next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := p.r.ReadPacketData()
	if err != nil {
		return nil, ci, 0, err
	}
	intf, ierr := p.r.Interface(ci.InterfaceIndex)
	if ierr != nil {
		return data, ci, p.r.LinkType(), nil
	}
	return data, ci, intf.LinkType, nil
}

// errReaderPanic wraps a panic of the capture readers: gopacket's pcapng
// reader divides by a zero timestamp resolution on some malformed files.
var errReaderPanic = errors.New("capture reader failed on a malformed file")

func recoverReader(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", errReaderPanic, r)
	}
}

// safeReader turns panics of the reader it wraps into errors.
type safeReader struct{ r captureReader }

func (s safeReader) next() (data []byte, ci gopacket.CaptureInfo, lt layers.LinkType, err error) {
	defer recoverReader(&err)
	return s.r.next()
}

// openCapture tells pcap from pcapng by the first four bytes.
func openCapture(r io.Reader) (cr captureReader, format string, err error) {
	defer recoverReader(&err)
	cr, format, err = openCaptureUnsafe(r)
	if err == nil {
		cr = safeReader{cr}
	}
	return cr, format, err
}

func openCaptureUnsafe(r io.Reader) (captureReader, string, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, "", fmt.Errorf("not a capture file: %v", err)
	}
	switch binary.BigEndian.Uint32(magic) {
	case 0x0a0d0d0a:
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, "", fmt.Errorf("pcapng: %v", err)
		}
		return ngReader{ng}, "pcapng", nil
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, "", fmt.Errorf("pcap: %v", err)
		}
		return pcapReader{pr}, "pcap", nil
	}
	return nil, "", fmt.Errorf("not a pcap or pcapng file (magic %x)", magic)
}

// linkTypeLinuxSLL2 is LINKTYPE_LINUX_SLL2 (276, what "tcpdump -i any"
// writes today) as gopacket delivers it: its LinkType is 8 bits wide, so 276
// arrives as 20, a value no other link type uses.
const linkTypeLinuxSLL2 = layers.LinkType(276 & 0xff)

var errLinkType = errors.New("unsupported link type")

// decodeFrame decodes a captured frame of link type lt into p.
func decodeFrame(p *packet.Packet, data []byte, lt layers.LinkType) error {
	switch lt {
	case layers.LinkTypeEthernet:
		return p.Decode(data, packet.LinkEthernet)
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12, 14: // 12/14: DLT_RAW on some systems
		return p.Decode(data, packet.LinkIP)
	case layers.LinkTypeLinuxSLL: // 16-byte cooked header, protocol at 14
		if len(data) < 16 {
			return p.Decode(nil, packet.LinkIP)
		}
		if et := binary.BigEndian.Uint16(data[14:]); et != packet.EtherTypeIPv4 && et != packet.EtherTypeIPv6 {
			return packet.ErrNotIP
		}
		return p.Decode(data[16:], packet.LinkIP)
	case linkTypeLinuxSLL2: // 20-byte cooked header, protocol at 0
		if len(data) < 20 {
			return p.Decode(nil, packet.LinkIP)
		}
		if et := binary.BigEndian.Uint16(data); et != packet.EtherTypeIPv4 && et != packet.EtherTypeIPv6 {
			return packet.ErrNotIP
		}
		return p.Decode(data[20:], packet.LinkIP)
	case layers.LinkTypeNull, layers.LinkTypeLoop: // 4-byte address family
		if len(data) < 4 {
			return p.Decode(nil, packet.LinkIP)
		}
		return p.Decode(data[4:], packet.LinkIP)
	}
	return fmt.Errorf("%w %d", errLinkType, lt)
}
