package host

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// HookOutputKeep is how much of a hook's output root holds: its first and last this many bytes.
const HookOutputKeep = 32768

// RunHook runs the beforeActivate command in the release directory as the unit's user, with
// its env file and sandbox and its own time limit, under systemd-run (a child of systemd, not
// of the agent: it inherits no fd of ours). The command is the operator's shell text, so it runs
// under /bin/bash. Its output is capped (CapOutput) as it arrives.
func RunHook(ctx context.Context, service, dir, command string, secret bool, userName, envFile, sharedDir string, timeoutSeconds int) (string, error) {
	args := []string{"--wait", "--pipe", "--collect", "--quiet", "--service-type=exec", "--description=" + service + " beforeActivate hook",
		"-p", "User=" + userName, "-p", "Group=" + userName, "-p", "WorkingDirectory=" + dir, "-p", "EnvironmentFile=" + envFile,
		"-p", fmt.Sprintf("RuntimeMaxSec=%d", timeoutSeconds), "-p", "NoNewPrivileges=yes", "-p", "ProtectSystem=strict", "-p", "ProtectHome=yes",
		"-p", "PrivateTmp=yes", "-p", "PrivateDevices=yes", "-p", "ReadWritePaths=" + sharedDir,
		"/bin/bash", "-euo", "pipefail"}
	// A secret command travels on stdin (--pipe forwards it): an argv is readable by every user in /proc.
	if secret {
		args = append(args, "-s")
	} else {
		args = append(args, "-c", command)
	}
	c, cancel := context.WithTimeout(ctx, time.Duration(timeoutSeconds+60)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, tool("systemd-run"), args...)
	cmd.Env = toolEnv()
	cmd.Stdin = nil
	if secret {
		cmd.Stdin = strings.NewReader(command + "\n")
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan string, 1)
	go func() { done <- CapOutput(pr, HookOutputKeep) }()
	err := cmd.Run()
	pw.Close()
	return <-done, err
}

// CapOutput reads r to its end (a reader that stopped early would kill the hook with SIGPIPE
// half-way through a migration) and keeps its first and last keep bytes, cut at line ends so
// that Redact sees every kept secret whole, with a line saying how much was left out.
func CapOutput(r io.Reader, keep int) string {
	var head, tail []byte
	total := 0
	buf := make([]byte, 65536)
	for {
		n, err := r.Read(buf)
		chunk := buf[:n]
		total += n
		if len(head) < keep {
			take := min(keep-len(head), len(chunk))
			head = append(head, chunk[:take]...)
			chunk = chunk[take:]
		}
		tail = append(tail, chunk...)
		if len(tail) > keep {
			tail = append([]byte(nil), tail[len(tail)-keep:]...)
		}
		if err != nil {
			break
		}
	}
	if total > len(head)+len(tail) {
		if i := bytes.LastIndexByte(head, '\n'); i >= 0 {
			head = head[:i+1]
		} else {
			head = head[:0]
		}
		if i := bytes.IndexByte(tail, '\n'); i >= 0 {
			tail = tail[i+1:]
		} else {
			tail = tail[:0]
		}
	}
	cut := total - len(head) - len(tail)
	var b strings.Builder
	b.Write(head)
	if cut > 0 {
		fmt.Fprintf(&b, "[... %d bytes of hook output left out ...]\n", cut)
	}
	b.Write(tail)
	return b.String()
}

// EnvValues are the values of an env file (KEY="value" lines, \" and \\ escaped): the app's
// secrets and the operator's environment.
func EnvValues(envFile string) []string {
	b, err := os.ReadFile(envFile)
	if err != nil {
		return nil
	}
	var vs []string
	for _, line := range strings.Split(string(b), "\n") {
		i := strings.IndexByte(line, '=')
		if i <= 0 || !strings.HasPrefix(line[i+1:], `"`) || !strings.HasSuffix(line, `"`) || len(line) < i+3 {
			continue
		}
		raw := line[i+2 : len(line)-1]
		v := strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(raw)
		if len(v) >= 4 {
			vs = append(vs, v)
		}
	}
	return vs
}

// Redact replaces every value (longest first) by ***. Values under 4 characters are left: they
// would garble every line and guard nothing.
func Redact(s string, values []string) string {
	vs := append([]string(nil), values...)
	sort.Slice(vs, func(i, j int) bool { return len(vs[i]) > len(vs[j]) })
	for _, v := range vs {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}
