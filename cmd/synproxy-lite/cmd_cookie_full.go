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
		profile: fs.String("profile", "linux", "the cookie layout, `linux` (the kernel's) or full (options in the ISN)"),
		wscale:  fs.String("wscale", "", "--profile full, encode: the SYN's window scale `N` (absent: no option)"),
		keyBit:  fs.String("key-bit", "", "--profile full, encode: the key bit `0|1` (the parity of the key's epoch in a ring)"),
		tsecr:   fs.String("tsecr", "", "--profile full, check and explain: the ACK's TSecr `N` (absent: an ACK without timestamps)"),
		sack:    fs.Bool("sack", false, "--profile full, encode: the SYN offers SACK"),
		ecn:     fs.Bool("ecn", false, "--profile full, encode: the SYN asks for ECN"),
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
	var ok bool
	var err error
	switch op {
	case "encode":
		err = encodeFull(stdout, a)
		ok = true
	case "check":
		ok, err = checkFull(stdout, a)
	default:
		if a.asJSON {
			ok, err = checkFull(stdout, a)
		} else {
			ok, err = explainFull(stdout, a)
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "synproxy-lite cookie %s: %v\n", op, err)
		return exitUsage
	case !ok:
		return exitFailure
	}
	return exitOK
}

// fullEncoding is what cookie encode --profile full prints with --json.
type fullEncoding struct {
	Profile string `json:"profile"`
	ISN     uint32 `json:"isn"`
	TSBits  uint8  `json:"tsval_bits"`
	fullOptionsJSON
	Slot uint32 `json:"slot"`
}

func encodeFull(w io.Writer, a cookieArgs) error {
	o := a.full.opts
	o.MSS = a.mss
	isn, ts, err := a.key.EncodeFull(a.tuple, a.seq, o, a.slot, a.full.keyBit)
	if err != nil {
		return err
	}
	v6 := a.tuple.Is6()
	mi := cookie.FullMSSIndex(o.MSS, v6)
	o.MSS = cookie.FullMSSTable(v6)[mi]
	e := fullEncoding{"full", isn, ts, fullJSON(o, mi, a.full.keyBit), a.slot}
	if a.asJSON {
		return json.NewEncoder(w).Encode(e)
	}
	_, err = fmt.Fprintf(w, "cookie %d (%#08x), TSval bits %#02x: profile full, MSS %d (index %d), wscale %s, sack %v, ecn %v, key bit %d, slot %d\n",
		e.ISN, e.ISN, e.TSBits, e.MSS, e.MSSIndex, wscaleWord(o), o.SACK, o.ECN, e.KeyBit, e.Slot)
	return err
}

func wscaleWord(o cookie.FullOptions) string {
	if !o.HasWScale {
		return "none"
	}
	return fmt.Sprint(o.WScale)
}

// fullCheck is what cookie check --profile full prints with --json, in the
// words of cookie check's Linux profile (slot, age, check_slot, reason).
type fullCheck struct {
	Profile string `json:"profile"`
	Valid   bool   `json:"valid"`
	Reason  string `json:"reason,omitempty"`
	*fullOptionsJSON
	TSChecked bool    `json:"tsecr_checked"`
	Slot      *uint32 `json:"slot,omitempty"`
	Age       *uint32 `json:"age,omitempty"`
	CheckSlot uint32  `json:"check_slot"`
}

func checkFull(w io.Writer, a cookieArgs) (bool, error) {
	v, err := a.key.CheckFull(a.tuple, a.seq, a.cookie, a.slot, a.full.tsecr, a.full.hasTS)
	if err != nil {
		return false, err
	}
	c := fullCheck{Profile: "full", Valid: v.Valid, TSChecked: v.TSChecked, CheckSlot: a.slot}
	if v.Valid {
		o := fullJSON(v.Options, v.MSSIndex, v.KeyBit)
		c.fullOptionsJSON, c.Slot, c.Age = &o, ptrTo(v.Count), ptrTo(v.Age)
	} else {
		c.Reason = v.Reason.String()
	}
	if a.asJSON {
		return c.Valid, json.NewEncoder(w).Encode(c)
	}
	if !v.Valid {
		_, err = fmt.Fprintf(w, "invalid (%s): profile full, checked in slot %d\n", c.Reason, c.CheckSlot)
		return false, err
	}
	_, err = fmt.Fprintf(w, "valid: profile full, MSS %d (index %d), wscale %s, sack %v, ecn %v, key bit %d, slot %d, age %d (checked in slot %d)\n",
		v.Options.MSS, v.MSSIndex, wscaleWord(v.Options), v.Options.SACK, v.Options.ECN, v.KeyBit, v.Count, v.Age, a.slot)
	return true, err
}

// explainFull prints the full profile's check in words and bits.
func explainFull(w io.Writer, a cookieArgs) (bool, error) {
	tr, err := a.key.TraceFull(a.tuple, a.seq, a.cookie, a.slot, a.full.tsecr, a.full.hasTS)
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
		fam, a.tuple.Client, a.tuple.Server, a.seq, a.slot, a.slot&1)
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
