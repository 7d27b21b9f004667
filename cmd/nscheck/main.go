// Command nscheck verifies, on this machine, that each kind of Linux
// namespace isolates what it promises, by creating namespaces and checking
// from inside and from the host; see README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/helper"
	"github.com/nscheck/nscheck/internal/guest"
	// A re-executed helper serves its request in helpermode's init, before
	// Ginkgo and most of the host's packages initialise; it links the
	// suites.
	_ "github.com/nscheck/nscheck/internal/helpermode"
)

// Exit codes, the same for every subcommand.
const (
	exitOK    = 0 // nothing failed
	exitFail  = 1 // a property failed, a regression, a run error
	exitUsage = 2 // bad flags or bad input
	// exitNothing: no property failed, and none passed either: a run that
	// verified nothing (every property skipped, or none selected) must not
	// look green to CI. 4 is kselftest's "skip".
	exitNothing = 4
)

// command is one subcommand. Each lives in its own file and registers
// itself with register from an init function.
type command struct {
	name    string
	summary string
	// run gets the arguments after the subcommand name and returns the
	// exit code.
	run func(args []string) int
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() {
	helper.Main() // a helper for an action registered after helpermode's init
	if guest.Detect() {
		guest.Main() // init of a VM booted by `nscheck vm`: runs, reports, powers off
	}
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	if len(args) == 0 {
		return commands["run"].run(nil)
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		usage(os.Stdout)
		return exitOK
	}
	if strings.HasPrefix(args[0], "-") {
		return commands["run"].run(args) // plain `nscheck --json r.json`
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "nscheck: unknown command %q (see nscheck --help)\n", args[0])
		return exitUsage
	}
	return c.run(args[1:])
}

func usage(w io.Writer) {
	fmt.Fprint(w, `nscheck verifies that Linux namespaces isolate what they promise, on this
kernel, by creating them and checking from inside and from the host.

Usage: nscheck [command] [flags]

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
Without a command, nscheck runs "run". "nscheck COMMAND --help" describes one.
Exit codes: 0 nothing failed and something was verified, 1 a property failed
(or a run error, or a --require'd property was skipped), 2 bad usage or input,
4 nothing failed but nothing was verified either (every property skipped).
`)
}

// newFlags makes a subcommand's flag set: errors are reported by parse, in
// one line, never by the flag package's own os.Exit.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("nscheck "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // parse prints the help itself, and only for --help
	synopses[fs] = synopsis
	return fs
}

var synopses = map[*flag.FlagSet]string{}

func printHelp(fs *flag.FlagSet) {
	fmt.Fprintf(os.Stdout, "Usage: nscheck %s\n\n", synopses[fs])
	fs.SetOutput(os.Stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parse parses args; ok false means return code (0 for --help, 2 for an
// error, already reported).
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(fs)
		return exitOK, false
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v (see %s --help)\n", fs.Name(), err, fs.Name())
		return exitUsage, false
	}
	return 0, true
}

// parseInterspersed parses args whose flags may come before, between or
// after the positional arguments (`nscheck matrix out/*.json --html m.html`),
// and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) (positional []string, code int, ok bool) {
	for {
		if code, ok := parse(fs, args); !ok {
			return nil, code, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, 0, true
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// fail prints one line on stderr and returns code.
func fail(code int, format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "nscheck: "+format+"\n", args...)
	return code
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// useColor says whether to colour output on f: a terminal, and NO_COLOR unset.
func useColor(f *os.File, noColor bool) bool {
	if noColor || os.Getenv("NO_COLOR") != "" {
		return false
	}
	return isTerminal(f)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
