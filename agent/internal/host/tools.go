// Package host is the agent's real host: systemd, the instance links, the proxy, the
// listeners on a port, Docker. Every tool is called by its absolute path (a service named
// like a command on root's PATH must never shadow it), with a bounded time.
package host

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// tool finds a system tool in the system directories only, never through PATH.
func tool(name string) string {
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return "/usr/bin/" + name
}

// run runs a tool with a time bound and returns its stdout; err carries stderr's last line.
func run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool(name), args...)
	cmd.Env = toolEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if ctx.Err() != nil {
			msg = fmt.Sprintf("timed out after %s", timeout)
		}
		return out.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, msg)
	}
	return out.String(), nil
}

// toolEnv is a fixed environment: nothing of the caller's (an SSH session's, sudo's) reaches a tool.
func toolEnv() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "LANG=C"}
}

// Systemctl runs systemctl.
func Systemctl(args ...string) (string, error) { return run(60*time.Second, "systemctl", args...) }

// UnitState is `systemctl is-active UNIT` ("inactive" when systemctl says nothing).
func UnitState(unit string) string {
	out, _ := run(10*time.Second, "systemctl", "is-active", unit)
	s := strings.TrimSpace(out)
	if s == "" {
		return "inactive"
	}
	return s
}

// UnitActive reports whether the unit is active.
func UnitActive(unit string) bool { return UnitState(unit) == "active" }

// UnitProperty is `systemctl show -p NAME --value UNIT`.
func UnitProperty(unit, name string) string {
	out, _ := run(10*time.Second, "systemctl", "show", "-p", name, "--value", unit)
	return strings.TrimSpace(out)
}

// UnitEnabled is `systemctl is-enabled UNIT`.
func UnitEnabled(unit string) string {
	out, _ := run(10*time.Second, "systemctl", "is-enabled", unit)
	return strings.TrimSpace(out)
}
