package watch

import (
	"math/rand/v2"
	"testing"

	"complinist/agent/internal/protocol"
)

var rule = protocol.Watch{ErrorRateFactor: 10, MinRequests: 20, MaxErrorRatio: 0.01}

// The expected figures were printed by the bash program's watch_judge (mawk) for the same input.
func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name             string
		rule             protocol.Watch
		newReq, newErr   int64
		prevReq, prevErr int64
		verdict, figures string
	}{
		{"30% against 0%: the absolute limit applies", rule, 40, 12, 400, 0, "trip",
			"new 40 requests 12 errors (30.00%), previous 400 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20"},
		{"as good as the previous", rule, 200, 0, 1800, 0, "ok",
			"new 200 requests 0 errors (0.00%), previous 1800 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20"},
		{"exactly at the limit is not a trip", rule, 200, 2, 1800, 0, "ok",
			"new 200 requests 2 errors (1.00%), previous 1800 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20"},
		{"just over the cap", rule, 200, 3, 1800, 0, "trip",
			"new 200 requests 3 errors (1.50%), previous 1800 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20"},
		{"factor x previous: under", rule, 100, 10, 1000, 20, "ok",
			"new 100 requests 10 errors (10.00%), previous 1000 requests 20 errors (2.00%); limit 20.00% (10 x previous); minRequests 20"},
		{"factor x previous: exactly at it", rule, 100, 20, 1000, 20, "ok",
			"new 100 requests 20 errors (20.00%), previous 1000 requests 20 errors (2.00%); limit 20.00% (10 x previous); minRequests 20"},
		{"trips at factor x previous", rule, 100, 21, 1000, 20, "trip",
			"new 100 requests 21 errors (21.00%), previous 1000 requests 20 errors (2.00%); limit 20.00% (10 x previous); minRequests 20"},
		{"factor 5", protocol.Watch{ErrorRateFactor: 5, MinRequests: 20, MaxErrorRatio: 0.01}, 100, 11, 1000, 20, "trip",
			"new 100 requests 11 errors (11.00%), previous 1000 requests 20 errors (2.00%); limit 10.00% (5 x previous); minRequests 20"},
		{"factor 2.5 as %g", protocol.Watch{ErrorRateFactor: 2.5, MinRequests: 20, MaxErrorRatio: 0.01}, 100, 5, 1000, 20, "ok",
			"new 100 requests 5 errors (5.00%), previous 1000 requests 20 errors (2.00%); limit 5.00% (2.5 x previous); minRequests 20"},
		{"factor 0.1 as %g", protocol.Watch{ErrorRateFactor: 0.1, MinRequests: 20, MaxErrorRatio: 0}, 100, 1, 1000, 200, "ok",
			"new 100 requests 1 errors (1.00%), previous 1000 requests 200 errors (20.00%); limit 2.00% (0.1 x previous); minRequests 20"},
		{"factor with more than six digits", protocol.Watch{ErrorRateFactor: 3.333333333, MinRequests: 1, MaxErrorRatio: 0.01}, 12345, 12130, 400, 326, "ok",
			"new 12345 requests 12130 errors (98.26%), previous 400 requests 326 errors (81.50%); limit 271.67% (3.33333 x previous); minRequests 1"},
		{"factor 1e6 as %g", protocol.Watch{ErrorRateFactor: 1000000, MinRequests: 20, MaxErrorRatio: 0.01}, 100, 1, 1000, 1, "ok",
			"new 100 requests 1 errors (1.00%), previous 1000 requests 1 errors (0.10%); limit 100000.00% (1e+06 x previous); minRequests 20"},
		{"the cap alone: previous too few", rule, 100, 5, 10, 5, "trip",
			"new 100 requests 5 errors (5.00%), previous 10 requests 5 errors (too few to compare); limit 1.00% (previous not comparable, maxErrorRatio); minRequests 20"},
		{"the cap alone: nothing before", rule, 100, 0, 0, 0, "ok",
			"new 100 requests 0 errors (0.00%), previous 0 requests 0 errors (too few to compare); limit 1.00% (previous not comparable, maxErrorRatio); minRequests 20"},
		{"few, however bad", rule, 19, 19, 1000, 0, "few",
			"new 19 requests 19 errors (100.00%), previous 1000 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20"},
		{"minRequests 5: judged", protocol.Watch{ErrorRateFactor: 10, MinRequests: 5, MaxErrorRatio: 0.01}, 5, 5, 1000, 0, "trip",
			"new 5 requests 5 errors (100.00%), previous 1000 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 5"},
		{"zero requests", rule, 0, 0, 0, 0, "few",
			"new 0 requests 0 errors (0.00%), previous 0 requests 0 errors (too few to compare); limit 1.00% (previous not comparable, maxErrorRatio); minRequests 20"},
		{"zero requests, minRequests 0, no cap", protocol.Watch{ErrorRateFactor: 10}, 0, 0, 0, 0, "ok",
			"new 0 requests 0 errors (0.00%), previous 0 requests 0 errors (too few to compare); limit 0.00% (previous not comparable); minRequests 0"},
		{"errors without requests", protocol.Watch{ErrorRateFactor: 10}, 0, 1, 0, 0, "ok",
			"new 0 requests 1 errors (0.00%), previous 0 requests 0 errors (too few to compare); limit 0.00% (previous not comparable); minRequests 0"},
		{"rounding of 12.5%", protocol.Watch{ErrorRateFactor: 1, MinRequests: 20, MaxErrorRatio: 0.125}, 1000, 125, 1000, 125, "ok",
			"new 1000 requests 125 errors (12.50%), previous 1000 requests 125 errors (12.50%); limit 12.50% (1 x previous); minRequests 20"},
		{"rounding of 0.125%", protocol.Watch{ErrorRateFactor: 1, MinRequests: 20}, 800, 1, 800, 1, "ok",
			"new 800 requests 1 errors (0.12%), previous 800 requests 1 errors (0.12%); limit 0.12% (1 x previous); minRequests 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, f := Judge(tc.rule, tc.newReq, tc.newErr, tc.prevReq, tc.prevErr)
			if v != tc.verdict {
				t.Errorf("verdict %q, want %q", v, tc.verdict)
			}
			if f != tc.figures {
				t.Errorf("figures\n   %q\nwant %q", f, tc.figures)
			}
		})
	}
}

func TestAwkG(t *testing.T) {
	for f, want := range map[float64]string{
		10: "10", 2.5: "2.5", 0.1: "0.1", 1: "1", 1e6: "1e+06", 1.5e6: "1.5e+06", 123456789: "1.23457e+08",
		1e-4: "0.0001", 1e-5: "1e-05", 100000: "100000", 999999.5: "1e+06", 0.333333333: "0.333333", 0: "0",
	} {
		if got := awkG(f); got != want {
			t.Errorf("awkG(%v) = %q, want %q", f, got, want)
		}
	}
}

// However bad the figures, fewer new requests than minRequests never trip (nor pass).
func TestJudgeNeverTripsBelowMinRequests(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		w := protocol.Watch{
			ErrorRateFactor: r.Float64() * 20,
			MinRequests:     r.IntN(1000),
			MaxErrorRatio:   r.Float64() * 0.2,
		}
		newReq := r.Int64N(2000)
		newErr := r.Int64N(newReq + 1)
		prevReq := r.Int64N(100000)
		prevErr := r.Int64N(prevReq + 1)
		v, _ := Judge(w, newReq, newErr, prevReq, prevErr)
		if newReq < int64(w.MinRequests) && v != Few {
			t.Fatalf("%+v %d %d %d %d: %s below minRequests", w, newReq, newErr, prevReq, prevErr, v)
		}
		if newReq >= int64(w.MinRequests) && v == Few {
			t.Fatalf("%+v %d %d %d %d: few at minRequests", w, newReq, newErr, prevReq, prevErr)
		}
		if newErr == 0 && v == Trip {
			t.Fatalf("%+v %d: a trip without errors", w, newReq)
		}
	}
}

// Finding 9 of issue 29: a release that hangs counts while it hangs, and a slow one trips.
func TestJudgeAllHungAndSlow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f       Figures
		verdict string
		figures string
	}{
		{"hangs on everything but what answers: today's figures pass it", Figures{NewReq: 25, NewErr: 0, PrevReq: 400}, "ok",
			"new 25 requests 0 errors (0.00%), previous 400 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20"},
		{"the hung requests count as failed", Figures{NewReq: 25, NewHung: 6, PrevReq: 400}, "trip",
			"new 31 requests 6 errors (19.35%), previous 400 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20; 6 of the new requests unanswered after 4s, counted as errors"},
		{"hung requests alone make up minRequests", Figures{NewReq: 0, NewHung: 20, PrevReq: 400}, "trip",
			"new 20 requests 20 errors (100.00%), previous 400 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20; 20 of the new requests unanswered after 4s, counted as errors"},
		{"few hung, few requests: nothing decided", Figures{NewReq: 3, NewHung: 2, PrevReq: 400}, "few",
			"new 5 requests 2 errors (40.00%), previous 400 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20; 2 of the new requests unanswered after 4s, counted as errors"},
		{"slow: 30 times the live release's mean, over the floor", Figures{NewReq: 100, NewRtimeMs: 3000, PrevReq: 1000, PrevRtimeMs: 100}, "trip",
			"new 100 requests 0 errors (0.00%), previous 1000 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20; slow: mean response 3000 ms, previous 100 ms, limit 1000 ms (10 x previous, at least 1000 ms)"},
		{"exactly at the slow limit is not a trip", Figures{NewReq: 100, NewRtimeMs: 2000, PrevReq: 1000, PrevRtimeMs: 200}, "ok",
			"new 100 requests 0 errors (0.00%), previous 1000 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20"},
		{"many times slower but under the floor", Figures{NewReq: 100, NewRtimeMs: 900, PrevReq: 1000, PrevRtimeMs: 5}, "ok",
			"new 100 requests 0 errors (0.00%), previous 1000 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20"},
		{"slow but the previous too few to compare", Figures{NewReq: 100, NewRtimeMs: 9000, PrevReq: 10, PrevRtimeMs: 5}, "ok",
			"new 100 requests 0 errors (0.00%), previous 10 requests 0 errors (too few to compare); limit 1.00% (previous not comparable, maxErrorRatio); minRequests 20"},
		{"slow over too few answered requests", Figures{NewReq: 19, NewRtimeMs: 9000, PrevReq: 1000, PrevRtimeMs: 5}, "few",
			"new 19 requests 0 errors (0.00%), previous 1000 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, f := JudgeAll(rule, tc.f)
			if v != tc.verdict || f != tc.figures {
				t.Errorf("got %q\n   %q\nwant %q\n   %q", v, f, tc.verdict, tc.figures)
			}
		})
	}
	// Without hung or slow requests JudgeAll is Judge.
	for _, f := range []Figures{{NewReq: 40, NewErr: 12, PrevReq: 400}, {NewReq: 200, NewErr: 2, PrevReq: 1800}} {
		v1, f1 := JudgeAll(rule, f)
		v2, f2 := Judge(rule, f.NewReq, f.NewErr, f.PrevReq, f.PrevErr)
		if v1 != v2 || f1 != f2 {
			t.Errorf("%+v: %s %s != %s %s", f, v1, f1, v2, f2)
		}
	}
}
