// Package watch is the error-rate watch's verdict: the runbook's "monitor error rates, roll
// back on a spike", judged by the host from the proxy's own counters during the canary and the
// soak. The new release's error ratio is compared with the previous release's: it trips when
// the new ratio is above both errorRateFactor times the previous one and the absolute
// maxErrorRatio, over at least minRequests requests; with fewer it decides nothing and says so.
package watch

import (
	"fmt"
	"strconv"

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
