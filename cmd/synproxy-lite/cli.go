package main

// The command line's conventions, in one place: every subcommand makes its
// FlagSet with newFlagSet and parses it with parseFlags, which gives
//
//   - help in GNU style (--flag VALUE  description (default ...)) on
//     --help, -h and "synproxy-lite help COMMAND", always on stdout;
//   - errors that name their flag and say what would be valid, and for an
//     unknown flag the nearest one declared;
//   - FlagSets that help, shell completion and the documentation test read
//     as declared (commandFlags), so a flag added with fs.XxxVar is listed
//     everywhere without further work.
//
// The standard flag package already accepts --long; only help, completion
// and error wording are written here (docs/architecture.md says why no CLI
// library).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

// helpOutput is the output of a FlagSet made by newFlagSet: it swallows
// what the flag package prints itself (parseFlags reports errors its own
// way) and carries where help goes, with the text above the flag list.
type helpOutput struct {
	w     io.Writer
	usage string
}

func (helpOutput) Write(b []byte) (int, error) { return len(b), nil }

// flagSetHook, when set, sees every FlagSet newFlagSet makes: commandFlags
// uses it to read a subcommand's flags.
var flagSetHook atomic.Pointer[func(*flag.FlagSet)]

// newFlagSet returns the FlagSet of a subcommand (name is its words after
// "synproxy-lite": "run", "cookie check"). usage is the text help prints
// above the flags (a synopsis and a description; a last line "flags:" is
// dropped, help adds its own); help is where --help prints: the stdout the
// subcommand was given (commandFlags recognises the FlagSet by it).
//
// Every flag needs a usage string (its help line); a word in backquotes in
// it names the flag's value in help, as in the flag package.
func newFlagSet(name, usage string, help io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(helpOutput{w: help, usage: usage})
	fs.Usage = func() {}
	if h := flagSetHook.Load(); h != nil {
		(*h)(fs)
	}
	return fs
}

// parseFlags parses args with fs. On --help it prints fs's help and
// returns flag.ErrHelp; a bad flag is a *flagError that names it and says
// what would be valid.
func parseFlags(fs *flag.FlagSet, args []string) error {
	// Wrap every value to see which flag failed and why: the flag
	// package only returns the message it formatted.
	var failed *flagError
	var orig []flag.Value
	fs.VisitAll(func(f *flag.Flag) {
		orig = append(orig, f.Value)
		f.Value = &watchedValue{Value: f.Value, name: f.Name, failed: &failed}
	})
	err := fs.Parse(args)
	i := 0
	fs.VisitAll(func(f *flag.Flag) { f.Value = orig[i]; i++ })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		if h, ok := fs.Output().(helpOutput); ok && h.w != nil {
			printHelp(h.w, fs)
		}
		return flag.ErrHelp
	case failed != nil:
		return failed
	}
	return rewordParseError(fs, err)
}

// watchedValue is a flag.Value that keeps the first failure of Set as a
// *flagError.
type watchedValue struct {
	flag.Value
	name   string
	failed **flagError
}

func (v *watchedValue) Set(s string) error {
	err := v.Value.Set(s)
	if err != nil && *v.failed == nil {
		*v.failed = &flagError{Flag: v.name, Msg: valueProblem(v.Value, s, err)}
	}
	return err
}

func (v *watchedValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (v *watchedValue) Get() any {
	if g, ok := v.Value.(flag.Getter); ok {
		return g.Get()
	}
	return v.Value.String()
}

// valueProblem says why s is not a value of v's kind, in the words an
// operator needs.
func valueProblem(v flag.Value, s string, err error) string {
	g, ok := v.(flag.Getter)
	if !ok {
		return err.Error()
	}
	rng := errors.Is(err, strconv.ErrRange)
	switch g.Get().(type) {
	case bool:
		return fmt.Sprintf("%q is not true or false", s)
	case time.Duration:
		return fmt.Sprintf("%q is not a duration (a number with a unit: 500ms, 90s, 5m, 1h30m)", s)
	case int, int64:
		if rng {
			return fmt.Sprintf("%s is out of range", s)
		}
		return fmt.Sprintf("%q is not a whole number", s)
	case uint, uint64:
		if rng {
			return fmt.Sprintf("%s is out of range", s)
		}
		return fmt.Sprintf("%q is not a whole number of 0 or more", s)
	case float64:
		return fmt.Sprintf("%q is not a number", s)
	}
	return err.Error()
}

// flagError is a bad flag: its name (without dashes) and what is wrong,
// ideally with what would be valid.
type flagError struct {
	Flag string
	Msg  string
	// unknown: the flag is not declared.
	unknown bool
}

func (e *flagError) Error() string { return "--" + e.Flag + ": " + e.Msg }

// errFlag returns a *flagError for flag name.
func errFlag(name, format string, a ...any) error {
	return &flagError{Flag: name, Msg: fmt.Sprintf(format, a...)}
}

// rewordParseError turns the flag package's own messages (unknown flag,
// missing value, bad syntax) into the command's.
func rewordParseError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		m := "no such flag for " + fs.Name()
		if near := nearestFlag(fs, name); near != "" {
			m += "; did you mean --" + near + "?"
		} else {
			m += " (synproxy-lite help " + fs.Name() + " lists them)"
		}
		return &flagError{Flag: name, Msg: m, unknown: true}
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		what := "a value"
		if f := fs.Lookup(name); f != nil {
			if v := valueName(f); v != "" {
				what = v
			}
		}
		return &flagError{Flag: name, Msg: "needs " + what + " (--" + name + " " + what + " or --" + name + "=" + what + ")"}
	}
	if s, ok := strings.CutPrefix(msg, "bad flag syntax: "); ok {
		return fmt.Errorf("%q is not a flag (write --name VALUE or --name=VALUE)", s)
	}
	return err
}

// nearestFlag returns the flag of fs whose name is closest to name, or ""
// when none is close enough to be a likely typo.
func nearestFlag(fs *flag.FlagSet, name string) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return nearest(name, names)
}

// nearest returns the word of words closest to w (edit distance at most a
// third of its length, at least 2; a prefix of it counts too), or "".
func nearest(w string, words []string) string {
	best, bestD := "", max(2, len(w)/3)+1
	for _, c := range words {
		d := editDistance(w, c)
		if strings.HasPrefix(c, w) && len(w) >= 3 {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// valueName is the name help gives a flag's value: the backquoted word of
// its usage, else one from its type; "" for a boolean flag.
func valueName(f *flag.Flag) string {
	name, _ := flag.UnquoteUsage(f)
	switch name {
	case "":
		return ""
	case "int", "uint":
		return "N"
	case "duration":
		return "DURATION"
	case "float":
		return "NUMBER"
	case "value", "string":
		return "VALUE"
	}
	return strings.ToUpper(name)
}

// isBool says whether f is a boolean flag (given without a value).
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// printHelp prints the help of a subcommand: its usage text, then one line
// per flag in GNU style.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	var usage string
	if h, ok := fs.Output().(helpOutput); ok {
		usage = h.usage
	}
	usage = strings.TrimRight(usage, "\n")
	usage = strings.TrimSuffix(strings.TrimRight(usage, "\n"), "flags:")
	usage = strings.TrimRight(usage, "\n")
	if usage == "" {
		usage = "usage: synproxy-lite " + fs.Name() + " [flags]"
	}
	fmt.Fprintln(w, usage)
	type line struct{ left, right string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		left := "--" + f.Name
		if v := valueName(f); v != "" {
			left += " " + v
		}
		_, desc := flag.UnquoteUsage(f)
		if d := defaultText(f); d != "" {
			desc += " (default " + d + ")"
		}
		lines = append(lines, line{left, desc})
		if len(left) <= 26 {
			width = max(width, len(left))
		}
	})
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	for _, l := range lines {
		if len(l.left) > width {
			fmt.Fprintf(w, "  %s\n  %*s  %s\n", l.left, width, "", l.right)
			continue
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, l.left, l.right)
	}
	fmt.Fprintln(w, "  --help"+strings.Repeat(" ", max(width-6, 0))+"  print this help")
}

// defaultText is the default of f as help shows it, "" for a zero value
// (false, 0, 0s, "").
func defaultText(f *flag.Flag) string {
	switch f.DefValue {
	case "", "0", "0s", "false":
		return ""
	case "true":
		if isBool(f) {
			return "true; --" + f.Name + "=false turns it off"
		}
	}
	if strings.ContainsAny(f.DefValue, " \t\"") {
		return strconv.Quote(f.DefValue)
	}
	return f.DefValue
}

// introspect serialises commandFlags: flagSetHook is one for the process.
var introspect sync.Mutex

// commandFlags returns the FlagSet the subcommand named by path declares
// ("run", or "cookie check" for one with operations), as it makes it: by
// running it with --help and nothing else, its output discarded.
func commandFlags(path ...string) (*flag.FlagSet, error) {
	sc, ok := subcommands[path[0]]
	if !ok {
		return nil, fmt.Errorf("no command %q", path[0])
	}
	name := strings.Join(path, " ")
	introspect.Lock()
	defer introspect.Unlock()
	// The FlagSet is recognised by the stdout this call gives: another
	// goroutine running a command at the same time makes its own.
	stdout := &introspectOutput{}
	var got *flag.FlagSet
	var mu sync.Mutex
	hook := func(fs *flag.FlagSet) {
		mu.Lock()
		defer mu.Unlock()
		if h, ok := fs.Output().(helpOutput); ok && h.w == stdout && got == nil && fs.Name() == name {
			got = fs
		}
	}
	flagSetHook.Store(&hook)
	defer flagSetHook.Store(nil)
	args := append(slices.Clone(path[1:]), "--help")
	sc.run(contextDone(), args, stdout, io.Discard)
	if got == nil {
		return nil, fmt.Errorf("synproxy-lite %s --help made no FlagSet named %q with newFlagSet(%q, usage, stdout)", name, name, name)
	}
	return got, nil
}

// introspectOutput is the stdout commandFlags gives a command: it discards
// the help, and is told apart by its address.
type introspectOutput struct{ _ byte }

func (*introspectOutput) Write(b []byte) (int, error) { return len(b), nil }

// commandPath is a subcommand with its operation, if it has operations.
type commandPath []string

func (p commandPath) String() string { return strings.Join(p, " ") }

// commandPaths lists every subcommand, and for those with operations
// (cookie encode|check|explain) every operation, sorted.
func commandPaths() []commandPath {
	var out []commandPath
	for _, n := range commandNames() {
		sc := subcommands[n]
		if len(sc.ops) == 0 {
			out = append(out, commandPath{n})
			continue
		}
		for _, op := range sc.ops {
			out = append(out, commandPath{n, op})
		}
	}
	return out
}

// commandNames lists the subcommands, sorted.
func commandNames() []string {
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// flagNames lists the flags fs declares, sorted.
func flagNames(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// oneLine is s on one line (for completion descriptions).
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.TrimRightFunc(s, func(r rune) bool { return unicode.IsPunct(r) && r != ')' })
}

// contextDone returns a context that is already done: what commandFlags
// runs a subcommand with, so that nothing it might start outlives it.
func contextDone() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
