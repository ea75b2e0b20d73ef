package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"regexp"
	"slices"
	"strings"
	"time"

	"complinist/agent/internal/activate"
	"complinist/agent/internal/host"
	"complinist/agent/internal/layout"
	"complinist/agent/internal/lock"
	"complinist/agent/internal/protocol"
	"complinist/agent/internal/record"
)

// keptReleases are the complete releases on this host (a real directory with root's manifest).
func keptReleases(l layout.Layout) []string {
	entries, _ := os.ReadDir(l.ReleasesDir)
	var out []string
	for _, e := range entries {
		if releaseComplete(l, e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// requireKept refuses anything but a kept release: root links `current` and an instance to it,
// and a name like ../shared/x would hand both to the service user's directory.
func requireKept(l layout.Layout, v string) error {
	if releaseComplete(l, v) {
		return nil
	}
	if !layout.ValidVersion(v) {
		return usageError{fmt.Sprintf("refused: '%s' is not a release version (letters, digits and . + _ -, starting with a letter or digit, at most 64 characters); nothing was changed", record.OneLine(v, 80))}
	}
	return usageError{fmt.Sprintf("refused: release %s is not kept on this host (a directory %s/<version> with its manifest); kept: %s; nothing was changed", record.OneLine(v, 80), l.ReleasesDir, strings.Join(keptReleases(l), " "))}
}

var whoRe = regexp.MustCompile(`[^A-Za-z0-9@._-]`)

// cmdRollback is the runbook's emergency path: the same locked, gated, recorded switch as a
// deploy, to the warm standby by default, else the newest release root recorded as activated.
func (e *env) cmdRollback(args []string) error {
	if len(args) > 1 {
		return usageError{}
	}
	c, l, err := e.config()
	if err != nil {
		return err
	}
	s, ok, err := lastSettings(l)
	if err != nil {
		return err
	}
	if !ok {
		return usageError{fmt.Sprintf("no deploy settings at %s: deploy once with pulumi up first", l.DeploySettings)}
	}
	// A named target is checked before anything is written, and again under the lock.
	if len(args) == 1 {
		if err := requireKept(l, args[0]); err != nil {
			return err
		}
	}
	name := os.Getenv("SUDO_USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		} else {
			name = "root"
		}
	}
	hn, _ := os.Hostname()
	who := whoRe.ReplaceAllString(name+"@"+hn+"-emergency", "_")
	id := fmt.Sprintf("emergency-%s-%d", time.Now().UTC().Format("20060102T150405Z"), os.Getpid())
	if err := prepareBase(l); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "waiting for the deploy lock (up to %d s)...\n", int(lockWait()/time.Second))
	lk, err := lock.Take(l.LockFile, who, lockWait())
	if err != nil {
		fmt.Fprintf(e.stderr, "refused: the deploy lock is held by %s\n", lock.Holder(l.LockFile))
		return exitError{protocol.ExitLocked}
	}
	host.CleanLeftovers(l)
	d := deps(l, c.Runtime, s, record.Log{}, "", nil)
	live, liveVersion := routedLive(d)
	target := ""
	if len(args) == 1 {
		target = args[0]
	} else if live != 0 {
		if standby := otherPort(s.Port, live); d.Inst.Active(standby) {
			target = d.Inst.Version(standby)
		}
	}
	if target == "" {
		activated := activatedVersions(l)
		slices.Reverse(activated)
		for _, v := range activated {
			if v != liveVersion && releaseComplete(l, v) {
				target = v
				break
			}
		}
	}
	if target == "" {
		lk.Release()
		return usageError{fmt.Sprintf("no previous release to roll back to; name one: %s rollback VERSION (kept: %s)", l.HostProgram, strings.Join(keptReleases(l), " "))}
	}
	if err := requireKept(l, target); err != nil {
		lk.Release()
		return err
	}
	fmt.Fprintf(e.stdout, "rolling back to %s (live now: %s)\n", target, orNoneS(liveVersion))
	// An emergency switch takes every request at once: no canary (the soak's watch still runs).
	s.Canary = protocol.Canary{}
	// The operator named the target by hand: never refused for a watch verdict.
	s.Acknowledged = true
	// The release left stays warm beside the target (a switch forward again is a proxy switch
	// too), rather than a second instance of the target started on the freed port: the command
	// ends when the target serves, not after another boot and gate.
	if liveVersion != "" && liveVersion != target {
		s.RollbackVersion = liveVersion
		s.Standby = true
	}
	resultFile := id + ".result.json"
	code := runActivation(l, c.Runtime, activate.Request{
		ID: id, Version: target, Sha256: host.ManifestField(l, target, "sha256"), Who: who,
		Settings: s, LiveHealthPath: s.HealthPath, Service: l.Service, Docker: c.Runtime == "docker",
	}, resultFile, nil, lk)
	if r, err := readResult(l, resultFile); err == nil {
		printResult(e, r)
	}
	if code != 0 {
		return exitError{code}
	}
	fmt.Fprintf(e.stdout, "rolled back to %s. The stack still declares another version: pin it in the stack file (complinist:version: %s), or run pulumi up to re-apply the declared one.\n", target, target)
	return nil
}

// printResult says an emergency rollback's outcome in the result's own words, one key a line.
func printResult(e *env, r protocol.Result) {
	for _, kv := range [][2]string{{"outcome", r.Outcome}, {"reason", r.Reason}, {"previous", r.Previous}, {"serving", r.Serving}, {"seen", r.Seen}, {"standby", r.Standby}, {"watch", r.Watch}} {
		if kv[1] != "" {
			fmt.Fprintf(e.stdout, "%s=%s\n", kv[0], kv[1])
		}
	}
	var phases []string
	for _, p := range r.PhasesMs {
		phases = append(phases, fmt.Sprintf("%s:%d", p.Phase, p.Ms))
	}
	if len(phases) > 0 {
		fmt.Fprintf(e.stdout, "phasesMs=%s\n", strings.Join(phases, ","))
	}
}

// routedLive is the instance port the proxy routes to (0: none) and the release it runs ("" then).
func routedLive(d activate.Deps) (int, string) {
	live := d.Proxy.Route().Live
	if live == 0 {
		return 0, ""
	}
	return live, d.Inst.Version(live)
}

// readResult is an activation's result file in the activations directory.
func readResult(l layout.Layout, file string) (protocol.Result, error) {
	var r protocol.Result
	b, err := os.ReadFile(l.ActivationsDir + "/" + file)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	return r, err
}

func orNoneS(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func otherPort(port, live int) int {
	ps := layout.InstancePorts(port)
	if live == ps[0] {
		return ps[1]
	}
	return ps[0]
}

func activatedVersions(l layout.Layout) []string {
	return record.ActivatedVersions(hostOps{l: l}.Revisions())
}
