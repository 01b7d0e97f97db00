// Package parity holds the data of the kernel parity harness and the checks
// applied to it: the SYN/SYN-ACK sample record written by the guest and
// stored in corpora, the guest configuration, and Verify, which recomputes a
// kernel SYN-ACK with package cookie (ISN and TSval, bit for bit) and checks
// every byte of it that does not depend on the key or the clock.
//
// It parses packets with its own small reader on purpose, so that it referees
// package packet rather than trusting it.
package parity
