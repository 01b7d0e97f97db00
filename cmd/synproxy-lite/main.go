// Command synproxy-lite is the SYN-cookie toolkit's single binary: the SYN
// proxy daemon, its demo lab, and tools to compute, inspect and explain cookies.
//
// Each subcommand lives in a file of its own and registers itself in
// subcommands; main only wires os.Args and the exit code. cli.go holds the
// conventions every subcommand follows (help, errors, completion).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and the answer is "no" (e.g. an invalid cookie) or it failed
	exitUsage   = 2 // bad flags or arguments
)

type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	// ops are the operations of a subcommand that has them (cookie
	// encode|check|explain): its first argument, each with a FlagSet.
	ops []string
}

// subcommands is filled by the init functions of the cmd_*.go files.
var subcommands = map[string]subcommand{}

func register(name, summary string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) int) {
	subcommands[name] = subcommand{summary: summary, run: run}
}

// registerOps records the operations of the subcommand name, registered
// before: help, completion and the documentation test visit each.
func registerOps(name string, ops ...string) {
	sc := subcommands[name]
	sc.ops = ops
	subcommands[name] = sc
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	case "help":
		return runHelp(ctx, args[1:], stdout, stderr)
	case "--version", "-version":
		args = append([]string{"version"}, args[1:]...)
	}
	sc, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "synproxy-lite: unknown command %q%s (synproxy-lite help lists them)\n", args[0], suggestCommand(args[0]))
		return exitUsage
	}
	return sc.run(ctx, args[1:], stdout, stderr)
}

// runHelp is "synproxy-lite help [COMMAND [OPERATION]]": the top-level help,
// or a subcommand's own (what its --help prints).
func runHelp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || len(args) == 1 && args[0] == "help" {
		usage(stdout)
		return exitOK
	}
	sc, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "synproxy-lite help: unknown command %q%s (synproxy-lite help lists them)\n", args[0], suggestCommand(args[0]))
		return exitUsage
	}
	if len(args) > 2 || len(args) == 2 && !slices.Contains(sc.ops, args[1]) {
		fmt.Fprintf(stderr, "synproxy-lite help: %q has no operation %q\n", args[0], args[len(args)-1])
		return exitUsage
	}
	return sc.run(ctx, append(args[1:], "--help"), stdout, stderr)
}

// suggestCommand returns `; did you mean "X"?` for the subcommand nearest
// to name, or "".
func suggestCommand(name string) string {
	if n := nearest(name, append(commandNames(), "help")); n != "" {
		return fmt.Sprintf("; did you mean %q?", n)
	}
	return ""
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: synproxy-lite COMMAND [flags]")
	fmt.Fprintln(w, "       synproxy-lite help [COMMAND]")
	fmt.Fprintln(w, "       synproxy-lite --version")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := commandNames()
	width := len("help")
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, subcommands[n].summary)
	}
	fmt.Fprintf(w, "  %-*s  %s\n", width, "help", "print the help of a command (or COMMAND --help)")
	fmt.Fprintln(w, "\nFlags are written --name VALUE or --name=VALUE; booleans --name or --name=false.")
}
