// Package harness is the host side of the kernel parity run: it builds the
// guest /init, fetches and boots a Debian kernel under qemu with it, reads
// the guest's parity stream back and verifies every sample and ACK probe
// against package cookie.
package harness
