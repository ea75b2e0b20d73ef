package failover

import (
	"testing"
	"time"
)

// A virtual clock: every tick is one second after the last.
var t0 = time.Date(2026, 12, 8, 4, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

type tick struct {
	liveOK, standby, standbyOK bool
	watched                    bool
}

var (
	down        = tick{watched: true, standby: true, standbyOK: true}
	up          = tick{watched: true, liveOK: true, standby: true, standbyOK: true}
	downBadSb   = tick{watched: true, standby: true}
	downNoSb    = tick{watched: true}
	downUnwatch = tick{standby: true, standbyOK: true}
)

// run feeds one observation a second and returns every action, as a string of letters:
// . nothing, w wait, S switch, R refuse.
func run(after time.Duration, h History, ticks []tick) (string, []string) {
	st := State{}
	out, reasons := "", []string(nil)
	for i, tk := range ticks {
		d := Decide(after, h, st, Observation{Now: at(i), Watched: tk.watched, LiveOK: tk.liveOK, Standby: tk.standby, StandbyOK: tk.standbyOK})
		st = d.Next
		out += map[Action]string{Nothing: ".", Wait: "w", Switch: "S", Refuse: "R"}[d.Action]
		if d.Reason != "" {
			reasons = append(reasons, d.Reason)
		}
	}
	return out, reasons
}

func repeat(t tick, n int) []tick {
	out := make([]tick, n)
	for i := range out {
		out[i] = t
	}
	return out
}

func cat(parts ...[]tick) []tick {
	var out []tick
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestDecide(t *testing.T) {
	hourAgo := func(min int) time.Time { return t0.Add(-time.Duration(min) * time.Minute) }
	cases := []struct {
		name    string
		h       History
		ticks   []tick
		want    string
		reasons []string
	}{
		{"a healthy live instance is never switched from", History{}, repeat(up, 30), "..............................", nil},
		{"a live instance failing for afterSeconds switches once, then stays", History{}, repeat(down, 14), "wwwwwwwwwwS...", nil},
		{"a failure shorter than afterSeconds switches nothing, and the count starts again", History{}, cat(repeat(down, 9), repeat(up, 1), repeat(down, 9)), "wwwwwwwww.wwwwwwwww", nil},
		{"a failure while nothing is watched (a deploy holds the lock) does not count", History{}, cat(repeat(downUnwatch, 20), repeat(down, 11)), "....................wwwwwwwwwwS", nil},
		{"never to an unhealthy standby: refused once, recorded once", History{}, repeat(downBadSb, 14), "wwwwwwwwwwR...", []string{ReasonStandbyUnhealthy}},
		{"no standby running: refused once", History{}, repeat(downNoSb, 11), "wwwwwwwwwwR", []string{ReasonNoStandby}},
		{"a standby that turns unhealthy at the switch's tick is refused", History{}, cat(repeat(down, 10), repeat(downBadSb, 1)), "wwwwwwwwwwR", []string{ReasonStandbyUnhealthy}},
		{"a standby that turns healthy while the live instance still fails is switched to", History{}, cat(repeat(downBadSb, 12), repeat(down, 2)), "wwwwwwwwwwR.S.", []string{ReasonStandbyUnhealthy}},
		{"a refusal with another reason is recorded too", History{}, cat(repeat(downNoSb, 11), repeat(downBadSb, 2)), "wwwwwwwwwwRR.", []string{ReasonNoStandby, ReasonStandbyUnhealthy}},
		{"a refusal is final for this failure; a new failure after recovery is judged again", History{}, cat(repeat(downBadSb, 12), repeat(up, 1), repeat(down, 11)), "wwwwwwwwwwR..wwwwwwwwwwS", []string{ReasonStandbyUnhealthy}},
		{"never back and forth: failed over since the last deploy, the host stays", History{Latched: true, Switches: []time.Time{hourAgo(5)}}, repeat(down, 12), "wwwwwwwwwwR.", []string{ReasonAlreadyFailed}},
		{"at most MaxPerHour failovers in an hour", History{Switches: []time.Time{hourAgo(50), hourAgo(30), hourAgo(10)}}, repeat(down, 11), "wwwwwwwwwwR", []string{ReasonPerHour}},
		{"a failover more than an hour ago no longer counts", History{Switches: []time.Time{hourAgo(61), hourAgo(30), hourAgo(10)}}, repeat(down, 11), "wwwwwwwwwwS", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, reasons := run(10*time.Second, c.h, c.ticks)
			if got != c.want {
				t.Errorf("actions %q, want %q", got, c.want)
			}
			if len(reasons) != len(c.reasons) || (len(reasons) > 0 && reasons[0] != c.reasons[0]) {
				t.Errorf("reasons %v, want %v", reasons, c.reasons)
			}
		})
	}
}

func TestDecideReportsHowLongTheLiveFailed(t *testing.T) {
	st := State{}
	var d Decision
	for s := 0; s <= 10; s++ {
		d = Decide(10*time.Second, History{}, st, Observation{Now: at(s), Watched: true, Standby: true, StandbyOK: true})
		st = d.Next
	}
	if d.Action != Switch || d.Failing != 10*time.Second {
		t.Fatalf("got %v after %v, want a switch after 10s", d.Action, d.Failing)
	}
}

func TestDecideSurvivesAClockStepBack(t *testing.T) {
	st := State{FailingSince: at(100)}
	d := Decide(10*time.Second, History{}, st, Observation{Now: at(50), Watched: true, Standby: true, StandbyOK: true})
	if d.Action != Wait || !d.Next.FailingSince.Equal(at(50)) {
		t.Fatalf("a clock set back must restart the count, got %v since %v", d.Action, d.Next.FailingSince)
	}
}

func TestReadHistory(t *testing.T) {
	line := func(ts, v, outcome string) string {
		return ts + "\tversion=" + v + "\tsha256=abc\tby=root@h\t" + outcome
	}
	cases := []struct {
		name     string
		lines    []string
		latched  bool
		switches int
	}{
		{"no log", nil, false, 0},
		{"a failover latches", []string{line("2026-12-08T03:00:00Z", "1.0.0", "outcome=activated previous=none"), line("2026-12-08T03:10:00Z", "1.0.0", "outcome=failed-over reason=live-unhealthy")}, true, 1},
		{"a deploy after it unlatches", []string{line("2026-12-08T03:10:00Z", "1.0.0", "outcome=failed-over reason=x"), line("2026-12-08T03:20:00Z", "2.0.0", "outcome=activated previous=1.0.0")}, false, 1},
		{"a failed deploy after it does not", []string{line("2026-12-08T03:10:00Z", "1.0.0", "outcome=failed-over reason=x"), line("2026-12-08T03:20:00Z", "2.0.0", "outcome=failed reason=health-gate")}, true, 1},
		{"a refusal is no switch", []string{line("2026-12-08T03:10:00Z", "1.0.0", "outcome=failover-refused reason=standby-unhealthy")}, false, 0},
		{"a release's answer quoting the word is not a line root wrote", []string{"2026-12-08T03:10:00Z\tversion=1\tsha256=a\tby=b\toutcome=failed reason=x seen=outcome=failed-over", "garbage outcome=failed-over"}, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, last := ReadHistory(c.lines)
			if h.Latched != c.latched || len(h.Switches) != c.switches || (last != "") != c.latched {
				t.Fatalf("got %+v last %q, want latched %v switches %d", h, last, c.latched, c.switches)
			}
		})
	}
	if got := Latch(line("2026-12-08T03:10:00Z", "1.0.0", "outcome=failed-over reason=live-down") + "\n"); got != "2026-12-08T03:10:00Z to 1.0.0: outcome=failed-over reason=live-down" {
		t.Fatalf("Latch: %q", got)
	}
}
