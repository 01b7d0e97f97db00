package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/internal/config"
)

func init() {
	register("cookie", "compute, check and explain SYN cookies (encode|check|explain)", runCookie)
	registerOps("cookie", "encode", "check", "explain")
}

const cookieUsage = `usage:
  synproxy-lite cookie encode  (--key HEX64 | --key-file FILE) --saddr IP --daddr IP --sport PORT --dport PORT --seq N --mss N [--slot N] [--json]
  synproxy-lite cookie check   (--key HEX64 | --key-file FILE) --saddr IP --daddr IP --sport PORT --dport PORT --seq N --cookie N [--check-slot N] [--json]
  synproxy-lite cookie explain (--key HEX64 | --key-file FILE) --saddr IP --daddr IP --sport PORT --dport PORT --seq N --cookie N [--check-slot N] [--json]

synproxy-lite help cookie encode (check, explain) lists each one's flags.
` + cookieTerms + fullCookieUsage

// cookieTerms is the vocabulary of cookie, inspect and the metrics.
const cookieTerms = `
A slot is a minute of the cookie clock: Unix time / 60 for synproxy-lite,
jiffies_64 / (60·HZ) for a kernel. A cookie carries the low byte of the slot
it was made in (its slot); its age is how many slots later it is checked
(the check slot minus its slot), and only ages 0 and 1 are accepted. A
rejected cookie's reason is the word of the metric
synproxy_lite_cookie_invalid_total{reason}: stale (age not 0 or 1), hash
(no MSS index in the hash: forged, corrupted, or another tuple, sequence
number or key) or tuple (addresses no connection can have).
`

var cookieOpUsage = map[string]string{
	"encode": `usage: synproxy-lite cookie encode (--key HEX64 | --key-file FILE) --saddr IP --daddr IP --sport PORT --dport PORT --seq N --mss N [--slot N] [--json]

Computes the cookie (the SYN-ACK's ISN) the kernel's synproxy sends for a
SYN, made in --slot (default: now). --saddr and --sport are the client's
(the SYN's source); --seq is the SYN's sequence number and --mss its MSS
option, rounded down to the table's (0 without one). Numbers are decimal
or 0x hexadecimal.
` + cookieTerms,
	"check": `usage: synproxy-lite cookie check (--key HEX64 | --key-file FILE) --saddr IP --daddr IP --sport PORT --dport PORT --seq N --cookie N [--check-slot N] [--json]

Checks the cookie of a client's handshake ACK as of --check-slot (default:
now): --seq is the client's initial sequence number (the ACK's seq minus 1),
--cookie the ACK's ack number minus 1. Exits 0 for a valid cookie, 1 for an
invalid one.
` + cookieTerms,
	"explain": `usage: synproxy-lite cookie explain (--key HEX64 | --key-file FILE) --saddr IP --daddr IP --sport PORT --dport PORT --seq N --cookie N [--check-slot N] [--json]

Checks a cookie as check does and shows the arithmetic in words and bits
(with --json, its intermediate values). Exits 0 for a valid cookie, 1 for
an invalid one.
` + cookieTerms,
}

// cookieMisplaced says what to use instead of a flag given to the wrong
// operation (or under its former name).
var cookieMisplaced = map[string]map[string]string{
	"encode": {
		"cookie":     "--cookie is for check and explain, not encode",
		"check-slot": "--check-slot is for check and explain; encode makes the cookie in --slot",
		"count":      "--count is now --slot (the slot the cookie is made in)",
	},
	"check": {
		"mss":   "--mss is for encode; check decodes the MSS from the cookie",
		"slot":  "--slot is for encode; check takes --check-slot (the slot the check runs in)",
		"count": "--count is now --check-slot (the slot the check runs in)",
	},
}

// cookieArgs are the parsed flags common to the cookie subcommands.
type cookieArgs struct {
	key    cookie.Key
	tuple  cookie.Tuple
	seq    uint32
	mss    uint16
	cookie uint32
	// slot is what --slot (encode) or --check-slot (check, explain) gives,
	// the current slot without it.
	slot   uint32
	asJSON bool
	full   fullArgs // --profile and the full profile's flags
}

func runCookie(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, cookieUsage)
		return exitUsage
	}
	op := args[0]
	if op != "encode" && op != "check" && op != "explain" {
		if op == "-h" || op == "--help" || op == "-help" || op == "help" {
			fmt.Fprint(stdout, cookieUsage)
			return exitOK
		}
		fmt.Fprintf(stderr, "synproxy-lite cookie: unknown operation %q (encode, check or explain)\n", op)
		return exitUsage
	}
	a, err := parseCookieArgs(op, args[1:], time.Now, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var kfe *keyFileError
	if errors.As(err, &kfe) {
		fmt.Fprintf(stderr, "synproxy-lite cookie %s: %v\n", op, err)
		return exitFailure
	}
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite cookie %s: %v\n", op, err)
		return exitUsage
	}
	if a.full.profile == cookie.ProfileFull {
		return runCookieFull(op, a, stdout, stderr)
	}
	switch op {
	case "encode":
		err = encodeCookie(stdout, a)
	case "check":
		var ok bool
		ok, err = checkCookie(stdout, a)
		if err == nil && !ok {
			return exitFailure
		}
	default:
		var ok bool
		if a.asJSON {
			ok, err = explainCookieJSON(stdout, a)
		} else {
			ok, err = explainCookie(stdout, a)
		}
		if err == nil && !ok {
			return exitFailure
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite cookie %s: %v\n", op, err)
		return exitUsage
	}
	return exitOK
}

// cookieEncoding is what cookie encode prints with --json.
type cookieEncoding struct {
	ISN      uint32 `json:"isn"`
	MSS      uint16 `json:"mss"`
	MSSIndex uint8  `json:"mss_index"`
	Slot     uint32 `json:"slot"`
}

func encodeCookie(w io.Writer, a cookieArgs) error {
	isn, err := a.key.Encode(a.tuple, a.seq, a.mss, a.slot)
	if err != nil {
		return err
	}
	v6 := a.tuple.Is6()
	idx := cookie.MSSIndex(a.mss, v6)
	e := cookieEncoding{isn, cookie.MSSTable(v6)[idx], idx, a.slot}
	if a.asJSON {
		return json.NewEncoder(w).Encode(e)
	}
	_, err = fmt.Fprintf(w, "cookie %d (%#08x): MSS %d (index %d), slot %d\n", e.ISN, e.ISN, e.MSS, e.MSSIndex, e.Slot)
	return err
}

// cookieCheck is what cookie check prints with --json: the words are
// those of inspect --json and of the metrics.
type cookieCheck struct {
	Valid bool `json:"valid"`
	// Reason is why an invalid cookie was rejected (stale, hash): the
	// reason label of synproxy_lite_cookie_invalid_total.
	Reason   string  `json:"reason,omitempty"`
	MSS      uint16  `json:"mss,omitempty"`
	MSSIndex *uint8  `json:"mss_index,omitempty"`
	Slot     *uint32 `json:"slot,omitempty"` // the slot the cookie was made in, when its age is accepted
	// SlotMod256 is the slot's low byte, which the cookie carries.
	SlotMod256 uint8  `json:"slot_mod_256"`
	Age        uint32 `json:"age"`
	CheckSlot  uint32 `json:"check_slot"`
}

func newCookieCheck(tr *cookie.Trace, checkSlot uint32) cookieCheck {
	v := tr.Verdict
	c := cookieCheck{Valid: v.Valid, SlotMod256: uint8(tr.SlotByte()), Age: tr.Age, CheckSlot: checkSlot}
	if !v.Valid {
		c.Reason = v.Reason.String()
	}
	if v.Valid {
		c.MSS, c.MSSIndex = v.MSS, ptrTo(v.Index)
	}
	if v.Valid || v.Reason == cookie.ReasonMSSIndex {
		c.Slot = ptrTo(v.Count)
	}
	return c
}

func ptrTo[T any](v T) *T { return &v }

func checkCookie(w io.Writer, a cookieArgs) (bool, error) {
	tr, err := a.key.Trace(a.tuple, a.seq, a.cookie, a.slot)
	if err != nil {
		return false, err
	}
	c := newCookieCheck(&tr, a.slot)
	if a.asJSON {
		return c.Valid, json.NewEncoder(w).Encode(c)
	}
	switch {
	case c.Valid:
		_, err = fmt.Fprintf(w, "valid: MSS %d (index %d), slot %d, age %d (checked in slot %d)\n", c.MSS, *c.MSSIndex, *c.Slot, c.Age, c.CheckSlot)
	case tr.Verdict.Reason == cookie.ReasonStale:
		_, err = fmt.Fprintf(w, "invalid (%s): made in a slot ending in %d (mod 256), age %d in slot %d; only ages 0 and 1 are accepted\n",
			c.Reason, c.SlotMod256, c.Age, c.CheckSlot)
	default:
		_, err = fmt.Fprintf(w, "invalid (%s): no MSS index in the hash of slot %d (age %d): forged, corrupted, or another tuple, sequence number or key\n",
			c.Reason, *c.Slot, c.Age)
	}
	return c.Valid, err
}

func parseCookieArgs(op string, args []string, now func() time.Time, help io.Writer) (cookieArgs, error) {
	var a cookieArgs
	fs := newFlagSet("cookie "+op, cookieOpUsage[op], help)
	key := fs.String("key", "", "the cookie secret: the 32 bytes of the kernel's syncookie_secret (or syncookie6_secret) in memory order, as `HEX64` digits")
	keyFile := fs.String("key-file", "", "read the secret from `FILE` (64 hex digits or 32 raw bytes, mode 0600, owned by you or root): keeps it out of the process list and the shell's history")
	saddr := fs.String("saddr", "", "the client's `IP` address (the SYN's source)")
	daddr := fs.String("daddr", "", "the server's `IP` address")
	sport := fs.String("sport", "", "the client's `PORT`")
	dport := fs.String("dport", "", "the server's `PORT`")
	ck, mss, slot := new(string), new(string), new(string)
	if op == "encode" {
		fs.StringVar(slot, "slot", "", "make the cookie in slot `N` (default: now, Unix time / 60)")
		fs.StringVar(mss, "mss", "", "the SYN's MSS option, `N` bytes (0 without one)")
		fs.String("seq", "", "the SYN's sequence number `N`")
	} else {
		fs.StringVar(slot, "check-slot", "", "check in slot `N` (default: now, Unix time / 60)")
		fs.StringVar(ck, "cookie", "", "the cookie `N`: the handshake ACK's ack number minus 1")
		fs.String("seq", "", "the client's initial sequence number `N`: the handshake ACK's seq minus 1")
	}
	fs.BoolVar(&a.asJSON, "json", false, "print the result as one JSON object")
	ff := addFullFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		var fe *flagError
		if errors.As(err, &fe) && fe.unknown {
			if op == "explain" {
				op = "check"
			}
			if m, ok := cookieMisplaced[op][fe.Flag]; ok {
				return a, errors.New(m)
			}
		}
		return a, err
	}
	var err error
	if a.full, err = ff.parse(op, fs); err != nil {
		return a, err
	}
	seq := fs.Lookup("seq").Value.String()
	if fs.NArg() > 0 {
		return a, fmt.Errorf("unexpected argument %q (every value of cookie %s follows its --flag)", fs.Arg(0), op)
	}
	need := []string{"saddr", "daddr", "sport", "dport", "seq", "cookie"}
	if op == "encode" {
		need[len(need)-1] = "mss"
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, n := range need {
		if !set[n] {
			_, u := flag.UnquoteUsage(fs.Lookup(n))
			return a, fmt.Errorf("missing --%s (%s)", n, u)
		}
	}
	k, err := keyFromFlags("key", *key, *keyFile)
	if err != nil {
		return a, err
	}
	if k == nil {
		return a, errors.New("missing --key or --key-file (the cookie secret)")
	}
	a.key = *k
	src, err := parseIP("saddr", *saddr)
	if err != nil {
		return a, err
	}
	dst, err := parseIP("daddr", *daddr)
	if err != nil {
		return a, err
	}
	if src.Is4() != dst.Is4() {
		return a, errors.New("--saddr and --daddr are of different address families (both IPv4 or both IPv6)")
	}
	sp, err := parsePort("sport", *sport)
	if err != nil {
		return a, err
	}
	dp, err := parsePort("dport", *dport)
	if err != nil {
		return a, err
	}
	a.tuple = cookie.Tuple{Client: netip.AddrPortFrom(src, sp), Server: netip.AddrPortFrom(dst, dp)}
	s, err := parseUint("seq", seq, math.MaxUint32)
	if err != nil {
		return a, err
	}
	a.seq = uint32(s)
	if op == "encode" {
		m, err := parseUint("mss", *mss, math.MaxUint16)
		if err != nil {
			return a, err
		}
		a.mss = uint16(m)
	} else {
		c, err := parseUint("cookie", *ck, math.MaxUint32)
		if err != nil {
			return a, err
		}
		a.cookie = uint32(c)
	}
	slotFlag := "check-slot"
	if op == "encode" {
		slotFlag = "slot"
	}
	if set[slotFlag] {
		c, err := parseUint(slotFlag, *slot, math.MaxUint32)
		if err != nil {
			return a, err
		}
		a.slot = uint32(c)
	} else {
		a.slot = cookie.WallSlot(now())
	}
	return a, nil
}

// parseIP parses the address of flag name.
func parseIP(name, s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return ip, errFlag(name, "%q is not an IP address (192.0.2.1 or 2001:db8::1, no port)", s)
	}
	return ip, nil
}

// parsePort parses the port number of flag name.
func parsePort(name, s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, errFlag(name, "%s is not a port (0-65535)", strconv.Quote(s))
	}
	return uint16(p), nil
}

// keyFromFlags returns the key given as --NAME HEX64 or read from
// --NAME-file, nil when neither is given (an empty value counts as not
// given). Both at once is a usage error; a key file that cannot be read or
// is refused (mode, owner, contents) is a *keyFileError.
func keyFromFlags(name, hex, file string) (*cookie.Key, error) {
	switch {
	case hex != "" && file != "":
		return nil, fmt.Errorf("--%s and --%s-file exclude each other; give the key once (--%s-file keeps it out of the process list)", name, name, name)
	case file != "":
		k, err := config.LoadKeyFile(file)
		if err != nil {
			return nil, &keyFileError{Flag: name + "-file", Err: err}
		}
		return &k, nil
	case hex != "":
		k, err := cookie.ParseKey(hex)
		if err != nil {
			return nil, fmt.Errorf("--%s: %v", name, err)
		}
		return &k, nil
	}
	return nil, nil
}

// keyFileError is a key file that could not be loaded: the command fails
// (exit 1) rather than being misused (exit 2), as for a capture file.
type keyFileError struct {
	Flag string
	Err  error
}

func (e *keyFileError) Error() string { return "--" + e.Flag + ": " + e.Err.Error() }

func (e *keyFileError) Unwrap() error { return e.Err }

// parseUint parses a decimal number, or a hexadecimal one with a 0x prefix
// (never octal: a leading zero is decimal).
func parseUint(name, s string, max uint64) (uint64, error) {
	base, digits := 10, s
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		base, digits = 16, s[2:]
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil || v > max {
		return 0, errFlag(name, "%q is not a number in 0..%d (decimal, or hexadecimal with 0x)", s, max)
	}
	return v, nil
}

// explainCookie prints the check's arithmetic in words and bits, and reports
// whether the cookie is valid.
func explainCookie(w io.Writer, a cookieArgs) (bool, error) {
	tr, err := a.key.Trace(a.tuple, a.seq, a.cookie, a.slot)
	if err != nil {
		return false, err
	}
	v := tr.Verdict
	v6 := a.tuple.Is6()
	fam := "IPv4"
	if v6 {
		fam = "IPv6"
	}
	bits := func(x uint32) string {
		return fmt.Sprintf("%08b %08b %08b %08b", x>>24, x>>16&0xff, x>>8&0xff, x&0xff)
	}
	row := func(label string, x uint32) {
		fmt.Fprintf(w, "  %-38s %10d  %08x  %s\n", label, x, x, bits(x))
	}
	fmt.Fprintf(w, "%s connection %s -> %s, client ISN %d, check slot %d (low byte %d)\n\n",
		fam, a.tuple.Client, a.tuple.Server, a.seq, a.slot, a.slot&0xff)
	fmt.Fprintln(w, "The cookie is the ISN of the SYN-ACK: h0 + client ISN + slot<<24 + ((h1 + MSS index) mod 2^24).")
	fmt.Fprintln(w, "Subtract the two terms that do not depend on time or MSS:")
	row("cookie (ACK's ack number - 1)", a.cookie)
	row("- h0 (SipHash, key half 0, count 0)", tr.H0)
	row("- client ISN (ACK's seq - 1)", a.seq)
	row("= r", tr.R)
	fmt.Fprintf(w, "\nThe top 8 bits of r are the low byte of the slot the cookie was made in: %d.\n", tr.SlotByte())
	fmt.Fprintf(w, "Age = (check slot - that) mod 256 = (%d - %d) mod 256 = %d.\n", a.slot&0xff, tr.SlotByte(), tr.Age)
	if !v.Valid && v.Reason == cookie.ReasonStale {
		fmt.Fprintf(w, "An age of %d is not 0 or 1: the cookie is stale (or from the future) and is rejected.\n", tr.Age)
		fmt.Fprintf(w, "\nverdict: invalid (%s)\n", v.Reason)
		return false, nil
	}
	made := a.slot - tr.Age
	fmt.Fprintf(w, "Accepted age: the cookie was made in slot %d. Recompute hash #1 for that slot:\n", made)
	row("low 24 bits of r", tr.R&cookie.HashMask)
	row("- h1 (SipHash, key half 1, count "+strconv.FormatUint(uint64(made), 10)+")", tr.H1)
	row("= MSS index (mod 2^24)", tr.Index)
	if !v.Valid {
		fmt.Fprintf(w, "\nThe MSS index %d is not below 4: the hash does not match (forged or corrupted cookie,\nor a different tuple, sequence number or key). Rejected.\n", tr.Index)
		fmt.Fprintf(w, "\nverdict: invalid (%s)\n", v.Reason)
		return false, nil
	}
	tab := cookie.MSSTable(v6)
	fmt.Fprintf(w, "\nThe MSS index %d selects %d from the %s table %v.\n", tr.Index, tab[tr.Index], fam, tab)
	fmt.Fprintf(w, "\nverdict: valid, MSS %d, made in slot %d, age %d\n", v.MSS, v.Count, v.Age)
	return true, nil
}

// cookieExplanation is what cookie explain prints with --json: the check
// (as cookie check --json prints it) and its intermediate values.
type cookieExplanation struct {
	cookieCheck
	Family string `json:"family"`
	Client string `json:"client"`
	Server string `json:"server"`
	Seq    uint32 `json:"seq"`
	Cookie uint32 `json:"cookie"`
	H0     uint32 `json:"h0"` // hash #0 of the tuple
	R      uint32 `json:"r"`  // cookie - h0 - seq
	// H1 is hash #1 of the cookie's slot and Index (r - h1) mod 2^24, the
	// MSS index when below 4; both absent when the age is not accepted.
	H1    *uint32 `json:"h1,omitempty"`
	Index *uint32 `json:"index,omitempty"`
}

func explainCookieJSON(w io.Writer, a cookieArgs) (bool, error) {
	tr, err := a.key.Trace(a.tuple, a.seq, a.cookie, a.slot)
	if err != nil {
		return false, err
	}
	e := cookieExplanation{cookieCheck: newCookieCheck(&tr, a.slot), Family: "ipv4",
		Client: a.tuple.Client.String(), Server: a.tuple.Server.String(), Seq: a.seq, Cookie: a.cookie, H0: tr.H0, R: tr.R}
	if a.tuple.Is6() {
		e.Family = "ipv6"
	}
	if tr.Age < cookie.MaxAge {
		e.H1, e.Index = ptrTo(tr.H1), ptrTo(tr.Index)
	}
	return e.Valid, json.NewEncoder(w).Encode(e)
}
