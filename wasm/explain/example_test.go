package explain_test

import (
	"fmt"

	"github.com/synproxy-lite/synproxy-lite/wasm/explain"
)

// The specification's first worked example, term by term, and the check of
// the client's ACK.
func ExampleBuild() {
	s, err := explain.Build(explain.Default())
	if err != nil {
		panic(err)
	}
	for _, r := range s.Encoding.Rows {
		fmt.Printf("%1s %s %s\n", r.Op, r.Bits, r.Label)
	}
	fmt.Println("ACK check:", s.Check.Reason, "MSS", s.Check.MSS)
	// Output:
	//   11110100001100000110100101110111 h0 = SipHash(key[0:16], tuple, 0)
	// + 00000000000000000000001111101000 client ISN (the SYN's seq)
	// + 00000101000000000000000000000000 slot mod 256 << 24
	// + 00000000010010011100101111001001 (h1 + idx) mod 2^24
	// = 11111001011110100011100100101000 cookie = SYN-ACK seq
	// ACK check: ok MSS 1460
}

// Every ack number that passes for one handshake: 4 in the current slot and
// 4 in the previous one, out of 2^32.
func ExampleSearch() {
	r, err := explain.Search(explain.Default())
	if err != nil {
		panic(err)
	}
	fmt.Println(len(r.Hits), "of 2^32 pass; MSS", r.MSS[:4])
	// Output:
	// 8 of 2^32 pass; MSS [536 1300 1440 1460]
}
