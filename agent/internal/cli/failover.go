package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"complinist/agent/internal/activate"
	"complinist/agent/internal/failover"
	"complinist/agent/internal/health"
	"complinist/agent/internal/host"
	"complinist/agent/internal/layout"
	"complinist/agent/internal/lock"
	"complinist/agent/internal/protocol"
	"complinist/agent/internal/record"
)

// failoverTick is how often the watch probes the live instance.
const failoverTick = time.Second

// failoverProbeTimeout bounds one probe: a hung instance costs the tick this long, no more.
const failoverProbeTimeout = 2 * time.Second

// cmdFailoverWatch runs until SIGTERM (the ExecStart of <service>-failover.service): every second
// it probes the instance the proxy routes to — its health's status and its own release's version,
// as the gate does — and, when it has failed for the last deploy's failoverAfterSeconds, switches
// to the warm standby the way `rollback` does (locked, the standby re-gated, `current` follows),
// recorded as outcome=failed-over. Decisions: failover.Decide.
func (e *env) cmdFailoverWatch(args []string) error {
	if len(args) != 0 {
		return usageError{}
	}
	c, l, err := e.config()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	w := &failoverWatch{e: e, runtime: c.Runtime, l: l, prober: health.NewProber(failoverProbeTimeout)}
	fmt.Fprintf(e.stdout, "failover watch of %s: probing the live instance every %s\n", l.Service, failoverTick)
	for ctx.Err() == nil {
		w.tick(ctx)
		realClock{}.Sleep(ctx, failoverTick)
	}
	return nil
}

type failoverWatch struct {
	e       *env
	runtime string
	l       layout.Layout
	prober  health.Prober
	st      failover.State
	// watched is the live instance the state is about (port and version): another one starts afresh.
	watched string
}

func (w *failoverWatch) say(format string, args ...any) {
	fmt.Fprintf(w.e.stdout, format+"\n", args...)
}

// target is what one tick looked at.
type target struct {
	s                      protocol.Settings
	live, standby          int
	liveVersion, sbVersion string
	liveSeen, sbSeen       string
}

// observe probes the live instance (and, when it fails, the standby).
func (w *failoverWatch) observe(ctx context.Context, now time.Time) (failover.Observation, target) {
	o := failover.Observation{Now: now}
	var t target
	s, ok, err := lastSettings(w.l)
	if err != nil || !ok || s.FailoverAfterSeconds <= 0 || !s.Standby {
		return o, t
	}
	t.s = s
	if held, err := lock.Held(w.l.LockFile); err != nil || held {
		return o, t
	}
	d := deps(w.l, w.runtime, s, record.Log{}, "", nil)
	r := d.Proxy.Route()
	if r.Live == 0 || r.Canary != 0 || !d.Proxy.Active() {
		return o, t
	}
	t.live, t.liveVersion = r.Live, d.Inst.Version(r.Live)
	if t.liveVersion == "" {
		return o, t
	}
	o.Watched = true
	o.LiveOK, t.liveSeen = w.prober.Probe(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", r.Live, s.HealthPath), t.liveVersion)
	if o.LiveOK {
		return o, t
	}
	t.standby = otherPort(s.Port, r.Live)
	if d.Inst.Active(t.standby) {
		t.sbVersion = d.Inst.Version(t.standby)
	}
	o.Standby = t.sbVersion != "" && releaseComplete(w.l, t.sbVersion)
	if o.Standby {
		o.StandbyOK, t.sbSeen = w.prober.Probe(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", t.standby, s.HealthPath), t.sbVersion)
	} else {
		t.sbSeen = "no standby instance runs"
	}
	return o, t
}

func (w *failoverWatch) tick(ctx context.Context) {
	now := time.Now()
	o, t := w.observe(ctx, now)
	if key := fmt.Sprintf("%d %s", t.live, t.liveVersion); key != w.watched {
		w.watched, w.st = key, failover.State{}
	}
	lines, _ := record.Tail(w.l.RevisionsLog, 2000, 0)
	h, _ := failover.ReadHistory(lines)
	d := failover.Decide(time.Duration(t.s.FailoverAfterSeconds)*time.Second, h, w.st, o)
	if d.Action == failover.Wait && w.st.FailingSince.IsZero() {
		w.say("live %s on %d fails its health (%s): failing over in %d s unless it recovers", t.liveVersion, t.live, t.liveSeen, t.s.FailoverAfterSeconds)
	}
	switch d.Action {
	case failover.Nothing, failover.Wait:
		w.st = d.Next
	case failover.Refuse:
		if w.refuse(t, d) {
			w.st = d.Next
		}
	case failover.Switch:
		if w.switchOver(ctx, t, d) {
			w.st = d.Next
		}
	}
}

// reasonOf names how the live instance failed, from what its probe saw.
func reasonOf(seen string) string {
	switch {
	case strings.Contains(seen, "refused") || strings.Contains(seen, "reset"):
		return "live-down"
	case strings.Contains(seen, "timeout") || strings.Contains(seen, "deadline"):
		return "live-hung"
	}
	return "live-unhealthy"
}

func (w *failoverWatch) who() string {
	hn, _ := os.Hostname()
	return whoRe.ReplaceAllString("failover@"+hn, "_")
}

// figures are the fields every failover line carries after its reason.
func figures(t target, d failover.Decision) string {
	return fmt.Sprintf("live=%s@%d standby=%s@%d failing=%.1fs after=%ds seen=%s", t.liveVersion, t.live, orNoneS(t.sbVersion), t.standby, d.Failing.Seconds(), t.s.FailoverAfterSeconds, record.OneLine(t.liveSeen, 200))
}

// refuse records, under the lock, why the host stays on its failing live instance; false when
// the lock was not free (tried again next tick).
func (w *failoverWatch) refuse(t target, d failover.Decision) bool {
	lk, err := lock.Take(w.l.LockFile, w.who(), 2*time.Second)
	if err != nil {
		return false
	}
	defer lk.Release()
	log := record.Log{Revisions: w.l.RevisionsLog, Deploy: w.l.DeployLog}
	outcome := fmt.Sprintf("%s reason=%s %s standbySeen=%s", failover.OutcomeRefused, d.Reason, figures(t, d), record.OneLine(t.sbSeen, 200))
	if err := log.Record(t.liveVersion, host.ManifestField(w.l, t.liveVersion, "sha256"), w.who(), outcome); err != nil {
		w.say("recording the refusal failed: %v", err)
	}
	log.Step("failover refused: " + outcome)
	w.say("failover refused (%s): the live %s on %d stays routed", d.Reason, t.liveVersion, t.live)
	return true
}

// switchOver is the emergency rollback's switch to the warm standby, under the lock: re-checked
// there (the live instance may have recovered, or a deploy changed the route), then one
// activation of the standby's release (its health re-gated: never to an unhealthy standby; no
// canary, no soak: there is nothing healthy to compare with or to go back to), recorded as
// outcome=failed-over. The failed instance is stopped once no request reaches it; the next
// deploy starts the declared release afresh. False when the lock was not free.
func (w *failoverWatch) switchOver(ctx context.Context, t target, d failover.Decision) bool {
	who := w.who()
	lk, err := lock.Take(w.l.LockFile, who, 2*time.Second)
	if err != nil {
		w.say("failover waits: the deploy lock is held by %s", lock.Holder(w.l.LockFile))
		return false
	}
	host.CleanLeftovers(w.l)
	dp := deps(w.l, w.runtime, t.s, record.Log{}, "", nil)
	if r := dp.Proxy.Route(); r.Live != t.live || r.Canary != 0 || dp.Inst.Version(t.live) != t.liveVersion {
		lk.Release()
		return true
	}
	if ok, _ := w.prober.Probe(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", t.live, t.s.HealthPath), t.liveVersion); ok {
		lk.Release()
		w.say("live %s on %d recovered before the switch", t.liveVersion, t.live)
		w.st = failover.State{}
		return false
	}
	s := t.s
	s.Canary, s.SoakSeconds, s.Acknowledged, s.Standby = protocol.Canary{}, 0, true, false
	id := fmt.Sprintf("failover-%s-%d", time.Now().UTC().Format("20060102T150405Z"), os.Getpid())
	w.say("failing over from %s on %d to the standby %s on %d: %s", t.liveVersion, t.live, t.sbVersion, t.standby, t.liveSeen)
	code := runActivation(w.l, w.runtime, activate.Request{
		ID: id, Version: t.sbVersion, Sha256: host.ManifestField(w.l, t.sbVersion, "sha256"), Who: who,
		Settings: s, LiveHealthPath: t.s.HealthPath, Service: w.l.Service, Docker: w.runtime == "docker",
		FailedOver: "reason=" + reasonOf(t.liveSeen) + " " + figures(t, d),
	}, "", nil, lk)
	if code != 0 {
		w.say("failover to %s failed (exit %d): the live %s stays routed; see %s", t.sbVersion, code, t.liveVersion, w.l.RevisionsLog)
	} else {
		w.say("failed over to %s on %d", t.sbVersion, t.standby)
	}
	return true
}
