package sysvipc

import (
	"fmt"
	"math/rand/v2"

	"golang.org/x/sys/unix"
)

// Flags for the *get calls (from <sys/ipc.h>).
const (
	IPCCreat = unix.IPC_CREAT
	IPCExcl  = unix.IPC_EXCL
)

// Msgget wraps msgget(2).
func Msgget(key int32, flags int) (int, error) {
	id, _, errno := unix.Syscall(unix.SYS_MSGGET, uintptr(key), uintptr(flags), 0)
	if errno != 0 {
		return -1, fmt.Errorf("msgget(%#x): %w", uint32(key), errno)
	}
	return int(id), nil
}

// MsgRemove removes a message queue (msgctl IPC_RMID).
func MsgRemove(id int) error {
	if _, _, errno := unix.Syscall(unix.SYS_MSGCTL, uintptr(id), unix.IPC_RMID, 0); errno != 0 {
		return fmt.Errorf("msgctl(%d, IPC_RMID): %w", id, errno)
	}
	return nil
}

// Semget wraps semget(2).
func Semget(key int32, nsems, flags int) (int, error) {
	id, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(key), uintptr(nsems), uintptr(flags))
	if errno != 0 {
		return -1, fmt.Errorf("semget(%#x): %w", uint32(key), errno)
	}
	return int(id), nil
}

// SemRemove removes a semaphore set (semctl IPC_RMID).
func SemRemove(id int) error {
	if _, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), 0, unix.IPC_RMID, 0, 0, 0); errno != 0 {
		return fmt.Errorf("semctl(%d, IPC_RMID): %w", id, errno)
	}
	return nil
}

// Shmget wraps shmget(2).
func Shmget(key int32, size, flags int) (int, error) {
	id, err := unix.SysvShmGet(int(key), size, flags)
	if err != nil {
		return -1, fmt.Errorf("shmget(%#x): %w", uint32(key), err)
	}
	return id, nil
}

// ShmRemove removes a shared memory segment (shmctl IPC_RMID).
func ShmRemove(id int) error {
	if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
		return fmt.Errorf("shmctl(%d, IPC_RMID): %w", id, err)
	}
	return nil
}

// RandomKey returns a key that is neither IPC_PRIVATE nor likely to be in
// use: nscheck's objects never collide with the host's by accident. It
// needs to be unique, not secret (see prop.UniqueName): math/rand/v2 is
// seeded from the kernel's entropy in every process.
func RandomKey() int32 {
	for {
		if k := int32(rand.Uint32()); k != 0 && k != -1 {
			return k
		}
	}
}
