package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"complinist/agent/internal/applog"
)

// cmdLogWriter (`log-writer BOUND`): the writer of app.log that log-pipe and container-run start.
func (e *env) cmdLogWriter(args []string) error {
	if len(args) != 1 {
		return usageError{fmt.Sprintf("usage: %s log-writer BOUND (started by log-pipe and container-run)", e.prog)}
	}
	bound, err := applog.ParseSize(args[0])
	if err != nil {
		return usageError{err.Error()}
	}
	return applog.Serve(bound)
}

// cmdLogPipe (`log-pipe BOUND COMMAND [ARG...]`, release mode's instance ExecStart, run as the
// service user): COMMAND in this process, its output through the bounded writer into app.log.
func (e *env) cmdLogPipe(args []string) error {
	usage := usageError{fmt.Sprintf("usage: %s log-pipe BOUND /ABSOLUTE/COMMAND [ARG...]", e.prog)}
	if len(args) < 2 || !strings.HasPrefix(args[1], "/") {
		return usage
	}
	if _, err := applog.ParseSize(args[0]); err != nil {
		return usageError{err.Error()}
	}
	if err := applog.Start(args[0], nil); err != nil {
		return err
	}
	return syscall.Exec(args[1], args[1:], os.Environ())
}

// serviceCredential is the writer's identity in container mode: the service user's "uid:gid".
func serviceCredential(ids string) (*syscall.Credential, error) {
	u, g, ok := strings.Cut(ids, ":")
	uid, err1 := strconv.ParseUint(u, 10, 32)
	gid, err2 := strconv.ParseUint(g, 10, 32)
	if !ok || err1 != nil || err2 != nil || uid == 0 || gid == 0 {
		return nil, fmt.Errorf("service user ids %q: want uid:gid, neither 0", ids)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}
