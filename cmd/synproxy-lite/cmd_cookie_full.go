package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// The cookie subcommands under --profile full.

const fullCookieUsage = `
--profile linux|full picks the cookie layout (default linux, the kernel's).
Under full, encode also takes the SYN's other options: --wscale N (absent:
no window-scale option), --sack, --ecn, and --key-bit 0|1 (the parity of the
key's epoch in a ring); it prints the ISN and the 8 bits the SYN-ACK's TSval
carries. check and explain take --tsecr N, the ACK's TSecr, when the ACK has
timestamps (absent: an ACK without them).
`

// fullArgs are --profile and the full profile's own flags, parsed.
type fullArgs struct {
	profile cookie.Profile
	opts    cookie.FullOptions // encode: the SYN's options (MSS from --mss)
	keyBit  uint8
	tsecr   uint32
	hasTS   bool
}

type fullFlags struct {
	profile, wscale, keyBit, tsecr *string
	sack, ecn                      *bool
}

func addFullFlags(fs *flag.FlagSet) *fullFlags {
	return &fullFlags{
		profile: fs.String("profile", "linux", ""),
		wscale:  fs.String("wscale", "", ""),
		keyBit:  fs.String("key-bit", "", ""),
		tsecr:   fs.String("tsecr", "", ""),
		sack:    fs.Bool("sack", false, ""),
		ecn:     fs.Bool("ecn", false, ""),
	}
}

func (f *fullFlags) parse(op string, fs *flag.FlagSet) (fullArgs, error) {
	var a fullArgs
	p, err := cookie.ParseProfile(*f.profile)
	if err != nil {
		return a, fmt.Errorf("--profile %q: linux or full", *f.profile)
	}
	a.profile = p
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, n := range []string{"wscale", "key-bit", "sack", "ecn", "tsecr"} {
		if set[n] && p != cookie.ProfileFull {
			return a, fmt.Errorf("--%s is for --profile full", n)
		}
		if set[n] && (n == "tsecr") == (op == "encode") {
			if n == "tsecr" {
				return a, errors.New("--tsecr is for check and explain, not encode")
			}
			return a, fmt.Errorf("--%s is for encode; check decodes it from the cookie", n)
		}
	}
	if set["wscale"] {
		v, err := parseUint("wscale", *f.wscale, cookie.MaxWScale)
		if err != nil {
			return a, err
		}
		a.opts.WScale, a.opts.HasWScale = uint8(v), true
	}
	if set["key-bit"] {
		v, err := parseUint("key-bit", *f.keyBit, 1)
		if err != nil {
			return a, err
		}
		a.keyBit = uint8(v)
	}
	if set["tsecr"] {
		v, err := parseUint("tsecr", *f.tsecr, math.MaxUint32)
		if err != nil {
			return a, err
		}
		a.tsecr, a.hasTS = uint32(v), true
	}
	a.opts.SACK, a.opts.ECN = *f.sack, *f.ecn
	return a, nil
}

// fullOptionsJSON is the options part of the JSON output.
type fullOptionsJSON struct {
	MSS      uint16 `json:"mss"`
	MSSIndex uint8  `json:"mss_index"`
	WScale   *uint8 `json:"wscale"` // null: no window scaling
	SACK     bool   `json:"sack"`
	ECN      bool   `json:"ecn"`
	KeyBit   uint8  `json:"key_bit"`
}

func fullJSON(o cookie.FullOptions, mi, kb uint8) fullOptionsJSON {
	j := fullOptionsJSON{MSS: o.MSS, MSSIndex: mi, SACK: o.SACK, ECN: o.ECN, KeyBit: kb}
	if o.HasWScale {
		ws := o.WScale
		j.WScale = &ws
	}
	return j
}

func runCookieFull(op string, a cookieArgs, stdout, stderr io.Writer) int {
	enc := json.NewEncoder(stdout)
	switch op {
	case "encode":
		o := a.full.opts
		o.MSS = a.mss
		isn, ts, err := a.key.EncodeFull(a.tuple, a.seq, o, a.count, a.full.keyBit)
		if err != nil {
			fmt.Fprintf(stderr, "synproxy-lite cookie encode: %v\n", err)
			return exitUsage
		}
		v6 := a.tuple.Is6()
		mi := cookie.FullMSSIndex(o.MSS, v6)
		o.MSS = cookie.FullMSSTable(v6)[mi]
		enc.Encode(struct {
			Profile string `json:"profile"`
			ISN     uint32 `json:"isn"`
			TSBits  uint8  `json:"tsval_bits"`
			fullOptionsJSON
			Count uint32 `json:"count"`
		}{"full", isn, ts, fullJSON(o, mi, a.full.keyBit), a.count})
		return exitOK
	case "check":
		v, err := a.key.CheckFull(a.tuple, a.seq, a.cookie, a.count, a.full.tsecr, a.full.hasTS)
		if err != nil {
			fmt.Fprintf(stderr, "synproxy-lite cookie check: %v\n", err)
			return exitUsage
		}
		if !v.Valid {
			enc.Encode(struct {
				Profile string `json:"profile"`
				Valid   bool   `json:"valid"`
				Reason  string `json:"reason"`
			}{"full", false, v.Reason.String()})
			return exitFailure
		}
		enc.Encode(struct {
			Profile string `json:"profile"`
			Valid   bool   `json:"valid"`
			fullOptionsJSON
			TSChecked bool   `json:"tsecr_checked"`
			Count     uint32 `json:"count"`
			Age       uint32 `json:"age"`
		}{"full", true, fullJSON(v.Options, v.MSSIndex, v.KeyBit), v.TSChecked, v.Count, v.Age})
		return exitOK
	}
	ok, err := explainFull(stdout, a)
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite cookie explain: %v\n", err)
		return exitUsage
	}
	if !ok {
		return exitFailure
	}
	return exitOK
}

// explainFull prints the full profile's check in words and bits.
func explainFull(w io.Writer, a cookieArgs) (bool, error) {
	tr, err := a.key.TraceFull(a.tuple, a.seq, a.cookie, a.count, a.full.tsecr, a.full.hasTS)
	if err != nil {
		return false, err
	}
	v := tr.Verdict
	v6 := a.tuple.Is6()
	fam := "IPv4"
	if v6 {
		fam = "IPv6"
	}
	f := uint32(tr.Fields)
	fmt.Fprintf(w, "%s connection %s -> %s, client ISN %d, checker's time slot %d (parity %d), profile full\n\n",
		fam, a.tuple.Client, a.tuple.Server, a.seq, a.count, a.count&1)
	fmt.Fprintln(w, "The cookie is MAC(21 bits) << 11 | (fields XOR the MAC's top 11 bits).")
	fmt.Fprintf(w, "  cookie  %10d  %08x  %032b\n", a.cookie, a.cookie, a.cookie)
	fmt.Fprintf(w, "  fields  %10d  %03x       %011b  (slot parity | key | ECN | SACK | wscale | MSS idx)\n", f, f, f)
	fmt.Fprintf(w, "\nslot parity %d: made in slot %d (age %d); key bit %d; ECN %d; SACK %d; window scale %d (15: none); MSS index %d\n",
		f>>10&1, v.Count, v.Age, f>>9&1, f>>8&1, f>>7&1, f>>3&15, f&7)
	fmt.Fprintf(w, "MAC in the cookie %06x, SipHash(key half 0, tuple, client ISN, slot %d, fields) gives %06x\n", tr.MAC, v.Count, tr.Want)
	if tr.MAC != tr.Want {
		fmt.Fprintln(w, "\nThe MAC does not match (forged or corrupted cookie, or another tuple, ISN, key or slot).")
		fmt.Fprintln(w, "\nverdict: invalid (mac)")
		return false, nil
	}
	if tr.HasTS {
		fmt.Fprintf(w, "TSecr's low byte %02x, the MAC's next 8 bits %02x\n", tr.TS, tr.WantTS)
		if tr.TS != tr.WantTS {
			fmt.Fprintln(w, "\nThe TSecr does not echo the cookie's TSval bits.")
			fmt.Fprintln(w, "\nverdict: invalid (tsecr)")
			return false, nil
		}
	}
	ws := "none"
	if v.Options.HasWScale {
		ws = fmt.Sprint(v.Options.WScale)
	}
	fmt.Fprintf(w, "\nMSS index %d selects %d from %v\n", v.MSSIndex, v.Options.MSS, cookie.FullMSSTable(v6))
	fmt.Fprintf(w, "\nverdict: valid, MSS %d, wscale %s, sack %v, ecn %v, key bit %d, made in slot %d, age %d\n",
		v.Options.MSS, ws, v.Options.SACK, v.Options.ECN, v.KeyBit, v.Count, v.Age)
	return true, nil
}
