package host

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"complinist/agent/internal/fsafe"
	"complinist/agent/internal/layout"
)

// Instances are the app instances <service>@<port>.service, one per private loopback port,
// each running the release instances/<port> links to, with the env it was started with.
type Instances struct {
	L       layout.Layout
	Runtime string // process | docker
}

// Version is the release instances/<port> links to ("" when none).
func (in Instances) Version(port int) string {
	t, err := os.Readlink(fmt.Sprintf("%s/%d", in.L.InstancesDir, port))
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

// Rev is the revision (unit, env and gate identity) the instance was started with.
func (in Instances) Rev(port int) string {
	b, err := fsafe.ReadFile(in.L.InstancesDir, fmt.Sprintf("%d.rev", port), 4096)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Active reports whether the instance's unit is active.
func (in Instances) Active(port int) bool { return UnitActive(in.L.InstanceUnit(port)) }

// State is `systemctl is-active` of the instance's unit.
func (in Instances) State(port int) string { return UnitState(in.L.InstanceUnit(port)) }

// SetWanted decides whether `systemctl start <service>` (boot, or the operator) starts this instance.
func (in Instances) SetWanted(port int, wanted bool) {
	wants := in.L.UnitDir + "/" + in.L.Service + ".service.wants"
	_ = os.MkdirAll(wants, 0o755)
	name := in.L.InstanceUnit(port)
	if wanted {
		_ = fsafe.SymlinkAtomic(wants, name, "../"+in.L.Service+"@.service")
	} else {
		_ = os.Remove(wants + "/" + name)
	}
	_, _ = Systemctl("daemon-reload")
}

// Start (re)starts PORT on VERSION with the staged env file and revision REV.
func (in Instances) Start(port int, version, rev string, prepare func() error) error {
	unit := in.L.InstanceUnit(port)
	_, _ = Systemctl("stop", unit)
	if err := os.MkdirAll(in.L.InstancesDir, 0o755); err != nil {
		return err
	}
	if err := fsafe.SymlinkAtomic(in.L.InstancesDir, strconv.Itoa(port), "../releases/"+version); err != nil {
		return fmt.Errorf("linking instances/%d to %s: %w", port, version, err)
	}
	env, err := fsafe.ReadFile(in.L.EnvDir, filepath.Base(in.L.EnvFile), 1<<20)
	if err != nil {
		return fmt.Errorf("reading the env file %s: %w", in.L.EnvFile, err)
	}
	if err := fsafe.WriteFileAtomic(in.L.EnvDir, fmt.Sprintf("instance-%d.env", port), env, 0o600); err != nil {
		return fmt.Errorf("writing the instance's env file: %w", err)
	}
	if prepare != nil {
		// Not fatal here: container-run refuses the same missing user, and the gate reports it.
		_ = prepare()
	}
	if err := fsafe.WriteFileAtomic(in.L.InstancesDir, fmt.Sprintf("%d.rev", port), []byte(rev+"\n"), 0o644); err != nil {
		return err
	}
	_, _ = Systemctl("reset-failed", unit)
	if _, err := Systemctl("start", unit); err != nil {
		return err
	}
	return nil
}

// Stop stops PORT's instance and lets go of its release: its link would otherwise keep
// retention from removing a release nothing runs (a failed gate's, a switched-back soak's).
func (in Instances) Stop(port int) {
	_, _ = Systemctl("stop", in.L.InstanceUnit(port))
	in.SetWanted(port, false)
	_ = os.Remove(fmt.Sprintf("%s/%d", in.L.InstancesDir, port))
	_ = os.Remove(fmt.Sprintf("%s/%d.rev", in.L.InstancesDir, port))
	_ = os.Remove(fmt.Sprintf("%s/instance-%d.env", in.L.EnvDir, port))
}

// cgroup is the cgroup of PORT's own instance unit, exactly as systemd names it ("" when not
// running). Container mode: docker.service's, where the engine runs docker-proxy.
func (in Instances) cgroup(port int) string {
	unit := in.L.InstanceUnit(port)
	if in.Runtime == "docker" {
		unit = "docker.service"
	}
	return UnitProperty(unit, "ControlGroup")
}

// Listener is one TCP socket listening on a port.
type Listener struct {
	Cgroup string
	UID    string
	Inode  string
}

// Listeners are the TCP sockets listening on PORT, with each socket's cgroup from the kernel
// (ss --cgroup: sock_diag), so a socket is judged even when /proc hides its process.
func Listeners(port int) ([]Listener, error) {
	out, err := run(10*time.Second, "ss", "-Htlne", "--cgroup", fmt.Sprintf("sport = :%d", port))
	if err != nil {
		return nil, err
	}
	var ls []Listener
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		ls = append(ls, ParseSSLine(line))
	}
	return ls, nil
}

// ParseSSLine reads one `ss -Htlne --cgroup` line. What ss prints after its first " cgroup:"
// begins with the socket's cgroup path; a delegated user may put spaces, "cgroup:" or "<->" in
// cgroup names, so the path is cut at the first of those: what is left still begins with the
// user's own subtree, never equal to a unit's cgroup the user cannot create cgroups under.
func ParseSSLine(line string) Listener {
	head, cg := line, ""
	if i := strings.Index(line, " cgroup:"); i >= 0 {
		head, cg = line[:i], line[i+len(" cgroup:"):]
		// ss prints " v6only:N" after the path of an IPv6 socket.
		for _, cut := range []string{" cgroup:", " v6only:", " <->", " <--", " -->", " ---"} {
			if j := strings.Index(cg, cut); j >= 0 {
				cg = cg[:j]
			}
		}
	}
	l := Listener{Cgroup: cg}
	for _, f := range strings.Fields(head) {
		if v, ok := strings.CutPrefix(f, "uid:"); ok {
			l.UID = v
		} else if v, ok := strings.CutPrefix(f, "ino:"); ok {
			l.Inode = v
		}
	}
	return l
}

// socketPIDs are the processes holding socket INODE, from /proc.
func socketPIDs(inode string) []int {
	if inode == "" {
		return nil
	}
	want := "socket:[" + inode + "]"
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, fdDir := range procs {
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if t, err := os.Readlink(fdDir + "/" + fd.Name()); err == nil && t == want {
				pid, _ := strconv.Atoi(strings.Split(fdDir, "/")[2])
				pids = append(pids, pid)
				break
			}
		}
	}
	sort.Ints(pids)
	return pids
}

func comm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Foreign are the listeners on PORT its own instance unit did not open (container mode: not the
// docker-proxy of PORT's own container), one "pid N (command, uid U, cgroup C)" line each.
func (in Instances) Foreign(port int, ownsListener func(pid, port int) bool) []string {
	var mine func(pid int) bool
	if in.Runtime == "docker" {
		// docker.service also runs every other container's docker-proxy: only PORT's own counts.
		mine = func(pid int) bool { return ownsListener != nil && ownsListener(pid, port) }
	}
	return ForeignListeners(port, in.cgroup(port), mine)
}

// ForeignListeners are the listeners on PORT outside the cgroup own (exactly as systemd names a
// unit's; "" when the unit does not run: then every listener is foreign). With mine, a listener in
// own counts only when one of its processes is mine. The socket's cgroup comes from the kernel, so
// a socket is judged even when /proc hides its process; it must equal own exactly: a user's own
// user@UID.service/app.slice/<unit> ends the same way and is not the unit.
func ForeignListeners(port int, own string, mine func(pid int) bool) []string {
	ls, err := Listeners(port)
	if err != nil {
		return []string{"an unknown process (ss --cgroup failed: iproute2's ss must be installed)"}
	}
	seen := map[string]bool{}
	var out []string
	for _, l := range ls {
		pids := socketPIDs(l.Inode)
		if own != "" && l.Cgroup == own {
			if mine == nil {
				continue
			}
			ours := false
			for _, pid := range pids {
				ours = ours || mine(pid)
			}
			if ours {
				continue
			}
		}
		var ps, cs []string
		for _, pid := range pids {
			ps = append(ps, strconv.Itoa(pid))
			if c := comm(pid); c != "" {
				cs = append(cs, c)
			}
		}
		p, c, uid, cg := strings.Join(ps, " "), strings.Join(cs, " "), l.UID, l.Cgroup
		if p == "" {
			p = "?"
		}
		if c == "" {
			c = "not shown"
		}
		if uid == "" {
			uid = "0"
		}
		if cg == "" {
			cg = "unknown"
		}
		s := fmt.Sprintf("pid %s (%s, uid %s, cgroup %s)", p, c, uid, cg)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// OpenConnections counts the established connections to local PORT (the old instance's
// in-flight requests), from /proc/net/tcp and tcp6.
func OpenConnections(port int) int {
	n := 0
	suffix := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		first := true
		for sc.Scan() {
			if first {
				first = false
				continue
			}
			fs := strings.Fields(sc.Text())
			if len(fs) > 3 && fs[3] == "01" && strings.HasSuffix(fs[1], suffix) {
				n++
			}
		}
		fh.Close()
	}
	return n
}

// ProxyWorkers counts the proxy master's children: after a reload the old worker lives on
// until its last client connection ends (bounded by hard-stop-after).
func ProxyWorkers(proxyUnit string) int {
	master := UnitProperty(proxyUnit, "MainPID")
	if master == "" || master == "0" {
		return 0
	}
	n := 0
	statuses, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, s := range statuses {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				if strings.TrimSpace(v) == master {
					n++
				}
				break
			}
		}
	}
	return n
}
