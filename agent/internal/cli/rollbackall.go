package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"time"

	"complinist/agent/internal/activate"
	"complinist/agent/internal/host"
	"complinist/agent/internal/layout"
	"complinist/agent/internal/lock"
	"complinist/agent/internal/protocol"
	"complinist/agent/internal/record"
)

var hostNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// cmdRollbackAll (`rollback-all --from VERSION --failed-host NAME --who WHO`) is the deploy's
// switch back of a host whose update failed elsewhere (rollout.onFailure: rollback-all): when
// FROM is live here and the release beside it is warm with the settings of FROM's activation, the
// same locked, gated, recorded switch as the emergency rollback takes it back (no upload, no
// process start), and FROM stays warm as the standby. Anything else is left as it is and said.
// Prints the outcome as one protocol.Result JSON line.
func (e *env) cmdRollbackAll(args []string) error {
	usage := usageError{fmt.Sprintf("usage: %s rollback-all --from VERSION --failed-host NAME --who WHO", e.prog)}
	flags := map[string]string{"--from": "", "--failed-host": "", "--who": ""}
	if len(args) != 6 {
		return usage
	}
	for i := 0; i < len(args); i += 2 {
		if _, ok := flags[args[i]]; !ok {
			return usage
		}
		flags[args[i]] = args[i+1]
	}
	from, failed, who := flags["--from"], flags["--failed-host"], flags["--who"]
	switch {
	case !layout.ValidVersion(from):
		return usageError{fmt.Sprintf("refused: --from %s is not a release version; nothing was changed", record.OneLine(from, 80))}
	case !hostNameRe.MatchString(failed):
		return usageError{fmt.Sprintf("refused: --failed-host %s is not a host name (letters, digits, . _ -, at most 63); nothing was changed", record.OneLine(failed, 80))}
	case who == "" || record.OneLine(who, 200) != who:
		return usageError{"refused: --who must be one printable line of at most 200 characters; nothing was changed"}
	}
	c, l, err := e.config()
	if err != nil {
		return err
	}
	s, ok, err := lastSettings(l)
	if err != nil {
		return err
	}
	result := func(r protocol.Result) error {
		r.V, r.Done = protocol.V, true
		return json.NewEncoder(e.stdout).Encode(r)
	}
	if !ok {
		return result(protocol.Result{Outcome: "unchanged", Reason: "rollback-all", Seen: "never activated: nothing to switch back"})
	}
	if err := prepareBase(l); err != nil {
		return err
	}
	lk, err := lock.Take(l.LockFile, who, lockWait())
	if err != nil {
		return result(protocol.Result{Outcome: "locked", Reason: "rollback-all", Holder: lock.Holder(l.LockFile), Exit: protocol.ExitLocked})
	}
	host.CleanLeftovers(l)
	d := deps(l, c.Runtime, s, record.Log{}, "", nil)
	live, liveVersion := routedLive(d)
	if live == 0 || liveVersion != from {
		lk.Release()
		return result(protocol.Result{Outcome: "unchanged", Reason: "rollback-all", Previous: liveVersion, Serving: orNoneS(liveVersion), Seen: fmt.Sprintf("%s is not live here (live: %s): left as it is", from, orNoneS(liveVersion))})
	}
	standby := otherPort(s.Port, live)
	target := d.Inst.Version(standby)
	if !d.Inst.Active(standby) || target == "" || target == from || d.Inst.Rev(standby) != s.Revision || !releaseComplete(l, target) {
		seen := fmt.Sprintf("no warm standby on %d (a switch back starts no process): %s keeps serving", standby, from)
		log := record.Log{Revisions: l.RevisionsLog, Deploy: l.DeployLog, ID: "rollback-all"}
		_ = log.Record(from, host.ManifestField(l, from, "sha256"), who, fmt.Sprintf("outcome=failed reason=rollback-all failed-host=%s seen=%s", failed, seen))
		lk.Release()
		return result(protocol.Result{Outcome: "failed", Reason: "rollback-all", Previous: from, Serving: from, Seen: seen, Exit: protocol.ExitRefused})
	}
	// The settings FROM was activated with, but every request at once, and FROM kept warm beside
	// the release taken back: the next up with a fixed fleet is a warm switch again.
	s.Canary = protocol.Canary{}
	s.Acknowledged = true
	s.RollbackVersion = from
	id := fmt.Sprintf("rollback-all-%s-%d", time.Now().UTC().Format("20060102T150405Z"), os.Getpid())
	resultFile := id + ".result.json"
	runActivation(l, c.Runtime, activate.Request{
		ID: id, Version: target, Sha256: host.ManifestField(l, target, "sha256"), Who: who,
		Settings: s, LiveHealthPath: s.HealthPath, Service: l.Service, Docker: c.Runtime == "docker",
		RollbackAll: &activate.RollbackAll{From: from, FromSha256: host.ManifestField(l, from, "sha256"), FailedHost: failed},
	}, resultFile, nil, lk)
	r, err := readResult(l, resultFile)
	_ = os.Remove(l.ActivationsDir + "/" + resultFile)
	if err != nil {
		return result(protocol.Result{Outcome: "failed", Reason: "rollback-all", Previous: from, Seen: "the switch back reported no result"})
	}
	return result(r)
}
