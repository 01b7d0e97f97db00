package afpacket

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Classic BPF opcodes (linux/filter.h).
const (
	bpfLdhAbs  = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
	bpfLdbAbs  = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
	bpfLdhInd  = unix.BPF_LD | unix.BPF_H | unix.BPF_IND
	bpfLdbInd  = unix.BPF_LD | unix.BPF_B | unix.BPF_IND
	bpfLdxMsh  = unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH
	bpfLdxImm  = unix.BPF_LDX | unix.BPF_W | unix.BPF_IMM
	bpfLdMem   = unix.BPF_LD | unix.BPF_MEM
	bpfSt      = unix.BPF_ST
	bpfAddK    = unix.BPF_ALU | unix.BPF_ADD | unix.BPF_K
	bpfAddX    = unix.BPF_ALU | unix.BPF_ADD | unix.BPF_X
	bpfLshK    = unix.BPF_ALU | unix.BPF_LSH | unix.BPF_K
	bpfTax     = unix.BPF_MISC | unix.BPF_TAX
	bpfJa      = unix.BPF_JMP | unix.BPF_JA
	bpfJeq     = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJset    = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfRet     = unix.BPF_RET | unix.BPF_K
	acceptSnap = 0x40000 // whole packet
)

// filterExtHeaders is the number of IPv6 extension headers the filter walks
// to reach TCP.
const filterExtHeaders = 4

// extHeaders are the IPv6 extension headers the filter walks: those that
// share one format (next header, length in 8-byte units beyond the first;
// RFC 7045) and that packet.Decode walks too. Fragments, AH and ESP stop the
// walk: the packet is not taken.
var extHeaders = []uint32{0, 43, 60, 135, 139, 140, 253, 254}

// portFilter is a classic BPF program over an Ethernet frame that accepts
// unfragmented IPv4 TCP segments to port, IPv6 TCP segments to port behind
// up to filterExtHeaders extension headers, and nothing else. X holds the
// offset of the next header from the start of the IP header:
//
//	    ldh [12]                  ethertype
//	    jeq #0x0800, ip4, ip6
//	ip4 ldb [23]                  IPv4 protocol
//	    jeq #6, 1f, reject
//	1:  ldh [20]                  fragment offset and MF
//	    jset #0x3fff, reject, 1f
//	1:  ldxb 4*([14]&0xf)         IPv4 header length
//	    ja tcp
//	ip6 jeq #0x86dd, 1f, reject
//	1:  ldb [20]                  IPv6 next header
//	    ldx #40
//	    (filterExtHeaders times:)
//	    jeq #6, tcp               TCP
//	    jeq #0/#43/#60/..., ext   an extension header
//	    ja reject
//	ext ldb [x+14]                its next header ...
//	    st M[0]
//	    ldb [x+15]                ... and its length
//	    add #1
//	    lsh #3
//	    add x
//	    tax                       X: past it
//	    ld M[0]
//	    (end)
//	    jeq #6, tcp, reject
//	tcp ldh [x+16]                TCP destination port
//	    jeq #port, accept, reject
//	accept ret #262144
//	reject ret #0
func portFilter(port uint16) []unix.SockFilter {
	var a bpfAsm
	a.op(bpfLdhAbs, 12)
	a.jeq(0x0800, "", "ip6")
	a.op(bpfLdbAbs, 23)
	a.jeq(6, "", "reject")
	a.op(bpfLdhAbs, 20)
	a.jset(0x3fff, "reject", "")
	a.op(bpfLdxMsh, 14)
	a.ja("tcp")
	a.label("ip6")
	a.jeq(0x86dd, "", "reject")
	a.op(bpfLdbAbs, 20)
	a.op(bpfLdxImm, 40)
	for i := range filterExtHeaders {
		ext := fmt.Sprintf("ext%d", i)
		a.jeq(6, "tcp", "")
		for _, nh := range extHeaders {
			a.jeq(nh, ext, "")
		}
		a.ja("reject")
		a.label(ext)
		a.op(bpfLdbInd, 14)
		a.op(bpfSt, 0)
		a.op(bpfLdbInd, 15)
		a.op(bpfAddK, 1)
		a.op(bpfLshK, 3)
		a.op(bpfAddX, 0)
		a.op(bpfTax, 0)
		a.op(bpfLdMem, 0)
	}
	a.jeq(6, "", "reject")
	a.label("tcp")
	a.op(bpfLdhInd, 16)
	a.jeq(uint32(port), "", "reject")
	a.op(bpfRet, acceptSnap)
	a.label("reject")
	a.op(bpfRet, 0)
	return a.assemble()
}

// bpfAsm assembles a classic BPF program with forward jumps to labels; an
// empty label means the next instruction.
type bpfAsm struct {
	prog   []unix.SockFilter
	labels map[string]int
	fix    []bpfFix
}

type bpfFix struct {
	pc     int
	jt, jf string // conditional jump targets
	ja     string // unconditional jump target
}

func (a *bpfAsm) op(code uint16, k uint32) {
	a.prog = append(a.prog, unix.SockFilter{Code: code, K: k})
}

func (a *bpfAsm) jump(code uint16, k uint32, jt, jf string) {
	a.fix = append(a.fix, bpfFix{pc: len(a.prog), jt: jt, jf: jf})
	a.op(code, k)
}

func (a *bpfAsm) jeq(k uint32, jt, jf string)  { a.jump(bpfJeq, k, jt, jf) }
func (a *bpfAsm) jset(k uint32, jt, jf string) { a.jump(bpfJset, k, jt, jf) }

func (a *bpfAsm) ja(to string) {
	a.fix = append(a.fix, bpfFix{pc: len(a.prog), ja: to})
	a.op(bpfJa, 0)
}

func (a *bpfAsm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.prog)
}

// assemble resolves the jumps. A jump that is backwards or too long for its
// 8-bit field is a bug in the program above: it panics.
func (a *bpfAsm) assemble() []unix.SockFilter {
	off := func(pc int, to string) int {
		if to == "" {
			return 0
		}
		t, ok := a.labels[to]
		if !ok || t <= pc {
			panic("afpacket: bad BPF jump to " + to)
		}
		return t - pc - 1
	}
	for _, f := range a.fix {
		in := &a.prog[f.pc]
		if f.ja != "" {
			in.K = uint32(off(f.pc, f.ja))
			continue
		}
		jt, jf := off(f.pc, f.jt), off(f.pc, f.jf)
		if jt > 255 || jf > 255 {
			panic("afpacket: BPF jump too long")
		}
		in.Jt, in.Jf = uint8(jt), uint8(jf)
	}
	return a.prog
}
