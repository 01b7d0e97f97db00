package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/internal/inspect"
)

func init() {
	register("inspect", "list the TCP handshakes of a pcap/pcapng capture and decode their SYN cookies", runInspect)
}

const inspectUsage = `usage:
  synproxy-lite inspect FILE [--key HEX64 | --key-file F [--key6 HEX64 | --key6-file F]] [--count N] [--json]

Reads a capture (pcap or pcapng; Ethernet, raw IP, Linux cooked or loopback
link types) and prints every TCP handshake in it: the SYN's options; the
SYN-ACK's ISN and TSval decoded as far as possible without the key (the
timestamp-cookie bits, whether it echoes the SYN's options, whether it has
the shape of an nftables synproxy SYN-ACK); the client's ACK.

--key HEX64  the cookie secret (the kernel's syncookie_secret, in memory
             order): checks every SYN-ACK's ISN as a cookie for its SYN.
--key6 HEX64 the secret for IPv6 handshakes when it differs (a kernel keeps
             a second one, syncookie6_secret); default: --key.
--key-file F, --key6-file F
             read the secret from a file instead (64 hex digits or 32 raw
             bytes, mode 0600, owned by you or root), which keeps it out of
             the process list and the shell's history.
--count N    the time slot of the handshakes: jiffies_64 / (60·HZ) for a
             kernel, Unix time / 60 for synproxy-lite. A cookie is valid in
             the slot it was made in and the next. Without --count the check
             recovers the slot's low 8 bits from the cookie and searches the
             full slot near the capture's wall-clock time and over kernel
             uptimes up to a year (HZ 100, 250, 300, 1000); a match found that
             way is reported as inferred, with its chance of being a fluke.
--json       one JSON object per line: each handshake, each malformed frame,
             and a summary.

Malformed and truncated frames are reported and skipped.
`

// parseInspectArgs parses the flags of inspect into the capture file, the
// options of the check and the output format.
func parseInspectArgs(args []string) (file string, o inspect.Options, asJSON bool, err error) {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	key, key6, count := fs.String("key", "", ""), fs.String("key6", "", ""), fs.String("count", "", "")
	keyFile, key6File := fs.String("key-file", "", ""), fs.String("key6-file", "", "")
	fs.BoolVar(&asJSON, "json", false, "")
	var files []string
	for ; ; args = fs.Args()[1:] {
		if err := fs.Parse(args); err != nil {
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
	if *count != "" {
		c, err := parseUint("count", *count, math.MaxUint32)
		if err != nil {
			return "", o, false, err
		}
		o.Count, o.HasCount = uint32(c), true
	}
	return files[0], o, asJSON, nil
}

func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	file, o, asJSON, err := parseInspectArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, inspectUsage)
		return exitOK
	}
	var kfe *keyFileError
	if errors.As(err, &kfe) {
		fmt.Fprintf(stderr, "synproxy-lite inspect: %v\n", err)
		return exitFailure
	}
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite inspect: %v\n%s", err, inspectUsage)
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
		rep.WriteJSON(stdout)
	} else {
		rep.WriteText(stdout)
	}
	return exitOK
}
