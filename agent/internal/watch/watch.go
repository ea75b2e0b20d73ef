// Package watch is the error-rate watch's verdict: the runbook's "monitor error rates, roll
// back on a spike", judged by the host from the proxy's own counters during the canary and the
// soak. The new release's error ratio is compared with the previous release's: it trips when
// the new ratio is above both errorRateFactor times the previous one and the absolute
// maxErrorRatio, over at least minRequests requests; with fewer it decides nothing and says so.
package watch

import (
	"fmt"
	"strconv"
	"time"

	"complinist/agent/internal/protocol"
)

// Verdicts of Judge: the watch's decision on the figures so far.
const (
	// Few is fewer new requests than minRequests: nothing is decided, however bad the figures.
	Few = "few"
	// Trip is a new error ratio over the limit: the release is rolled back.
	Trip = "trip"
	// OK is a new error ratio within the limit.
	OK = "ok"
)

// Judge is the verdict on the figures so far and the figures as the one line revisions.log and
// the operator read, exactly as the bash program's watch_judge computed and printed them (awk's
// double arithmetic and printf), so that records written by either read the same.
//
// The previous ratio counts only over at least rule.MinRequests requests of its own (and at
// least one); else the limit is rule.MaxErrorRatio alone. The limit is rule.ErrorRateFactor
// times the previous ratio, raised to rule.MaxErrorRatio when that is higher. A new ratio
// exactly at the limit is not a trip.
func Judge(rule protocol.Watch, newReq, newErr, prevReq, prevErr int64) (verdict string, figures string) {
	minReq := int64(rule.MinRequests)
	newRatio := 0.0
	if newReq > 0 {
		newRatio = float64(newErr) / float64(newReq)
	}
	var limit float64
	var prev, basis string
	if prevReq >= minReq && prevReq > 0 {
		prevRatio := float64(prevErr) / float64(prevReq)
		limit = rule.ErrorRateFactor * prevRatio
		prev = fmt.Sprintf("previous %d requests %d errors (%.2f%%)", prevReq, prevErr, 100*prevRatio)
		basis = awkG(rule.ErrorRateFactor) + " x previous"
	} else {
		prev = fmt.Sprintf("previous %d requests %d errors (too few to compare)", prevReq, prevErr)
		basis = "previous not comparable"
	}
	if rule.MaxErrorRatio > limit {
		limit = rule.MaxErrorRatio
		basis += ", maxErrorRatio"
	}
	switch {
	case newReq < minReq:
		verdict = Few
	case newRatio > limit:
		verdict = Trip
	default:
		verdict = OK
	}
	figures = fmt.Sprintf("new %d requests %d errors (%.2f%%), %s; limit %.2f%% (%s); minRequests %d",
		newReq, newErr, 100*newRatio, prev, 100*limit, basis, rule.MinRequests)
	return verdict, figures
}

// awkG is C's (and so awk's) printf "%g": six significant digits, trailing zeros dropped,
// the exponent form below 1e-4 and from 1e6 (10 → "10", 2.5 → "2.5", 1e6 → "1e+06").
func awkG(f float64) string {
	return strconv.FormatFloat(f, 'g', 6, 64)
}

// HungAfter bounds how long the new release may leave a request unanswered: one still in flight
// after it counts as a failed request while it hangs (a request that ends later leaves that
// count and enters the proxy's counters, as an answer or an error). HAProxy's own server
// timeout (60 s) would count it only at its end, after a short canary has passed the release.
const HungAfter = 4 * time.Second

// MinCanarySeconds is the shortest canary the watch can judge: a request of its first second is
// hung (HungAfter) before the canary ends. stacks/watchSchema.ts refuses a shorter canary.seconds.
const MinCanarySeconds = 5

// SlowFloorMs: a new mean response time under it is never slow, whatever the previous one.
const SlowFloorMs = 1000

// Figures are what the watch reads from the proxy on one tick, in the window so far.
type Figures struct {
	// NewReq, NewErr: the new release's requests and errors from the counters (answered ones).
	NewReq, NewErr int64
	// NewHung: the new release's requests in flight for HungAfter or longer now.
	NewHung int64
	// NewRtimeMs, PrevRtimeMs: mean response times (HAProxy's rtime), 0 when unknown.
	NewRtimeMs, PrevRtimeMs int64
	// PrevReq, PrevErr: the previous release's, in the same window (canary) or before the switch.
	PrevReq, PrevErr int64
}

// JudgeAll is Judge with hung and slow requests counted: each request hung now counts as a
// request and an error; and the release is slow — a trip — when its mean response time is above
// both errorRateFactor times the previous release's (over at least minRequests of its own) and
// SlowFloorMs, over at least minRequests answered requests. The figures are Judge's, then what
// hung or slow adds, so the line reads the same as before when nothing does.
func JudgeAll(rule protocol.Watch, f Figures) (verdict string, figures string) {
	verdict, figures = Judge(rule, f.NewReq+f.NewHung, f.NewErr+f.NewHung, f.PrevReq, f.PrevErr)
	if f.NewHung > 0 {
		figures += fmt.Sprintf("; %d of the new requests unanswered after %ds, counted as errors", f.NewHung, int(HungAfter/time.Second))
	}
	minReq := int64(rule.MinRequests)
	if f.NewRtimeMs <= 0 || f.PrevRtimeMs <= 0 || f.PrevReq < minReq || f.PrevReq == 0 || f.NewReq < minReq {
		return verdict, figures
	}
	limit := max(rule.ErrorRateFactor*float64(f.PrevRtimeMs), SlowFloorMs)
	if float64(f.NewRtimeMs) > limit {
		figures += fmt.Sprintf("; slow: mean response %d ms, previous %d ms, limit %.0f ms (%s x previous, at least %d ms)",
			f.NewRtimeMs, f.PrevRtimeMs, limit, awkG(rule.ErrorRateFactor), SlowFloorMs)
		verdict = Trip
	}
	return verdict, figures
}
