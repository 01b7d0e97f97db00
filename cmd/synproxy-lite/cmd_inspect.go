package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/internal/inspect"
)

func init() {
	register("inspect", "list the TCP handshakes of a pcap/pcapng capture and decode their SYN cookies", runInspect)
}

const inspectUsage = `usage: synproxy-lite inspect FILE [--key HEX64 | --key-file FILE [--key6 HEX64 | --key6-file FILE]] [--check-slot N] [--json]

Reads a capture (pcap or pcapng; Ethernet, raw IP, Linux cooked or loopback
link types) and prints every TCP handshake in it: the SYN's options; the
SYN-ACK's ISN and TSval decoded as far as possible without the key (the
timestamp-cookie bits, whether it echoes the SYN's options, whether it has
the shape of an nftables synproxy SYN-ACK); the client's ACK. With the key,
every SYN-ACK's ISN is checked as a cookie for its SYN.

Without --check-slot the check recovers the slot's low 8 bits from the
cookie and searches the full slot near the capture's wall-clock time and
over kernel uptimes up to a year (HZ 100, 250, 300, 1000); a match found
that way is reported as inferred, with its chance of being a fluke.

Malformed frames are reported and skipped. A capture that ends in the
middle of a frame (a truncated file) is reported up to there, and inspect
exits 1 with an error that says so.
` + cookieTerms

// parseInspectArgs parses the flags of inspect into the capture file, the
// options of the check and the output format.
func parseInspectArgs(args []string, help io.Writer) (file string, o inspect.Options, asJSON bool, err error) {
	fs := newFlagSet("inspect", inspectUsage, help)
	key := fs.String("key", "", "check every SYN-ACK's ISN as a cookie for its SYN with this secret, `HEX64` digits (the kernel's syncookie_secret, in memory order)")
	key6 := fs.String("key6", "", "the `HEX64` secret of IPv6 handshakes when it differs (a kernel keeps a second one, syncookie6_secret); default: --key")
	keyFile := fs.String("key-file", "", "read --key from `FILE` (64 hex digits or 32 raw bytes, mode 0600, owned by you or root): keeps it out of the process list")
	key6File := fs.String("key6-file", "", "read --key6 from `FILE`")
	slot := fs.String("check-slot", "", "check the cookies in slot `N`: jiffies_64 / (60·HZ) for a kernel, Unix time / 60 for synproxy-lite; default: searched for")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per line: each handshake, each malformed frame, and a summary")
	var files []string
	for ; ; args = fs.Args()[1:] {
		if err := parseFlags(fs, args); err != nil {
			var fe *flagError
			if errors.As(err, &fe) && fe.unknown && fe.Flag == "count" {
				return "", o, false, errors.New("--count is now --check-slot (the slot the cookies are checked in)")
			}
			return "", o, false, err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
	}
	if len(files) != 1 {
		return "", o, false, fmt.Errorf("want one capture file, got %d", len(files))
	}
	for _, k := range []struct {
		name, hex, file string
		dst             **cookie.Key
	}{{"key", *key, *keyFile, &o.Key}, {"key6", *key6, *key6File, &o.Key6}} {
		if k.hex == "" && k.file == "" {
			continue
		}
		if o.Key == nil && k.name == "key6" {
			flag := "--key6"
			if k.hex == "" {
				flag = "--key6-file"
			}
			return "", o, false, errors.New(flag + " needs --key or --key-file")
		}
		if *k.dst, err = keyFromFlags(k.name, k.hex, k.file); err != nil {
			return "", o, false, err
		}
	}
	if *slot != "" {
		c, err := parseUint("check-slot", *slot, math.MaxUint32)
		if err != nil {
			return "", o, false, err
		}
		o.CheckSlot, o.HasCheckSlot = uint32(c), true
	}
	return files[0], o, asJSON, nil
}

func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	file, o, asJSON, err := parseInspectArgs(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var kfe *keyFileError
	if errors.As(err, &kfe) {
		fmt.Fprintf(stderr, "synproxy-lite inspect: %v\n", err)
		return exitFailure
	}
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite inspect: %v (synproxy-lite help inspect)\n", err)
		return exitUsage
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite inspect: %v\n", err)
		return exitFailure
	}
	defer f.Close()
	rep, err := inspect.Read(ctx, f, &o)
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite inspect: %s: %v\n", file, err)
		return exitFailure
	}
	if asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite inspect: %v\n", err)
		return exitFailure
	}
	if err := rep.Err(); err != nil {
		fmt.Fprintf(stderr, "synproxy-lite inspect: %s: %s\n", file, strings.TrimPrefix(err.Error(), "inspect: "))
		return exitFailure
	}
	return exitOK
}
