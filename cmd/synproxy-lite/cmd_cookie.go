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
}

const cookieUsage = `usage:
  synproxy-lite cookie encode  (--key HEX64 | --key-file F) --saddr IP --daddr IP --sport N --dport N --seq N --mss N [--count N]
  synproxy-lite cookie check   (--key HEX64 | --key-file F) --saddr IP --daddr IP --sport N --dport N --seq N --cookie N [--count N]
  synproxy-lite cookie explain (--key HEX64 | --key-file F) --saddr IP --daddr IP --sport N --dport N --seq N --cookie N [--count N]

--key is the 32 bytes of the kernel's syncookie_secret (or syncookie6_secret)
in memory order, as 64 hex digits. --key-file reads them from a file instead
(64 hex digits or 32 raw bytes, mode 0600, owned by you or root), which keeps
the secret out of the process list and the shell's history. saddr/sport are the client's (the source of
the SYN and of the ACK). For check and explain, --seq is the client's initial
sequence number (the ACK's seq minus 1) and --cookie the ACK's ack number
minus 1. --count is the time slot (default: the wall clock's, Unix time / 60);
for check it is the checker's current slot.
` + fullCookieUsage

// cookieArgs are the parsed flags common to the cookie subcommands.
type cookieArgs struct {
	key    cookie.Key
	tuple  cookie.Tuple
	seq    uint32
	mss    uint16
	cookie uint32
	count  uint32
	full   fullArgs // --profile and the full profile's flags
}

func runCookie(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, cookieUsage)
		return exitUsage
	}
	op := args[0]
	if op != "encode" && op != "check" && op != "explain" {
		if op == "-h" || op == "--help" || op == "help" {
			fmt.Fprint(stdout, cookieUsage)
			return exitOK
		}
		fmt.Fprintf(stderr, "synproxy-lite cookie: unknown operation %q (encode, check or explain)\n", op)
		return exitUsage
	}
	a, err := parseCookieArgs(op, args[1:], time.Now)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, cookieUsage)
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
	enc := json.NewEncoder(stdout)
	switch op {
	case "encode":
		isn, err := a.key.Encode(a.tuple, a.seq, a.mss, a.count)
		if err != nil {
			fmt.Fprintf(stderr, "synproxy-lite cookie encode: %v\n", err)
			return exitUsage
		}
		v6 := a.tuple.Is6()
		idx := cookie.MSSIndex(a.mss, v6)
		enc.Encode(struct {
			ISN      uint32 `json:"isn"`
			MSS      uint16 `json:"mss"`
			MSSIndex uint8  `json:"mss_index"`
			Count    uint32 `json:"count"`
		}{isn, cookie.MSSTable(v6)[idx], idx, a.count})
		return exitOK
	case "check":
		v, err := a.key.Check(a.tuple, a.seq, a.cookie, a.count)
		if err != nil {
			fmt.Fprintf(stderr, "synproxy-lite cookie check: %v\n", err)
			return exitUsage
		}
		if !v.Valid {
			enc.Encode(struct {
				Valid  bool   `json:"valid"`
				Reason string `json:"reason"`
			}{false, v.Reason.String()})
			return exitFailure
		}
		enc.Encode(struct {
			Valid    bool   `json:"valid"`
			MSS      uint16 `json:"mss"`
			MSSIndex uint8  `json:"mss_index"`
			Count    uint32 `json:"count"`
			Age      uint32 `json:"age"`
		}{true, v.MSS, v.Index, v.Count, v.Age})
		return exitOK
	default:
		ok, err := explainCookie(stdout, a)
		if err != nil {
			fmt.Fprintf(stderr, "synproxy-lite cookie explain: %v\n", err)
			return exitUsage
		}
		if !ok {
			return exitFailure
		}
		return exitOK
	}
}

func parseCookieArgs(op string, args []string, now func() time.Time) (a cookieArgs, err error) {
	fs := flag.NewFlagSet("cookie "+op, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	key := fs.String("key", "", "")
	keyFile := fs.String("key-file", "", "")
	saddr := fs.String("saddr", "", "")
	daddr := fs.String("daddr", "", "")
	sport := fs.String("sport", "", "")
	dport := fs.String("dport", "", "")
	seq := fs.String("seq", "", "")
	mss := fs.String("mss", "", "")
	ck := fs.String("cookie", "", "")
	count := fs.String("count", "", "")
	ff := addFullFlags(fs)
	if err := fs.Parse(args); err != nil {
		return a, err
	}
	if a.full, err = ff.parse(op, fs); err != nil {
		return a, err
	}
	if fs.NArg() > 0 {
		return a, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	need := []string{"saddr", "daddr", "sport", "dport", "seq"}
	if op == "encode" {
		need = append(need, "mss")
		if *ck != "" {
			return a, errors.New("--cookie is for check and explain, not encode")
		}
	} else {
		need = append(need, "cookie")
		if *mss != "" {
			return a, errors.New("--mss is for encode; check decodes the MSS from the cookie")
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, n := range need {
		if !set[n] {
			return a, fmt.Errorf("missing --%s", n)
		}
	}
	k, err := keyFromFlags("key", *key, *keyFile)
	if err != nil {
		return a, err
	}
	if k == nil {
		return a, errors.New("missing --key or --key-file")
	}
	a.key = *k
	src, err := netip.ParseAddr(*saddr)
	if err != nil {
		return a, fmt.Errorf("--saddr: %v", err)
	}
	dst, err := netip.ParseAddr(*daddr)
	if err != nil {
		return a, fmt.Errorf("--daddr: %v", err)
	}
	if src.Is4() != dst.Is4() {
		return a, errors.New("--saddr and --daddr are of different address families")
	}
	sp, err := parseUint("sport", *sport, math.MaxUint16)
	if err != nil {
		return a, err
	}
	dp, err := parseUint("dport", *dport, math.MaxUint16)
	if err != nil {
		return a, err
	}
	a.tuple = cookie.Tuple{Client: netip.AddrPortFrom(src, uint16(sp)), Server: netip.AddrPortFrom(dst, uint16(dp))}
	s, err := parseUint("seq", *seq, math.MaxUint32)
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
	if set["count"] {
		c, err := parseUint("count", *count, math.MaxUint32)
		if err != nil {
			return a, err
		}
		a.count = uint32(c)
	} else {
		a.count = cookie.WallSlot(now())
	}
	return a, nil
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
		return 0, fmt.Errorf("--%s: %q is not a number in 0..%d", name, s, max)
	}
	return v, nil
}

// explainCookie prints the check's arithmetic in words and bits, and reports
// whether the cookie is valid.
func explainCookie(w io.Writer, a cookieArgs) (bool, error) {
	tr, err := a.key.Trace(a.tuple, a.seq, a.cookie, a.count)
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
	fmt.Fprintf(w, "%s connection %s -> %s, client ISN %d, checker's time slot %d (low byte %d)\n\n",
		fam, a.tuple.Client, a.tuple.Server, a.seq, a.count, a.count&0xff)
	fmt.Fprintln(w, "The cookie is the ISN of the SYN-ACK: h0 + client ISN + slot<<24 + ((h1 + MSS index) mod 2^24).")
	fmt.Fprintln(w, "Subtract the two terms that do not depend on time or MSS:")
	row("cookie (ACK's ack number - 1)", a.cookie)
	row("- h0 (SipHash, key half 0, count 0)", tr.H0)
	row("- client ISN (ACK's seq - 1)", a.seq)
	row("= r", tr.R)
	fmt.Fprintf(w, "\nThe top 8 bits of r are the low byte of the slot the cookie was made in: %d.\n", tr.SlotByte())
	fmt.Fprintf(w, "Age = (checker's slot - that) mod 256 = (%d - %d) mod 256 = %d.\n", a.count&0xff, tr.SlotByte(), tr.Age)
	if !v.Valid && v.Reason == cookie.ReasonStale {
		fmt.Fprintf(w, "An age of %d is not 0 or 1: the cookie is stale (or from the future) and is rejected.\n", tr.Age)
		fmt.Fprintln(w, "\nverdict: invalid (stale)")
		return false, nil
	}
	made := a.count - tr.Age
	fmt.Fprintf(w, "Accepted age: the cookie was made in slot %d. Recompute hash #1 for that slot:\n", made)
	row("low 24 bits of r", tr.R&cookie.HashMask)
	row("- h1 (SipHash, key half 1, count "+strconv.FormatUint(uint64(made), 10)+")", tr.H1)
	row("= MSS index (mod 2^24)", tr.Index)
	if !v.Valid {
		fmt.Fprintf(w, "\nThe MSS index %d is not below 4: the hash does not match (forged or corrupted cookie,\nor a different tuple, sequence number or key). Rejected.\n", tr.Index)
		fmt.Fprintln(w, "\nverdict: invalid (mss-index)")
		return false, nil
	}
	tab := cookie.MSSTable(v6)
	fmt.Fprintf(w, "\nThe MSS index %d selects %d from the %s table %v.\n", tr.Index, tab[tr.Index], fam, tab)
	fmt.Fprintf(w, "\nverdict: valid, MSS %d, made in slot %d, age %d\n", v.MSS, v.Count, v.Age)
	return true, nil
}
