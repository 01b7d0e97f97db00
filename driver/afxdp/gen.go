package afxdp

// The XDP program is C (bpf/xdp.c), compiled by clang through bpf2go; the
// objects and their Go bindings are committed, so building needs no clang.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -strip llvm-strip-14 -tags linux -go-package afxdp -output-stem xdpprog xdp bpf/xdp.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu
