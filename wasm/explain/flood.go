package explain

import (
	"errors"
	"math/rand/v2"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// FloodConfig drives the SYN-flood simulation. Time advances in ticks of one
// second.
type FloodConfig struct {
	Backlog     int    `json:"backlog"`     // the listener's SYN queue without cookies
	Timeout     int    `json:"timeout"`     // ticks a half-open entry waits for an ACK that never comes
	Attack      int    `json:"attack"`      // spoofed SYNs per tick while the attack runs
	ForgedAcks  int    `json:"forgedAcks"`  // forged ACKs per tick while the attack runs
	Legit       int    `json:"legit"`       // legitimate clients per tick
	Ticks       int    `json:"ticks"`       // length of the simulation
	AttackStart int    `json:"attackStart"` // first tick of the attack
	AttackEnd   int    `json:"attackEnd"`   // first tick without attack
	Seed        uint64 `json:"seed"`
	Key         string `json:"key"`   // the proxy's key (64 hex digits)
	Count       uint32 `json:"count"` // the time slot at tick 0
}

// DefaultFlood is a small flood that fills a 64-entry queue in a few ticks.
func DefaultFlood() FloodConfig {
	return FloodConfig{Backlog: 64, Timeout: 30, Attack: 40, ForgedAcks: 200, Legit: 4, Ticks: 90,
		AttackStart: 10, AttackEnd: 70, Seed: 1, Key: ExampleKey, Count: 5}
}

// FloodTick is the state after one tick, for both listeners.
type FloodTick struct {
	Tick        int  `json:"tick"`
	Attacking   bool `json:"attacking"`
	Queue       int  `json:"queue"`       // half-open entries without cookies
	QueueAttack int  `json:"queueAttack"` // of which spoofed
	Served      int  `json:"served"`      // legitimate clients connected this tick, without cookies
	Refused     int  `json:"refused"`     // legitimate SYNs dropped on a full queue this tick
	// With cookies: the proxy keeps no per-SYN state.
	CookieServed  int `json:"cookieServed"`
	CookieRefused int `json:"cookieRefused"`
	CookieState   int `json:"cookieState"` // entries stored for half-open handshakes: always 0
	ForgedTried   int `json:"forgedTried"`
	ForgedPassed  int `json:"forgedPassed"`
}

// FloodResult is the whole run and its totals.
type FloodResult struct {
	Config        FloodConfig `json:"config"`
	Ticks         []FloodTick `json:"ticks"`
	Served        int         `json:"served"`
	Refused       int         `json:"refused"`
	CookieServed  int         `json:"cookieServed"`
	CookieRefused int         `json:"cookieRefused"`
	Cookies       int         `json:"cookies"` // SYN-ACK cookies computed with cookie.Key.Encode
	Checks        int         `json:"checks"`  // ACKs checked with cookie.Key.Check
	ForgedTried   int         `json:"forgedTried"`
	ForgedPassed  int         `json:"forgedPassed"`
}

// Flood runs the simulation. Without cookies, every SYN takes a queue entry
// until its handshake completes (legitimate clients: the next tick) or times
// out (spoofed SYNs: Timeout ticks); a SYN that finds the queue full is
// dropped. With cookies, every SYN is answered with a cookie from
// cookie.Key.Encode and nothing is stored; a client is served when its ACK
// passes cookie.Key.Check one tick later; forged ACKs are checked too.
func Flood(cfg FloodConfig) (*FloodResult, error) {
	switch {
	case cfg.Backlog < 1 || cfg.Backlog > 1<<16:
		return nil, &InputError{"backlog", errors.New("must be 1..65536")}
	case cfg.Timeout < 1 || cfg.Timeout > 600:
		return nil, &InputError{"timeout", errors.New("must be 1..600")}
	case cfg.Attack < 0 || cfg.Attack > 10000, cfg.Legit < 0 || cfg.Legit > 1000, cfg.ForgedAcks < 0 || cfg.ForgedAcks > 100000:
		return nil, &InputError{"rates", errors.New("attack 0..10000, legit 0..1000, forgedAcks 0..100000 per tick")}
	case cfg.Ticks < 1 || cfg.Ticks > 3600:
		return nil, &InputError{"ticks", errors.New("must be 1..3600")}
	}
	key, err := cookie.ParseKey(cfg.Key)
	if err != nil {
		return nil, &InputError{"key", err}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed+1))
	server := netip.MustParseAddrPort("198.51.100.7:80")
	res := &FloodResult{Config: cfg}

	type entry struct {
		expires int
		spoofed bool
	}
	var queue []entry
	type pending struct {
		t    cookie.Tuple
		sseq uint32
		isn  uint32
		mss  uint16
	}
	var waiting []pending // legitimate clients whose SYN-ACK is on its way back
	mssChoices := [...]uint16{1460, 1400, 1440, 536, 1380}

	for tick := 0; tick < cfg.Ticks; tick++ {
		st := FloodTick{Tick: tick, Attacking: tick >= cfg.AttackStart && tick < cfg.AttackEnd}
		slot := cfg.Count + uint32(tick/60)

		// Without cookies: expire half-open entries.
		kept := queue[:0]
		for _, e := range queue {
			if e.expires > tick {
				kept = append(kept, e)
			}
		}
		queue = kept

		// With cookies: last tick's legitimate clients send their ACKs.
		for _, w := range waiting {
			v, err := key.Check(w.t, w.sseq, w.isn, slot)
			if err != nil {
				return nil, err
			}
			res.Checks++
			if v.Valid && v.MSS == cookie.MSSTable(false)[cookie.MSSIndex(w.mss, false)] {
				st.CookieServed++
			} else {
				st.CookieRefused++
			}
		}
		waiting = waiting[:0]

		// This tick's SYNs, attack and legitimate interleaved at random.
		nAttack := 0
		if st.Attacking {
			nAttack = cfg.Attack
		}
		total := nAttack + cfg.Legit
		legitLeft := cfg.Legit
		for i := 0; i < total; i++ {
			legit := rng.IntN(total-i) < legitLeft
			if legit {
				legitLeft--
			}
			t := cookie.Tuple{Client: randomClient(rng), Server: server}
			sseq := rng.Uint32()
			mss := mssChoices[rng.IntN(len(mssChoices))]
			// Without cookies.
			if len(queue) < cfg.Backlog {
				if legit {
					queue = append(queue, entry{expires: tick + 1})
					st.Served++
				} else {
					queue = append(queue, entry{expires: tick + cfg.Timeout, spoofed: true})
				}
			} else if legit {
				st.Refused++
			}
			// With cookies: a SYN-ACK, no state.
			isn, err := key.Encode(t, sseq, mss, slot)
			if err != nil {
				return nil, err
			}
			res.Cookies++
			if legit {
				waiting = append(waiting, pending{t: t, sseq: sseq, isn: isn, mss: mss})
			}
		}
		// Forged ACKs against the cookie proxy.
		if st.Attacking {
			for i := 0; i < cfg.ForgedAcks; i++ {
				t := cookie.Tuple{Client: randomClient(rng), Server: server}
				v, err := key.Check(t, rng.Uint32(), rng.Uint32(), slot)
				if err != nil {
					return nil, err
				}
				res.Checks++
				st.ForgedTried++
				if v.Valid {
					st.ForgedPassed++
				}
			}
		}
		for _, e := range queue {
			st.Queue++
			if e.spoofed {
				st.QueueAttack++
			}
		}
		res.Served += st.Served
		res.Refused += st.Refused
		res.CookieServed += st.CookieServed
		res.CookieRefused += st.CookieRefused
		res.ForgedTried += st.ForgedTried
		res.ForgedPassed += st.ForgedPassed
		res.Ticks = append(res.Ticks, st)
	}
	return res, nil
}

func randomClient(rng *rand.Rand) netip.AddrPort {
	a := rng.Uint32()
	ip := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
	return netip.AddrPortFrom(ip, uint16(1024+rng.IntN(64511)))
}
