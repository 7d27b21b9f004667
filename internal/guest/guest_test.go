package guest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nscheck/nscheck/internal/vm"
)

// The module loader is exercised with a fake finit_module: loading real
// modules is for the guest only, never the host's kernel.
func TestLoadAllRetriesDependencies(t *testing.T) {
	loadedSet := map[string]bool{}
	load := func(f string) error {
		switch f {
		case "/m/a.ko.xz": // needs b first: ENOENT (unknown symbol) until then
			if !loadedSet["b"] {
				return unix.ENOENT
			}
		case "/m/broken.ko":
			return unix.ENOEXEC
		}
		loadedSet[strings.SplitN(f[3:], ".", 2)[0]] = true
		return nil
	}
	loaded, errs := loadAll([]string{"/m/broken.ko", "/m/b.ko", "/m/a.ko.xz"}, load)
	if strings.Join(loaded, " ") != "a b" {
		t.Errorf("loaded %q", loaded)
	}
	if len(errs) != 1 || !errors.Is(errs[0], unix.ENOEXEC) || !strings.Contains(errs[0].Error(), "broken.ko") {
		t.Errorf("errors %v", errs)
	}
}

func TestDetectNotInit(t *testing.T) {
	t.Setenv(vm.GuestEnv, "1")
	if Detect() {
		t.Error("a process that is not PID 1 took itself for the guest's init")
	}
}

// The report channel must pass bytes through untouched: a pty stands in for
// the UART, and a frame written to it in raw mode reads back intact (a
// terminal in its default mode would turn "\n" into "\r\n" and break the
// checksum).
func TestRawChannelKeepsFramesIntact(t *testing.T) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := openChannel("/dev/pts/" + strconv.Itoa(n))
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	payload := []byte("{\"a\":\n\"\\r\x00\x7f\x03\x1a\"}\n\n")
	if err := vm.WriteFrame(ch, vm.ReportFrame, payload); err != nil {
		t.Fatal(err)
	}
	drain(ch)
	ch.Close()
	f, err := vm.NewFrameReader(io.LimitReader(ptmx, 4096)).Next()
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != vm.ReportFrame || !bytes.Equal(f.Payload, payload) {
		t.Errorf("frame %q %q", f.Kind, f.Payload)
	}
}
