// Package lock is the host's one deploy lock (infra/render/host/lock.sh): every operation that
// writes on the host holds it. It is flock(2) on <baseDir>/.deploy.lock, the very lock the bash
// program and util-linux flock(1) take, so an agent and a bash host program still running on
// the same host exclude each other. The kernel drops it when the holder's process ends, so a
// killed operation never leaves the host locked; the owner file only names who holds it.
package lock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Poll is how often a waiting Take retries.
const Poll = 50 * time.Millisecond

// Lock is a held deploy lock. Its descriptor is close-on-exec: a hook or an instance started
// while it is held must not keep the host locked after the operation ends.
type Lock struct {
	mu sync.Mutex
	// A raw descriptor, not an *os.File: a file's finalizer would close it, and free the
	// lock, once a caller that means to hold it to the end stops referring to the Lock.
	fd   int
	path string
}

// HeldError is a Take that waited its time out.
type HeldError struct {
	Path   string
	Holder string
	Waited time.Duration
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("the deploy lock %s is held by %s; waited %s s. The lock frees itself when that process ends.",
		e.Path, e.Holder, strconv.FormatFloat(e.Waited.Seconds(), 'f', -1, 64))
}

// Take takes the lock at path for who, waiting at most wait, then records who holds it.
func Take(path, who string, wait time.Duration) (*Lock, error) {
	fd, err := openRegular(path, unix.O_RDWR|unix.O_CREAT|unix.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening the deploy lock %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			unix.Close(fd)
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			unix.Close(fd)
			return nil, &HeldError{Path: path, Holder: Holder(path), Waited: wait}
		}
		time.Sleep(min(Poll, left))
	}
	l := &Lock{fd: fd, path: path}
	owner := fmt.Sprintf("%s pid %d since %s\n", printable(who), os.Getpid(), time.Now().UTC().Format("2006-01-02T15:04:05Z"))
	if err := writeOwner(path+".owner", owner); err != nil {
		l.Release()
		return nil, fmt.Errorf("recording the deploy lock's holder in %s.owner: %w", path, err)
	}
	return l, nil
}

// openRegular opens path without following a link and without waiting on a FIFO, and refuses
// anything but a regular file.
func openRegular(path string, flags int, mode uint32) (int, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, mode)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, fmt.Errorf("%s is not a regular file", path)
	}
	return fd, nil
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// printable keeps the owner one line, so Holder's pid is the holder's own.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = ' '
		}
	}
	return string(b)
}

func writeOwner(path, text string) error {
	fd, err := openRegular(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	n, err := unix.Write(fd, []byte(text))
	if err == nil && n != len(text) {
		err = fmt.Errorf("short write to %s", path)
	}
	return err
}

// Release lets the lock go; a second Release does nothing. The owner file stays, as the bash left it: Holder says whether
// the process it names still runs.
func (l *Lock) Release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd < 0 {
		return
	}
	_ = flock(l.fd, unix.LOCK_UN)
	unix.Close(l.fd)
	l.fd = -1
}

// Path is the lock file.
func (l *Lock) Path() string { return l.path }

var pidRe = regexp.MustCompile(`^.* pid ([0-9]+) .*$`)

// MaxOwner bounds the owner file read.
const MaxOwner = 4096

// Holder is lock_holder: the owner line and whether the process it names still runs. A pid
// that signals EPERM exists (another user's process); pid 0 or one appearing on several lines
// does not name one process, and is taken as not running.
func Holder(path string) string {
	owner, ok := readOwner(path + ".owner")
	if !ok {
		return "unknown holder (no longer running)"
	}
	state := "no longer running"
	pid := ""
	matches := 0
	for _, line := range strings.Split(owner, "\n") {
		if m := pidRe.FindStringSubmatch(line); m != nil {
			pid = m[1]
			matches++
		}
	}
	if matches == 1 && alive(pid) {
		state = "still running"
	}
	return owner + " (" + state + ")"
}

func readOwner(path string) (string, bool) {
	fd, err := openRegular(path, unix.O_RDONLY, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	buf := make([]byte, MaxOwner)
	n, err := unix.Read(fd, buf)
	if err != nil || n < 0 {
		n = 0
	}
	// $(cat …) drops every trailing newline.
	return strings.TrimRight(string(buf[:n]), "\n"), true
}

func alive(s string) bool {
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 || pid > 1<<22 {
		return false
	}
	err = unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// Held reports whether some process holds the lock, for read-only commands (status) that must
// neither wait nor create the file. An exclusive flock on a read-only descriptor is allowed and
// is the only probe that conflicts with a shared holder too; it is dropped at once.
func Held(path string) (bool, error) {
	fd, err := openRegular(path, unix.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	defer unix.Close(fd)
	err = flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	_ = flock(fd, unix.LOCK_UN)
	return false, nil
}

// FaultsDir holds the fault-injection triggers (test/e2e/faults.test.ts); only root can create
// it on a host, and nothing but a test does.
var FaultsDir = "/run/complinist-faults"

// PauseMax is how long a pause point waits for its trigger to go.
var PauseMax = 2 * time.Minute

// PausePoint is pause_point: a deterministic place for the fault tests to stop a write step.
// Inert unless FaultsDir/name exists; then it writes name.reached (this pid) and waits while
// the trigger exists, at most PauseMax.
func PausePoint(name string) {
	if name == "" || strings.ContainsRune(name, '/') || name == "." || name == ".." {
		return
	}
	trigger := filepath.Join(FaultsDir, name)
	if _, err := os.Stat(trigger); err != nil {
		return
	}
	deadline := time.Now().Add(PauseMax)
	_ = writeOwner(trigger+".reached", strconv.Itoa(os.Getpid())+"\n")
	for time.Now().Before(deadline) {
		if _, err := os.Stat(trigger); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
