package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/metrics"
)

// Every command and operation prints its help in GNU style on stdout, the
// same for COMMAND --help, COMMAND -h and help COMMAND, and lists every
// flag it declares as --name.
func TestHelpOfEveryCommand(t *testing.T) {
	top, _, code := runCmd(t, "help")
	if code != exitOK || !strings.Contains(top, "commands:") {
		t.Fatalf("help: exit %d, %q", code, top)
	}
	for _, p := range commandPaths() {
		fs, err := commandFlags(p...)
		if err != nil {
			t.Fatal(err)
		}
		var outs []string
		for _, args := range [][]string{
			append(append([]string{}, p...), "--help"),
			append(append([]string{}, p...), "-h"),
			append([]string{"help"}, p...),
		} {
			out, errOut, code := runCmd(t, args...)
			if code != exitOK || errOut != "" || !strings.HasPrefix(out, "usage: synproxy-lite "+p.String()) {
				t.Errorf("%v: exit %d, stderr %q, stdout %q", args, code, errOut, out)
			}
			outs = append(outs, out)
		}
		if outs[0] != outs[1] || outs[0] != outs[2] || outs[0] == top {
			t.Errorf("%s: --help, -h and help differ, or are the top-level help", p)
		}
		out := outs[0]
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(out, "\n  --"+f.Name+" ") && !strings.Contains(out, "\n  --"+f.Name+"\n") {
				t.Errorf("%s help lacks --%s:\n%s", p, f.Name, out)
			}
			if _, u := flag.UnquoteUsage(f); strings.TrimSpace(u) == "" {
				t.Errorf("%s --%s has no usage text", p, f.Name)
			}
		})
		if regexp.MustCompile(`(?m)^\s+-[a-z]`).MatchString(out) {
			t.Errorf("%s help has a single-dash flag:\n%s", p, out)
		}
	}
	// "cookie" alone lists its operations; help of an unknown command or
	// operation is a usage error with a suggestion.
	if out, _, code := runCmd(t, "help", "cookie"); code != exitOK || !strings.Contains(out, "cookie encode") {
		t.Errorf("help cookie: exit %d, %q", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"help", "rnu"}, `unknown command "rnu"; did you mean "run"?`},
		{[]string{"help", "cookie", "chek"}, `"cookie" has no operation "chek"`},
		{[]string{"inspekt"}, `unknown command "inspekt"; did you mean "inspect"?`},
	} {
		if _, errOut, code := runCmd(t, c.args...); code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want %q", c.args, code, errOut, c.want)
		}
	}
}

// A bad flag names itself and says what would be valid, on one line,
// exit 2, for the flag package's own errors in every command.
func TestFlagErrorsNameTheFlag(t *testing.T) {
	key := []string{"--key", specKeyHex, "--saddr", "192.0.2.1", "--daddr", "192.0.2.2", "--sport", "1", "--dport", "2", "--seq", "3"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--prot", "80"}, "--prot: no such flag for run; did you mean --port?"},
		{[]string{"run", "--zzzzzzzz"}, "--zzzzzzzz: no such flag for run (synproxy-lite help run lists them)"},
		{[]string{"run", "--workers", "two"}, `--workers: "two" is not a whole number`},
		{[]string{"run", "--idle-timeout", "5"}, `--idle-timeout: "5" is not a duration (a number with a unit: 500ms, 90s, 5m, 1h30m)`},
		{[]string{"run", "--port"}, "--port: needs PORT (--port PORT or --port=PORT)"},
		{[]string{"run", "--fail-open=perhaps"}, `--fail-open: "perhaps" is not true or false`},
		{[]string{"demo", "--duration", "10"}, `--duration: "10" is not a duration`},
		{[]string{"demo", "--workers", "100"}, "--workers: 100 is not 1-64"},
		{[]string{"demo", "--flood-rate", "-1"}, "--flood-rate: -1 is not 0-1000000 SYNs a second"},
		{[]string{"explain", "--lisen", ":1"}, "--lisen: no such flag for explain; did you mean --listen?"},
		{[]string{"version", "--jsn"}, "--jsn: no such flag for version; did you mean --json?"},
		{[]string{"completion", "bsh"}, `"bsh" is not a shell completion is written for (bash, zsh, fish); did you mean bash?`},
		{append(append([]string{"cookie", "encode", "--mss", "1460"}, key...), "--sport", "70000"), `--sport: "70000" is not a port (0-65535)`},
		{append([]string{"cookie", "encode", "--mss", "1460", "--count", "5"}, key...), "--count is now --slot"},
		{append([]string{"cookie", "check", "--cookie", "1", "--count", "5"}, key...), "--count is now --check-slot"},
		{append([]string{"cookie", "check", "--cookie", "1", "--slot", "5"}, key...), "--slot is for encode; check takes --check-slot"},
		{append([]string{"cookie", "explain", "--cookie", "1", "--mss", "5"}, key...), "--mss is for encode"},
		{append([]string{"cookie", "encode", "--mss", "1460", "--check-slot", "5"}, key...), "--check-slot is for check and explain"},
		{append(append([]string{"cookie", "encode", "--mss", "1460"}, key...), "--saddr", "192.0.2.1:80"), `--saddr: "192.0.2.1:80" is not an IP address`},
		{append([]string{"cookie", "check", "--cookie", "1"}, key[:10]...), "missing --seq (the client's initial sequence number N: the handshake ACK's seq minus 1)"},
	} {
		out, errOut, code := runCmd(t, c.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q on one line", c.args, code, out, errOut, c.want)
		}
	}
}

// cookie encode and check print one line of text, or one JSON object
// with --json; explain --json gives the check and its intermediate values.
func TestCookieTextAndJSON(t *testing.T) {
	tuple := []string{"--key", specKeyHex, "--saddr", "192.0.2.1", "--daddr", "198.51.100.7", "--sport", "12345", "--dport", "80", "--seq", "1000"}
	out, _, code := runCmd(t, append([]string{"cookie", "encode", "--mss", "1460", "--slot", "5"}, tuple...)...)
	if code != exitOK || out != "cookie 4185536808 (0xf97a3928): MSS 1460 (index 3), slot 5\n" {
		t.Errorf("encode: exit %d, %q", code, out)
	}
	out, _, code = runCmd(t, append([]string{"cookie", "check", "--cookie", "4185536808", "--check-slot", "6"}, tuple...)...)
	if code != exitOK || out != "valid: MSS 1460 (index 3), slot 5, age 1 (checked in slot 6)\n" {
		t.Errorf("check: exit %d, %q", code, out)
	}
	for _, c := range []struct {
		cookie, slot string
		code         int
		want         string
	}{
		{"4185536808", "6", exitOK, `{"valid":true,"mss":1460,"mss_index":3,"slot":5,"slot_mod_256":5,"age":1,"check_slot":6,` +
			`"family":"ipv4","client":"192.0.2.1:12345","server":"198.51.100.7:80","seq":1000,"cookie":4185536808,`},
		{"4185536809", "5", exitFailure, `{"valid":false,"reason":"hash","slot":5,"slot_mod_256":5,"age":0,"check_slot":5,`},
		{"4185536808", "7", exitFailure, `{"valid":false,"reason":"stale","slot_mod_256":5,"age":2,"check_slot":7,`},
	} {
		out, errOut, code := runCmd(t, append([]string{"cookie", "explain", "--json", "--cookie", c.cookie, "--check-slot", c.slot}, tuple...)...)
		var m map[string]any
		if code != c.code || !strings.HasPrefix(out, c.want) || json.Unmarshal([]byte(out), &m) != nil || errOut != "" {
			t.Errorf("explain --json %s at %s: exit %d, %q; want exit %d, %s...", c.cookie, c.slot, code, out, c.code, c.want)
			continue
		}
		_, hasH1 := m["h1"]
		if _, ok := m["r"]; !ok || hasH1 != (c.slot != "7") {
			t.Errorf("explain --json %s at %s: intermediate values %v", c.cookie, c.slot, m)
		}
	}
}

// The reason words of cookie check, inspect and the metrics are one set:
// every reason a cookie check gives is a value of the reason label of
// synproxy_lite_cookie_invalid_total, and so is inspect's "tuple".
func TestReasonVocabulary(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(nil))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "synproxy_lite_cookie_invalid_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					labels[l.GetValue()] = true
				}
			}
		}
	}
	for _, r := range []string{cookie.ReasonStale.String(), cookie.ReasonMSSIndex.String(), "tuple"} {
		if !labels[r] {
			t.Errorf("reason %q is not a reason of synproxy_lite_cookie_invalid_total (%v)", r, labels)
		}
	}
}

// A capture cut in the middle of a frame: the report of what was read, then
// exit 1 with an error that says the file is truncated.
func TestInspectTruncatedCapture(t *testing.T) {
	for _, args := range [][]string{{"inspect", "testdata/truncated.pcap"}, {"inspect", "--json", "testdata/truncated.pcap"}} {
		out, errOut, code := runCmd(t, args...)
		if code != exitFailure || !strings.Contains(out, "handshake") ||
			errOut != "synproxy-lite inspect: testdata/truncated.pcap: the capture ends in the middle of frame 14 (the file is truncated); the report covers frames 1-13\n" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q", args, code, errOut, out)
		}
	}
	whole := filepath.Join("..", "..", "packet", "testdata", "handshakes.pcap")
	if _, errOut, code := runCmd(t, "inspect", whole); code != exitOK || errOut != "" {
		t.Errorf("whole capture: exit %d, %q", code, errOut)
	}
}

// The bash completion script is valid bash and completes commands,
// operations, flags and file names as bash itself runs it.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("BASH COMPLETION NOT CHECKED: no bash on PATH")
	}
	script, _, code := runCmd(t, "completion", "bash")
	if code != exitOK {
		t.Fatalf("completion bash: exit %d", code)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "synproxy-lite.bash")
	os.WriteFile(path, []byte(script), 0o644)
	os.WriteFile(filepath.Join(dir, "capture.pcap"), nil, 0o644)
	if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	cases := []struct {
		words []string
		want  []string
	}{
		{[]string{"synproxy-lite", "ru"}, []string{"run"}},
		{[]string{"synproxy-lite", "--ver"}, []string{"--version"}},
		{[]string{"synproxy-lite", "run", "--max-c"}, []string{"--max-conns", "--max-conns-per-source"}},
		{[]string{"synproxy-lite", "run", "--port", ""}, nil},
		{[]string{"synproxy-lite", "cookie", "e"}, []string{"encode", "explain"}},
		{[]string{"synproxy-lite", "cookie", "check", "--check"}, []string{"--check-slot"}},
		{[]string{"synproxy-lite", "cookie", "encode", "--sl"}, []string{"--slot"}},
		{[]string{"synproxy-lite", "inspect", "--key-file", dir + "/capt"}, []string{dir + "/capture.pcap"}},
		{[]string{"synproxy-lite", "inspect", dir + "/capt"}, []string{dir + "/capture.pcap"}},
		{[]string{"synproxy-lite", "help", "co"}, []string{"completion", "cookie"}},
		{[]string{"synproxy-lite", "completion", "f"}, []string{"fish"}},
	}
	// Every flag of every command completes from its first letters.
	for _, p := range commandPaths() {
		fs, _ := commandFlags(p...)
		fs.VisitAll(func(f *flag.Flag) {
			w := append([]string{"synproxy-lite"}, p...)
			cases = append(cases, struct {
				words []string
				want  []string
			}{append(w, "--"+f.Name), []string{"--" + f.Name}})
		})
	}
	var sh strings.Builder
	fmt.Fprintf(&sh, "source %q\n", path)
	for _, c := range cases {
		var q []string
		for _, w := range c.words {
			q = append(q, fmt.Sprintf("%q", w))
		}
		fmt.Fprintf(&sh, "COMP_WORDS=(%s); COMP_CWORD=%d; COMPREPLY=(); _synproxy_lite; echo \"${COMPREPLY[*]}\"\n",
			strings.Join(q, " "), len(c.words)-1)
	}
	out, err := exec.Command(bash, "--norc", "-c", sh.String()).Output()
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("%d answers for %d cases:\n%s", len(lines), len(cases), out)
	}
	for i, c := range cases {
		got := strings.Fields(lines[i])
		if c.want == nil {
			if len(got) != 0 {
				t.Errorf("%q completes to %q, want nothing", c.words, got)
			}
			continue
		}
		if !slices.Contains(got, c.want[0]) || len(got) > len(c.want) && len(c.want) > 1 {
			t.Errorf("%q completes to %q, want %q", c.words, got, c.want)
		}
	}
	// complete -F registered the function for the command.
	reg, err := exec.Command(bash, "--norc", "-c", fmt.Sprintf("source %q; complete -p synproxy-lite", path)).Output()
	if err != nil || !strings.Contains(string(reg), "-F _synproxy_lite synproxy-lite") {
		t.Errorf("complete -p: %v %q", err, reg)
	}
}

// The zsh and fish scripts parse in their shells, where those are
// installed (scripts/test-deps.sh installs both).
func TestCompletionZshFish(t *testing.T) {
	for _, c := range []struct{ shell, check string }{{"zsh", "-n"}, {"fish", "--no-execute"}} {
		bin, err := exec.LookPath(c.shell)
		if err != nil {
			t.Logf("%s COMPLETION NOT CHECKED: no %s on PATH", strings.ToUpper(c.shell), c.shell)
			continue
		}
		script, _, code := runCmd(t, "completion", c.shell)
		if code != exitOK || !strings.Contains(script, "check-slot") || !strings.Contains(script, "max-conns-per-source") {
			t.Fatalf("completion %s: exit %d", c.shell, code)
		}
		path := filepath.Join(t.TempDir(), "synproxy-lite."+c.shell)
		os.WriteFile(path, []byte(script), 0o644)
		if out, err := exec.Command(bin, c.check, path).CombinedOutput(); err != nil {
			t.Errorf("%s %s: %v\n%s", c.shell, c.check, err, out)
		}
		if c.shell != "fish" {
			continue
		}
		// fish completes a command line on request (complete -C).
		for line, want := range map[string]string{
			"synproxy-lite ru":                    "run\t",
			"synproxy-lite cookie ch":             "check",
			"synproxy-lite cookie check --check-": "--check-slot\t",
			"synproxy-lite inspect --js":          "--json\t",
		} {
			out, err := exec.Command(bin, "--no-config", "-c", fmt.Sprintf("source %s; complete -C %q", path, line)).Output()
			if err != nil || !strings.HasPrefix(string(out), want) {
				t.Errorf("fish: %q completes to %q (%v), want %q", line, out, err, want)
			}
		}
	}
}

// docCommandHeading is a heading of docs/operators.md that begins the
// reference of a command: "## `synproxy-lite run`".
var docCommandHeading = regexp.MustCompile("^(#+) `synproxy-lite ([a-z]+)(?: ([a-z]+))?`\\s*$")

// docFlagRow is a row of a flag table: its first cell is `--name ...`.
var docFlagRow = regexp.MustCompile("^\\|\\s*`--([a-z0-9][a-z0-9-]*)[ =`]")

// docFlags reads the flag tables of docs/operators.md: for each command
// heading, the flags of the table rows under it (up to the next heading of
// its level or above).
func docFlags(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	cur, level := "", 0
	sc := bufio.NewScanner(f)
	inCode := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if inCode {
			continue
		}
		if strings.HasPrefix(line, "#") {
			n := len(line) - len(strings.TrimLeft(line, "#"))
			if m := docCommandHeading.FindStringSubmatch(line); m != nil {
				cur, level = strings.TrimSpace(m[2]+" "+m[3]), n
				if _, dup := out[cur]; dup {
					t.Errorf("%s: two sections for synproxy-lite %s", path, cur)
				}
				out[cur] = []string{}
			} else if n <= level {
				cur, level = "", 0
			}
			continue
		}
		if m := docFlagRow.FindStringSubmatch(line); m != nil && cur != "" {
			out[cur] = append(out[cur], m[1])
		}
	}
	return out
}

// docs/operators.md matches the binary flag for flag: a section
// "`synproxy-lite COMMAND`" per command with a table whose rows start
// with `--flag`, every flag the command's FlagSet declares in it and none
// it does not (a command with operations, like cookie, documents the flags
// of all of them in one table, or has a section per operation).
func TestOperatorsDocMatchesFlags(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "operators.md")
	doc := docFlags(t, path)
	declared := map[string]map[string]bool{} // section -> flags
	add := func(section string, fs *flag.FlagSet) {
		if declared[section] == nil {
			declared[section] = map[string]bool{}
		}
		fs.VisitAll(func(f *flag.Flag) { declared[section][f.Name] = true })
	}
	for _, p := range commandPaths() {
		fs, err := commandFlags(p...)
		if err != nil {
			t.Fatal(err)
		}
		if _, perOp := doc[p.String()]; perOp {
			add(p.String(), fs)
		} else {
			add(p[0], fs)
		}
	}
	for section, flags := range declared {
		got, ok := doc[section]
		if !ok {
			t.Errorf("%s has no section \"## `synproxy-lite %s`\" with a table of its flags", path, section)
			continue
		}
		seen := map[string]bool{}
		for _, f := range got {
			if seen[f] {
				t.Errorf("%s, synproxy-lite %s: --%s documented twice", path, section, f)
			}
			seen[f] = true
			if !flags[f] {
				t.Errorf("%s, synproxy-lite %s: documents --%s, which the command does not declare", path, section, f)
			}
		}
		var missing []string
		for f := range flags {
			if !seen[f] {
				missing = append(missing, f)
			}
		}
		sort.Strings(missing)
		for _, f := range missing {
			t.Errorf("%s, synproxy-lite %s: --%s is declared but not in the section's table (add a row \"| `--%s ...` | default | meaning |\")", path, section, f, f)
		}
	}
	for section := range doc {
		if _, ok := declared[section]; !ok {
			t.Errorf("%s: a section for synproxy-lite %s, which is not a command", path, section)
		}
	}
}

// Every --flag the operator documentation and the README mention is one
// that some command declares, so prose cannot keep a renamed flag.
func TestDocsMentionOnlyDeclaredFlags(t *testing.T) {
	all := map[string]bool{"help": true, "version": true}
	for _, p := range commandPaths() {
		fs, err := commandFlags(p...)
		if err != nil {
			t.Fatal(err)
		}
		fs.VisitAll(func(f *flag.Flag) { all[f.Name] = true })
	}
	mention := regexp.MustCompile(`(?:^|[\s\x60(\[|])--([a-z][a-z0-9-]*[a-z0-9])`)
	for _, doc := range []string{"README.md", filepath.Join("docs", "operators.md")} {
		b, err := os.ReadFile(filepath.Join("..", "..", doc))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range mention.FindAllStringSubmatch(line, -1) {
				if !all[m[1]] && !otherToolFlags[m[1]] {
					t.Errorf("%s:%d mentions --%s, which no command declares: %s", doc, i+1, m[1], strings.TrimSpace(line))
				}
			}
		}
	}
}

// otherToolFlags are --words the docs show that are not flags of ours:
// placeholders, the misspelt flag of an error message's example, and the
// flags of other tools the docs run (systemctl, adduser).
var otherToolFlags = map[string]bool{"name": true, "flag": true, "prot": true,
	"now": true, "full": true, "system": true, "group": true, "no-create-home": true, "home": true}
