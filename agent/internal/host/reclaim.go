package host

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
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
		pids := socketPIDsAs(l.Inode)
		if len(pids) == 0 {
			return done, fmt.Sprintf("a socket of %s (this service's other instance) whose process could not be found", live)
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

// socketPIDsAs are the processes holding socket INODE, as socketPIDs finds them, and also where
// /proc refuses root a process's fds (root without CAP_SYS_PTRACE, as in a container): read again
// with the file-system ids of the process's owner, which the kernel lets see its own processes.
func socketPIDsAs(inode string) []int {
	if inode == "" {
		return nil
	}
	want := "socket:[" + inode + "]"
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer setfsids(0, 0)
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		fds, err := os.ReadDir(dir + "/fd")
		if err != nil {
			uid, gid, ok := procIDs(dir)
			if !ok {
				continue
			}
			setfsids(uid, gid)
			fds, err = os.ReadDir(dir + "/fd")
			setfsids(0, 0)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				setfsids(uid, gid)
				t, err := os.Readlink(dir + "/fd/" + fd.Name())
				setfsids(0, 0)
				if err == nil && t == want {
					pid, _ := strconv.Atoi(filepath.Base(dir))
					pids = append(pids, pid)
					break
				}
			}
			continue
		}
		for _, fd := range fds {
			if t, err := os.Readlink(dir + "/fd/" + fd.Name()); err == nil && t == want {
				pid, _ := strconv.Atoi(filepath.Base(dir))
				pids = append(pids, pid)
				break
			}
		}
	}
	sort.Ints(pids)
	return pids
}

// setfsids sets this thread's file-system uid and gid (the caller holds the OS thread).
func setfsids(uid, gid int) {
	syscall.Syscall(syscall.SYS_SETFSGID, uintptr(gid), 0, 0)
	syscall.Syscall(syscall.SYS_SETFSUID, uintptr(uid), 0, 0)
}

// procIDs are a process's real uid and gid, from its status (readable by anyone).
func procIDs(dir string) (uid, gid int, ok bool) {
	b, err := os.ReadFile(dir + "/status")
	if err != nil {
		return 0, 0, false
	}
	var gotU, gotG bool
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "Uid:"); found {
			if f := strings.Fields(v); len(f) > 0 {
				uid, err = strconv.Atoi(f[0])
				gotU = err == nil
			}
		} else if v, found := strings.CutPrefix(line, "Gid:"); found {
			if f := strings.Fields(v); len(f) > 0 {
				gid, err = strconv.Atoi(f[0])
				gotG = err == nil
			}
		}
	}
	return uid, gid, gotU && gotG
}
