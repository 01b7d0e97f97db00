package afpacket

import "golang.org/x/sys/unix"

// Classic BPF opcodes (linux/filter.h).
const (
	bpfLdhAbs  = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
	bpfLdbAbs  = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
	bpfLdhInd  = unix.BPF_LD | unix.BPF_H | unix.BPF_IND
	bpfLdxMsh  = unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH
	bpfJeq     = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJset    = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfRet     = unix.BPF_RET | unix.BPF_K
	acceptSnap = 0x40000 // whole packet
)

// portFilter is a classic BPF program over an Ethernet frame that accepts
// unfragmented IPv4 TCP and IPv6 TCP (no extension headers) segments to
// port, and nothing else:
//
//	 0 ldh [12]                 ethertype
//	 1 jeq #0x0800, 2, 9
//	 2 ldb [23]                 IPv4 protocol
//	 3 jeq #6, 4, 15
//	 4 ldh [20]                 fragment offset and MF
//	 5 jset #0x3fff, 15, 6
//	 6 ldxb 4*([14]&0xf)        IPv4 header length
//	 7 ldh [x+16]               TCP destination port
//	 8 jeq #port, 14, 15
//	 9 jeq #0x86dd, 10, 15
//	10 ldb [20]                 IPv6 next header
//	11 jeq #6, 12, 15
//	12 ldh [56]                 TCP destination port
//	13 jeq #port, 14, 15
//	14 ret #262144
//	15 ret #0
func portFilter(port uint16) []unix.SockFilter {
	p := uint32(port)
	return []unix.SockFilter{
		{Code: bpfLdhAbs, K: 12},
		{Code: bpfJeq, Jt: 0, Jf: 7, K: 0x0800},
		{Code: bpfLdbAbs, K: 23},
		{Code: bpfJeq, Jt: 0, Jf: 11, K: 6},
		{Code: bpfLdhAbs, K: 20},
		{Code: bpfJset, Jt: 9, Jf: 0, K: 0x3fff},
		{Code: bpfLdxMsh, K: 14},
		{Code: bpfLdhInd, K: 16},
		{Code: bpfJeq, Jt: 5, Jf: 6, K: p},
		{Code: bpfJeq, Jt: 0, Jf: 5, K: 0x86dd},
		{Code: bpfLdbAbs, K: 20},
		{Code: bpfJeq, Jt: 0, Jf: 3, K: 6},
		{Code: bpfLdhAbs, K: 56},
		{Code: bpfJeq, Jt: 0, Jf: 1, K: p},
		{Code: bpfRet, K: acceptSnap},
		{Code: bpfRet, K: 0},
	}
}
