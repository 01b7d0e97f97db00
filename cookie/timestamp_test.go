package cookie

import "testing"

// The timestamp examples of the specification (§6), ms_now = 0x12345678.
func TestTSval(t *testing.T) {
	const now = 0x12345678
	for _, c := range []struct {
		name     string
		o        TSOptions
		synproxy uint32
		stack    uint32
	}{
		{"ws7 sack", TSOptions{WScale: 7, HasWScale: true, SACK: true}, 0x12345657, 0x12345657},
		{"nothing", TSOptions{}, 0x1234564f, 0x1234564f},
		{"ws14 sack ecn", TSOptions{WScale: 14, HasWScale: true, SACK: true, ECN: true}, 0x1234567e, 0x1234563e},
		{"ws clamped", TSOptions{WScale: 15, HasWScale: true}, 0x1234564e, 0x1234564e},
	} {
		if got := TSval(now, c.o); got != c.synproxy {
			t.Errorf("%s: TSval = %#x, want %#x", c.name, got, c.synproxy)
		}
		if got := TSvalStack(now, c.o); got != c.stack {
			t.Errorf("%s: TSvalStack = %#x, want %#x", c.name, got, c.stack)
		}
	}
}

func TestTSRoundTrip(t *testing.T) {
	for bits := uint32(0); bits < 64; bits++ {
		o := DecodeTSecr(0xabcdef00 | bits)
		if ws := bits & 0xf; ws == NoWScale {
			if o.HasWScale {
				t.Errorf("bits %#x: window scale decoded from the no-wscale nibble", bits)
			}
		} else if !o.HasWScale || uint32(o.WScale) != ws {
			t.Errorf("bits %#x: %+v", bits, o)
		}
		if o.SACK != (bits&0x10 != 0) || o.ECN != (bits&0x20 != 0) {
			t.Errorf("bits %#x: %+v", bits, o)
		}
		// Every decoded value encodes back to the same bits.
		if got := o.Bits(); got != bits {
			t.Errorf("bits %#x: decode+encode = %#x", bits, got)
		}
		// The TSval's upper bits are the clock and are ignored on decode.
		if DecodeTSecr(TSval(0xffffffff, o)) != o {
			t.Errorf("bits %#x: TSval round trip", bits)
		}
	}
}
