package parity

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sample is one SYN sent to a kernel's synproxy and the SYN-ACK it answered
// with, with the kernel clocks read around the exchange.
type Sample struct {
	// JiffiesBefore is jiffies_64 read before the SYN was sent,
	// JiffiesAfter after its SYN-ACK was captured.
	JiffiesBefore, JiffiesAfter uint64
	// MsBefore and MsAfter are CLOCK_MONOTONIC in milliseconds (truncated to
	// 32 bits, the synproxy timestamp clock) at the same two moments.
	MsBefore, MsAfter uint32
	// SYN is the IP packet sent (full checksums), SYNACK the IP packet captured.
	SYN, SYNACK []byte
}

const sampleVersion = 1

// ErrShortRecord is returned for a truncated sample record.
var ErrShortRecord = errors.New("parity: short sample record")

// AppendBinary appends the record encoding of s.
func (s *Sample) AppendBinary(b []byte) ([]byte, error) {
	if len(s.SYN) > 0xffff || len(s.SYNACK) > 0xffff {
		return b, errors.New("parity: packet too long")
	}
	b = append(b, sampleVersion)
	b = binary.BigEndian.AppendUint64(b, s.JiffiesBefore)
	b = binary.BigEndian.AppendUint64(b, s.JiffiesAfter)
	b = binary.BigEndian.AppendUint32(b, s.MsBefore)
	b = binary.BigEndian.AppendUint32(b, s.MsAfter)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.SYN)))
	b = append(b, s.SYN...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.SYNACK)))
	b = append(b, s.SYNACK...)
	return b, nil
}

// UnmarshalBinary decodes a record made by AppendBinary. The packet slices
// alias b.
func (s *Sample) UnmarshalBinary(b []byte) error {
	if len(b) < 1+8+8+4+4+2 {
		return ErrShortRecord
	}
	if b[0] != sampleVersion {
		return fmt.Errorf("parity: sample record version %d", b[0])
	}
	s.JiffiesBefore = binary.BigEndian.Uint64(b[1:])
	s.JiffiesAfter = binary.BigEndian.Uint64(b[9:])
	s.MsBefore = binary.BigEndian.Uint32(b[17:])
	s.MsAfter = binary.BigEndian.Uint32(b[21:])
	b = b[25:]
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < n+2 {
		return ErrShortRecord
	}
	s.SYN = b[:n]
	b = b[n:]
	m := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) != m {
		return ErrShortRecord
	}
	s.SYNACK = b
	return nil
}
