// Package failover decides, one tick at a time, whether the host switches from a live instance
// that fails its health (status and the live release's version) to the warm standby, without the
// deployer. The decision is a pure function of what the tick saw, what the previous ticks saw
// (State, kept in memory by the watch) and what revisions.log says happened before (History,
// read back each tick, so a restarted watch decides the same).
//
// Hysteresis: after a failover the host stays on the standby's release until a deploy (an
// `outcome=activated` or `outcome=converged` line), whatever the old live instance does; and at
// most MaxPerHour failovers in any hour. A standby that does not pass its own health is never a
// target: the refusal is recorded once per failure, and the live instance stays routed.
package failover

import (
	"strings"
	"time"

	"complinist/agent/internal/record"
)

// MaxPerHour bounds the failovers in any hour: a release that keeps dying after each deploy is
// switched away from at most this often, then left for an operator.
const MaxPerHour = 3

// Action is what a tick does.
type Action int

const (
	// Nothing: the live instance is healthy, or nothing is to be watched now.
	Nothing Action = iota
	// Wait: the live instance fails, not yet for AfterSeconds.
	Wait
	// Switch: fail over to the standby now.
	Switch
	// Refuse: the live instance failed long enough, but no switch may happen: record why, once.
	Refuse
)

func (a Action) String() string {
	switch a {
	case Nothing:
		return "nothing"
	case Wait:
		return "wait"
	case Switch:
		return "switch"
	case Refuse:
		return "refuse"
	}
	return "?"
}

// Refusal reasons (the `reason=` of an `outcome=failover-refused` line).
const (
	ReasonStandbyUnhealthy = "standby-unhealthy"
	ReasonNoStandby        = "no-standby"
	ReasonAlreadyFailed    = "already-failed-over"
	ReasonPerHour          = "switches-per-hour"
)

// Observation is what one tick saw.
type Observation struct {
	Now time.Time
	// Watched: failover is on, a standby is kept, the proxy routes every request to one live
	// instance (no canary) and no deploy holds the host lock. Anything else resets the count.
	Watched bool
	// LiveOK: the routed instance answered its health healthy with its own release's version.
	LiveOK bool
	// Standby: a standby instance runs (its release kept). StandbyOK: it answered healthy with
	// its own version. Only looked at when the live one fails.
	Standby, StandbyOK bool
}

// State is what the previous ticks saw of the current failure.
type State struct {
	// FailingSince is the first failed tick in a row (zero: the live instance is healthy).
	FailingSince time.Time
	// Settled: this failure already ended in a switch; nothing more happens until the live
	// instance is healthy again (or another one is routed).
	Settled bool
	// Refused is the reason of the refusal recorded for this failure ("" none): recorded once,
	// but the watch keeps judging, so a standby that turns healthy while the live instance still
	// fails is switched to.
	Refused string
}

// History is what revisions.log says about earlier failovers.
type History struct {
	// Latched: the last switch of the host was a failover (no deploy since).
	Latched bool
	// Switches are the times of the failovers recorded.
	Switches []time.Time
}

// Decision is a tick's outcome: the action, the refusal's reason, how long the live instance
// has failed, and the state for the next tick.
type Decision struct {
	Action  Action
	Reason  string
	Failing time.Duration
	Next    State
}

// Decide is the tick's decision: after failing for after, a switch to a healthy standby, unless
// the host already failed over since its last deploy or MaxPerHour failovers happened in the
// last hour.
func Decide(after time.Duration, h History, st State, o Observation) Decision {
	if !o.Watched || o.LiveOK {
		return Decision{Action: Nothing}
	}
	if st.FailingSince.IsZero() || st.FailingSince.After(o.Now) {
		st.FailingSince = o.Now
	}
	failing := o.Now.Sub(st.FailingSince)
	d := Decision{Failing: failing, Next: st}
	switch {
	case st.Settled:
		d.Action = Nothing
	case failing < after:
		d.Action = Wait
	case h.Latched:
		d.Action, d.Reason = Refuse, ReasonAlreadyFailed
	case perHour(h.Switches, o.Now) >= MaxPerHour:
		d.Action, d.Reason = Refuse, ReasonPerHour
	case !o.Standby:
		d.Action, d.Reason = Refuse, ReasonNoStandby
	case !o.StandbyOK:
		d.Action, d.Reason = Refuse, ReasonStandbyUnhealthy
	default:
		d.Action = Switch
	}
	switch d.Action {
	case Switch:
		d.Next.Settled = true
	case Refuse:
		d.Next.Refused = d.Reason
		if st.Refused == d.Reason {
			d.Action, d.Reason = Nothing, ""
		}
	}
	return d
}

// perHour counts the switches in the hour up to now.
func perHour(switches []time.Time, now time.Time) int {
	n := 0
	for _, t := range switches {
		if !t.After(now) && now.Sub(t) < time.Hour {
			n++
		}
	}
	return n
}

// Outcome words of revisions.log that this package reads or writes.
const (
	OutcomeFailedOver = "outcome=failed-over"
	OutcomeRefused    = "outcome=failover-refused"
)

// ReadHistory is the failover history in revisions.log lines (oldest first): only lines root
// wrote in the record format count (record.ParseLine), and only their first outcome word.
// A deploy (activated, converged) ends the latch; a failover starts it. Last is the latching
// failover's line, "" when not latched.
func ReadHistory(lines []string) (h History, last string) {
	for _, l := range lines {
		p, ok := record.ParseLine(l)
		if !ok {
			continue
		}
		switch record.OutcomeWord(p.Outcome) {
		case OutcomeFailedOver:
			h.Latched, last = true, l
			if t, err := time.Parse(record.TimeFormat, p.Time); err == nil {
				h.Switches = append(h.Switches, t)
			}
		case "outcome=activated", "outcome=converged":
			h.Latched, last = false, ""
		}
	}
	return h, last
}

// Latch is the failover the host stays on ("" when none): the line's time, the version it
// switched to and its outcome, for a deploy's failure and the status to name.
func Latch(revisions string) string {
	_, last := ReadHistory(strings.Split(strings.TrimSuffix(revisions, "\n"), "\n"))
	p, ok := record.ParseLine(last)
	if !ok {
		return ""
	}
	return record.OneLine(p.Time+" to "+p.Version+": "+p.Outcome, 600)
}
