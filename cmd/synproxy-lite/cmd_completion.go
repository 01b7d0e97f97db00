package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

func init() {
	register("completion", "print a shell completion script (bash, zsh or fish)", runCompletion)
}

const completionUsage = `usage: synproxy-lite completion bash|zsh|fish

Prints a completion script for the shell: commands, operations and every
flag of every command (read from the commands themselves, so it is always
this binary's), with file names for the flags and arguments that take one.

  bash:  source <(synproxy-lite completion bash)     (in ~/.bashrc), or
         synproxy-lite completion bash > /etc/bash_completion.d/synproxy-lite
  zsh:   synproxy-lite completion zsh > "${fpath[1]}/_synproxy-lite", or
         source <(synproxy-lite completion zsh)      (in ~/.zshrc, after compinit)
  fish:  synproxy-lite completion fish > ~/.config/fish/completions/synproxy-lite.fish
`

// completionShells are the shells completion writes for.
var completionShells = []string{"bash", "zsh", "fish"}

func runCompletion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("completion", completionUsage, stdout)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "synproxy-lite completion: %v\n", err)
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "synproxy-lite completion: want one shell (%s), got %d arguments\n", strings.Join(completionShells, ", "), fs.NArg())
		return exitUsage
	}
	spec, err := completionSpec()
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite completion: %v\n", err)
		return exitFailure
	}
	switch sh := fs.Arg(0); sh {
	case "bash":
		writeBashCompletion(stdout, spec)
	case "zsh":
		writeZshCompletion(stdout, spec)
	case "fish":
		writeFishCompletion(stdout, spec)
	default:
		near := ""
		if n := nearest(sh, completionShells); n != "" {
			near = fmt.Sprintf("; did you mean %s?", n)
		}
		fmt.Fprintf(stderr, "synproxy-lite completion: %q is not a shell completion is written for (%s)%s\n", sh, strings.Join(completionShells, ", "), near)
		return exitUsage
	}
	return exitOK
}

// compFlag is a flag as the completion scripts see it.
type compFlag struct {
	name  string
	value string // the value's name in help, "" for a boolean flag
	desc  string
}

// file says whether the flag's value is a path.
func (f compFlag) file() bool {
	return f.value == "FILE" || f.value == "DIR" || strings.HasSuffix(f.name, "-file")
}

// compCommand is a command (or one operation of it) with its flags.
type compCommand struct {
	path  commandPath
	desc  string
	flags []compFlag
	// args is what its positional arguments are: "file", a list of words,
	// or nothing.
	args []string
}

// compSpec is what a completion script knows.
type compSpec struct {
	commands []string          // the subcommands, sorted
	summary  map[string]string // subcommand -> summary
	ops      map[string][]string
	leaves   []compCommand // every command path with its flags
}

// completionArgs are the positional arguments of the commands that take
// some.
var completionArgs = map[string][]string{
	"inspect":    {"file"},
	"completion": completionShells,
}

func completionSpec() (*compSpec, error) {
	s := &compSpec{commands: commandNames(), summary: map[string]string{}, ops: map[string][]string{}}
	for _, n := range s.commands {
		s.summary[n] = subcommands[n].summary
		s.ops[n] = subcommands[n].ops
	}
	for _, p := range commandPaths() {
		fs, err := commandFlags(p...)
		if err != nil {
			return nil, err
		}
		c := compCommand{path: p, desc: subcommands[p[0]].summary, args: completionArgs[p.String()]}
		fs.VisitAll(func(f *flag.Flag) {
			_, u := flag.UnquoteUsage(f)
			c.flags = append(c.flags, compFlag{name: f.Name, value: valueName(f), desc: oneLine(u)})
		})
		s.leaves = append(s.leaves, c)
	}
	return s, nil
}

func writeBashCompletion(w io.Writer, s *compSpec) {
	fmt.Fprintf(w, `# bash completion for synproxy-lite, written by "synproxy-lite completion bash".
_synproxy_lite() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	if [[ $prev == = && $COMP_CWORD -ge 2 ]]; then
		prev=${COMP_WORDS[COMP_CWORD-2]}
	fi
	if [[ $cur == = ]]; then
		cur=""
	fi
	if ((COMP_CWORD == 1)); then
		COMPREPLY=($(compgen -W %q -- "$cur"))
		return
	fi
	local key=${COMP_WORDS[1]} args="" flags="" valued="" files=""
	case $key in
	help)
		if ((COMP_CWORD == 2)); then
			COMPREPLY=($(compgen -W %q -- "$cur"))
		elif ((COMP_CWORD == 3)); then
			case ${COMP_WORDS[2]} in
`, strings.Join(append(append(s.commands, "help"), "--help", "--version"), " "), strings.Join(s.commands, " "))
	for _, n := range s.commands {
		if len(s.ops[n]) > 0 {
			fmt.Fprintf(w, "\t\t\t%s) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", n, strings.Join(s.ops[n], " "))
		}
	}
	fmt.Fprint(w, `			esac
		fi
		return
		;;
`)
	for _, n := range s.commands {
		if len(s.ops[n]) == 0 {
			continue
		}
		fmt.Fprintf(w, `	%s)
		if ((COMP_CWORD == 2)); then
			COMPREPLY=($(compgen -W %q -- "$cur"))
			return
		fi
		key="%s ${COMP_WORDS[2]}"
		;;
`, n, strings.Join(s.ops[n], " "), n)
	}
	fmt.Fprint(w, "\tesac\n\tcase $key in\n")
	for _, c := range s.leaves {
		var flags, valued, files []string
		for _, f := range c.flags {
			flags = append(flags, "--"+f.name)
			if f.value != "" {
				valued = append(valued, "--"+f.name)
			}
			if f.file() {
				files = append(files, "--"+f.name)
			}
		}
		flags = append(flags, "--help")
		fmt.Fprintf(w, "\t%q)\n\t\tflags=%q\n\t\tvalued=%q\n\t\tfiles=%q\n\t\targs=%q\n\t\t;;\n",
			c.path.String(), strings.Join(flags, " "), strings.Join(valued, " "), strings.Join(files, " "), strings.Join(c.args, " "))
	}
	fmt.Fprint(w, `	*)
		return
		;;
	esac
	if [[ " $files " == *" $prev "* ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		return
	fi
	if [[ " $valued " == *" $prev "* ]]; then
		COMPREPLY=()
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
		return
	fi
	if [[ $args == file ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
	elif [[ -n $args ]]; then
		COMPREPLY=($(compgen -W "$args" -- "$cur"))
	fi
}
complete -o filenames -F _synproxy_lite synproxy-lite
`)
}

// zshQuote quotes s for a single-quoted zsh word inside an _arguments spec:
// brackets and colons have meanings there.
func zshQuote(s string) string {
	s = strings.NewReplacer("[", "(", "]", ")", ":", "\\:", "'", "'\\''").Replace(s)
	return s
}

func writeZshCompletion(w io.Writer, s *compSpec) {
	fmt.Fprint(w, `#compdef synproxy-lite
# zsh completion for synproxy-lite, written by "synproxy-lite completion zsh".
_synproxy_lite() {
	local -a commands ops
	commands=(
`)
	for _, n := range s.commands {
		fmt.Fprintf(w, "\t\t'%s:%s'\n", n, zshQuote(s.summary[n]))
	}
	fmt.Fprint(w, `		'help:print the help of a command'
	)
	if ((CURRENT == 2)); then
		_describe -t commands 'synproxy-lite command' commands
		compadd -- --help --version
		return
	fi
	local key=${words[2]} skip=1
	case ${words[2]} in
	help)
		if ((CURRENT == 3)); then
			_describe -t commands 'command' commands
		elif ((CURRENT == 4)); then
			case ${words[3]} in
`)
	for _, n := range s.commands {
		if len(s.ops[n]) > 0 {
			fmt.Fprintf(w, "\t\t\t%s) compadd -- %s ;;\n", n, strings.Join(s.ops[n], " "))
		}
	}
	fmt.Fprint(w, "\t\t\tesac\n\t\tfi\n\t\treturn\n\t\t;;\n")
	for _, n := range s.commands {
		if len(s.ops[n]) == 0 {
			continue
		}
		fmt.Fprintf(w, "\t%s)\n\t\tif ((CURRENT == 3)); then\n\t\t\tops=(%s)\n\t\t\t_describe -t operations 'operation' ops\n\t\t\treturn\n\t\tfi\n\t\tkey=\"%s ${words[3]}\"\n\t\tskip=2\n\t\t;;\n",
			n, strings.Join(s.ops[n], " "), n)
	}
	fmt.Fprint(w, "\tesac\n\tshift $skip words\n\t((CURRENT -= skip))\n\tcase $key in\n")
	for _, c := range s.leaves {
		fmt.Fprintf(w, "\t%q)\n\t\t_arguments -S \\\n", c.path.String())
		for _, f := range c.flags {
			switch {
			case f.value == "":
				fmt.Fprintf(w, "\t\t\t'--%s[%s]' \\\n", f.name, zshQuote(f.desc))
			case f.file():
				fmt.Fprintf(w, "\t\t\t'--%s=[%s]:%s:_files' \\\n", f.name, zshQuote(f.desc), f.value)
			default:
				fmt.Fprintf(w, "\t\t\t'--%s=[%s]:%s: ' \\\n", f.name, zshQuote(f.desc), f.value)
			}
		}
		switch {
		case len(c.args) == 1 && c.args[0] == "file":
			fmt.Fprint(w, "\t\t\t'*:file:_files' \\\n")
		case len(c.args) > 0:
			fmt.Fprintf(w, "\t\t\t'1:argument:(%s)' \\\n", strings.Join(c.args, " "))
		}
		fmt.Fprint(w, "\t\t\t'--help[print the help]'\n\t\t;;\n")
	}
	fmt.Fprint(w, `	esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
	_synproxy_lite "$@"
else
	compdef _synproxy_lite synproxy-lite
fi
`)
}

// fishQuote quotes s as a single-quoted fish word.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

func writeFishCompletion(w io.Writer, s *compSpec) {
	fmt.Fprint(w, "# fish completion for synproxy-lite, written by \"synproxy-lite completion fish\".\n")
	fmt.Fprint(w, "complete -c synproxy-lite -f\n")
	all := strings.Join(append(s.commands, "help"), " ")
	fmt.Fprintf(w, "complete -c synproxy-lite -n 'not __fish_seen_subcommand_from %s' -l version -d 'print the version'\n", all)
	for _, n := range s.commands {
		fmt.Fprintf(w, "complete -c synproxy-lite -n 'not __fish_seen_subcommand_from %s' -a %s -d %s\n", all, n, fishQuote(s.summary[n]))
	}
	fmt.Fprintf(w, "complete -c synproxy-lite -n 'not __fish_seen_subcommand_from %s' -a help -d 'print the help of a command'\n", all)
	fmt.Fprintf(w, "complete -c synproxy-lite -n '__fish_seen_subcommand_from help; and not __fish_seen_subcommand_from %s' -a %s\n",
		strings.Join(s.commands, " "), fishQuote(strings.Join(s.commands, " ")))
	for _, n := range s.commands {
		if ops := s.ops[n]; len(ops) > 0 {
			fmt.Fprintf(w, "complete -c synproxy-lite -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a %s\n",
				n, strings.Join(ops, " "), fishQuote(strings.Join(ops, " ")))
		}
	}
	for _, c := range s.leaves {
		cond := "__fish_seen_subcommand_from " + c.path[0]
		if len(c.path) > 1 {
			cond += "; and __fish_seen_subcommand_from " + c.path[1]
		}
		for _, f := range c.flags {
			opt := ""
			switch {
			case f.file():
				opt = " -r -F"
			case f.value != "":
				opt = " -r"
			}
			fmt.Fprintf(w, "complete -c synproxy-lite -n %s -l %s%s -d %s\n", fishQuote(cond), f.name, opt, fishQuote(f.desc))
		}
		switch {
		case len(c.args) == 1 && c.args[0] == "file":
			fmt.Fprintf(w, "complete -c synproxy-lite -n %s -F\n", fishQuote(cond))
		case len(c.args) > 0:
			fmt.Fprintf(w, "complete -c synproxy-lite -n %s -a %s\n", fishQuote(cond), fishQuote(strings.Join(c.args, " ")))
		}
	}
}
