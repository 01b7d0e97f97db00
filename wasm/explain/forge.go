package explain

import (
	"errors"
	"math/rand/v2"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// MaxForgeTries bounds one Forge call so a page stays responsive.
const MaxForgeTries = 1 << 28

// Forging probabilities per try for a fixed tuple and client ISN.
const (
	// PredictedRandom: a uniformly random ack number passes when its slot
	// byte is one of 2 accepted values out of 256 and its low 24 bits hit one
	// of 4 values: (2/256)·(4/2^24) = 2^-29.
	PredictedRandom = 1.0 / (1 << 29)
	// PredictedTopByte: an attacker who already has the right slot byte still
	// needs the low 24 bits to hit one of 4 values: 4/2^24 = 2^-22.
	PredictedTopByte = 4.0 / (1 << 24)
)

// ForgeResult is a forging experiment: random ACKs against one handshake.
type ForgeResult struct {
	Tries     uint64   `json:"tries"`
	Accepted  uint64   `json:"accepted"`
	TopByte   bool     `json:"topByte"`
	Measured  float64  `json:"measured"`  // Accepted / Tries
	Predicted float64  `json:"predicted"` // per try
	Expected  float64  `json:"expected"`  // Tries · Predicted
	Hits      []uint32 `json:"hits"`      // accepted cookie values (ack - 1), each confirmed by cookie.Key.Check
	Verified  uint64   `json:"verified"`  // guesses re-checked with cookie.Key.Check (every hit and a sample of misses)
}

// forger is the check of one tuple and client ISN in one slot, reduced to
// its arithmetic so that millions of guesses take milliseconds. The hashes
// come from cookie.Key.Hashes and every decision it makes on a sample is
// re-checked with cookie.Key.Check.
type forger struct {
	p            *parsed
	h0, sseq     uint32
	count        uint32
	h1Now, h1Old uint32
}

func newForger(p *parsed, count uint32) (*forger, error) {
	h0, h1, err := p.key.Hashes(p.tuple, count)
	if err != nil {
		return nil, err
	}
	_, h1o, _ := p.key.Hashes(p.tuple, count-1)
	return &forger{p: p, h0: h0, sseq: p.in.ClientISN, count: count, h1Now: h1, h1Old: h1o}, nil
}

// accepts reports whether the cookie value c (an ACK's ack - 1) passes.
func (f *forger) accepts(c uint32) bool {
	r := c - f.h0 - f.sseq
	age := (f.count - r>>cookie.HashBits) & 0xff
	h1 := f.h1Now
	switch age {
	case 0:
	case 1:
		h1 = f.h1Old
	default:
		return false
	}
	return (r-h1)&cookie.HashMask < 4
}

// verify confirms a decision of accepts with the real check.
func (f *forger) verify(c uint32, want bool) error {
	v, err := f.p.key.Check(f.p.tuple, f.sseq, c, f.count)
	if err != nil {
		return err
	}
	if v.Valid != want {
		return errors.New("explain: forging shortcut disagrees with cookie.Key.Check for cookie " + hex32(c))
	}
	return nil
}

// Forge sends tries forged ACKs at the input's handshake (its tuple and
// client ISN, checked in its SYN's slot) and counts how many pass. With
// topByte the guesses already carry the right slot byte (as if the attacker
// knew h0 and the slot), so only the 24 hash bits are guessed. seed makes a
// run reproducible.
func Forge(in Input, tries uint64, topByte bool, seed uint64) (*ForgeResult, error) {
	p, err := parse(in)
	if err != nil {
		return nil, err
	}
	if tries == 0 || tries > MaxForgeTries {
		return nil, &InputError{"tries", errors.New("must be 1.." + utoa(MaxForgeTries))}
	}
	f, err := newForger(p, p.in.Count)
	if err != nil {
		return nil, err
	}
	res := &ForgeResult{Tries: tries, TopByte: topByte, Predicted: PredictedRandom}
	if topByte {
		res.Predicted = PredictedTopByte
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	slot := (f.count & 0xff) << cookie.HashBits
	for i := uint64(0); i < tries; i++ {
		g := rng.Uint32()
		if topByte {
			g = f.h0 + f.sseq + (slot | g&cookie.HashMask)
		}
		ok := f.accepts(g)
		if ok || i&0xffff == 0 {
			if err := f.verify(g, ok); err != nil {
				return nil, err
			}
			res.Verified++
		}
		if ok {
			res.Accepted++
			if len(res.Hits) < 16 {
				res.Hits = append(res.Hits, g)
			}
		}
	}
	res.Measured = float64(res.Accepted) / float64(tries)
	res.Expected = float64(tries) * res.Predicted
	return res, nil
}

// Exhaustive is the whole space of ack numbers that pass for one handshake.
type Exhaustive struct {
	Searched uint64   `json:"searched"` // values tried: both accepted slot bytes × 2^24
	Hits     []uint32 `json:"hits"`     // every passing cookie value, confirmed by cookie.Key.Check
	MSS      []uint16 `json:"mss"`      // the MSS each hit decodes to
	Age      []uint32 `json:"age"`
	Space    float64  `json:"space"` // 2^32
	Rate     float64  `json:"rate"`  // len(Hits) / 2^32
}

// Search tries every cookie value whose slot byte is accepted (the other
// 254/256 of the space fail the age test without further work) and returns
// all that pass: 4 per accepted slot, one for each MSS index.
func Search(in Input) (*Exhaustive, error) {
	p, err := parse(in)
	if err != nil {
		return nil, err
	}
	f, err := newForger(p, p.in.Count)
	if err != nil {
		return nil, err
	}
	res := &Exhaustive{Space: 1 << 32}
	for age := uint32(0); age < cookie.MaxAge; age++ {
		top := ((f.count - age) & 0xff) << cookie.HashBits
		for low := uint32(0); low <= cookie.HashMask; low++ {
			c := f.h0 + f.sseq + (top | low)
			res.Searched++
			if !f.accepts(c) {
				continue
			}
			v, err := p.key.Check(p.tuple, f.sseq, c, f.count)
			if err != nil {
				return nil, err
			}
			if !v.Valid {
				return nil, errors.New("explain: exhaustive search found " + hex32(c) + " but cookie.Key.Check rejects it")
			}
			res.Hits = append(res.Hits, c)
			res.MSS = append(res.MSS, v.MSS)
			res.Age = append(res.Age, v.Age)
		}
	}
	res.Rate = float64(len(res.Hits)) / res.Space
	return res, nil
}
