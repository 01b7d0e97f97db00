// Package kernel prepares and boots Debian kernels under qemu for the parity
// harness: it fetches a linux-image package with apt, extracts it, resolves
// the modules a guest needs from their own .modinfo (the package ships no
// modules.dep), writes a newc initramfs and runs qemu-system-x86_64 with
// software emulation and no network card.
package kernel
