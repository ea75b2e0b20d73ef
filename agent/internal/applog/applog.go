// Package applog is the writer of app.log: the only process that writes the app's output there.
// It runs as the service user (never root, so it cannot take root's reserved blocks of the disk)
// and keeps the file at most a bound, however fast the app writes: logrotate's daily rotation
// cannot bound a flood between two runs.
//
// The writer cannot rename in the log directory (root's: the privilege rule), so at the bound it
// empties app.log in place (ftruncate of the descriptor systemd opened with O_APPEND) and starts
// it again with a line saying so and the newest lines it wrote. logrotate's copytruncate, which
// also truncates in place, keeps the history of an app that stays under the bound.
package applog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// MinBound is the smallest bound accepted: a few chunks, so a trim always leaves room.
	MinBound = 1 << 20
	chunk    = 64 << 10
	// maxKept caps the newest output carried over a trim (and the writer's memory for it).
	maxKept = 1 << 20
)

// ParseSize reads a size as the unit files write it: digits and one unit of k, m, g ("64m").
func ParseSize(s string) (int64, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("size %q: want digits and one unit of k, m, g (e.g. 64m)", s)
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != s[:len(s)-1] || n > 1<<20 {
		return 0, fmt.Errorf("size %q: want digits and one unit of k, m, g (e.g. 64m)", s)
	}
	shift := map[byte]uint{'k': 10, 'm': 20, 'g': 30}[s[len(s)-1]]
	if shift == 0 {
		return 0, fmt.Errorf("size %q: want digits and one unit of k, m, g (e.g. 64m)", s)
	}
	b := n << shift
	if b < MinBound {
		return 0, fmt.Errorf("size %q: the log bound must be at least 1m", s)
	}
	return b, nil
}

// Copy appends what r yields to f (app.log) and keeps f at most bound bytes. Another writer on the
// same file (the other instance's) is seen through fstat before every write, so the file stays
// within bound plus one chunk per writer.
func Copy(r io.Reader, f *os.File, bound int64, now func() time.Time) error {
	keep := int(min(int64(maxKept), bound/4))
	// The newest output, up to keep bytes at its end: compacted only when it reaches twice that, so each byte moves about once.
	recent := make([]byte, 0, 2*keep+chunk)
	buf := make([]byte, chunk)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			st, err := f.Stat()
			if err != nil {
				return err
			}
			if st.Size()+int64(n) > bound {
				if err := trim(f, recent[max(0, len(recent)-keep):], bound, now()); err != nil {
					return err
				}
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return err
			}
			recent = append(recent, buf[:n]...)
			if len(recent) > 2*keep {
				recent = append(recent[:0], recent[len(recent)-keep:]...)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// trim empties f and starts it again with why, then the newest whole lines this writer wrote.
func trim(f *os.File, recent []byte, bound int64, at time.Time) error {
	if i := bytes.IndexByte(recent, '\n'); i >= 0 {
		recent = recent[i+1:]
	} else {
		recent = nil
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	note := fmt.Sprintf("%s app.log reached its bound of %d bytes: emptied in place by the log writer, keeping the %d bytes of output before this line\n",
		at.UTC().Format(time.RFC3339), bound, len(recent))
	_, err := f.Write(append([]byte(note), recent...))
	return err
}

// Serve is the writer process (`<service> log-writer BOUND`): stdin is the app's output, stdout
// app.log. It is not dumpable (the app, the same user in release mode, cannot ptrace it or take
// its descriptor of app.log) and it ignores the stop signals systemd sends the whole unit, so it
// drains the pipe to its end: the app's last lines reach the file.
func Serve(bound int64) error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("log writer: prctl(PR_SET_DUMPABLE): %w", err)
	}
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	return Copy(os.Stdin, os.Stdout, bound, time.Now)
}

// Start starts the writer (`log-writer BOUND`, this same program) on a new pipe, as uid:gid when
// cred is set, writing to this process's stdout (app.log); then points this process's stdout and
// stderr at the pipe, so the program it execs next writes only through the writer, and no
// process but the writer holds app.log.
func Start(bound string, cred *syscall.Credential) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	// By its path, so ps names it; an apply may have replaced the file meanwhile: the new agent's writer is the same command.
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	p, err := os.StartProcess(self, []string{os.Args[0], "log-writer", bound}, &os.ProcAttr{
		Files: []*os.File{r, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Credential: cred},
	})
	_ = r.Close()
	if err != nil {
		return fmt.Errorf("starting the log writer: %w", err)
	}
	_ = p.Release()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup2(int(w.Fd()), fd); err != nil {
			return fmt.Errorf("pointing fd %d at the log writer: %w", fd, err)
		}
	}
	return nil
}
