package helper

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/nsguard"
)

// An action runs inside the helper and returns the facts it saw.
type action func(args json.RawMessage) (any, error)

var (
	actionsMu sync.RWMutex
	// actions is sized for all of nscheck's: every helper process
	// registers them at start, and growing the map step by step rehashes
	// it several times over.
	actions = make(map[string]action, 128)
)

// Handle registers fn as the action called name. Args arrive decoded into A;
// the facts fn returns are marshalled back to the parent. Register from an
// init function or a package-level var so the re-executed binary has it
// before Main runs. Registering a name twice panics: names are global.
func Handle[A any](name string, fn func(A) (any, error)) {
	actionsMu.Lock()
	defer actionsMu.Unlock()
	if _, dup := actions[name]; dup {
		panic("helper: action registered twice: " + name)
	}
	actions[name] = func(raw json.RawMessage) (any, error) {
		var args A
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &args); err != nil {
				return nil, fmt.Errorf("decode args of %s: %w", name, err)
			}
		}
		return fn(args)
	}
}

// Actions lists the registered action names, sorted.
func Actions() []string {
	actionsMu.RLock()
	defer actionsMu.RUnlock()
	names := make([]string, 0, len(actions))
	for n := range actions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsHelper reports whether this process was started in helper mode.
func IsHelper() bool { return os.Getenv(EnvVar) == "1" }

// StartedFor reports whether this process is a helper started to run
// action (Command names it in argv[1]), for an init function that must
// prepare the process for that one action before main runs, and should
// spare every other helper the cost. The request on fd 4 remains what the
// helper runs: an action that depends on such preparation checks for it.
func StartedFor(action string) bool {
	return IsHelper() && len(os.Args) > 1 && os.Args[1] == action
}

// Main must be the first statement of main (and of every suite's TestMain):
// in helper mode it serves one request and exits; otherwise it returns at
// once.
func Main() {
	if !IsHelper() {
		return
	}
	if d, err := time.ParseDuration(os.Getenv(TimeoutEnvVar)); err == nil && d > 0 {
		DefaultTimeout = d
	}
	os.Exit(serve())
}

// serve runs one request. Exit codes: 0 answered (the action itself may have
// failed: that is in the reply), 3 the protocol broke.
func serve() int {
	// The protocol fds must not leak into anything this helper execs.
	unix.CloseOnExec(replyFD)
	unix.CloseOnExec(requestFD)
	reqF := os.NewFile(requestFD, "request")
	repF := os.NewFile(replyFD, "reply")
	if reqF == nil || repF == nil {
		fmt.Fprintln(os.Stderr, "nscheck helper: protocol fds 3 and 4 are missing")
		return 3
	}

	if os.Getenv(handshakeEnvVar) == "1" {
		os.Unsetenv(handshakeEnvVar)
		unix.CloseOnExec(handshakeFD)
		handshake = os.NewFile(handshakeFD, "handshake")
	}

	dec := json.NewDecoder(reqF)
	var req Request
	rep := Reply{PID: os.Getpid()}
	if err := req.decode(dec); err != nil {
		rep.Err = Fail("read request", err)
	} else if err := guard(req.Guard); err != nil {
		// Cloned to leave a namespace and still in it: run nothing.
		rep.Err = toError(err)
	} else {
		rep.Facts, rep.Err = run(req)
	}
	if handshake != nil {
		// No handshake was sent (the action failed first, or the guard
		// stopped it): EOF tells the parent to read the reply.
		handshake.Close()
	}
	line, err := rep.appendLine(nil)
	if err == nil {
		_, err = repF.Write(line)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nscheck helper: write reply: %v\n", err)
		return 3
	}
	repF.Close()
	if req.Hold {
		// Held until the parent closes its end (or dies: Pdeathsig).
		_, _ = io.Copy(io.Discard, io.MultiReader(dec.Buffered(), reqF))
	}
	return 0
}

// guard is the namespace guard at clone: the helper is in none of the
// parent's namespaces that it was cloned to leave (see internal/nsguard).
func guard(encoded string) error {
	set, err := nsguard.Parse(encoded)
	if err != nil {
		return err
	}
	return set.Verify()
}

func run(req Request) (json.RawMessage, *Error) {
	actionsMu.RLock()
	fn := actions[req.Action]
	actionsMu.RUnlock()
	if fn == nil {
		return nil, &Error{Op: "dispatch", Msg: fmt.Sprintf("unknown action %q", req.Action)}
	}
	facts, err := fn(req.Args)
	if err != nil {
		return nil, toError(err)
	}
	raw, err := json.Marshal(facts)
	if err != nil {
		return nil, Fail("marshal facts", err)
	}
	return raw, nil
}

// The handshake pipe of a helper started with Spec.Handshake: its fd 5,
// after the reply (3) and request (4) pipes.
//
//	parent (Spawn)                              child (an action)
//	──────────────                              ─────────────────
//	fd 4 ── Request ──────────────────────────▶ action runs
//	fd 5 ◀── one JSON line ── SendHandshake     (Spec.Handshake only)
//	Go(): one byte on fd 4 ───────────────────▶ AwaitGo returns
//	fd 3 ◀── Reply ───────────────────────────  action returns
//	                                            (Hold: block until EOF)
//	Release/Wait: close fd 4 ── EOF ──────────▶ exit
//	exit status ◀───────────────────────────── reaped
const handshakeFD = 5

// goAhead is the byte Process.Go writes on the request pipe.
const goAhead = 'g'

// handshakeEnvVar tells a helper that fd 5 is its handshake pipe. It is
// cleared at start-up, and helperEnv drops it, so that the helper's own
// children never take an unrelated fd 5 for one.
const handshakeEnvVar = "NSCHECK_HANDSHAKE"

var handshake *os.File

// HasHandshake reports whether this helper was started with a handshake pipe.
func HasHandshake() bool { return handshake != nil }

// SendHandshake (helper side) writes v as the handshake and closes the
// pipe. An action of a helper started with Spec.Handshake may call it once.
func SendHandshake(v any) error {
	if handshake == nil {
		return errors.New("helper: this helper has no handshake pipe (start it with Spec.Handshake)")
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("marshal handshake: %w", err)
	}
	f := handshake
	handshake = nil
	defer f.Close()
	if _, err := f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("write handshake: %w", err)
	}
	return nil
}

// AwaitGo (helper side) blocks until the parent calls Process.Go (one byte
// on the request pipe, which serve has finished reading before the action
// runs), releases or closes the helper, or dies (EOF).
func AwaitGo() error {
	var buf [1]byte
	for {
		_, err := unix.Read(requestFD, buf[:])
		switch {
		case errors.Is(err, unix.EINTR):
		case err != nil:
			return fmt.Errorf("wait for the go-ahead on fd %d: %w", requestFD, err)
		default:
			return nil
		}
	}
}
