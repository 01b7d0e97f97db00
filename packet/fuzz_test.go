package packet_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// refOptions is an independent transcription of the kernel's
// synproxy_parse_options (plus SACK blocks), used to check the parser on
// arbitrary bytes.
func refOptions(b []byte) packet.Options {
	var o packet.Options
	length := len(b)
	i := 0
	for length > 0 {
		opcode := b[i]
		i++
		switch opcode {
		case 0:
			return o
		case 1:
			length--
			continue
		}
		if length < 2 {
			o.Malformed = true
			return o
		}
		opsize := int(b[i])
		i++
		if opsize < 2 || opsize > length {
			o.Malformed = true
			return o
		}
		d := b[i : i+opsize-2]
		switch {
		case opcode == 2 && opsize == 4:
			o.HasMSS, o.MSS = true, binary.BigEndian.Uint16(d)
		case opcode == 3 && opsize == 3:
			o.HasWScale, o.WScaleRaw, o.WScale = true, d[0], min(d[0], 14)
		case opcode == 8 && opsize == 10:
			o.HasTS, o.TSval, o.TSecr = true, binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])
		case opcode == 4 && opsize == 2:
			o.SACKPermitted = true
		case opcode == 5 && opsize >= 10 && (opsize-2)%8 == 0:
			o.NumSACK = uint8((opsize - 2) / 8)
			for k := range int(o.NumSACK) {
				o.SACK[k] = packet.SACKBlock{Left: binary.BigEndian.Uint32(d[8*k:]), Right: binary.BigEndian.Uint32(d[8*k+4:])}
			}
		}
		i += opsize - 2
		length -= opsize
	}
	return o
}

var decodeErrors = []error{packet.ErrTruncated, packet.ErrBadHeaderLength, packet.ErrBadLength, packet.ErrBadVersion,
	packet.ErrNotIP, packet.ErrFragment, packet.ErrNotTCP, packet.ErrExtHeader}

// parseSeeds are the fuzzer's starting points: every fixture frame, bare and
// behind Ethernet, and a few hand-made malformed packets.
func parseSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, name := range []string{"handshakes.pcap", "gopacket.pcap", "kernel-6.1.192-2.pcap"} {
		_, frames := readPcap(t, name)
		for i, f := range frames {
			if i >= 40 {
				break
			}
			seeds = append(seeds, f.data)
		}
	}
	seeds = append(seeds, rawV4([]byte{2, 4, 5, 180, 1, 3, 3, 7}, []byte("x")), rawV6(0, []byte{6, 0, 1, 4, 0, 0, 0, 0}),
		rawV6(44, []byte{6, 0, 0, 0, 0, 0, 0, 1}), ethFrame(0x8100, 0, []byte{0, 1, 0x86, 0xdd}), nil, []byte{0x45})
	return seeds
}

// FuzzParse: Decode never panics and never reads outside its slice (it is
// given a slice with no spare capacity); on success the offsets are ordered
// and inside the bytes, the options are what the kernel's parser reads, and
// gopacket, when it decodes the same bytes, agrees on the TCP fields; on
// failure the error is a typed one. A SYN-ACK built in reply decodes again.
func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds(f) {
		f.Add(s)
	}
	g := newGP()
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:len(b):len(b)]
		for _, link := range []packet.LinkType{packet.LinkIP, packet.LinkEthernet} {
			var p packet.Packet
			err := p.Decode(b, link)
			if err != nil {
				var pe *packet.Error
				if !errors.As(err, &pe) {
					t.Fatalf("untyped error %v", err)
				}
				known := false
				for _, e := range decodeErrors {
					known = known || errors.Is(err, e)
				}
				if !known || p.Valid() || p.Payload() != nil {
					t.Fatalf("error %v", err)
				}
				continue
			}
			if !(0 <= p.IPOffset && p.IPOffset < p.TCPOffset && p.TCPOffset+20 <= p.PayloadOffset && p.PayloadOffset <= p.End && p.End <= len(b)) {
				t.Fatalf("offsets %d %d %d %d of %d", p.IPOffset, p.TCPOffset, p.PayloadOffset, p.End, len(b))
			}
			if p.PayloadOffset-p.TCPOffset != int(p.DataOffset)*4 || p.Protocol != packet.ProtoTCP || (p.Version != 4 && p.Version != 6) {
				t.Fatalf("%+v", p)
			}
			if p.Version == 4 && (p.IPFlags&packet.IPv4MoreFragments != 0 || p.FragOffset != 0) {
				t.Fatal("a fragment decoded as TCP")
			}
			if want := refOptions(p.TCPHeader()[20:]); p.Options != want {
				t.Fatalf("options %+v, kernel parser %+v", p.Options, want)
			}
			_ = p.VerifyChecksums()
			_ = p.PartialTCPChecksum()
			if g.decode(b, link) == nil && g.has(layers.LayerTypeTCP) && p.ExtHeaders == 0 {
				tcp := &g.tcp
				if uint16(tcp.SrcPort) != p.SrcPort || uint16(tcp.DstPort) != p.DstPort || tcp.Seq != p.Seq || tcp.Ack != p.Ack ||
					gpFlags(tcp) != p.Flags || tcp.Window != p.Window || !bytes.Equal(tcp.Payload, p.Payload()) {
					t.Fatalf("gopacket disagrees: %+v\nours %+v", tcp, p)
				}
			}
			r := packet.Rule{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, Timestamp: true, SACKPerm: true, ECN: true}
			o := r.Offer(&p)
			out, err := packet.AppendSYNACK(nil, &p, 42, &o)
			if err != nil {
				t.Fatalf("AppendSYNACK: %v", err)
			}
			var q packet.Packet
			if err := q.Decode(out, link); err != nil {
				t.Fatalf("our SYN-ACK does not decode: %v", err)
			}
			if q.Ack != p.Seq+1 || q.SrcAddrPort() != p.DstAddrPort() || q.Options != wantOptions(o.Options) || q.VerifyChecksums() != nil {
				t.Fatalf("SYN-ACK %+v", q)
			}
		}
	})
}

// FuzzRoundTrip: for every builder input, decoding what was built gives the
// input back, checksums verify, and gopacket decodes the same fields; the
// SYN-ACK answering it carries what Offer said.
func FuzzRoundTrip(f *testing.F) {
	r := rand.New(rand.NewPCG(13, 14))
	for i := range 16 {
		s := randSegment(r, i%2 == 1)
		a := roundTripArgs(&s, i%4 >= 2)
		f.Add(a.v6, a.withEth, a.src, a.dst, a.sport, a.dport, a.seq, a.ack, a.flags, a.window, a.urgent, a.optMask,
			a.mss, a.ws, a.tsval, a.tsecr, a.sack, a.payload, a.ttl, a.tos, a.id, a.df, a.flow)
	}
	g := newGP()
	f.Fuzz(func(t *testing.T, v6, withEth bool, src, dst []byte, sport, dport uint16, seq, ack uint32, flags byte,
		window, urgent uint16, optMask byte, mss uint16, ws byte, tsval, tsecr uint32, sack []byte, payload []byte,
		ttl, tos byte, id uint16, df bool, flow uint32) {
		s := packet.Segment{
			Src: netip.AddrPortFrom(addrFrom(src, v6), sport), Dst: netip.AddrPortFrom(addrFrom(dst, v6), dport),
			Seq: seq, Ack: ack, Flags: packet.TCPFlags(flags), Window: window, Urgent: urgent, Payload: payload,
			TTL: ttl, TOS: tos, ID: id, DF: df, FlowLabel: flow & 0xfffff,
		}
		if v6 {
			s.ID, s.DF = 0, false
		}
		o := &s.Options
		o.HasMSS, o.MSS = optMask&1 != 0, mss
		o.HasWScale, o.WScale = optMask&2 != 0, ws
		o.SACKPermitted = optMask&4 != 0
		o.HasTS, o.TSval, o.TSecr = optMask&8 != 0, tsval, tsecr
		o.NumSACK = (optMask >> 4) % 5
		for i := range int(o.NumSACK) {
			if len(sack) >= 8*(i+1) {
				o.SACK[i] = packet.SACKBlock{Left: binary.BigEndian.Uint32(sack[8*i:]), Right: binary.BigEndian.Uint32(sack[8*i+4:])}
			}
		}
		var eth *packet.Ethernet
		link := packet.LinkIP
		if withEth {
			eth = &packet.Ethernet{Dst: [6]byte{2, 0, 0, 0, 0, 1}, Src: [6]byte{2, 0, 0, 0, 0, 2}}
			link = packet.LinkEthernet
		}
		b, err := packet.AppendSegment(nil, eth, &s)
		if o.Len() < 0 {
			if !errors.Is(err, packet.ErrOptionsTooLong) {
				t.Fatalf("options of %d blocks: %v", o.NumSACK, err)
			}
			return
		}
		if err != nil {
			if errors.Is(err, packet.ErrTooLong) && len(payload) > 65000 {
				return
			}
			t.Fatal(err)
		}
		p := compareWithGopacket(t, g, b, link)
		if err := p.VerifyChecksums(); err != nil {
			t.Fatal(err)
		}
		checkRoundTrip(t, p, eth, &s)

		rule := packet.Rule{HasMSS: optMask&0x10 != 0, MSS: mss ^ 0x5555, HasWScale: optMask&0x20 != 0, WScale: ws % 15,
			Timestamp: optMask&0x40 != 0, SACKPerm: optMask&0x80 != 0, ECN: df}
		offer := rule.Offer(p)
		offer.Options.TSval = tsval ^ tsecr
		sa, err := packet.AppendSYNACK(nil, p, seq^ack, &offer)
		if err != nil {
			t.Fatal(err)
		}
		q := compareWithGopacket(t, g, sa, link)
		if q.Seq != seq^ack || q.Ack != seq+1 || q.Flags != offer.Flags || q.Window != 0 || q.Options != wantOptions(offer.Options) ||
			q.SrcAddrPort() != s.Dst || q.DstAddrPort() != s.Src || q.VerifyChecksums() != nil {
			t.Fatalf("SYN-ACK %+v for offer %+v", q, offer)
		}
	})
}

func addrFrom(b []byte, v6 bool) netip.Addr {
	if v6 {
		var a [16]byte
		copy(a[:], b)
		return netip.AddrFrom16(a)
	}
	var a [4]byte
	copy(a[:], b)
	return netip.AddrFrom4(a)
}

// rtArgs are FuzzRoundTrip's arguments.
type rtArgs struct {
	v6, withEth    bool
	src, dst       []byte
	sport, dport   uint16
	seq, ack       uint32
	flags          byte
	window, urgent uint16
	optMask        byte
	mss            uint16
	ws             byte
	tsval, tsecr   uint32
	sack, payload  []byte
	ttl, tos       byte
	id             uint16
	df             bool
	flow           uint32
}

func (a *rtArgs) list() []any {
	return []any{a.v6, a.withEth, a.src, a.dst, a.sport, a.dport, a.seq, a.ack, a.flags, a.window, a.urgent, a.optMask,
		a.mss, a.ws, a.tsval, a.tsecr, a.sack, a.payload, a.ttl, a.tos, a.id, a.df, a.flow}
}

func roundTripArgs(s *packet.Segment, withEth bool) *rtArgs {
	o := &s.Options
	var mask byte
	for i, on := range []bool{o.HasMSS, o.HasWScale, o.SACKPermitted, o.HasTS} {
		if on {
			mask |= 1 << i
		}
	}
	mask |= o.NumSACK << 4
	sack := []byte{}
	for _, blk := range o.SACK[:o.NumSACK] {
		sack = binary.BigEndian.AppendUint32(sack, blk.Left)
		sack = binary.BigEndian.AppendUint32(sack, blk.Right)
	}
	payload := s.Payload
	if payload == nil {
		payload = []byte{}
	}
	return &rtArgs{!s.Src.Addr().Is4(), withEth, s.Src.Addr().AsSlice(), s.Dst.Addr().AsSlice(), s.Src.Port(), s.Dst.Port(),
		s.Seq, s.Ack, byte(s.Flags), s.Window, s.Urgent, mask, o.MSS, o.WScale, o.TSval, o.TSecr, sack, payload,
		s.TTL, s.TOS, s.ID, s.DF, s.FlowLabel}
}

// corpusFile encodes fuzz arguments in the "go test fuzz v1" format.
func corpusFile(vals ...any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case byte:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		default:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		}
	}
	return b.Bytes()
}

// TestFuzzCorpus writes the seed corpora under testdata/fuzz with -update
// and checks they are there (go test runs them as FuzzParse and
// FuzzRoundTrip subtests).
func TestFuzzCorpus(t *testing.T) {
	dirs := map[string][][]byte{}
	for i, s := range parseSeeds(t) {
		if i%4 == 0 || len(s) < 30 {
			dirs["FuzzParse"] = append(dirs["FuzzParse"], corpusFile(s))
		}
	}
	r := rand.New(rand.NewPCG(15, 16))
	for i := range 12 {
		s := randSegment(r, i%2 == 1)
		dirs["FuzzRoundTrip"] = append(dirs["FuzzRoundTrip"], corpusFile(roundTripArgs(&s, i%3 == 0).list()...))
	}
	for dir, files := range dirs {
		path := filepath.Join("testdata", "fuzz", dir)
		if *update {
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, c := range files {
				if err := os.WriteFile(filepath.Join(path, fmt.Sprintf("seed-%03d", i)), c, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, err := os.ReadDir(path)
		if err != nil || len(got) < len(files) {
			t.Fatalf("%s: %d seed files, want %d (%v)", path, len(got), len(files), err)
		}
	}
}
