package cli

import (
	"fmt"
	"strconv"

	"complinist/agent/internal/applog"
	"complinist/agent/internal/host"
)

// DefaultAppLogBound is app.log's bound when the unit names none (the stack's units name it).
const DefaultAppLogBound = "64m"

// cmdContainerRun (the instance unit's ExecStart in container mode): the container in the
// foreground, so systemd follows its life. The docker CLI runs as root (the engine's socket is
// root's), so it never writes app.log itself: its output goes through the log writer, running
// as the service user and keeping app.log within --app-log-bound (default: DefaultAppLogBound,
// for a unit written before the flag).
func (e *env) cmdContainerRun(args []string) error {
	usage := usageError{fmt.Sprintf("usage: %s container-run PORT --user USER --memory SIZE --pids N --tmp-size SIZE --log-max-size SIZE --log-max-files N [--app-log-bound SIZE]", e.prog)}
	if len(args) < 1 {
		return usage
	}
	port, err := strconv.Atoi(args[0])
	if err != nil || port < 1 || port > 65535 || strconv.Itoa(port) != args[0] {
		return usage
	}
	var r host.RunSettings
	appLogBound := DefaultAppLogBound
	rest := args[1:]
	for len(rest) > 0 {
		if len(rest) < 2 {
			return usage
		}
		switch rest[0] {
		case "--user":
			r.User = rest[1]
		case "--memory":
			r.Memory = rest[1]
		case "--pids":
			r.Pids = rest[1]
		case "--tmp-size":
			r.TmpSize = rest[1]
		case "--log-max-size":
			r.LogMaxSize = rest[1]
		case "--log-max-files":
			r.LogMaxFiles = rest[1]
		case "--app-log-bound":
			appLogBound = rest[1]
		default:
			return usage
		}
		rest = rest[2:]
	}
	// The unit is root's, but its values still reach docker's command line: the schema's forms only.
	if !r.Valid() {
		return usage
	}
	if _, err := applog.ParseSize(appLogBound); err != nil {
		return usageError{"--app-log-bound: " + err.Error()}
	}
	_, l, err := e.config()
	if err != nil {
		return err
	}
	ids, err := host.ServiceIDs(r.User)
	if err != nil {
		return err
	}
	in := host.Instances{L: l, Runtime: "docker"}
	version, image := in.Version(port), host.InstanceImage(in, port)
	if version == "" || image == "" {
		return fmt.Errorf("no release with an image is linked for port %d (%s/%d): start it through an activation", port, l.InstancesDir, port)
	}
	cred, err := serviceCredential(ids)
	if err != nil {
		return err
	}
	if err := applog.Start(appLogBound, cred); err != nil {
		return err
	}
	return host.ExecDocker(host.DockerRunArgs(l, port, version, image, ids, r))
}
