package activate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"complinist/agent/internal/failover"
	"complinist/agent/internal/haproxy"
	"complinist/agent/internal/layout"
	"complinist/agent/internal/protocol"
	"complinist/agent/internal/record"
)

// Request is one activation: what to make live and by whom.
type Request struct {
	ID      string
	Version string
	Sha256  string
	Who     string
	RunHook bool
	// Settings of this activation; LiveHealthPath is the health path the live instance was
	// activated with (the last successful activation's), which a deploy changing health.path does not share.
	Settings       protocol.Settings
	LiveHealthPath string
	// Service names the units in what the activation says.
	Service string
	// Docker: container mode (the result names the live container).
	Docker bool
	// RollbackAll makes this activation the switch back of a fleet whose update failed on another
	// host (rollout.onFailure: rollback-all): Version is the warm standby to take back, and only a
	// warm one is taken (no process start); the record names From as rolled back, and why.
	RollbackAll *RollbackAll
	// FailedOver is the failover watch's switch: recorded as outcome=failed-over with these
	// fields (reason and figures) instead of outcome=activated.
	FailedOver string
}

// RollbackAll is why a host goes back to its warm standby: the update that made From live here
// failed on FailedHost.
type RollbackAll struct {
	From       string
	FromSha256 string
	FailedHost string
}

// Activation runs one Request against Deps.
type Activation struct {
	Deps
	Req Request
	S   protocol.Settings

	ports       [2]int
	res         protocol.Result
	liveVersion string
	// startAt and phaseAt: when Run began and when the last phase ended (the result's phasesMs).
	startAt, phaseAt time.Time
	liveHealthy      bool
	livePath         string
	failedSeen       string
	canaryRan        bool
	watchPort        int
	watchLive        int
	liveOKAt         time.Time
	shareAt          time.Time
	trippedAt        time.Time
	prevReq          int64
	prevErr          int64
	prevRtime        int64
	summary          string
}

// Failed ends an activation with an exit code; the outcome is already recorded and reported.
type Failed struct{ Exit int }

func (f *Failed) Error() string { return fmt.Sprintf("activation failed (exit %d)", f.Exit) }

// ErrInterrupted is returned when the activation's context ended (SIGTERM: RuntimeMaxSec, or a kill).
var ErrInterrupted = errors.New("interrupted")

// New prepares an activation.
func New(d Deps, req Request) *Activation {
	a := &Activation{Deps: d, Req: req, S: req.Settings}
	a.ports = layout.InstancePorts(req.Settings.Port)
	a.res = protocol.Result{V: protocol.V}
	a.livePath = req.LiveHealthPath
	return a
}

// Result is what the activation reported so far.
func (a *Activation) Result() protocol.Result { return a.res }

func (a *Activation) step(format string, args ...any) { a.Host.Step(fmt.Sprintf(format, args...)) }

func (a *Activation) report() { a.Host.Report(a.res) }

func (a *Activation) url(port int, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
}

func (a *Activation) other(port int) int {
	if port == a.ports[0] {
		return a.ports[1]
	}
	return a.ports[0]
}

func (a *Activation) interval() time.Duration {
	return time.Duration(a.S.IntervalMs) * time.Millisecond
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// servingNow is what answers on the service port now, checked: the result and revisions.log say
// what serves, not what was meant to.
func (a *Activation) servingNow(ctx context.Context) string {
	v := a.HTTP.Serves(ctx, a.url(a.S.Port, a.S.HealthPath))
	if v == "" && a.Req.LiveHealthPath != a.S.HealthPath {
		v = a.HTTP.Serves(ctx, a.url(a.S.Port, a.Req.LiveHealthPath))
	}
	return orNone(v)
}

// fail records and reports the outcome; a.failedSeen says what was seen.
func (a *Activation) fail(ctx context.Context, code int, outcome, reason string) error {
	serving := a.servingNow(context.WithoutCancel(ctx))
	a.Host.Record(a.Req.Version, a.Req.Sha256, a.Req.Who, fmt.Sprintf("outcome=%s reason=%s live=%s serving=%s seen=%s", outcome, reason, orNone(a.liveVersion), serving, a.failedSeen))
	a.step("result %s: %s; serving %s", outcome, reason, serving)
	a.res.Outcome, a.res.Reason, a.res.Serving, a.res.Seen = outcome, reason, serving, record.OneLine(a.failedSeen, 0)
	a.res.Exit, a.res.Done = code, true
	a.res.FailedOver = failover.Latch(a.Host.Revisions())
	a.report()
	return &Failed{Exit: code}
}

// liveAnswers: the routed instance answers its release's health, tried with the new settings
// once, then with the settings it was activated with up to three times: one lost probe decides
// nothing. Sets livePath to the path that answered.
func (a *Activation) liveAnswers(ctx context.Context, port int) (bool, string) {
	a.livePath = a.Req.LiveHealthPath
	ok, seen := a.HTTP.Probe(ctx, a.url(port, a.S.HealthPath), a.liveVersion)
	if ok {
		a.livePath = a.S.HealthPath
		return true, seen
	}
	for try := 1; try <= 3; try++ {
		if ok, seen = a.HTTP.Probe(ctx, a.url(port, a.Req.LiveHealthPath), a.liveVersion); ok {
			return true, seen
		}
		if try < 3 {
			a.Clock.Sleep(ctx, a.interval())
		}
	}
	return false, seen
}

// soleListener: only PORT's own unit listens on PORT; else seen names the others.
func (a *Activation) soleListener(port int) (bool, string) {
	holders := a.Inst.Foreign(port)
	if len(holders) == 0 {
		return true, ""
	}
	return false, fmt.Sprintf("port %d is also held by %s - not only by %s@%d.service: its answers are not the release's", port, strings.Join(holders, "; "), a.serviceName(), port)
}

func (a *Activation) serviceName() string { return a.Req.Service }

// proxyOwnsPort: only the proxy's unit listens on the service port, on either family; else seen
// names the others: whoever holds it beside the proxy answers users, and the gate's proof is moot.
func (a *Activation) proxyOwnsPort() (bool, string) {
	holders := a.Proxy.Foreign()
	if len(holders) == 0 {
		return true, ""
	}
	return false, fmt.Sprintf("the service port %d is also held by %s - not only by %s-proxy.service: users may be answered by it", a.S.Port, strings.Join(holders, "; "), a.serviceName())
}

// gate polls one instance, before it takes any user request, until it is healthy on want and
// passes every check, or the time is up; then proof that the answers came from its own unit.
func (a *Activation) gate(ctx context.Context, port int, want string) (bool, string) {
	deadline := a.Clock.Now().Add(time.Duration(a.S.TimeoutSeconds) * time.Second)
	seen := "no answer"
	for {
		if ctx.Err() != nil {
			return false, seen
		}
		ok, s := a.HTTP.Probe(ctx, a.url(port, a.S.HealthPath), want)
		seen = s
		if ok {
			if ok, s = a.HTTP.Smoke(ctx, port, a.S.Checks); ok {
				return a.soleListener(port)
			}
			seen = s
		}
		if !a.Clock.Now().Before(deadline) {
			return false, seen
		}
		a.Clock.Sleep(ctx, a.interval())
	}
}

// route sends every new request to port and waits until want answers path (its own health path:
// the old release may not serve the new one) through the proxy, three answers in a row: the old
// worker no longer accepts.
func (a *Activation) route(ctx context.Context, port int, want, path string) (bool, string) {
	if err := a.Proxy.Install(haproxy.Route{Live: port}); err != nil {
		return false, err.Error()
	}
	return a.answers(ctx, want, path)
}

// answers waits until want answers path through the proxy three times in a row (15 s at most).
func (a *Activation) answers(ctx context.Context, want, path string) (bool, string) {
	deadline := a.Clock.Now().Add(15 * time.Second)
	okRun, seen := 0, ""
	for a.Clock.Now().Before(deadline) {
		ok, s := a.HTTP.Probe(ctx, a.url(a.S.Port, path), want)
		seen = s
		if ok {
			if okRun++; okRun >= 3 {
				return true, ""
			}
		} else {
			okRun = 0
			a.Clock.Sleep(ctx, 100*time.Millisecond)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return false, "the proxy did not answer with " + want + " within 15 s: " + seen
}

// drain waits until the old instance on port holds no in-flight request, bounded by
// drainSeconds: after a reload, first until the old proxy worker (which may hold accepted
// requests not yet forwarded) has exited, then until the proxy's sessions on the server
// (scur, runtime API) are 0 — or, without the API's answer, the established connections to
// the port. Only then may the instance on port stop.
func (a *Activation) drain(ctx context.Context, port int, reloaded bool) {
	deadline := a.Clock.Now().Add(time.Duration(a.S.DrainSeconds) * time.Second)
	for reloaded && a.Proxy.Workers() > 1 && a.Clock.Now().Before(deadline) && ctx.Err() == nil {
		a.Clock.Sleep(ctx, 50*time.Millisecond)
	}
	for a.inFlight(port, reloaded) > 0 && a.Clock.Now().Before(deadline) && ctx.Err() == nil {
		a.Clock.Sleep(ctx, 20*time.Millisecond)
	}
}

// inFlight is what port still serves: the proxy's sessions on it and, after a reload (the old
// worker's sessions are not in the new one's counters) or without the API, its connections.
func (a *Activation) inFlight(port int, reloaded bool) int64 {
	counts, err := a.Proxy.Counts()
	n := counts[port].Sessions
	if err != nil || reloaded {
		n = max(n, int64(a.Inst.OpenConnections(port)))
	}
	return n
}

// phase records how long the phase since the last one took (the result's phasesMs).
func (a *Activation) phase(name string) {
	now := a.Clock.Now()
	a.res.PhasesMs = append(a.res.PhasesMs, protocol.PhaseMs{Phase: name, Ms: now.Sub(a.phaseAt).Milliseconds()})
	a.phaseAt = now
}

// switchWarm moves every new request from live to the warm standby on idle: through the runtime
// API at once, checked through the proxy, then in the config without a reload (no new worker,
// so the drain waits only for live's in-flight requests). False when the API refused: the
// caller routes with a reload instead.
func (a *Activation) switchWarm(ctx context.Context, live, idle int) (ok, reloaded bool, seen string) {
	if err := a.Proxy.Flip(idle, live); err != nil {
		a.step("switch through the runtime API failed (%v): reloading the proxy instead", err)
		ok, seen = a.route(ctx, idle, a.Req.Version, a.S.HealthPath)
		return ok, true, seen
	}
	if ok, seen = a.answers(ctx, a.Req.Version, a.S.HealthPath); !ok {
		return false, false, seen
	}
	a.phase("switch")
	if err := a.Proxy.Persist(haproxy.Route{Live: idle}); err != nil {
		a.step("writing the proxy config failed (%v): reloading the proxy instead", err)
		ok, seen = a.route(ctx, idle, a.Req.Version, a.S.HealthPath)
		return ok, true, seen
	}
	return true, false, ""
}

func (a *Activation) switchCurrent(version string) {
	if err := a.Host.SwitchCurrent(version); err != nil {
		a.step("moving current to %s failed: %v", version, err)
	}
}

// settleStandby keeps the pinned rollback target running on the idle port, or stops the idle port.
func (a *Activation) settleStandby(ctx context.Context, idle int) {
	rb := a.S.RollbackVersion
	if a.S.Standby && rb != "" && a.Host.ReleaseComplete(rb) {
		if !(a.Inst.Active(idle) && a.Inst.Version(idle) == rb && a.Inst.Rev(idle) == a.S.Revision) {
			a.step("standby start %s on %d", rb, idle)
			if err := a.Inst.Start(idle, rb, a.S.Revision); err != nil {
				a.step("standby start failed: %v", err)
			}
		}
		ok, seen := a.gate(ctx, idle, rb)
		if ok {
			a.Inst.SetWanted(idle, true)
			a.res.Standby = rb
			a.step("standby ready %s on %d", rb, idle)
			return
		}
		a.step("standby %s not healthy, stopped: %s", rb, seen)
		a.res.StandbyProblem = record.OneLine(seen, 0)
	}
	a.Inst.Stop(idle)
	a.res.Standby = ""
}

// refuseRolledBack: a deploy of a version the watch rolled back from on this host is refused,
// naming the verdict, until the stack acknowledges it: the same release is never silently tried
// on users again. Only fields root wrote decide (record.RolledBackVerdict).
func (a *Activation) refuseRolledBack() error {
	if a.S.Acknowledged {
		return nil
	}
	verdict, ok := record.RolledBackVerdict(a.Host.Revisions(), a.Req.Version)
	if !ok {
		return nil
	}
	a.Host.Record(a.Req.Version, a.Req.Sha256, a.Req.Who, "outcome=refused reason=watch-rolled-back")
	a.step("refused: %s was rolled back by the error-rate watch (%s)", a.Req.Version, verdict)
	a.res.Outcome, a.res.Reason, a.res.Seen, a.res.Exit, a.res.Done = "refused", "watch-rolled-back", record.OneLine(verdict, 0), protocol.ExitRefused, true
	a.report()
	return &Failed{Exit: protocol.ExitRefused}
}

func (a *Activation) runHook(ctx context.Context) error {
	shown := a.S.BeforeActivate
	if a.S.HookSecret {
		shown = "[secret]"
	}
	a.step("hook start: %s", shown)
	out, err := a.Host.RunHook(ctx, a.Req.Version)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if err != nil {
		last := lines
		if len(last) > 5 {
			last = last[len(last)-5:]
		}
		tail := strings.Join(last, " ")
		tail = strings.ReplaceAll(tail, "\t", " ")
		if len(tail) > 400 {
			tail = tail[:400]
		}
		a.failedSeen = "hooks.beforeActivate failed: " + tail
		a.res.Hook = record.OneLine(tail, 0)
		return a.fail(ctx, protocol.ExitHook, "failed", "beforeActivate-hook")
	}
	last := lines[len(lines)-1]
	if len(last) > 200 {
		last = last[:200]
	}
	a.step("hook done: %s", last)
	return nil
}

// abandon routes back to what was live (or nothing), drains and stops the new instance on idle,
// and fails with reason: the one way out once the new instance may have taken a request.
func (a *Activation) abandon(ctx context.Context, live, idle int, reason string, unroute bool) error {
	if live != 0 {
		a.route(ctx, live, a.liveVersion, a.livePath)
	} else if unroute {
		_ = a.Proxy.Install(haproxy.Route{})
	}
	a.drain(ctx, idle, true)
	a.Inst.Stop(idle)
	return a.fail(ctx, protocol.ExitHealth, "failed", reason)
}

// Run is the activation. Every outcome is recorded and reported before it returns; a
// *Failed carries the exit code, ErrInterrupted means ctx ended before an outcome.
func (a *Activation) Run(ctx context.Context) error {
	if err := a.refuseRolledBack(); err != nil {
		return err
	}
	a.startAt = a.Clock.Now()
	a.phaseAt = a.startAt
	a.step("start version=%s by=%s", a.Req.Version, a.Req.Who)
	live := a.Proxy.Route().Live
	if live != 0 {
		a.liveVersion = a.Inst.Version(live)
		ok, seen := false, "failed its health for failover.afterSeconds (the failover watch)"
		if a.Req.FailedOver == "" {
			// The failover watch already saw it fail, for seconds: no more probes delay the switch.
			ok, seen = a.liveAnswers(ctx, live)
		}
		a.liveHealthy = ok
		if !ok {
			a.step("live %s on %d does not answer (%s): left as it is; the new release starts on the other port", a.liveVersion, live, seen)
		}
	}
	a.res.Previous, a.res.LiveHealthy = a.liveVersion, a.liveHealthy
	a.report()
	if a.Proxy.Active() {
		if ok, seen := a.proxyOwnsPort(); !ok {
			a.failedSeen = seen
			a.step("refused: %s", seen)
			return a.fail(ctx, protocol.ExitHealth, "failed", "service-port")
		}
	}
	if !a.Host.ReleaseComplete(a.Req.Version) {
		a.failedSeen = fmt.Sprintf("release %s is not complete on the host", a.Req.Version)
		return a.fail(ctx, protocol.ExitIncomplete, "failed", "release-incomplete")
	}

	if a.liveHealthy && a.liveVersion == a.Req.Version && a.Inst.Rev(live) == a.S.Revision {
		return a.converge(ctx, live)
	}

	var idle int
	if live != 0 {
		idle = a.other(live)
	} else {
		idle = a.ports[0]
		// Nothing routed and no proxy config: a first deploy, or a host still running the
		// restart-in-place unit, which must free the service port for the proxy.
		if !a.Proxy.ConfigExists() && !a.Proxy.Active() {
			a.Host.FreeServicePort()
		}
	}
	// The idle port must be free for the new instance (issue 29 finding 10): a squatter there would
	// block this deploy and every later one, the fix included. Before the hook: a refusal changes nothing.
	done, refused := a.Inst.Reclaim(idle, a.other(idle))
	for _, d := range done {
		a.step("idle port %d reclaimed: %s", idle, d)
	}
	if refused != "" {
		a.failedSeen = fmt.Sprintf("the idle instance port %d is held by %s: stop it, then deploy again", idle, refused)
		a.step("refused: %s", a.failedSeen)
		return a.fail(ctx, protocol.ExitHealth, "failed", "idle-port")
	}
	if a.Req.RunHook {
		if err := a.runHook(ctx); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ErrInterrupted
	}

	warm := a.Inst.Active(idle) && a.Inst.Version(idle) == a.Req.Version && a.Inst.Rev(idle) == a.S.Revision
	if a.Req.RollbackAll != nil && !warm {
		a.failedSeen = fmt.Sprintf("no warm standby of %s on %d: a fleet's switch back starts no process", a.Req.Version, idle)
		return a.fail(ctx, protocol.ExitRefused, "failed", "rollback-all")
	}
	var startErr error
	if warm {
		a.step("warm standby %s on %d: re-checking its health", a.Req.Version, idle)
	} else {
		a.step("instance start %s on %d", a.Req.Version, idle)
		startErr = a.Inst.Start(idle, a.Req.Version, a.S.Revision)
	}
	a.Host.PausePoint("gate")
	ok, seen := a.gate(ctx, idle, a.Req.Version)
	if ctx.Err() != nil {
		return ErrInterrupted
	}
	if !ok {
		if startErr != nil {
			seen = record.OneLine(startErr.Error(), 300) + "; " + seen
		}
		a.failedSeen = seen
		a.step("gate failed on %d: %s", idle, seen)
		if !warm {
			a.Inst.Stop(idle)
		}
		return a.fail(ctx, protocol.ExitHealth, "failed", "health-gate")
	}
	a.step("gate passed on %d", idle)
	if warm {
		a.phase("recheck")
	} else {
		a.phase("gate")
	}
	a.summary, a.prevReq, a.prevErr, a.prevRtime = "", 0, 0, 0
	if a.S.Canary.Percent > 0 {
		switch {
		case warm:
			a.summary = fmt.Sprintf("no canary: %s was the warm standby (a rollback to what ran before)", a.Req.Version)
		case live == 0 || !a.liveHealthy:
			a.summary = "no canary: no healthy live release to share requests with"
		default:
			if err := a.canary(ctx, live, idle); err != nil {
				return err
			}
		}
		// As the bash ([ -z "$WATCH_SUMMARY" ] || step): the canary's summary too.
		if a.summary != "" {
			a.step("%s", a.summary)
		}
	}
	// Without a canary, the soak compares with what the previous release counted before the switch.
	if !a.canaryRan && live != 0 {
		if counts, err := a.Proxy.Counts(); err == nil {
			a.prevReq, a.prevErr, a.prevRtime = counts[live].Requests, counts[live].Errors, counts[live].RtimeMs
		}
	}
	a.Host.PausePoint("switch")
	// Before the proxy takes the port (its first start) or reloads: nobody else may hold it. With
	// the proxy stopped every listener there is someone else's.
	if ok, seen := a.proxyOwnsPort(); !ok {
		a.failedSeen = seen
		a.step("switch refused: %s", seen)
		if !warm {
			a.Inst.Stop(idle)
		}
		return a.fail(ctx, protocol.ExitHealth, "failed", "service-port")
	}
	a.shareAt = a.Clock.Now()
	// A rollback to the warm standby (no canary shared requests with it) switches through the
	// runtime API; anything else loads a new config.
	reloaded := true
	var switched bool
	if warm && live != 0 && !a.canaryRan {
		switched, reloaded, seen = a.switchWarm(ctx, live, idle)
	} else if switched, seen = a.route(ctx, idle, a.Req.Version, a.S.HealthPath); switched {
		a.phase("switch")
	}
	if !switched {
		a.failedSeen = seen
		a.step("switch failed: %s", seen)
		return a.abandon(ctx, live, idle, "switch", false)
	}
	// A listener can join the port after the gate's look (SO_REUSEPORT, or in the moment between):
	// looked at again now that it takes requests, before the old instance lets go, and through the soak.
	ok, seen = a.soleListener(idle)
	if ok {
		ok, seen = a.proxyOwnsPort()
	}
	if !ok {
		a.failedSeen = "after the switch: " + seen
		a.step("switch undone: %s", seen)
		return a.abandon(ctx, live, idle, "switch", true)
	}
	a.switchCurrent(a.Req.Version)
	a.Inst.SetWanted(idle, true)
	a.Host.StartUmbrella()
	a.step("switched to %s on %d", a.Req.Version, idle)
	a.phase("config")
	if live != 0 {
		a.drain(ctx, live, reloaded)
		a.phase("drain")
		a.step("drained %s on %d", orUnknown(a.liveVersion), live)
	}

	if a.S.SoakSeconds > 0 {
		a.step("soak %ds", a.S.SoakSeconds)
		figures, err := a.watched(ctx, "soak", a.S.SoakSeconds, live, idle)
		if err != nil {
			return err
		}
		if a.summary != "" {
			a.summary += "; "
		}
		a.summary += figures
		a.step("soak passed")
		a.phase("soak")
	}
	a.Host.WatchNow(nil)

	a.settleStandby(ctx, a.other(idle))
	a.phase("standby")
	a.res.PhasesMs = append(a.res.PhasesMs, protocol.PhaseMs{Phase: "total", Ms: a.Clock.Now().Sub(a.startAt).Milliseconds()})
	mode := "started"
	if warm {
		mode = "warm-switch"
	}
	watch := a.summary
	if watch == "" {
		watch = "off (no canary, no soak)"
	}
	a.res.Outcome, a.res.Watch, a.res.Live = "activated", record.OneLine(watch, 0), idle
	if ra := a.Req.RollbackAll; ra != nil {
		// The line names the release left, as the watch's switch back does: never counted as an activation of it.
		a.Host.Record(ra.From, ra.FromSha256, a.Req.Who, fmt.Sprintf("outcome=rolled-back reason=rollback-all failed-host=%s to=%s mode=%s watch=%s", ra.FailedHost, a.Req.Version, mode, watch))
		a.res.Outcome, a.res.Reason, a.res.Serving = "rolled-back", "rollback-all", a.Req.Version
	} else {
		outcome := fmt.Sprintf("outcome=activated previous=%s mode=%s watch=%s", orNone(a.liveVersion), mode, watch)
		if a.Req.FailedOver != "" {
			outcome = fmt.Sprintf("%s %s previous=%s mode=%s", failover.OutcomeFailedOver, a.Req.FailedOver, orNone(a.liveVersion), mode)
		}
		a.Host.Record(a.Req.Version, a.Req.Sha256, a.Req.Who, outcome)
	}
	a.step("result %s", a.res.Outcome)
	a.res.Commit = a.Host.Commit(a.Req.Version)
	if a.Req.Docker {
		a.res.Container = a.Inst.Container(idle)
	}
	a.res.Done = true
	a.report()
	return nil
}

// orUnknown is "?" for an empty value: what the bash wrote for a field it did not have.
func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// converge: already live with this unit, env and gate: the link, the proxy and the standby follow.
func (a *Activation) converge(ctx context.Context, live int) error {
	a.step("already live on %d", live)
	a.route(ctx, live, a.Req.Version, a.livePath)
	a.switchCurrent(a.Req.Version)
	a.Inst.SetWanted(live, true)
	// The umbrella may have failed its check-current (a hand-moved link): now it passes.
	a.Host.StartUmbrella()
	a.settleStandby(ctx, a.other(live))
	a.Host.Record(a.Req.Version, a.Req.Sha256, a.Req.Who, fmt.Sprintf("outcome=converged live=%d", live))
	a.res.Outcome, a.res.Live = "converged", live
	if a.Req.Docker {
		a.res.Container = a.Inst.Container(live)
	}
	a.res.Commit = a.Host.Commit(a.Req.Version)
	a.res.Done = true
	a.report()
	return nil
}

// Interrupted finishes an activation stopped early (ctx ended, or a panic): a canary share left
// for a release nobody watches any more is taken back — every request to the live release, the
// canary's instance stopped — and the stop is recorded.
func (a *Activation) Interrupted(exit int) {
	if a.res.Done {
		return
	}
	ctx := context.Background()
	if r := a.Proxy.Route(); r.Canary != 0 {
		v := a.Inst.Version(r.Live)
		a.step("interrupted during the canary: every request back to %s on %d", v, r.Live)
		_ = a.Proxy.Flip(r.Live, r.Canary)
		path := a.livePath
		if path == "" {
			path = a.S.HealthPath
		}
		a.route(ctx, r.Live, v, path)
		a.Inst.Stop(r.Canary)
	}
	a.Host.WatchNow(nil)
	a.Host.Record(orUnknown(a.Req.Version), orUnknown(a.Req.Sha256), orUnknown(a.Req.Who), fmt.Sprintf("outcome=failed reason=interrupted exit=%d", exit))
	a.step("result failed: interrupted (exit %d)", exit)
	a.res.Outcome, a.res.Reason, a.res.Exit = "failed", "interrupted", exit
	a.res.Seen = fmt.Sprintf("the host-side activation stopped early (exit %d); see journalctl and the deploy log", exit)
	a.res.Done = true
	a.report()
}
