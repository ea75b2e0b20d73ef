package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"complinist/agent/internal/activate"
	"complinist/agent/internal/fsafe"
	"complinist/agent/internal/host"
	"complinist/agent/internal/layout"
	"complinist/agent/internal/lock"
	"complinist/agent/internal/protocol"
	"complinist/agent/internal/record"
	"complinist/agent/internal/watch"
)

var (
	idRe   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)
	shaRe  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	userRe = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	pathRe = regexp.MustCompile(`^/[!-~]*$`)
	revRe  = regexp.MustCompile(`^[0-9a-f]{1,64}$`)
)

// checkRequest refuses a request the schema would never have produced, naming the field and what
// is accepted: every value reaches a unit property, a URL or revisions.log.
func checkRequest(r protocol.ActivateRequest) error {
	bad := func(field, accepted string, v any) error {
		return usageError{fmt.Sprintf("refused: request field %s is %s; accepted: %s. Nothing was changed", field, record.OneLine(fmt.Sprintf("%q", fmt.Sprint(v)), 120), accepted)}
	}
	s := r.Settings
	switch {
	case !idRe.MatchString(r.ID):
		return bad("id", "1 to 100 letters, digits, _ and -", r.ID)
	case !layout.ValidVersion(r.Version):
		return bad("version", "a release version (letters, digits and . + _ -, starting with a letter or digit, at most 64)", r.Version)
	case !shaRe.MatchString(r.Sha256):
		return bad("sha256", "64 lower-case hex digits", r.Sha256)
	case r.Who == "" || record.OneLine(r.Who, 200) != r.Who:
		return bad("who", "one printable line of at most 200 characters", r.Who)
	case r.BudgetSeconds < 1 || r.BudgetSeconds > 86400:
		return bad("budgetSeconds", "1 to 86400", r.BudgetSeconds)
	case s.Port < 1 || s.Port > 65533:
		return bad("settings.port", "1 to 65533 (the two instance ports follow it)", s.Port)
	case !userRe.MatchString(s.User):
		return bad("settings.user", "a user name ([a-z_][a-z0-9_-]*, at most 32)", s.User)
	case !pathRe.MatchString(s.HealthPath):
		return bad("settings.healthPath", "an absolute URL path of printable characters without spaces", s.HealthPath)
	case s.TimeoutSeconds < 1 || s.TimeoutSeconds > 3600:
		return bad("settings.timeoutSeconds", "1 to 3600", s.TimeoutSeconds)
	case s.IntervalMs < 10 || s.IntervalMs > 60000:
		return bad("settings.intervalMs", "10 to 60000", s.IntervalMs)
	case s.SoakSeconds < 0 || s.SoakSeconds > 3600:
		return bad("settings.soakSeconds", "0 to 3600", s.SoakSeconds)
	case s.DrainSeconds < 0 || s.DrainSeconds > 3600:
		return bad("settings.drainSeconds", "0 to 3600", s.DrainSeconds)
	case s.RollbackVersion != "" && !layout.ValidVersion(s.RollbackVersion):
		return bad("settings.rollbackVersion", "a release version, or empty", s.RollbackVersion)
	case s.HookTimeoutSeconds < 0 || s.HookTimeoutSeconds > 86400:
		return bad("settings.hookTimeoutSeconds", "0 to 86400", s.HookTimeoutSeconds)
	case r.RunHook && s.BeforeActivate == "":
		return bad("settings.beforeActivate", "a command when runHook is true", s.BeforeActivate)
	case s.Canary.Percent < 0 || s.Canary.Percent > 50:
		return bad("settings.canary.percent", "0 to 50", s.Canary.Percent)
	case s.Canary.Seconds < 0 || s.Canary.Seconds > 3600:
		return bad("settings.canary.seconds", "0 to 3600", s.Canary.Seconds)
	case s.Canary.Percent > 0 && s.Canary.Seconds < watch.MinCanarySeconds:
		// A shorter canary ends before a request it took can count as hung (watch.HungAfter).
		return bad("settings.canary.seconds", fmt.Sprintf("%d to 3600 with a canary (the watch counts a request unanswered after %ds as failed)", watch.MinCanarySeconds, int(watch.HungAfter/time.Second)), s.Canary.Seconds)
	case s.Watch.ErrorRateFactor < 1 || s.Watch.ErrorRateFactor > 1000:
		return bad("settings.watch.errorRateFactor", "1 to 1000", s.Watch.ErrorRateFactor)
	case s.Watch.MinRequests < 1 || s.Watch.MinRequests > 1000000:
		return bad("settings.watch.minRequests", "1 to 1000000", s.Watch.MinRequests)
	case s.Watch.MaxErrorRatio < 0 || s.Watch.MaxErrorRatio > 1:
		return bad("settings.watch.maxErrorRatio", "0 to 1", s.Watch.MaxErrorRatio)
	case !revRe.MatchString(s.Revision):
		return bad("settings.revision", "1 to 64 lower-case hex digits", s.Revision)
	}
	for i, c := range s.Checks {
		if !pathRe.MatchString(c.Path) || c.Status < 100 || c.Status > 599 || c.MaxMs < 0 {
			return bad(fmt.Sprintf("settings.checks[%d]", i), "{ path: an absolute URL path, status: 100 to 599, maxMs: 0 or more }", c)
		}
	}
	return nil
}

// prepareBase refuses a baseDir a less trusted user could have made or could write (root would
// follow what they plant there), and makes the root-only activations directory.
func prepareBase(l layout.Layout) error {
	if err := fsafe.CheckTrusted(l.BaseDir); err != nil {
		return fmt.Errorf("refused: %w. Nothing was changed", err)
	}
	if _, err := fsafe.EnsureDir(l.ActivationsDir, 0o700); err != nil {
		return fmt.Errorf("refused: %w. Nothing was changed", err)
	}
	return os.Chmod(l.ActivationsDir, 0o700)
}

func activationUnit(service, id string) string { return service + "-activate-" + id }

// cmdStartActivation takes one ActivateRequest on stdin, keeps it in the root-only activations
// directory and starts `activate` as a transient unit, so the activation runs to its end and
// records its outcome even when the deploy's SSH connection dies.
func (e *env) cmdStartActivation(args []string) error {
	if len(args) != 0 {
		return usageError{}
	}
	_, l, err := e.config()
	if err != nil {
		return err
	}
	var req protocol.ActivateRequest
	if err := protocol.Decode(e.stdin, &req, func(r *protocol.ActivateRequest) int { return r.V }); err != nil {
		return usageError{"refused: " + err.Error() + ". Nothing was changed"}
	}
	if err := checkRequest(req); err != nil {
		return err
	}
	if err := prepareBase(l); err != nil {
		return err
	}
	b, _ := json.Marshal(req)
	if err := fsafe.WriteFileAtomic(l.ActivationsDir, req.ID+".request.json", b, 0o600); err != nil {
		return err
	}
	unit := activationUnit(l.Service, req.ID)
	if _, err := runTool("systemd-run", "--quiet", "--collect", "--unit="+unit,
		"-p", fmt.Sprintf("RuntimeMaxSec=%d", req.BudgetSeconds), "-p", "KillMode=mixed",
		l.HostProgram, "activate", "--id", req.ID); err != nil {
		return fmt.Errorf("starting the activation unit %s: %w", unit, err)
	}
	return json.NewEncoder(e.stdout).Encode(map[string]any{"v": protocol.V, "started": true, "unit": unit})
}

// cmdActivate runs the activation a start-activation kept (inside its transient unit).
func (e *env) cmdActivate(args []string) error {
	if len(args) != 2 || args[0] != "--id" || !idRe.MatchString(args[1]) {
		return usageError{}
	}
	id := args[1]
	c, l, err := e.config()
	if err != nil {
		return err
	}
	if err := prepareBase(l); err != nil {
		return err
	}
	b, err := fsafe.ReadFile(l.ActivationsDir, id+".request.json", protocol.MaxRequestBytes)
	if err != nil {
		return err
	}
	var req protocol.ActivateRequest
	if err := strictJSON(b, &req); err != nil {
		return err
	}
	if err := checkRequest(req); err != nil {
		return err
	}
	livePath := req.Settings.HealthPath
	if s, ok, _ := lastSettings(l); ok {
		livePath = s.HealthPath
	}
	code := runActivation(l, c.Runtime, activate.Request{
		ID: req.ID, Version: req.Version, Sha256: req.Sha256, Who: req.Who, RunHook: req.RunHook,
		Settings: req.Settings, LiveHealthPath: livePath, Service: l.Service, Docker: c.Runtime == "docker",
	}, id+".result.json", nil, nil)
	// The outcome is in the result: the request (a secret hook among it) is not kept on disk.
	_ = os.Remove(l.ActivationsDir + "/" + id + ".request.json")
	if code != 0 {
		return exitError{code}
	}
	return nil
}

// runActivation takes the host lock and runs the activation to an outcome, whatever happens:
// SIGTERM (RuntimeMaxSec, or a kill) and a panic end in Interrupted, which takes a canary share
// back and records the stop.
func runActivation(l layout.Layout, runtime string, req activate.Request, resultFile string, onStep func(string), held *lock.Lock) (code int) {
	log := record.Log{Revisions: l.RevisionsLog, Deploy: l.DeployLog, ID: req.ID}
	d := deps(l, runtime, req.Settings, log, resultFile, onStep)
	a := activate.New(d, req)
	d.Host.Report(a.Result())
	lk := held
	if lk == nil {
		var err error
		if lk, err = lock.Take(l.LockFile, req.Who, lockWait()); err != nil {
			r := a.Result()
			r.Outcome, r.Holder, r.Exit, r.Done = "locked", lock.Holder(l.LockFile), protocol.ExitLocked, true
			d.Host.Report(r)
			return protocol.ExitLocked
		}
		host.CleanLeftovers(l)
	}
	defer lk.Release()
	// Runs before the release: a phase is never seen without the activation holding the lock.
	defer clearPhase(l)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	defer func() {
		if p := recover(); p != nil {
			d.Host.Step(fmt.Sprintf("the agent failed: %v", p))
			a.Interrupted(2)
			code = protocol.ExitFailed
		}
	}()
	err := a.Run(ctx)
	if err == nil {
		// The settings of the last successful deploy: the emergency rollback's own (already these) never replace them.
		kept := req.Settings
		if kept.HookSecret {
			// The emergency rollback and status read the health settings from it, never the hook.
			kept.BeforeActivate = ""
		}
		if b, merr := json.Marshal(kept); merr == nil && held == nil {
			_ = fsafe.WriteFileAtomic(l.EnvDir, "deploy.json", b, 0o600)
		}
		return 0
	}
	if f, ok := err.(*activate.Failed); ok {
		return f.Exit
	}
	a.Interrupted(143)
	return 143
}

// cmdActivationResult is the provider's poll: the result so far and the activation unit's state.
func (e *env) cmdActivationResult(args []string) error {
	if len(args) != 2 || args[0] != "--id" || !idRe.MatchString(args[1]) {
		return usageError{}
	}
	_, l, err := e.config()
	if err != nil {
		return err
	}
	r := protocol.Result{V: protocol.V}
	if b, err := fsafe.ReadFile(l.ActivationsDir, args[1]+".result.json", 1<<20); err == nil {
		_ = json.Unmarshal(b, &r)
	}
	r.Unit = host.UnitState(activationUnit(l.Service, args[1]) + ".service")
	return json.NewEncoder(e.stdout).Encode(r)
}

func runTool(name string, args ...string) (string, error) {
	return host.Run(60*time.Second, name, args...)
}
