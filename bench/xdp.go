//go:build linux

package main

import (
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// The ceiling: an XDP program that answers a SYN from the flood's spoofed
// network to port 8080 by turning the frame around in place (Ethernet,
// IPv4 and TCP addresses swapped, flags set to SYN+ACK, the acknowledgement
// number set to the SYN's sequence number plus one, the TCP checksum fixed
// by RFC 1624 incremental update) and sending it back out of the interface
// it came in on (XDP_TX). No cookie, no copy, no socket: the fastest any
// responder can reflect on this path. Everything else goes to the stack
// (XDP_PASS), so the legitimate client still reaches the service.
//
// It is written with cilium/ebpf's asm package rather than C built by
// clang: the program is some forty instructions, needs no kernel BTF (this
// machine's kernel exposes none) and no map, and the bench then builds with
// the Go toolchain alone, with no generated object to keep in step.
//
// Offsets assume an untagged Ethernet frame and an IPv4 header without
// options (IHL 5), which is what trafgen sends; other frames pass.
const (
	xdpPass = 2
	xdpTX   = 3
)

// Little-endian loads of network-order fields (the bench runs on amd64).
const (
	leEtherIPv4 = 0x0008   // ethertype 0x0800
	leDport8080 = 0x901f   // port 8080
	leSpoofed   = 0x29630a // 10.99.41.x, low three bytes of the source address
)

func reflectProgram() asm.Instructions {
	const (
		ctx, data, end, t, sum, o = asm.R6, asm.R2, asm.R3, asm.R4, asm.R5, asm.R7
		tmp, tmp2                 = asm.R8, asm.R9
	)
	fold := func(r asm.Register) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Reg(tmp, r), asm.RSh.Imm(tmp, 16), asm.And.Imm(r, 0xffff), asm.Add.Reg(r, tmp),
		}
	}
	// addWord adds the change of the 16-bit word at off (old in o, new in
	// tmp2) to sum: sum += ~old + new.
	addWord := asm.Instructions{asm.Xor.Imm(o, 0xffff), asm.Add.Reg(sum, o), asm.Add.Reg(sum, tmp2)}
	insns := asm.Instructions{
		asm.Mov.Reg(ctx, asm.R1),
		asm.LoadMem(data, ctx, 0, asm.Word),
		asm.LoadMem(end, ctx, 4, asm.Word),
		asm.Mov.Reg(t, data),
		asm.Add.Imm(t, 54), // Ethernet 14, IPv4 20, TCP 20
		asm.JGT.Reg(t, end, "pass"),
		asm.LoadMem(t, data, 12, asm.Half),
		asm.JNE.Imm(t, leEtherIPv4, "pass"),
		asm.LoadMem(t, data, 14, asm.Byte),
		asm.JNE.Imm(t, 0x45, "pass"),
		asm.LoadMem(t, data, 23, asm.Byte),
		asm.JNE.Imm(t, 6, "pass"), // TCP
		asm.LoadMem(t, data, 26, asm.Word),
		asm.And.Imm(t, 0xffffff),
		asm.JNE.Imm(t, leSpoofed, "pass"),
		asm.LoadMem(t, data, 36, asm.Half),
		asm.JNE.Imm(t, leDport8080, "pass"),
		asm.LoadMem(t, data, 47, asm.Byte),
		asm.JNE.Imm(t, 0x02, "pass"), // SYN alone

		// Ethernet addresses.
		asm.LoadMem(t, data, 0, asm.Word), asm.LoadMem(o, data, 6, asm.Word),
		asm.StoreMem(data, 6, t, asm.Word), asm.StoreMem(data, 0, o, asm.Word),
		asm.LoadMem(t, data, 4, asm.Half), asm.LoadMem(o, data, 10, asm.Half),
		asm.StoreMem(data, 10, t, asm.Half), asm.StoreMem(data, 4, o, asm.Half),
		// IPv4 addresses (the header checksum does not change).
		asm.LoadMem(t, data, 26, asm.Word), asm.LoadMem(o, data, 30, asm.Word),
		asm.StoreMem(data, 30, t, asm.Word), asm.StoreMem(data, 26, o, asm.Word),
		// Ports.
		asm.LoadMem(t, data, 34, asm.Half), asm.LoadMem(o, data, 36, asm.Half),
		asm.StoreMem(data, 36, t, asm.Half), asm.StoreMem(data, 34, o, asm.Half),

		// sum = ~checksum; then every changed word: ~old + new.
		asm.LoadMem(sum, data, 50, asm.Half),
		asm.Xor.Imm(sum, 0xffff),
		// Flags: the word at 46 (data offset, flags) gains ACK (0x10 in
		// byte 47, the high byte of a little-endian load).
		asm.LoadMem(o, data, 46, asm.Half),
		asm.Mov.Reg(tmp2, o),
		asm.Or.Imm(tmp2, 0x1000),
		asm.StoreMem(data, 46, tmp2, asm.Half),
	}
	insns = append(insns, addWord...)
	insns = append(insns,
		// Acknowledgement number: sequence number + 1, in network order.
		asm.LoadMem(t, data, 38, asm.Word),
		asm.HostTo(asm.BE, t, asm.Word), // byte swap on a little-endian host
		asm.Add.Imm(t, 1),
		asm.HostTo(asm.BE, t, asm.Word),
		asm.LoadMem(o, data, 42, asm.Half),
		asm.LoadMem(tmp2, data, 44, asm.Half),
		asm.StoreMem(data, 42, t, asm.Word),
		// Old ack words in o and (after the first) tmp2's old value: add
		// them one at a time.
		asm.Mov.Reg(asm.R0, tmp2), // old high word
		asm.LoadMem(tmp2, data, 42, asm.Half),
	)
	insns = append(insns, addWord...)
	insns = append(insns,
		asm.Mov.Reg(o, asm.R0),
		asm.LoadMem(tmp2, data, 44, asm.Half),
	)
	insns = append(insns, addWord...)
	insns = append(insns, fold(sum)...)
	insns = append(insns, fold(sum)...)
	insns = append(insns,
		asm.Xor.Imm(sum, 0xffff),
		asm.StoreMem(data, 50, sum, asm.Half),
		asm.Mov.Imm(asm.R0, xdpTX),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	)
	return insns
}

func passProgram() asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()}
}

// xdpAttach loads insns and attaches them to dev, in the calling thread's
// network namespace, natively when the driver allows and generically
// otherwise. It returns the link (closing it detaches) and the mode.
func xdpAttach(insns asm.Instructions, dev string) (link.Link, string, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bench_xdp", Type: ebpf.XDP, License: "GPL", Instructions: insns})
	if err != nil {
		return nil, "", fmt.Errorf("loading the XDP program: %w", err)
	}
	defer prog.Close() // the link holds it
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, "", err
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index, Flags: link.XDPDriverMode})
	if err == nil {
		return l, "native", nil
	}
	l, gerr := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index, Flags: link.XDPGenericMode})
	if gerr != nil {
		return nil, "", fmt.Errorf("attaching XDP to %s: native: %v; generic: %w", dev, err, gerr)
	}
	return l, "generic", nil
}
