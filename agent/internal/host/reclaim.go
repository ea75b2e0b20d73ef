package host

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Reclaim frees PORT, an idle instance port, before its instance starts (issue 29 finding 10): a
// listener there that is not PORT's own unit's (which the start stops anyway) would take the new
// release's requests or keep it from binding, and every later deploy, the fix included, would fail
// its gate. A listener in this service's other instance unit (the live instance gone bad) is ours
// to end: the processes holding it, other than the unit's main one, are killed; the main process
// itself is refused (killing it would stop the live release), naming it and the unit. Anyone
// else's is refused and nothing is touched: it is not the stack's to end. (Closing the socket
// instead, ss -K, is no fix: a destroyed listener leaves the listening state but keeps its port
// bound while its process holds the fd, so the new instance still cannot bind.) done says what was ended; refused, when not
// empty, names what holds PORT and why it was not ended.
// Container mode: a host port is docker-proxy's; nothing there is ended, anyone else's is refused.
func (in Instances) Reclaim(port, other int, ownsListener func(pid, port int) bool) (done []string, refused string) {
	if in.Runtime == "docker" {
		if holders := in.Foreign(port, ownsListener); len(holders) > 0 {
			return nil, strings.Join(holders, "; ") + " - not this service's container"
		}
		return nil, ""
	}
	own := in.cgroup(port)
	live := in.L.InstanceUnit(other)
	liveCg := ""
	if other != port {
		liveCg = UnitProperty(live, "ControlGroup")
	}
	ls, err := Listeners(port)
	if err != nil {
		return nil, "an unknown process (ss --cgroup failed: iproute2's ss must be installed)"
	}
	var squat []Listener
	for _, l := range ls {
		switch {
		case own != "" && l.Cgroup == own:
		case liveCg != "" && l.Cgroup == liveCg:
			squat = append(squat, l)
		default:
			// Anyone else's: refused before anything is ended.
			return nil, strings.Join(ForeignListeners(port, own, nil), "; ") + " - not this service's own units, so not ended here"
		}
	}
	if len(squat) == 0 {
		return nil, ""
	}
	main, _ := strconv.Atoi(UnitProperty(live, "MainPID"))
	for _, l := range squat {
		pids := socketPIDs(l.Inode)
		if len(pids) == 0 {
			// /proc hides it: root without CAP_SYS_PTRACE (a container's root, say) sees no other user's fds.
			return done, fmt.Sprintf("a socket of %s (this service's other instance) whose process /proc does not show (root lacks CAP_SYS_PTRACE?), so it could not be ended", live)
		}
		for _, pid := range pids {
			if pid == main {
				// Killing it would stop the live release: the operator decides.
				return done, fmt.Sprintf("pid %d (%s), the main process of %s (this service's live instance): restart that unit (systemctl restart %s) or roll it back", pid, comm(pid), live, live)
			}
			c := comm(pid)
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				done = append(done, fmt.Sprintf("killed pid %d (%s) of %s, which listened on the idle port %d", pid, c, live, port))
			}
		}
	}
	// Killed processes' sockets close as the kernel reaps them: wait on that, bounded.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := ForeignListeners(port, own, nil)
		if len(left) == 0 {
			return done, ""
		}
		if time.Now().After(deadline) {
			return done, strings.Join(left, "; ") + " - this service's " + live + ", but it could not be ended"
		}
		time.Sleep(50 * time.Millisecond)
	}
}
