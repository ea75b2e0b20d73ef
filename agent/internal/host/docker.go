package host

import (
	"fmt"
	"os"
	"os/user"
	"regexp"
	"strings"
	"syscall"
	"time"

	"complinist/agent/internal/fsafe"
	"complinist/agent/internal/layout"
	"complinist/agent/internal/protocol"
)

// Container mode: each instance slot runs its release's image, pinned by ID in the release's
// manifest, as the container <service>-<port> published on 127.0.0.1:<port>. The instance unit
// runs `container-run`, so starting, gating, switching, draining and the standby are release
// mode's own.

// ContainerName is <service>-<port>.
func ContainerName(l layout.Layout, port int) string { return fmt.Sprintf("%s-%d", l.Service, port) }

// ContainerState is the slot's container as Docker sees it ("missing" when none).
func ContainerState(l layout.Layout, port int) *protocol.Container {
	out, err := run(20*time.Second, "docker", "inspect", "--format", "{{.State.Status}} {{.Id}} {{.Image}}", ContainerName(l, port))
	f := strings.Fields(strings.SplitN(out, "\n", 2)[0])
	if err != nil || len(f) < 3 {
		return &protocol.Container{State: "missing"}
	}
	return &protocol.Container{State: f[0], ID: f[1], Image: f[2]}
}

// ManifestField is KEY's value in a release's manifest (root wrote it; never through a link).
func ManifestField(l layout.Layout, version, key string) string {
	if !layout.ValidVersion(version) {
		return ""
	}
	b, err := fsafe.ReadFile(l.ReleaseDir(version), layout.Manifest, 64<<10)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	return ""
}

// InstanceImage is the image ID the release linked to PORT pins.
func InstanceImage(in Instances, port int) string {
	return ManifestField(in.L, in.Version(port), "image")
}

// ServiceIDs is the service user's "uid:gid"; refused when missing or uid/gid 0: a container
// never runs as root.
func ServiceIDs(name string) (string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return "", fmt.Errorf("service user %s does not exist on this host: pulumi up creates it", name)
	}
	if u.Uid == "0" || u.Gid == "0" {
		return "", fmt.Errorf("service user %s is uid %s gid %s on this host: a container never runs as root", name, u.Uid, u.Gid)
	}
	return u.Uid + ":" + u.Gid, nil
}

// PrepareContainerLogs makes the named volume at /var/log/<service>, owned by the service user
// (mounted with volume-nocopy). Only the volume's own directory is chowned: its parent is the engine's.
func PrepareContainerLogs(l layout.Layout, userName string) error {
	ids, err := ServiceIDs(userName)
	if err != nil {
		return err
	}
	vol := l.Service + "-logs"
	if _, err := run(30*time.Second, "docker", "volume", "create", vol); err != nil {
		return err
	}
	mp, err := run(30*time.Second, "docker", "volume", "inspect", "--format", "{{.Mountpoint}}", vol)
	if err != nil {
		return err
	}
	mp = strings.TrimSpace(mp)
	var uid, gid int
	fmt.Sscanf(strings.Replace(ids, ":", " ", 1), "%d %d", &uid, &gid)
	if err := os.Lchown(mp, uid, gid); err != nil {
		return err
	}
	return os.Chmod(mp, 0o750)
}

// ContainerOwnsListener reports whether PID is the engine's docker-proxy forwarding
// 127.0.0.1:PORT to PORT's own container (its address on the engine's network).
func ContainerOwnsListener(l layout.Layout, pid, port int) bool {
	if comm(pid) != "docker-proxy" {
		return false
	}
	out, err := run(20*time.Second, "docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", ContainerName(l, port))
	ips := strings.Fields(out)
	if err != nil || len(ips) == 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := " " + strings.ReplaceAll(string(b), "\x00", " ") + " "
	return strings.Contains(args, fmt.Sprintf(" -host-port %d ", port)) && strings.Contains(args, " -container-ip "+ips[0]+" ")
}

// RunSettings are container-run's arguments (the instance unit's ExecStart).
type RunSettings struct {
	User, Memory, Pids, TmpSize, LogMaxSize, LogMaxFiles string
}

var (
	userRe  = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	sizeRe  = regexp.MustCompile(`^[1-9][0-9]*[mg]$`)
	countRe = regexp.MustCompile(`^[1-9][0-9]*$`)
	logRe   = regexp.MustCompile(`^[1-9][0-9]*[kmg]$`)
)

// Valid reports whether every value has the schema's form: they reach docker's command line.
func (r RunSettings) Valid() bool {
	return userRe.MatchString(r.User) && sizeRe.MatchString(r.Memory) && countRe.MatchString(r.Pids) &&
		sizeRe.MatchString(r.TmpSize) && logRe.MatchString(r.LogMaxSize) && countRe.MatchString(r.LogMaxFiles)
}

// DockerRunArgs are the docker run arguments of PORT's container: only the image the release
// pins, as the service user's uid:gid, read-only with a tmpfs /tmp, memory and process limits,
// Docker's own JSON log rotated.
func DockerRunArgs(l layout.Layout, port int, version, image, ids string, r RunSettings) []string {
	return []string{"docker", "run", "--rm", "--name", ContainerName(l, port),
		"--label", "complinist.service=" + l.Service, "--label", "complinist.version=" + version, "--label", fmt.Sprintf("complinist.port=%d", port),
		"--publish", fmt.Sprintf("127.0.0.1:%d:%d", port, port),
		"--env", fmt.Sprintf("PORT=%d", port), "--env", "COMPLINIST_VERSION=" + version, "--env-file", fmt.Sprintf("%s/instance-%d.env", l.EnvDir, port),
		"--mount", fmt.Sprintf("type=volume,source=%s-logs,target=/var/log/%s,volume-nocopy", l.Service, l.Service),
		"--stop-signal", "SIGINT", "--stop-timeout", "20",
		"--user", ids, "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,noexec,size=" + r.TmpSize,
		"--memory", r.Memory, "--memory-swap", r.Memory, "--pids-limit", r.Pids,
		"--log-driver", "json-file", "--log-opt", "max-size=" + r.LogMaxSize, "--log-opt", "max-file=" + r.LogMaxFiles,
		image}
}

// ExecDocker replaces the agent with docker run, so systemd follows the container's life.
func ExecDocker(args []string) error {
	return syscall.Exec(tool("docker"), args, toolEnv())
}

// LegacyContainerExists reports whether the replace-in-place container named after the service runs here.
func LegacyContainerExists(l layout.Layout) bool {
	_, err := run(20*time.Second, "docker", "inspect", l.Service)
	return err == nil
}

// RemoveLegacyContainer frees the service port the replace-in-place container held.
func RemoveLegacyContainer(l layout.Layout) {
	_, _ = run(60*time.Second, "docker", "rm", "-f", l.Service)
}
