package activate

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"complinist/agent/internal/haproxy"
	"complinist/agent/internal/protocol"
	"complinist/agent/internal/record"
	"complinist/agent/internal/watch"
)

// Tick is how often the counters are read while watching.
const Tick = 500 * time.Millisecond

// canary sends canary.percent of new requests to the gated release on idle for canary.seconds,
// watched; a trip or a failed check switches everything back to live at once.
func (a *Activation) canary(ctx context.Context, live, idle int) error {
	c, w := a.S.Canary, a.S.Watch
	a.step("canary: %d%% of new requests to %s on %d for %ds (watch: errorRateFactor %s, minRequests %d, maxErrorRatio %s)",
		c.Percent, a.Req.Version, idle, c.Seconds, gfmt(w.ErrorRateFactor), w.MinRequests, gfmt(w.MaxErrorRatio))
	a.Host.PausePoint("canary")
	a.shareAt = a.Clock.Now()
	err := a.Proxy.Install(haproxy.Route{Live: live, Canary: idle, Percent: c.Percent})
	if err == nil && !a.Proxy.WaitWeight(ctx, idle, c.Percent, a.Clock.Now().Add(15*time.Second)) {
		err = fmt.Errorf("the proxy did not take the canary config within 15 s")
	}
	if err != nil {
		a.failedSeen = err.Error()
		a.step("canary not started: %s", err)
		return a.abandon(ctx, live, idle, "canary", false)
	}
	a.canaryRan = true
	figures, err := a.watched(ctx, "canary", c.Seconds, live, idle)
	if err != nil {
		return err
	}
	a.summary = fmt.Sprintf("%d%% %s", c.Percent, figures)
	return nil
}

// watched watches the release on idle for seconds, compared with live over the same window in
// the canary, with the figures kept from before the switch in the soak. A trip, or a failed
// check, switches back to live and ends the activation; else it returns the watch's figures.
func (a *Activation) watched(ctx context.Context, phase string, seconds, live, idle int) (string, error) {
	prev := 0
	if phase == "canary" {
		prev = live
	}
	a.watchPort, a.watchLive = idle, live
	w := a.window(ctx, phase, seconds, idle, prev)
	a.res.WatchPhases = append(a.res.WatchPhases, w.phase)
	switch {
	case w.interrupted:
		return "", ErrInterrupted
	case w.tripped:
		a.failedSeen = w.figures
		return "", a.switchBack(ctx, live, idle, "rolled-back", "watch")
	case w.checkFailed != "":
		a.failedSeen = "during the " + phase + ": " + w.checkFailed
		a.step("%s failed: %s", phase, w.checkFailed)
		a.trippedAt = a.Clock.Now()
		return "", a.switchBack(ctx, live, idle, "failed-rolled-back", phase)
	}
	return w.figures, nil
}

type windowResult struct {
	phase       protocol.WatchPhase
	figures     string
	tripped     bool
	checkFailed string
	interrupted bool
}

// window judges every Tick for seconds, running the phase's check each tick.
func (a *Activation) window(ctx context.Context, phase string, seconds, newPort, prevPort int) windowResult {
	start := a.Clock.Now()
	end := start.Add(time.Duration(seconds) * time.Second)
	base, _ := a.Proxy.Counts()
	verdict, figures := "few", "no counters read"
	var nr, ne, hung int64
	noCounters := false
	for {
		counts, err := a.Proxy.Counts()
		if err != nil || counts == nil {
			noCounters = true
			figures = a.Proxy.APIError()
		} else {
			noCounters = false
			c, b := counts[newPort], base[newPort]
			nr, ne = c.Requests, c.Errors
			if nr >= b.Requests {
				nr, ne = nr-b.Requests, ne-b.Errors
			}
			// The soak's own probes, like every request from the host itself, go to the proxy's
			// host backend (haproxy.HostBackend): they are not in these counters.
			ne = max(ne, 0)
			if prevPort != 0 {
				p, pb := counts[prevPort], base[prevPort]
				a.prevReq, a.prevErr, a.prevRtime = p.Requests, p.Errors, p.RtimeMs
				if a.prevReq >= pb.Requests {
					a.prevReq, a.prevErr = a.prevReq-pb.Requests, a.prevErr-pb.Errors
				}
			}
			hung = a.hung(newPort)
			verdict, figures = watch.JudgeAll(a.S.Watch, watch.Figures{NewReq: nr, NewErr: ne, NewHung: hung,
				NewRtimeMs: c.RtimeMs, PrevRtimeMs: a.prevRtime, PrevReq: a.prevReq, PrevErr: a.prevErr})
		}
		now := a.Clock.Now()
		elapsed := int(now.Sub(start) / time.Second)
		text := fmt.Sprintf("%s %ds of %ds: %s", phase, elapsed, seconds, figures)
		a.Host.WatchNow(&WatchNow{Phase: phase, Version: a.Req.Version, Port: newPort, Verdict: verdict, Figures: record.OneLine(text, 0)})
		ph := protocol.WatchPhase{Phase: phase, Seconds: seconds, Elapsed: elapsed, Verdict: verdict, NewRequests: nr + hung, NewErrors: ne + hung, PrevRequests: a.prevReq, PrevErrors: a.prevErr, Text: text}
		if noCounters {
			ph.Verdict = "undecided"
		}
		if verdict == "trip" && !noCounters {
			a.trippedAt = a.Clock.Now()
			a.res.TrippedAt = a.trippedAt.UnixMilli()
			a.step("watch tripped: %s", text)
			return windowResult{phase: ph, figures: text, tripped: true}
		}
		if ok, seen := a.check(ctx, phase); !ok {
			// A probe cut short by the activation's end (SIGTERM) is no failed check: the
			// bash was killed there, and the stop is recorded as interrupted, not as a soak failure.
			if ctx.Err() != nil {
				return windowResult{phase: ph, figures: text, interrupted: true}
			}
			return windowResult{phase: ph, figures: text, checkFailed: seen}
		}
		if ctx.Err() != nil {
			return windowResult{phase: ph, figures: text, interrupted: true}
		}
		if !now.Before(end) {
			switch {
			case noCounters:
				a.step("watch undecided: %s", text)
			case verdict == "few":
				text = fmt.Sprintf("too few requests to judge (%d of minRequests %d), nothing decided: %s", nr, a.S.Watch.MinRequests, text)
				ph.Text = text
				a.step("watch undecided: %s", text)
			default:
				a.step("watch passed: %s", text)
			}
			return windowResult{phase: ph, figures: text}
		}
		a.Clock.Sleep(ctx, Tick)
	}
}

// hung counts the requests the release on port has left unanswered for watch.HungAfter or
// longer, in flight now (the proxy's `show sess`); 0 when the proxy does not say.
func (a *Activation) hung(port int) int64 {
	ages, err := a.Proxy.InFlight()
	if err != nil {
		return 0
	}
	n := int64(0)
	for _, age := range ages[port] {
		if age >= watch.HungAfter {
			n++
		}
	}
	return n
}

// check is what the canary and the soak look at each tick besides the error rate. Each also
// looks at the previous release, the switch back's target: when it answered healthy within the
// last two seconds, a trip switches back without probing it first.
func (a *Activation) check(ctx context.Context, phase string) (bool, string) {
	if phase == "soak" {
		if ok, seen := a.HTTP.Probe(ctx, a.url(a.S.Port, a.S.HealthPath), a.Req.Version); !ok {
			return false, seen
		}
	}
	if ok, seen := a.soleListener(a.watchPort); !ok {
		return false, seen
	}
	if a.watchLive != 0 {
		if ok, _ := a.HTTP.Probe(ctx, a.url(a.watchLive, a.livePath), a.liveVersion); ok {
			a.liveOKAt = a.Clock.Now()
		}
	}
	return true, ""
}

func (a *Activation) liveReady(ctx context.Context, port int) (bool, string) {
	if !a.liveOKAt.IsZero() && a.Clock.Now().Sub(a.liveOKAt) <= 2*time.Second {
		return true, ""
	}
	if !a.Inst.Active(port) {
		return false, fmt.Sprintf("%s@%d.service is not active", a.Req.Service, port)
	}
	return a.HTTP.Probe(ctx, a.url(port, a.livePath), a.liveVersion)
}

// switchBack: the watch tripped (or a check of the canary or the soak failed): every new request
// back to live, the previous release still running beside it, through the runtime API at once,
// then in the config; the new instance drained and stopped. Always ends the activation.
func (a *Activation) switchBack(ctx context.Context, live, idle int, outcome, reason string) error {
	ctx = context.WithoutCancel(ctx)
	a.Host.PausePoint("switch-back")
	ready, seen := false, ""
	if live != 0 {
		if ready, seen = a.liveReady(ctx, live); ready {
			if err := a.Proxy.Flip(live, idle); err != nil {
				ready, seen = false, err.Error()
			}
		}
	}
	if ready {
		back := a.Clock.Now()
		a.step("switched back to %s on %d %d ms after the watch tripped", a.liveVersion, live, back.Sub(a.trippedAt).Milliseconds())
		// What users were exposed to: every request the proxy sent the new release since it loaded
		// the config that gave it its share (the canary's, or the switch's), up to the switch back.
		if counts, err := a.Proxy.Counts(); err == nil && reason == "watch" {
			n, l := counts[idle], counts[live]
			a.failedSeen += fmt.Sprintf("; exposed from its first request to the switch back (%ds): %d requests %d errors of %d in all",
				int(back.Sub(a.shareAt)/time.Second), n.Requests, n.Errors, n.Requests+l.Requests)
		}
		a.res.TrippedAt, a.res.SwitchedBackAt = a.trippedAt.UnixMilli(), back.UnixMilli()
		a.Host.WatchNow(nil)
		a.route(ctx, live, a.liveVersion, a.livePath)
		a.switchCurrent(a.liveVersion)
		a.drain(ctx, idle, true)
		a.Inst.Stop(idle)
		return a.fail(ctx, protocol.ExitHealth, outcome, reason)
	}
	a.Host.WatchNow(nil)
	lv := a.liveVersion
	if lv == "" {
		lv = "nothing"
	}
	port := "no port"
	if live != 0 {
		port = fmt.Sprint(live)
	}
	a.failedSeen += fmt.Sprintf("; could not switch back: %s on %s does not answer (%s)", lv, port, seen)
	return a.fail(ctx, protocol.ExitHealth, "failed", reason)
}

// gfmt formats a rule's number as the bash host program's awk did (%g: six significant digits).
func gfmt(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
