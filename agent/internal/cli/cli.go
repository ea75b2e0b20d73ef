// Package cli is the agent's command line: the host program's subcommands at
// /usr/local/sbin/<service>. The service is the program's own name (argv[0]); where the
// service lives (baseDir) and how instances run come from /etc/<service>/agent.json, data the
// service apply wrote, never code.
package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"complinist/agent/internal/fsafe"
	"complinist/agent/internal/layout"
	"complinist/agent/internal/legacy"
	"complinist/agent/internal/preflight"
	"complinist/agent/internal/protocol"
)

// Version is stamped by the build (-X complinist/agent/internal/cli.Version=…).
var Version = "dev"

// AgentConfig is /etc/<service>/agent.json.
type AgentConfig struct {
	V       int    `json:"v"`
	BaseDir string `json:"baseDir"`
	Runtime string `json:"runtime"`
}

// env is one invocation's context.
type env struct {
	prog    string
	service string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

// usageError ends a command with the usage exit code.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError ends a command with a code, its message already said.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func (e *env) usage() string {
	p := e.prog
	return fmt.Sprintf(`usage: %[1]s status [--json]        the live release, the standby, the proxy, the lock
       %[1]s releases               releases on this host, which is live and which is warm
       %[1]s rollback [VERSION]     emergency switch (default: the warm standby, else the
                                            previously activated release), locked, gated, recorded
       %[1]s check-current          exit 1 when `+"`current`"+` names another release than the
                                            proxy routes to (run by `+"`systemctl start %[2]s`"+`)
       %[1]s container-run PORT     container mode: run the slot's pinned image in the
                                            foreground (the ExecStart of %[2]s@PORT.service)
       %[1]s log-pipe BOUND CMD...  release mode: run CMD with its output through the
                                            writer that keeps app.log within BOUND (e.g. 64m)
       %[1]s version [--json]       this agent's version and sha256
       %[1]s state                  everything the deploy reads of this host, as one JSON object
       %[1]s failover-watch         run by %[2]s-failover.service: switch to the warm standby when
                                            the live instance fails its health (failover.afterSeconds)
`, p, e.service)
}

// Main runs the agent with args (args[0] names the service: /usr/local/sbin/<service>).
func Main(args []string) int {
	e := &env{prog: args[0], stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	e.service = strings.TrimSuffix(filepath.Base(args[0]), ".tmp")
	err := e.dispatch(args[1:])
	var ue usageError
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintln(e.stderr, ue.msg)
		} else {
			fmt.Fprint(e.stderr, e.usage())
		}
		return protocol.ExitUsage
	default:
		fmt.Fprintln(e.stderr, err)
		return protocol.ExitFailed
	}
}

func (e *env) dispatch(args []string) error {
	if len(args) == 0 {
		return usageError{}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, e.usage())
		return nil
	case "version":
		return e.cmdVersion(rest)
	case "trust-check":
		return e.cmdTrustCheck(rest)
	case "preflight":
		return e.cmdPreflight(rest)
	case "log-writer":
		return e.cmdLogWriter(rest)
	case "log-pipe":
		return e.cmdLogPipe(rest)
	}
	if !layout.ValidService(e.service) {
		return usageError{fmt.Sprintf("this program's name %q is not a service name: it runs as /usr/local/sbin/<service>", e.service)}
	}
	switch cmd {
	case "status":
		return e.cmdStatus(rest)
	case "releases":
		return e.cmdReleases(rest)
	case "rollback":
		return e.cmdRollback(rest)
	case "rollback-all":
		return e.cmdRollbackAll(rest)
	case "check-current":
		return e.cmdCheckCurrent(rest)
	case "container-run":
		return e.cmdContainerRun(rest)
	case "state":
		return e.cmdState(rest)
	case "failover-watch":
		return e.cmdFailoverWatch(rest)
	case "start-activation":
		return e.cmdStartActivation(rest)
	case "activate":
		return e.cmdActivate(rest)
	case "activation-result":
		return e.cmdActivationResult(rest)
	}
	return usageError{}
}

// config reads /etc/<service>/agent.json and derives the layout.
func (e *env) config() (AgentConfig, layout.Layout, error) {
	etc := "/etc/" + e.service
	b, err := fsafe.ReadFile(etc, "agent.json", 64<<10)
	if err != nil {
		return AgentConfig{}, layout.Layout{}, usageError{fmt.Sprintf("no agent configuration at %s/agent.json (%v): deploy once with pulumi up first", etc, err)}
	}
	var c AgentConfig
	if err := strictJSON(b, &c); err != nil {
		return c, layout.Layout{}, fmt.Errorf("%s/agent.json: %w", etc, err)
	}
	if c.V != protocol.V {
		return c, layout.Layout{}, fmt.Errorf("%s/agent.json: protocol version v %d, this agent speaks %d", etc, c.V, protocol.V)
	}
	if c.Runtime != "process" && c.Runtime != "docker" {
		return c, layout.Layout{}, fmt.Errorf("%s/agent.json: runtime %q is not process or docker", etc, c.Runtime)
	}
	l, err := layout.New("", c.BaseDir, e.service)
	if err != nil {
		return c, l, fmt.Errorf("%s/agent.json: %w", etc, err)
	}
	return c, l, nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// lastSettings are the settings of the last successful activation (deploy.json), or of the bash
// program's last one (deploy.conf, parsed as data); ok false when the host was never activated.
func lastSettings(l layout.Layout) (protocol.Settings, bool, error) {
	if b, err := fsafe.ReadFile(l.EnvDir, filepath.Base(l.DeploySettings), 1<<20); err == nil {
		var s protocol.Settings
		if err := strictJSON(b, &s); err != nil {
			return s, false, fmt.Errorf("%s: %w", l.DeploySettings, err)
		}
		return s, true, nil
	}
	if b, err := fsafe.ReadFile(l.EnvDir, filepath.Base(l.DeployConfig), 1<<20); err == nil {
		s, err := legacy.ParseDeployConf(string(b))
		if err != nil {
			return s, false, fmt.Errorf("%s: %w", l.DeployConfig, err)
		}
		return s, true, nil
	}
	return protocol.Settings{}, false, nil
}

func (e *env) cmdVersion(args []string) error {
	sum := selfSha256()
	if len(args) == 1 && args[0] == "--json" {
		return json.NewEncoder(e.stdout).Encode(map[string]any{"v": protocol.V, "version": Version, "sha256": sum})
	}
	if len(args) != 0 {
		return usageError{}
	}
	fmt.Fprintf(e.stdout, "complinist-agent %s sha256 %s\n", Version, sum)
	return nil
}

func lockWait() time.Duration {
	if n, err := strconv.Atoi(os.Getenv("LOCK_WAIT")); err == nil && n >= 0 && n <= 3600 {
		return time.Duration(n) * time.Second
	}
	return 120 * time.Second
}

// cmdTrustCheck (the service apply runs it before it writes anything): PATH, or the nearest part
// of it that exists, and every directory above it are root's, not links, writable by root only.
func (e *env) cmdTrustCheck(args []string) error {
	if len(args) != 1 || !filepath.IsAbs(args[0]) || filepath.Clean(args[0]) != args[0] {
		return usageError{fmt.Sprintf("usage: %s trust-check ABSOLUTE-PATH", e.prog)}
	}
	p := args[0]
	for {
		if _, err := os.Lstat(p); err == nil || p == "/" {
			break
		}
		p = filepath.Dir(p)
	}
	if err := fsafe.CheckTrusted(p); err != nil {
		fmt.Fprintf(e.stderr, "refused: %v. Nothing was changed\n", err)
		return exitError{protocol.ExitFailed}
	}
	return nil
}

// cmdPreflight (the service apply runs it before it writes anything): refuses a service name or
// user that would hand the stack's privileges to something else on this host (preflight.Host).
// Prints `mark-user` when the apply must mark an account a bash-era stack created.
func (e *env) cmdPreflight(args []string) error {
	flags := map[string]string{"--service": "", "--user": "", "--ssh-user": "", "--base-dir": ""}
	if len(args) != 8 {
		return usageError{fmt.Sprintf("usage: %s preflight --service NAME --user USER --ssh-user USER --base-dir DIR", e.prog)}
	}
	for i := 0; i < len(args); i += 2 {
		if _, ok := flags[args[i]]; !ok {
			return usageError{fmt.Sprintf("usage: %s preflight --service NAME --user USER --ssh-user USER --base-dir DIR", e.prog)}
		}
		flags[args[i]] = args[i+1]
	}
	h := preflight.Host{}
	err := h.CheckName(flags["--service"])
	mark := false
	if err == nil {
		mark, err = h.CheckUser(flags["--service"], flags["--user"], flags["--ssh-user"], flags["--base-dir"])
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "refused: %v. Nothing was changed\n", err)
		return exitError{protocol.ExitFailed}
	}
	if mark {
		fmt.Fprintln(e.stdout, "mark-user")
	}
	return nil
}
