// Package guest is the /init program of the parity harness's qemu guest: it
// loads the kernel modules it was given, builds a client namespace joined to
// the initial (server) namespace by veth, installs the synproxy ruleset,
// sends a random stream of SYNs, captures every SYN-ACK, reads the kernel's
// syncookie secrets and jiffies_64 through /proc/kallsyms and /proc/kcore,
// probes the ACK direction with cookies minted by package cookie, and writes
// everything as a parity stream to the second serial port.
package guest
