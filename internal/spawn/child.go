package spawn

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const (
	// handshakeFD is the child's end of the handshake pipe (after helper's
	// reply fd 3 and request fd 4).
	handshakeFD = 5
	// requestFD is helper's request pipe: EOF on it is the go-ahead.
	requestFD = 4
	// envHandshake tells a child that fd 5 is its handshake pipe. It is
	// cleared at start-up so that the child's own children never take an
	// unrelated fd 5 for one.
	envHandshake = "NSCHECK_HANDSHAKE"
)

var handshake *os.File

func init() {
	if os.Getenv(envHandshake) != "1" {
		return
	}
	os.Unsetenv(envHandshake)
	unix.CloseOnExec(handshakeFD)
	handshake = os.NewFile(handshakeFD, "handshake")
}

// HasHandshake reports whether this helper was started with a handshake pipe.
func HasHandshake() bool { return handshake != nil }

// SendHandshake (child side) writes v as the handshake and closes the pipe.
// It may be called once, by an action of a child started with
// Options.Handshake.
func SendHandshake(v any) error {
	if handshake == nil {
		return errors.New("spawn: this helper has no handshake pipe (start it with spawn.Options{Handshake: true})")
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

// AwaitGo (child side) blocks until the parent calls Child.Go, closes the
// child or dies: EOF on the request pipe, which the helper protocol has
// finished reading before the action runs.
func AwaitGo() error {
	var buf [64]byte
	for {
		n, err := unix.Read(requestFD, buf[:])
		switch {
		case errors.Is(err, unix.EINTR):
		case err != nil:
			return fmt.Errorf("wait for the go-ahead on fd %d: %w", requestFD, err)
		case n == 0:
			return nil
		}
	}
}
