package fuzz

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/fuzz/parity"
)

// seedStreams returns the committed corpora, parsed.
func seedStreams(f *testing.F) []*parity.Stream {
	var out []*parity.Stream
	for _, p := range corpora(f) {
		st, err := parity.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}

// FuzzParseSegment feeds kernel SYN-ACKs and our SYNs (and mutations of them)
// to the segment parser the harness referees with: it must never panic and
// what it returns must lie inside the packet.
func FuzzParseSegment(f *testing.F) {
	for _, st := range seedStreams(f) {
		for i, s := range st.Samples {
			if i%50 == 0 {
				f.Add(s.SYN)
				f.Add(s.SYNACK)
			}
		}
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		s, err := parity.ParseSegment(p)
		if err != nil {
			return
		}
		if n := len(s.IPHdr) + len(s.TCPHdr) + len(s.Payload); n > len(p) {
			t.Fatalf("parsed %d bytes of %d", n, len(p))
		}
		if len(s.TCPHdr) < 20 || len(s.TCPHdr)%4 != 0 {
			t.Fatalf("TCP header of %d bytes", len(s.TCPHdr))
		}
	})
}

// FuzzSampleRecord: the record codec round-trips and rejects garbage with an
// error.
func FuzzSampleRecord(f *testing.F) {
	for _, st := range seedStreams(f) {
		for i := range st.Samples {
			if i%100 == 0 {
				b, err := st.Samples[i].AppendBinary(nil)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s parity.Sample
		if err := s.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := s.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip changed the record")
		}
	})
}

// FuzzKernelKeyCookie: with a kernel's key and the inputs of a kernel sample
// as seeds, an encoded cookie checks as valid with the table MSS at its slot
// and the next, is rejected two slots later and one slot earlier, and carries
// the slot's low byte in its top 8 bits once h0 and sseq are subtracted.
// (That the seeds' cookies equal the kernel's ISNs is TestReplayCorpus.)
func FuzzKernelKeyCookie(f *testing.F) {
	for _, st := range seedStreams(f) {
		env, err := st.Header.Env()
		if err != nil {
			f.Fatal(err)
		}
		for i := range st.Samples {
			if i%100 != 0 {
				continue
			}
			res := parity.Verify(&st.Samples[i], env)
			if !res.OK {
				f.Fatalf("corpus sample does not verify: %s", res.String())
			}
			key := env.Key4.Bytes()
			if res.V6 {
				key = env.Key6.Bytes()
			}
			c, s := res.Tuple.Client, res.Tuple.Server
			f.Add(key[:], c.Addr().AsSlice(), c.Port(), s.Addr().AsSlice(), s.Port(), res.SSeq, res.MSS, res.Count)
		}
	}
	f.Fuzz(func(t *testing.T, keyb, ca []byte, cp uint16, sa []byte, sp uint16, sseq uint32, mss uint16, count uint32) {
		key, err := cookie.NewKey(keyb)
		if err != nil {
			return
		}
		c, ok1 := netip.AddrFromSlice(ca)
		s, ok2 := netip.AddrFromSlice(sa)
		if !ok1 || !ok2 || c.Is6() != s.Is6() {
			return
		}
		tu := cookie.Tuple{Client: netip.AddrPortFrom(c, cp), Server: netip.AddrPortFrom(s, sp)}
		isn, err := key.Encode(tu, sseq, mss, count)
		if err != nil {
			t.Fatal(err)
		}
		table := cookie.MSSTable(c.Is6())
		wantMSS := table[cookie.MSSIndex(mss, c.Is6())]
		for age := uint32(0); age < 2; age++ {
			v, err := key.Check(tu, sseq, isn, count+age)
			if err != nil || !v.Valid || v.MSS != wantMSS {
				t.Fatalf("age %d: %+v %v, want valid MSS %d", age, v, err, wantMSS)
			}
		}
		for _, at := range []uint32{count + 2, count - 1} {
			if v, _ := key.Check(tu, sseq, isn, at); v.Valid {
				t.Fatalf("cookie of slot %d accepted at slot %d", count, at)
			}
		}
		if got := (isn - sseq - h0(t, &key, tu)) >> 24; got != count&0xff {
			t.Fatalf("top byte %#x, want slot low byte %#x", got, count&0xff)
		}
	})
}

func h0(t *testing.T, k *cookie.Key, tu cookie.Tuple) uint32 {
	h, _, err := k.Hashes(tu, 0)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
