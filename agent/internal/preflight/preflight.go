// Package preflight refuses a service name or a service user that would hand the stack's
// privileges to something else on the host, before the service apply writes anything.
package preflight

import (
	"bufio"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Marker is the first-line comment of every file the stack writes (units, the host program).
const Marker = "Managed by the CompliNist Pulumi stack"

// UserComment marks the accounts the stack creates (useradd --comment).
func UserComment(service string) string { return "CompliNist service user (" + service + ")" }

// Host is where the checks look; Root prefixes every path (tests).
type Host struct {
	Root string
	// LookupUser finds an account (os/user by default).
	LookupUser func(name string) (*user.User, error)
}

func (h Host) path(p string) string { return h.Root + p }

func (h Host) lookup(name string) (*user.User, error) {
	if h.LookupUser != nil {
		return h.LookupUser(name)
	}
	return user.Lookup(name)
}

// ours reports whether the file at p was written by the stack (its marker in the first lines).
func (h Host) ours(p string) bool {
	f, err := os.Open(h.path(p))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; i < 3 && sc.Scan(); i++ {
		if strings.Contains(sc.Text(), Marker) {
			return true
		}
	}
	return false
}

func (h Host) exists(p string) bool {
	_, err := os.Lstat(h.path(p))
	return err == nil
}

var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}

// commandDirs are root's PATH after /usr/local/sbin, where the agent goes.
var commandDirs = []string{"/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// CheckName refuses a service name whose units or whose command are someone else's: a unit of
// that name the stack did not write would be overridden (nftables: the host firewall silently off
// after a reboot), and a command of that name on root's PATH would be shadowed by the agent
// (timeout, bash: every later script fails and the stack can no longer repair the host).
func (h Host) CheckName(service string) error {
	for _, unit := range []string{service + ".service", service + "@.service", service + "-proxy.service", service + "-firewall.service"} {
		for _, dir := range unitDirs {
			p := dir + "/" + unit
			if h.exists(p) && (dir != "/etc/systemd/system" || !h.ours(p)) {
				return fmt.Errorf("service.name %s: %s is an existing unit (%s) the stack did not create; installing this service would override it: choose another service.name", service, unit, p)
			}
		}
	}
	for _, dir := range commandDirs {
		if p := dir + "/" + service; h.exists(p) {
			return fmt.Errorf("service.name %s is a command on root's PATH (%s): the host program /usr/local/sbin/%s would shadow it for every root shell and script: choose another service.name", service, p, service)
		}
	}
	if p := "/usr/local/sbin/" + service; h.exists(p) && !h.ours(p) && !h.isAgent(p) {
		return fmt.Errorf("service.name %s: %s exists and is not the stack's host program: choose another service.name, or remove it", service, p)
	}
	return nil
}

// isAgent reports whether p is a host agent binary (its version string is in it).
func (h Host) isAgent(p string) bool {
	b, err := os.ReadFile(h.path(p))
	return err == nil && strings.Contains(string(b), "complinist-agent ")
}

// uidMin is the first uid of an ordinary account (login.defs UID_MIN, 1000 by default).
func (h Host) uidMin() int {
	f, err := os.Open(h.path("/etc/login.defs"))
	if err != nil {
		return 1000
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 2 && fs[0] == "UID_MIN" {
			if n, err := strconv.Atoi(fs[1]); err == nil {
				return n
			}
		}
	}
	return 1000
}

// CheckUser refuses a service user that is root, the SSH user, a system account the stack did not
// create, or the user of another stack's service on this host: the app would share that identity
// (haproxy: the proxy's admin socket and SO_REUSEPORT on the service port; postgres: its IPC
// removed at every stop; the SSH user: the deploy's own login). An account the stack created is
// marked with UserComment; one a bash-era stack created owns <baseDir>/shared and is accepted
// (the apply marks it). It returns whether the account must be marked.
func (h Host) CheckUser(service, name, sshUser, baseDir string) (mark bool, err error) {
	if name == "root" {
		return false, fmt.Errorf("service.user root: the app never runs as root")
	}
	if name == sshUser {
		return false, fmt.Errorf("service.user %s is the SSH user the deploy logs in as: the app would hold the deploy's own identity; choose a user of its own", name)
	}
	for _, dir := range []string{"/etc/systemd/system"} {
		units, _ := filepath.Glob(h.path(dir + "/*@.service"))
		for _, u := range units {
			base := filepath.Base(u)
			if base == service+"@.service" || !h.ours(dir+"/"+base) {
				continue
			}
			if b, err := os.ReadFile(u); err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					if line == "User="+name {
						return false, fmt.Errorf("service.user %s is the user of another stack's service on this host (%s): two services never share an identity; choose a user of its own", name, base)
					}
				}
			}
		}
	}
	u, err := h.lookup(name)
	if err != nil {
		return false, nil // the apply creates it, marked
	}
	uid, _ := strconv.Atoi(u.Uid)
	if u.Uid == "0" || u.Gid == "0" {
		return false, fmt.Errorf("service.user %s is uid %s gid %s on this host: the app never runs as root", name, u.Uid, u.Gid)
	}
	if u.Name == UserComment(service) {
		return false, nil
	}
	if uid < h.uidMin() {
		if fi, err := os.Stat(h.path(baseDir + "/shared")); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && strconv.Itoa(int(st.Uid)) == u.Uid {
				return true, nil
			}
		}
		return false, fmt.Errorf("service.user %s is a system account (uid %s) this stack did not create: the app would share its identity and what it may do; choose a user of its own (pulumi up creates it)", name, u.Uid)
	}
	return false, nil
}
