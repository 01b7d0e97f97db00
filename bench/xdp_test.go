//go:build linux

package main

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

func csum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func tcpSum(f []byte) uint16 {
	ip, tcp := f[14:34], f[34:]
	var ps uint32
	for i := 12; i < 20; i += 2 {
		ps += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	ps += 6 + uint32(len(tcp))
	return csum(tcp, ps)
}

// TestReflect runs the ceiling's program on a SYN (BPF_PROG_TEST_RUN) and
// checks the SYN-ACK it makes: addresses and ports swapped, flags, the
// acknowledgement number, a valid TCP checksum; and that the legitimate
// client's SYN passes.
func TestReflect(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF_PROG_TEST_RUN)")
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: reflectProgram()})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	syn := func(src [4]byte) []byte {
		f := make([]byte, 54+12)
		copy(f[0:6], []byte{2, 0, 0, 0, 0, 1})
		copy(f[6:12], []byte{2, 0, 0, 0, 0, 2})
		f[12], f[13] = 0x08, 0x00
		ip := f[14:34]
		ip[0], ip[8], ip[9] = 0x45, 64, 6
		binary.BigEndian.PutUint16(ip[2:], uint16(len(f)-14))
		copy(ip[12:], src[:])
		copy(ip[16:], []byte{10, 99, 40, 2})
		binary.BigEndian.PutUint16(ip[10:], csum(ip, 0))
		tcp := f[34:]
		binary.BigEndian.PutUint16(tcp[0:], 40000)
		binary.BigEndian.PutUint16(tcp[2:], 8080)
		binary.BigEndian.PutUint32(tcp[4:], 0xfffffffe)
		binary.BigEndian.PutUint32(tcp[8:], 0x12345678)
		tcp[12], tcp[13] = 8<<4, 0x02
		binary.BigEndian.PutUint16(tcp[14:], 1024)
		copy(tcp[20:], []byte{2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7})
		binary.BigEndian.PutUint16(tcp[16:], tcpSum(f))
		return f
	}
	in := syn([4]byte{10, 99, 41, 1})
	out := make([]byte, len(in))
	ret, err := prog.Run(&ebpf.RunOptions{Data: in, DataOut: out})
	if err != nil {
		t.Fatal(err)
	}
	if ret != xdpTX {
		t.Fatalf("returned %d, want XDP_TX", ret)
	}
	if string(out[0:6]) != string(in[6:12]) || string(out[6:12]) != string(in[0:6]) ||
		string(out[26:30]) != string(in[30:34]) || string(out[30:34]) != string(in[26:30]) ||
		string(out[34:36]) != string(in[36:38]) || string(out[36:38]) != string(in[34:36]) {
		t.Errorf("addresses not swapped:\n in % x\nout % x", in, out)
	}
	if out[47] != 0x12 || binary.BigEndian.Uint32(out[42:]) != 0xffffffff {
		t.Errorf("flags %#x ack %#x, want 0x12 0xffffffff", out[47], binary.BigEndian.Uint32(out[42:]))
	}
	if tcpSum(out) != 0 {
		t.Errorf("TCP checksum does not verify: % x", out)
	}
	if csum(out[14:34], 0) != 0 {
		t.Errorf("IPv4 checksum does not verify")
	}
	if ret, err := prog.Run(&ebpf.RunOptions{Data: syn([4]byte{10, 99, 40, 1})}); err != nil || ret != xdpPass {
		t.Errorf("legitimate SYN: %d, %v; want XDP_PASS", ret, err)
	}
}
