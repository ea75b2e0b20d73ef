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
// its gate. A listener in one of this service's own instance units (the live instance, say, gone
// bad) is ours to end: its processes other than the unit's main one are killed; a socket the main
// process itself holds is closed by the kernel (ss -K: SOCK_DESTROY), the instance left running.
// Anyone else's is refused, naming the pid, its command, uid and cgroup: it is not the stack's to
// kill. done says what was ended; refused, when not empty, why PORT could not be freed.
// Container mode: a host port is docker-proxy's; nothing there is killed, anyone else's is refused.
func (in Instances) Reclaim(port, other int, ownsListener func(pid, port int) bool) (done []string, refused string) {
	if in.Runtime == "docker" {
		if holders := in.Foreign(port, ownsListener); len(holders) > 0 {
			return nil, strings.Join(holders, "; ")
		}
		return nil, ""
	}
	own := in.cgroup(port)
	units := map[string]string{} // cgroup -> our other instance unit
	if unit := in.L.InstanceUnit(other); other != port {
		if cg := UnitProperty(unit, "ControlGroup"); cg != "" {
			units[cg] = unit
		}
	}
	ls, err := Listeners(port)
	if err != nil {
		return nil, "an unknown process (ss --cgroup failed: iproute2's ss must be installed)"
	}
	destroy := false
	for _, l := range ls {
		unit, ours := units[l.Cgroup]
		if !ours || (own != "" && l.Cgroup == own) {
			continue
		}
		main, _ := strconv.Atoi(UnitProperty(unit, "MainPID"))
		for _, pid := range socketPIDs(l.Inode) {
			if pid == main {
				destroy = true
				continue
			}
			c := comm(pid)
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				done = append(done, fmt.Sprintf("killed pid %d (%s) of %s, which listened on the idle port %d", pid, c, unit, port))
			}
		}
	}
	if destroy {
		if _, err := run(10*time.Second, "ss", "-K", "-tln", fmt.Sprintf("sport = :%d", port)); err == nil {
			done = append(done, fmt.Sprintf("closed the listening socket on the idle port %d held by the main process of this service's own instance (ss -K)", port))
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
			return done, strings.Join(left, "; ")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
