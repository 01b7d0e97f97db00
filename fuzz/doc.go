// Package fuzz holds the differential and parity harnesses of the project:
// package cookie against real Linux kernels' nftables synproxy.
//
// Three layers:
//
//   - Corpus replay (plain go test): testdata/parity/*.stream.gz are captures
//     from Debian kernels booted under qemu, each with the kernel's own
//     syncookie secrets. Every SYN-ACK in them must be reproduced bit for bit
//     by package cookie (ISN and timestamp) and by the SYN-ACK shape synproxy
//     builds; every ACK probe's kernel verdict must equal cookie.Key.Check.
//   - The live qemu harness (root with qemu-system-x86_64 and apt): boots
//     linux-image-amd64 (6.1) and linux-image-6.12-amd64 and checks at least
//     100,000 fresh samples per kernel. `make parity` runs it on demand.
//   - The keyless host harness (root): properties of the host kernel's
//     synproxy that need no key, in network namespaces.
//
// docs/parity.md describes what is compared and how to rerun it.
package fuzz
