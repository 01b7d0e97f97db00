package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func init() {
	register("key", "write a cookie key or fleet secret file (key generate)", runKey)
	registerOps("key", "generate")
}

const keyUsage = `usage: synproxy-lite key generate [--fleet] --out FILE [--force]

Writes a new random cookie key (or, with --fleet, a fleet master secret) as
64 hexadecimal digits to FILE, created with mode 0600. An existing FILE is
left alone unless --force is given; it is then replaced in one rename.
The file is what run's --key-file and --fleet-secret-file, and the
configuration file's key_file, fleet_secret_file and systemd credentials,
read.

flags:
`

func runKey(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "generate" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help") {
			fmt.Fprint(stdout, keyUsage)
			return exitOK
		}
		fmt.Fprint(stderr, "synproxy-lite key: want the command generate\n"+keyUsage)
		return exitUsage
	}
	fs := newFlagSet("key generate", keyUsage, stdout)
	fleet := fs.Bool("fleet", false, "write a fleet master secret (shared by every proxy of a fleet) instead of a key")
	out := fs.String("out", "", "`file` to write (required; mode 0600)")
	force := fs.Bool("force", false, "replace the file if it exists")
	if err := parseFlags(fs, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "synproxy-lite key generate: %v\n", err)
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "synproxy-lite key generate: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	case *out == "":
		fmt.Fprintln(stderr, "synproxy-lite key generate: --out: required: the file to write")
		return exitUsage
	}
	if err := writeSecret(*out, *force); err != nil {
		fmt.Fprintf(stderr, "synproxy-lite key generate: --out %s: %v\n", *out, err)
		return exitFailure
	}
	what := "cookie key"
	if *fleet {
		what = "fleet secret"
	}
	fmt.Fprintf(stdout, "wrote a new %s to %s (mode 0600)\n", what, *out)
	return exitOK
}

// writeSecret writes 32 random bytes as 64 hex digits to path, created
// with O_EXCL and mode 0600; with force, an existing file is replaced by
// renaming a new one over it. A key and a fleet secret are both 32 random
// bytes; they differ in their use.
func writeSecret(path string, force bool) error {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	data := []byte(hex.EncodeToString(b[:]) + "\n")
	if _, err := os.Lstat(path); err == nil && !force {
		return errors.New("exists; give --force to replace it")
	}
	target := path
	if force {
		target = filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%x.tmp", filepath.Base(path), b[:4]))
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return errors.New("exists; give --force to replace it")
		}
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && target != path {
		err = os.Rename(target, path)
	}
	if err != nil {
		os.Remove(target)
	}
	return err
}
