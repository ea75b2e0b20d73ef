package activate

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"complinist/agent/internal/haproxy"
	"complinist/agent/internal/protocol"
)

// Every arc of the activation against the in-memory host of fakes_test.go, compared with what
// the bash host program did (infra/render/host/activate.sh, watch.sh; its tests were
// test/unit/render/activate.test.ts): the exit code, the reported result, the revisions.log
// outcome, which instances were started and stopped, and where the proxy routes at the end.

var sha = strings.Repeat("b", 64)

// base are the settings of the bash tests' base(): 2 s gate polled every 50 ms, no soak, no
// canary, the standby on, 1.0.0 the pinned rollback target.
func base() protocol.Settings {
	return protocol.Settings{
		Port: svcPort, User: "complinist", HealthPath: "/health", TimeoutSeconds: 2, IntervalMs: 50,
		DrainSeconds: 1, Standby: true, RollbackVersion: "1.0.0", HookTimeoutSeconds: 60,
		Watch:    protocol.Watch{ErrorRateFactor: 10, MinRequests: 20, MaxErrorRatio: 0.01},
		Revision: "r2",
	}
}

// canary is the bash tests' canary(): 10% for SECONDS, judged over at least 5 requests.
func canary(seconds int) func(*protocol.Settings) {
	return func(s *protocol.Settings) {
		s.Canary = protocol.Canary{Percent: 10, Seconds: seconds}
		s.Watch = protocol.Watch{ErrorRateFactor: 10, MinRequests: 5, MaxErrorRatio: 0.01}
	}
}

func soak(seconds int) func(*protocol.Settings) {
	return func(s *protocol.Settings) {
		s.SoakSeconds = seconds
		s.Watch = protocol.Watch{ErrorRateFactor: 10, MinRequests: 5, MaxErrorRatio: 0.01}
	}
}

func both(fs ...func(*protocol.Settings)) func(*protocol.Settings) {
	return func(s *protocol.Settings) {
		for _, f := range fs {
			f(s)
		}
	}
}

func request(s protocol.Settings, version string) Request {
	return Request{ID: "t1", Version: version, Sha256: sha, Who: "ci@runner", Settings: s, LiveHealthPath: s.HealthPath, Service: "complinist"}
}

// activate runs one activation against w; w.cancel ends its context.
func (w *world) activate(req Request) (*Activation, error) {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	defer cancel()
	a := New(w.deps(), req)
	return a, a.Run(ctx)
}

const (
	exitOK          = 0
	exitInterrupted = -1 // Run returns ErrInterrupted
)

type arc struct {
	name     string
	world    func(w *world)
	settings func(s *protocol.Settings)
	req      func(r *Request)
	version  string // default 1.1.0
	// interrupt: after Run returned ErrInterrupted, Interrupted(interrupt), as the agent's
	// runActivation does on SIGTERM (143).
	interrupt int

	exit            int // the *Failed exit (0: Run returns nil; exitInterrupted)
	outcome, reason string
	previous        string
	liveHealthy     bool
	serving         string
	seen            string // a regexp the result's seen matches ("" : seen is empty)
	standby         string
	live            int
	watch           string // a regexp the result's watch matches ("" : empty)
	record          string // a regexp revisions.log's one outcome field matches
	started         []string
	stopped         []int
	routed          haproxy.Route // where the proxy routes at the end (the runtime view)
	tripped         bool          // trippedAt and switchedBackAt are reported, in that order
	steps           []string      // regexps, each matching some step
	noSteps         []string      // regexps matching no step
	then            func(t *testing.T, w *world, a *Activation)
}

func TestActivation(t *testing.T) {
	squatter := "pid 77 (node, uid 1000, cgroup /user.slice/user-1000.slice/session-1.scope)"
	arcs := []arc{
		// --- first deploy ---
		{
			name:    "first deploy: nothing routed, no proxy config, the proxy inactive: the service port is freed, the release starts on the first port",
			version: "1.0.0",
			settings: func(s *protocol.Settings) {
				s.RollbackVersion = ""
			},
			outcome: "activated", live: p1,
			watch:   `^off \(no canary, no soak\)$`,
			record:  `^outcome=activated previous=none mode=started watch=off \(no canary, no soak\)$`,
			started: []string{"5001 1.0.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			steps:  []string{`^start version=1\.0\.0 by=ci@runner$`, `^instance start 1\.0\.0 on 5001$`, `^gate passed on 5001$`, `^switched to 1\.0\.0 on 5001$`, `^result activated$`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "freed", w.freed, 1)
				eq(t, "current", w.current, "1.0.0")
				eq(t, "umbrella started", w.umbrella, 1)
				eq(t, "events", w.events, []string{"free service port", "start 5001 1.0.0 r2", "install live=5001 canary=0 percent=0", "current 1.0.0", "stop 5002"})
				if !slices.Contains(w.wantedSet, "5001 true") {
					t.Errorf("5001 not wanted: %v", w.wantedSet)
				}
				eq(t, "commit", a.Result().Commit, "c-1.0.0")
			},
		},
		{
			name:     "first deploy with a canary configured: no canary, nothing live to share requests with",
			version:  "1.0.0",
			settings: both(canary(30), func(s *protocol.Settings) { s.RollbackVersion = "" }),
			outcome:  "activated", live: p1,
			watch:   `^no canary: no healthy live release to share requests with$`,
			record:  `^outcome=activated previous=none mode=started watch=no canary: no healthy live release to share requests with$`,
			started: []string{"5001 1.0.0 r2"}, stopped: []int{p2},
			routed:  haproxy.Route{Live: p1},
			steps:   []string{`^no canary: no healthy live release to share requests with$`},
			noSteps: []string{`^canary: `},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", w.installs, []haproxy.Route{{Live: p1}})
			},
		},
		{
			name:     "nothing routed but a proxy config exists: the service port is not freed",
			version:  "1.0.0",
			world:    func(w *world) { w.configExists = true },
			settings: func(s *protocol.Settings) { s.RollbackVersion = "" },
			outcome:  "activated", live: p1,
			watch:   `^off`,
			record:  `^outcome=activated previous=none mode=started`,
			started: []string{"5001 1.0.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			then:   func(t *testing.T, w *world, a *Activation) { eq(t, "freed", w.freed, 0) },
		},
		{
			name:     "nothing routed, no proxy config, but the proxy runs: the service port is not freed",
			version:  "1.0.0",
			world:    func(w *world) { w.proxyActive = true },
			settings: func(s *protocol.Settings) { s.RollbackVersion = "" },
			outcome:  "activated", live: p1,
			watch:   `^off`,
			record:  `^outcome=activated previous=none mode=started`,
			started: []string{"5001 1.0.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			then:   func(t *testing.T, w *world, a *Activation) { eq(t, "freed", w.freed, 0) },
		},

		// --- upgrades ---
		{
			name:    "upgrade: the release starts on the other port, the old live is drained and kept as the warm standby (the rollbackVersion)",
			world:   func(w *world) { w.deployed("1.0.0", "r2", p1) },
			outcome: "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^off \(no canary, no soak\)$`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started watch=off \(no canary, no soak\)$`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			steps:   []string{`^instance start 1\.1\.0 on 5002$`, `^switched to 1\.1\.0 on 5002$`, `^drained 1\.0\.0 on 5001$`, `^standby ready 1\.0\.0 on 5001$`},
			noSteps: []string{`^standby start`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "freed", w.freed, 0)
				eq(t, "current", w.current, "1.1.0")
				if !slices.Contains(w.wantedSet, "5001 true") || !slices.Contains(w.wantedSet, "5002 true") {
					t.Errorf("both instances should be wanted: %v", w.wantedSet)
				}
			},
		},
		{
			name:    "upgrade from the second port, the old live on another revision: restarted as the standby, only after the switch",
			world:   func(w *world) { w.deployed("1.0.0", "r1", p2) },
			outcome: "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p1,
			watch:   `^off`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started`,
			started: []string{"5001 1.1.0 r2", "5002 1.0.0 r2"},
			routed:  haproxy.Route{Live: p1},
			steps:   []string{`^standby start 1\.0\.0 on 5002$`, `^standby ready 1\.0\.0 on 5002$`},
		},
		{
			name:     "upgrade without a standby: the old live is drained, then stopped",
			world:    func(w *world) { w.deployed("1.0.0", "r2", p1) },
			settings: func(s *protocol.Settings) { s.Standby = false },
			outcome:  "activated", previous: "1.0.0", liveHealthy: true, live: p2,
			watch:   `^off`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p1},
			routed: haproxy.Route{Live: p2},
			then: func(t *testing.T, w *world, a *Activation) {
				i, j := slices.Index(w.events, "install live=5002 canary=0 percent=0"), slices.Index(w.events, "stop 5001")
				if i < 0 || j < i {
					t.Errorf("the old live must stop only after the switch: %v", w.events)
				}
			},
		},
		{
			name: "live probes lost three times decide nothing: the new settings' probe, then three tries with the settings it was activated with",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.slots[p1].failNext = 3
			},
			outcome: "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^off`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			noSteps: []string{`does not answer`},
		},
		{
			name: "live probes lost four times: the live release counts as not answering, left as it is",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.slots[p1].failNext = 4
			},
			settings: canary(30),
			outcome:  "activated", previous: "1.0.0", liveHealthy: false, standby: "1.0.0", live: p2,
			watch:   `^no canary: no healthy live release to share requests with$`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			steps:   []string{`^live 1\.0\.0 on 5001 does not answer \(no answer from http://127\.0\.0\.1:5001/health: Operation timed out`},
		},
		{
			name: "a release that starts healthy after 5 probes passes the gate",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.b("1.1.0").HealthyAfter = 5
			},
			outcome: "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^off`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			then: func(t *testing.T, w *world, a *Activation) {
				if w.slots[p2].probes < 6 {
					t.Errorf("gate passed after %d probes, before the release was healthy", w.slots[p2].probes)
				}
			},
		},
		{
			name: "a hook that succeeds runs before anything starts; its last line is the step",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.hookOut = "migrating\nmigrated\n"
			},
			settings: func(s *protocol.Settings) { s.BeforeActivate = "./migrate" },
			req:      func(r *Request) { r.RunHook = true },
			outcome:  "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^off`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			steps:   []string{`^hook start: \./migrate$`, `^hook done: migrated$`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "first events", w.events[:2], []string{"hook", "start 5002 1.1.0 r2"})
			},
		},
		{
			name: "a secret hook (hookSecret) is logged as [secret], never its command",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.hookOut = "migrated\n"
			},
			settings: func(s *protocol.Settings) { s.BeforeActivate = "./migrate --token s3cr3t-t0ken"; s.HookSecret = true },
			req:      func(r *Request) { r.RunHook = true },
			outcome:  "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^off`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			steps:   []string{`^hook start: \[secret\]$`},
			noSteps: []string{`s3cr3t`},
		},
		{
			name:    "container mode: the result names the live container",
			world:   func(w *world) { w.deployed("1.0.0", "r2", p1) },
			req:     func(r *Request) { r.Docker = true },
			outcome: "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^off`,
			record:  `^outcome=activated`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "container", a.Result().Container, &protocol.Container{State: "running", ID: "id-5002", Image: "app:1.1.0"})
			},
		},
		{
			name: "a health.path change: the live release is recognized on its own path, the new one gated on the new path; the old one cannot be the standby",
			world: func(w *world) {
				w.deployed("1.0.0", "r1", p1)
				w.b("1.0.0").Paths = []string{"/health"}
				w.b("1.1.0").Paths = []string{"/healthz"}
			},
			settings: func(s *protocol.Settings) { s.HealthPath = "/healthz" },
			req:      func(r *Request) { r.LiveHealthPath = "/health" },
			outcome:  "activated", previous: "1.0.0", liveHealthy: true, live: p2,
			watch:   `^off`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started`,
			started: []string{"5002 1.1.0 r2", "5001 1.0.0 r2"}, stopped: []int{p1},
			routed: haproxy.Route{Live: p2},
			steps:  []string{`^standby 1\.0\.0 not healthy, stopped: HTTP 404 from http://127\.0\.0\.1:5001/healthz`},
			then: func(t *testing.T, w *world, a *Activation) {
				if !strings.Contains(a.Result().StandbyProblem, "HTTP 404") {
					t.Errorf("standbyProblem = %q", a.Result().StandbyProblem)
				}
			},
		},

		// --- the failover watch's switch (agent/internal/cli/failover.go) ---
		{
			name: "the failover watch's switch to the warm standby: the failed live one is not probed again, stopped once drained, recorded as outcome=failed-over",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
				w.run(p1, "1.0.0", "r2")
				w.b("1.1.0").Down = true
			},
			version: "1.0.0",
			// What the watch hands the activation: the last deploy's settings, no canary, no soak, no standby kept.
			settings: func(s *protocol.Settings) { s.Standby, s.Acknowledged = false, true },
			req: func(r *Request) {
				r.FailedOver = "reason=live-down live=1.1.0@5002 standby=1.0.0@5001 failing=10.0s after=10s seen=connection refused"
			},
			outcome: "activated", previous: "1.1.0", liveHealthy: false, live: p1,
			watch:   `^off \(no canary, no soak\)$`,
			record:  `^outcome=failed-over reason=live-down live=1\.1\.0@5002 standby=1\.0\.0@5001 failing=10\.0s after=10s seen=connection refused previous=1\.1\.0 mode=warm-switch$`,
			routed:  haproxy.Route{Live: p1},
			stopped: []int{p2},
			steps:   []string{`failed its health for failover\.afterSeconds \(the failover watch\)`, `^warm standby 1\.0\.0 on 5001: re-checking its health$`},
			noSteps: []string{`^instance start`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "probes of the failed live instance", w.slots[p2].probes, 0)
				eq(t, "current", w.current, "1.0.0")
			},
		},
		{
			name: "the failover watch's switch to a standby that fails its gate: nothing switches, the failed live one is left as it is",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
				w.run(p1, "1.0.0", "r2")
				w.b("1.1.0").Down = true
				w.b("1.0.0").Unhealthy = true
			},
			version:  "1.0.0",
			settings: func(s *protocol.Settings) { s.Standby, s.Acknowledged = false, true },
			req:      func(r *Request) { r.FailedOver = "reason=live-down" },
			exit:     protocol.ExitHealth, outcome: "failed", reason: "health-gate", previous: "1.1.0", liveHealthy: false, serving: "none",
			seen:    `status=starting`,
			record:  `^outcome=failed reason=health-gate live=1\.1\.0 serving=none seen=`,
			routed:  haproxy.Route{Live: p2},
			noSteps: []string{`^instance start`, `^switched`},
		},
		{
			name: "a deploy failing on a host that failed over names the failover in its result",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.b("1.1.0").Unhealthy = true
				w.revisions.WriteString("2026-01-02T03:00:00Z\tversion=1.1.0\tsha256=x\tby=ci@runner\toutcome=activated previous=1.0.0 mode=started watch=off\n")
				w.revisions.WriteString("2026-01-02T03:04:00Z\tversion=1.0.0\tsha256=x\tby=failover@h\toutcome=failed-over reason=live-unhealthy live=1.1.0@5002\n")
			},
			exit: protocol.ExitHealth, outcome: "failed", reason: "health-gate", previous: "1.0.0", liveHealthy: true, serving: "1.0.0", standby: "",
			seen:    `status=starting`,
			record:  `^outcome=failed reason=health-gate live=1\.0\.0 serving=1\.0\.0`,
			routed:  haproxy.Route{Live: p1},
			started: []string{"5002 1.1.0 r2"},
			stopped: []int{p2},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "failedOver", a.Result().FailedOver, "2026-01-02T03:04:00Z to 1.0.0: outcome=failed-over reason=live-unhealthy live=1.1.0@5002")
			},
		},

		// --- the warm standby, converge ---
		{
			name: "a pinned rollback to the warm standby: no instance start, mode=warm-switch, no canary",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
				w.run(p1, "1.0.0", "r2")
			},
			version:  "1.0.0",
			settings: both(canary(30), func(s *protocol.Settings) { s.RollbackVersion = "1.1.0" }),
			outcome:  "activated", previous: "1.1.0", liveHealthy: true, standby: "1.1.0", live: p1,
			watch:   `^no canary: 1\.0\.0 was the warm standby \(a rollback to what ran before\)$`,
			record:  `^outcome=activated previous=1\.1\.0 mode=warm-switch watch=no canary: 1\.0\.0 was the warm standby \(a rollback to what ran before\)$`,
			routed:  haproxy.Route{Live: p1},
			steps:   []string{`^warm standby 1\.0\.0 on 5001: re-checking its health$`, `^no canary: 1\.0\.0 was the warm standby`, `^standby ready 1\.1\.0 on 5002$`},
			noSteps: []string{`^instance start`, `^canary: `},
			then: func(t *testing.T, w *world, a *Activation) {
				// Through the runtime API, then the config without a reload: no new proxy worker.
				eq(t, "installs", w.installs, []haproxy.Route(nil))
				eq(t, "switch events", w.events[:2], []string{"flip 5001 5002", "persist live=5001 canary=0 percent=0"})
				eq(t, "current", w.current, "1.0.0")
				eq(t, "phases", phaseNames(a), []string{"recheck", "switch", "config", "drain", "standby", "total"})
			},
		},
		{
			name: "warm rollback: the drain ends when the old server's last in-flight request does (scur 0), not at drainSeconds",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
				w.run(p1, "1.0.0", "r2")
				w.busy[p2] = 130 * time.Millisecond
			},
			version:  "1.0.0",
			settings: func(s *protocol.Settings) { s.RollbackVersion = "1.1.0"; s.DrainSeconds = 30 },
			outcome:  "activated", previous: "1.1.0", liveHealthy: true, standby: "1.1.0", live: p1,
			watch:  `^off \(no canary, no soak\)$`,
			record: `^outcome=activated previous=1\.1\.0 mode=warm-switch`,
			routed: haproxy.Route{Live: p1},
			steps:  []string{`^switched to 1\.0\.0 on 5001$`, `^drained 1\.1\.0 on 5002$`},
			then: func(t *testing.T, w *world, a *Activation) {
				// Polled every 20 ms: done at the first look after 130 ms.
				eq(t, "drain ms", phaseMs(a, "drain"), int64(140))
				eq(t, "installs", w.installs, []haproxy.Route(nil))
			},
		},
		{
			name: "warm rollback: a request that never ends holds the drain only until drainSeconds",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
				w.run(p1, "1.0.0", "r2")
				w.busy[p2] = time.Hour
			},
			version:  "1.0.0",
			settings: func(s *protocol.Settings) { s.RollbackVersion = "1.1.0"; s.DrainSeconds = 2 },
			outcome:  "activated", previous: "1.1.0", liveHealthy: true, standby: "1.1.0", live: p1,
			watch:  `^off \(no canary, no soak\)$`,
			record: `^outcome=activated previous=1\.1\.0 mode=warm-switch`,
			routed: haproxy.Route{Live: p1},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "drain ms", phaseMs(a, "drain"), int64(2000))
			},
		},
		{
			name: "warm rollback without the runtime API's counters: the drain waits out the old port's connections",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
				w.run(p1, "1.0.0", "r2")
				w.noCounts = true
				w.busy[p2] = 300 * time.Millisecond
			},
			version:  "1.0.0",
			settings: func(s *protocol.Settings) { s.RollbackVersion = "1.1.0"; s.DrainSeconds = 30 },
			outcome:  "activated", previous: "1.1.0", liveHealthy: true, standby: "1.1.0", live: p1,
			watch:  `^off \(no canary, no soak\)$`,
			record: `^outcome=activated previous=1\.1\.0 mode=warm-switch`,
			routed: haproxy.Route{Live: p1},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "drain ms", phaseMs(a, "drain"), int64(300))
			},
		},
		{
			name: "warm rollback with the runtime API refusing the flip: the proxy is reloaded instead, and the drain waits for the old port",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
				w.run(p1, "1.0.0", "r2")
				w.flipErr = errors.New("Unknown command")
				w.busy[p2] = 100 * time.Millisecond
			},
			version:  "1.0.0",
			settings: func(s *protocol.Settings) { s.RollbackVersion = "1.1.0"; s.DrainSeconds = 30 },
			outcome:  "activated", previous: "1.1.0", liveHealthy: true, standby: "1.1.0", live: p1,
			watch:  `^off \(no canary, no soak\)$`,
			record: `^outcome=activated previous=1\.1\.0 mode=warm-switch`,
			routed: haproxy.Route{Live: p1},
			steps:  []string{`^switch through the runtime API failed \(Unknown command\): reloading the proxy instead$`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", w.installs, []haproxy.Route{{Live: p1}})
				eq(t, "drain ms", phaseMs(a, "drain"), int64(100))
			},
		},
		{
			name: "warm rollback with the config refused after the flip: the proxy is reloaded with the route, still activated",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
				w.run(p1, "1.0.0", "r2")
				w.persistErr = errors.New("disk full")
			},
			version:  "1.0.0",
			settings: func(s *protocol.Settings) { s.RollbackVersion = "1.1.0" },
			outcome:  "activated", previous: "1.1.0", liveHealthy: true, standby: "1.1.0", live: p1,
			watch:  `^off \(no canary, no soak\)$`,
			record: `^outcome=activated previous=1\.1\.0 mode=warm-switch`,
			routed: haproxy.Route{Live: p1},
			steps:  []string{`^writing the proxy config failed \(disk full\): reloading the proxy instead$`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", w.installs, []haproxy.Route{{Live: p1}})
			},
		},
		{
			name: "an upgrade (a new instance) reloads the proxy and drains the old port's last request",
			world: func(w *world) {
				w.deployed("1.0.0", "r1", p1)
				w.busy[p1] = 240 * time.Millisecond
			},
			version:  "1.1.0",
			settings: func(s *protocol.Settings) { s.DrainSeconds = 30 },
			outcome:  "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^off \(no canary, no soak\)$`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started`,
			started: []string{"5002 1.1.0 r2", "5001 1.0.0 r2"},
			routed:  haproxy.Route{Live: p2},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", w.installs[:1], []haproxy.Route{{Live: p2}})
				eq(t, "drain ms", phaseMs(a, "drain"), int64(240))
				eq(t, "phases", phaseNames(a), []string{"gate", "switch", "config", "drain", "standby", "total"})
			},
		},
		{
			name: "rollback-all: the fleet's switch back to the warm standby names the release left and the host that failed; the release left stays warm",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
				w.run(p1, "1.0.0", "r2")
			},
			version:  "1.0.0",
			settings: func(s *protocol.Settings) { s.RollbackVersion = "1.1.0" },
			req: func(r *Request) {
				r.RollbackAll = &RollbackAll{From: "1.1.0", FromSha256: strings.Repeat("b", 64), FailedHost: "web-3"}
			},
			outcome: "rolled-back", reason: "rollback-all", previous: "1.1.0", liveHealthy: true, serving: "1.0.0", standby: "1.1.0", live: p1,
			watch:   `^off \(no canary, no soak\)$`,
			record:  `^outcome=rolled-back reason=rollback-all failed-host=web-3 to=1\.0\.0 mode=warm-switch watch=off`,
			routed:  haproxy.Route{Live: p1},
			noSteps: []string{`^instance start`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "current", w.current, "1.0.0")
			},
		},
		{
			name: "rollback-all without a warm standby: refused, nothing started, the live release untouched",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
			},
			version:  "1.0.0",
			settings: func(s *protocol.Settings) { s.RollbackVersion = "1.1.0" },
			req: func(r *Request) {
				r.RollbackAll = &RollbackAll{From: "1.1.0", FromSha256: strings.Repeat("b", 64), FailedHost: "web-3"}
			},
			exit: protocol.ExitRefused, outcome: "failed", reason: "rollback-all", previous: "1.1.0", liveHealthy: true, serving: "1.1.0",
			seen:    `^no warm standby of 1\.0\.0 on 5001: a fleet's switch back starts no process$`,
			record:  `^outcome=failed reason=rollback-all live=1\.1\.0 serving=1\.1\.0`,
			routed:  haproxy.Route{Live: p2},
			noSteps: []string{`^instance start`},
		},
		{
			name: "the warm standby fails its gate: exit 6, left running as it was, the live one untouched",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
				w.run(p1, "1.0.0", "r2")
				w.b("1.0.0").Unhealthy = true
			},
			version:  "1.0.0",
			settings: func(s *protocol.Settings) { s.RollbackVersion = "1.1.0" },
			exit:     protocol.ExitHealth, outcome: "failed", reason: "health-gate", previous: "1.1.0", liveHealthy: true, serving: "1.1.0",
			seen:   `^HTTP 503 from http://127\.0\.0\.1:5001/health: status=starting version=1\.0\.0$`,
			record: `^outcome=failed reason=health-gate live=1\.1\.0 serving=1\.1\.0 seen=HTTP 503`,
			routed: haproxy.Route{Live: p2},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "standby still running", w.slots[p1].active && w.slots[p1].version == "1.0.0", true)
			},
		},
		{
			name: "converge: already live with the same revision: routed, current and the standby follow, nothing started",
			world: func(w *world) {
				w.deployed("1.1.0", "r2", p2)
				w.run(p1, "1.0.0", "r2")
				w.current = "1.0.0" // a hand-moved link
			},
			outcome: "converged", previous: "1.1.0", liveHealthy: true, standby: "1.0.0", live: p2,
			record: `^outcome=converged live=5002$`,
			routed: haproxy.Route{Live: p2},
			steps:  []string{`^already live on 5002$`, `^standby ready 1\.0\.0 on 5001$`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", w.installs, []haproxy.Route{{Live: p2}})
				eq(t, "current", w.current, "1.1.0")
				eq(t, "umbrella started", w.umbrella, 1)
				eq(t, "commit", a.Result().Commit, "c-1.1.0")
				if !slices.Contains(w.wantedSet, "5002 true") {
					t.Errorf("5002 not wanted: %v", w.wantedSet)
				}
			},
		},
		{
			name:     "the same version on another revision is no converge: started on the other port",
			world:    func(w *world) { w.deployed("1.1.0", "r1", p2) },
			settings: func(s *protocol.Settings) { s.RollbackVersion = "" },
			outcome:  "activated", previous: "1.1.0", liveHealthy: true, live: p1,
			watch:   `^off`,
			record:  `^outcome=activated previous=1\.1\.0 mode=started`,
			started: []string{"5001 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
		},

		// --- failures before anything takes a request ---
		{
			name:    "release incomplete: exit 4, nothing started",
			world:   func(w *world) { w.deployed("1.0.0", "r2", p1) },
			version: "1.2.0",
			exit:    protocol.ExitIncomplete, outcome: "failed", reason: "release-incomplete", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:   `^release 1\.2\.0 is not complete on the host$`,
			record: `^outcome=failed reason=release-incomplete live=1\.0\.0 serving=1\.0\.0 seen=release 1\.2\.0 is not complete on the host$`,
			routed: haproxy.Route{Live: p1},
			then:   func(t *testing.T, w *world, a *Activation) { eq(t, "installs", len(w.installs), 0) },
		},
		{
			name: "the beforeActivate hook fails: exit 5, its last five lines seen, nothing started",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.hookOut = "one\ntwo\nthree\nfour\nconnecting to *** with ***\n\tretrying\nmigration failed\n"
				w.hookErr = errors.New("exit status 3")
			},
			settings: func(s *protocol.Settings) { s.BeforeActivate = "./migrate" },
			req:      func(r *Request) { r.RunHook = true },
			exit:     protocol.ExitHook, outcome: "failed", reason: "beforeActivate-hook", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:   `^hooks\.beforeActivate failed: three four connecting to \*\*\* with \*\*\*  retrying migration failed$`,
			record: `^outcome=failed reason=beforeActivate-hook live=1\.0\.0 serving=1\.0\.0 seen=hooks\.beforeActivate failed: three four`,
			routed: haproxy.Route{Live: p1},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "hook", a.Result().Hook, "three four connecting to *** with ***  retrying migration failed")
				eq(t, "installs", len(w.installs), 0)
			},
		},
		{
			name: "the gate fails (the release answers unhealthy): exit 6, the new instance stopped, the live one untouched, the proxy not re-routed",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.b("1.1.0").Unhealthy = true
			},
			exit: protocol.ExitHealth, outcome: "failed", reason: "health-gate", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^HTTP 503 from http://127\.0\.0\.1:5002/health: status=starting version=1\.1\.0$`,
			record:  `^outcome=failed reason=health-gate live=1\.0\.0 serving=1\.0\.0 seen=HTTP 503 from http://127\.0\.0\.1:5002/health: status=starting version=1\.1\.0$`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			steps:  []string{`^gate failed on 5002: HTTP 503`, `^result failed: health-gate; serving 1\.0\.0$`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", len(w.installs), 0)
				eq(t, "current", w.current, "1.0.0")
				gateTook(t, w, 2)
			},
		},
		{
			name: "the gate times out (nothing answers on the new port): exit 6, the new instance stopped",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.b("1.1.0").Down = true
			},
			exit: protocol.ExitHealth, outcome: "failed", reason: "health-gate", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^no answer from http://127\.0\.0\.1:5002/health: connection refused$`,
			record:  `^outcome=failed reason=health-gate live=1\.0\.0 serving=1\.0\.0 seen=no answer from`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", len(w.installs), 0)
				gateTook(t, w, 2)
			},
		},
		{
			name: "the gate times out (still starting when the time is up)",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.b("1.1.0").HealthyAfter = 1000
			},
			exit: protocol.ExitHealth, outcome: "failed", reason: "health-gate", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `status=starting version=1\.1\.0$`,
			record:  `^outcome=failed reason=health-gate`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
		},
		{
			name: "a smoke check fails the gate",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.b("1.1.0").SmokeFail = "check GET /ready: HTTP 500, wanted 200"
			},
			settings: func(s *protocol.Settings) { s.Checks = []protocol.Check{{Path: "/ready", Status: 200}} },
			exit:     protocol.ExitHealth, outcome: "failed", reason: "health-gate", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^check GET /ready: HTTP 500, wanted 200$`,
			record:  `^outcome=failed reason=health-gate live=1\.0\.0 serving=1\.0\.0 seen=check GET /ready`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
		},
		{
			name: "another process listening on the idle port fails the gate, named: its healthy answers are not the release's",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.foreign[p2] = []string{squatter, "pid 78 (python3, uid 1000, cgroup unknown)"}
			},
			exit: protocol.ExitHealth, outcome: "failed", reason: "health-gate", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^port 5002 is also held by ` + regexp.QuoteMeta(squatter) + `; pid 78 \(python3, uid 1000, cgroup unknown\) - not only by complinist@5002\.service: its answers are not the release's$`,
			record:  `^outcome=failed reason=health-gate live=1\.0\.0 serving=1\.0\.0 seen=port 5002 is also held by pid 77`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			then:   func(t *testing.T, w *world, a *Activation) { eq(t, "installs", len(w.installs), 0) },
		},
		{
			// Issue 29 finding 10: the live instance gone bad squats the idle port; before, every
			// later deploy failed its gate, the fix included.
			name: "a process of the live instance's own unit listening on the idle port: ended before the start, named in the steps, and the deploy goes on",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.squat[p2] = []squat{{Pid: 90, Ours: true}}
			},
			outcome: "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^off`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			steps:   []string{`^idle port 5002 reclaimed: killed pid 90 \(python3\) of complinist@5001\.service, which listened on the idle port 5002$`, `^instance start 1\.1\.0 on 5002$`},
			then: func(t *testing.T, w *world, a *Activation) {
				if i, j := slices.Index(w.events, "reclaim 5002"), slices.Index(w.events, "start 5002 1.1.0 r2"); i < 0 || j < i {
					t.Errorf("the idle port is reclaimed before the start: %v", w.events)
				}
			},
		},
		{
			name: "anyone else's listener on the idle port: refused before the hook or any start, naming its pid, command, uid and cgroup",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.squat[p2] = []squat{{Pid: 91}}
			},
			settings: func(s *protocol.Settings) { s.BeforeActivate = "bin/migrate" },
			req:      func(r *Request) { r.RunHook = true },
			exit:     protocol.ExitHealth, outcome: "failed", reason: "idle-port", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:   `^the idle instance port 5002 is held by pid 91 \(nc, uid 1000, cgroup /user\.slice/user-1000\.slice/session-3\.scope\) - not this service's own units, so not ended here: stop it, then deploy again$`,
			record: `^outcome=failed reason=idle-port live=1\.0\.0 serving=1\.0\.0 seen=the idle instance port 5002 is held by pid 91`,
			routed: haproxy.Route{Live: p1},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "hook runs", w.hookRuns, 0)
				eq(t, "installs", len(w.installs), 0)
			},
		},
		{
			name: "the live instance does not answer and the gate fails: what serves is checked (1.0.0 answers 503)",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.b("1.0.0").Unhealthy = true
				w.b("1.1.0").Unhealthy = true
			},
			exit: protocol.ExitHealth, outcome: "failed", reason: "health-gate", previous: "1.0.0", liveHealthy: false, serving: "1.0.0",
			seen:    `status=starting version=1\.1\.0$`,
			record:  `^outcome=failed reason=health-gate live=1\.0\.0 serving=1\.0\.0 `,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			steps:  []string{`^live 1\.0\.0 on 5001 does not answer \(HTTP 503 .*\): left as it is; the new release starts on the other port$`},
		},

		// --- the live instance not answering ---
		{
			name: "the live instance does not answer: the release starts on the other port, the canary skipped; the dead one, not the standby's health, is stopped after the switch",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.b("1.0.0").Down = true
			},
			settings: canary(30),
			outcome:  "activated", previous: "1.0.0", liveHealthy: false, live: p2,
			watch:   `^no canary: no healthy live release to share requests with$`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started watch=no canary: no healthy live release to share requests with$`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p1},
			routed:  haproxy.Route{Live: p2},
			steps:   []string{`^live 1\.0\.0 on 5001 does not answer \(no answer from http://127\.0\.0\.1:5001/health: connection refused\): left as it is`, `^standby 1\.0\.0 not healthy, stopped: no answer`},
			noSteps: []string{`^canary: `},
			then: func(t *testing.T, w *world, a *Activation) {
				if a.Result().StandbyProblem == "" {
					t.Error("no standbyProblem")
				}
			},
		},

		// --- the canary ---
		{
			name: "a good canary takes its share for its seconds, then the full switch; the record carries the watch's figures",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.traffic[p1] = rate{45, 0}
				w.traffic[p2] = rate{5, 0}
			},
			settings: canary(1),
			outcome:  "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^10% canary 1s of 1s: new 5 requests 0 errors \(0\.00%\), previous 45 requests 0 errors \(0\.00%\); limit 1\.00% \(10 x previous, maxErrorRatio\); minRequests 5$`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started watch=10% canary 1s of 1s: new 5 requests 0 errors`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			steps: []string{
				`^canary: 10% of new requests to 1\.1\.0 on 5002 for 1s \(watch: errorRateFactor 10, minRequests 5, maxErrorRatio 0\.01\)$`,
				`^watch passed: canary 1s of 1s: new 5 requests`,
				// The bash stepped the summary after the canary too ([ -z "$WATCH_SUMMARY" ] || step).
				`^10% canary 1s of 1s: new 5 requests 0 errors`,
			},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", w.installs, []haproxy.Route{{Live: p1, Canary: p2, Percent: 10}, {Live: p2}})
				eq(t, "flips", len(w.flips), 0)
				eq(t, "pauses", w.pauses, []string{"gate", "canary", "switch"})
				ph := a.Result().WatchPhases
				if len(ph) != 1 || ph[0].Phase != "canary" || ph[0].Verdict != "ok" || ph[0].NewRequests != 5 || ph[0].PrevRequests != 45 {
					t.Errorf("watch phases %+v", ph)
				}
			},
		},
		{
			name: "a canary with too few requests says so, decides nothing and goes on to the full switch",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.traffic[p1] = rate{45, 0}
			},
			settings: canary(1),
			outcome:  "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^10% too few requests to judge \(0 of minRequests 5\), nothing decided: canary 1s of 1s: new 0 requests`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started watch=10% too few requests to judge \(0 of minRequests 5\)`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			steps:   []string{`^watch undecided: too few requests to judge \(0 of minRequests 5\), nothing decided: canary 1s of 1s`},
		},
		{
			name: "a canary without counters (the runtime API does not answer) is undecided, said so, and goes on",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.noCounts = true
			},
			settings: canary(1),
			outcome:  "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^10% canary 1s of 1s: the proxy's runtime API \(/run/complinist-proxy/admin\.sock\) gave no counters$`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started watch=10% canary 1s of 1s: the proxy's runtime API`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			steps:   []string{`^watch undecided: canary 1s of 1s: the proxy's runtime API`},
		},
		{
			name: "a canary whose error ratio trips the watch: back to the live release at once, the new instance stopped, outcome=rolled-back; then refused, until acknowledged",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.traffic[p1] = rate{45, 0}
				w.traffic[p2] = rate{5, 5}
			},
			settings: canary(30),
			exit:     protocol.ExitHealth, outcome: "rolled-back", reason: "watch", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen: `^canary 1s of 30s: new 5 requests 5 errors \(100\.00%\), previous 45 requests 0 errors \(0\.00%\); limit 1\.00% \(10 x previous, maxErrorRatio\); minRequests 5` +
				`; exposed from its first request to the switch back \(1s\): 5 requests 5 errors of 50 in all$`,
			record:  `^outcome=rolled-back reason=watch live=1\.0\.0 serving=1\.0\.0 seen=canary 1s of 30s: new 5 requests 5 errors .*; exposed from its first request to the switch back`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed:  haproxy.Route{Live: p1},
			tripped: true,
			steps:   []string{`^watch tripped: canary 1s of 30s: new 5 requests 5 errors`, `^switched back to 1\.0\.0 on 5001 0 ms after the watch tripped$`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "flips", w.flips, [][2]int{{p1, p2}})
				eq(t, "installs", w.installs, []haproxy.Route{{Live: p1, Canary: p2, Percent: 10}, {Live: p1}})
				eq(t, "current", w.current, "1.0.0")
				eq(t, "pauses", w.pauses, []string{"gate", "canary", "switch-back"})
				i, j := slices.Index(w.events, "flip 5001 5002"), slices.Index(w.events, "stop 5002")
				if i < 0 || j < i {
					t.Errorf("the new instance must stop after the flip: %v", w.events)
				}

				// The same version is not tried again: refused before anything starts, naming the verdict.
				w.records, w.steps, w.events, w.installs, w.started, w.stopped = nil, nil, nil, nil, nil, nil
				s := base()
				canary(30)(&s)
				a2, err := w.activate(request(s, "1.1.0"))
				wantExit(t, err, protocol.ExitRefused)
				r := a2.Result()
				eq(t, "refused outcome", [3]any{r.Outcome, r.Reason, r.Exit}, [3]any{"refused", "watch-rolled-back", protocol.ExitRefused})
				match(t, "refused seen", r.Seen, `^2026-01-02T03:04:06Z live=1\.0\.0 serving=1\.0\.0 seen=canary 1s of 30s: new 5 requests 5 errors`)
				eq(t, "refused records", w.records, []recordCall{{"1.1.0", sha, "ci@runner", "outcome=refused reason=watch-rolled-back"}})
				eq(t, "refused: nothing done", w.events, []string(nil))
				eq(t, "refused reported done", w.reports[len(w.reports)-1].Done, true)
				match(t, "refused step", strings.Join(w.steps, "\n"), `^refused: 1\.1\.0 was rolled back by the error-rate watch \(2026-01-02T03:04:06Z live=1\.0\.0`)

				// Another version is not refused by it.
				w.records = nil
				a3, err := w.activate(request(s, "1.0.0"))
				wantExit(t, err, exitOK)
				eq(t, "another version converges", a3.Result().Outcome, "converged")

				// Acknowledged (acknowledgeRolledBack), it is deployed again; a good canary passes.
				w.records, w.events = nil, nil
				w.traffic[p2] = rate{5, 0}
				s.Acknowledged, s.Canary.Seconds = true, 1
				a4, err := w.activate(request(s, "1.1.0"))
				wantExit(t, err, exitOK)
				eq(t, "acknowledged outcome", a4.Result().Outcome, "activated")
				eq(t, "acknowledged records", len(w.records), 1)
				match(t, "acknowledged record", w.records[0].Outcome, `^outcome=activated previous=1\.0\.0 mode=started watch=10% canary 1s of 1s: new 5 requests 0 errors`)
				eq(t, "routed", w.effectiveRoute(), haproxy.Route{Live: p2})
			},
		},
		{
			name: "the canary is not started (haproxy refuses its config): routed back to the live release, the new instance stopped",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.installErr = func(r haproxy.Route) error {
					if r.Canary != 0 {
						return errors.New("haproxy refused the generated config: [ALERT] config refused by the test")
					}
					return nil
				}
			},
			settings: canary(30),
			exit:     protocol.ExitHealth, outcome: "failed", reason: "canary", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^haproxy refused the generated config: \[ALERT\] config refused by the test$`,
			record:  `^outcome=failed reason=canary live=1\.0\.0 serving=1\.0\.0 seen=haproxy refused the generated config`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			steps:  []string{`^canary not started: haproxy refused`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", w.installs, []haproxy.Route{{Live: p1}})
			},
		},
		{
			name: "the canary is not started (the proxy does not take its weight within 15 s): routed back, the new instance stopped",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.noWeight = true
			},
			settings: canary(30),
			exit:     protocol.ExitHealth, outcome: "failed", reason: "canary", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^the proxy did not take the canary config within 15 s$`,
			record:  `^outcome=failed reason=canary live=1\.0\.0 serving=1\.0\.0 seen=the proxy did not take the canary config within 15 s$`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
		},
		{
			name: "the canary trips after the live release stopped answering: could not switch back, the new one left running",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.traffic[p1] = rate{45, 0}
				w.traffic[p2] = rate{1, 1}
				w.onWatch = func(w *world, n *WatchNow) {
					if w.now.Sub(w.t0) >= 1e9 {
						w.b("1.0.0").Down = true
					}
				}
			},
			settings: canary(30),
			exit:     protocol.ExitHealth, outcome: "failed", reason: "watch", previous: "1.0.0", liveHealthy: true, serving: "none",
			seen:    `^canary 5s of 30s: new 5 requests 5 errors .*; could not switch back: 1\.0\.0 on 5001 does not answer \(no answer from http://127\.0\.0\.1:5001/health: connection refused\)$`,
			record:  `^outcome=failed reason=watch live=1\.0\.0 serving=none seen=canary 5s of 30s: .*; could not switch back: 1\.0\.0 on 5001 does not answer`,
			started: []string{"5002 1.1.0 r2"},
			// As the bash: nothing it could switch to answers, so nothing is switched.
			routed: haproxy.Route{Live: p1, Canary: p2, Percent: 10},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "flips", len(w.flips), 0)
				eq(t, "switchedBackAt", a.Result().SwitchedBackAt, int64(0))
			},
		},

		// --- the switch ---
		{
			name: "the switch fails (haproxy refuses the config): the live release stays routed, the new instance stopped",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.installErr = func(r haproxy.Route) error {
					if r.Live == p2 {
						return errors.New("haproxy refused the generated config: [ALERT] config refused by the test")
					}
					return nil
				}
			},
			exit: protocol.ExitHealth, outcome: "failed", reason: "switch", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^haproxy refused the generated config`,
			record:  `^outcome=failed reason=switch live=1\.0\.0 serving=1\.0\.0 seen=haproxy refused the generated config`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			steps:  []string{`^switch failed: haproxy refused`},
			then:   func(t *testing.T, w *world, a *Activation) { eq(t, "current", w.current, "1.0.0") },
		},
		{
			name: "the switch fails (the new release never answers through the proxy): routed back to the live release",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.b("1.1.0").Degrade = true
			},
			exit: protocol.ExitHealth, outcome: "failed", reason: "switch", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^the proxy did not answer with 1\.1\.0 within 15 s: HTTP 503 from http://127\.0\.0\.1:5000/health: status=degraded version=1\.1\.0$`,
			record:  `^outcome=failed reason=switch live=1\.0\.0 serving=1\.0\.0 seen=the proxy did not answer with 1\.1\.0 within 15 s`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", w.installs, []haproxy.Route{{Live: p2}, {Live: p1}})
				eq(t, "current", w.current, "1.0.0")
			},
		},
		{
			name: "a listener joins the new port after the gate: seen once the port takes requests, the switch undone, the new instance stopped",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.foreignOnRoute[p2] = squatter
			},
			exit: protocol.ExitHealth, outcome: "failed", reason: "switch", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^after the switch: port 5002 is also held by ` + regexp.QuoteMeta(squatter) + ` - not only by complinist@5002\.service: its answers are not the release's$`,
			record:  `^outcome=failed reason=switch live=1\.0\.0 serving=1\.0\.0 seen=after the switch: port 5002 is also held by pid 77`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			steps:  []string{`^switch undone: port 5002 is also held`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", w.installs, []haproxy.Route{{Live: p2}, {Live: p1}})
				eq(t, "current", w.current, "1.0.0")
			},
		},
		{
			name: "a listener beside the proxy on the service port (IPv6, another address) refuses the activation before anything starts",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.foreign[svcPort] = []string{squatter}
			},
			exit: protocol.ExitHealth, outcome: "failed", reason: "service-port", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:   `^the service port 5000 is also held by ` + regexp.QuoteMeta(squatter) + ` - not only by complinist-proxy\.service: users may be answered by it$`,
			record: `^outcome=failed reason=service-port live=1\.0\.0 serving=1\.0\.0 seen=the service port 5000 is also held by pid 77`,
			routed: haproxy.Route{Live: p1},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "started", len(w.started), 0)
				eq(t, "installs", len(w.installs), 0)
			},
		},
		{
			name:     "a first deploy with someone on the service port before the proxy starts (IPv6 only, or another address): refused before the switch, naming it",
			version:  "1.0.0",
			settings: func(s *protocol.Settings) { s.RollbackVersion = "" },
			world:    func(w *world) { w.foreign[svcPort] = []string{squatter} },
			exit:     protocol.ExitHealth, outcome: "failed", reason: "service-port", serving: "none",
			seen:    `^the service port 5000 is also held by pid 77`,
			record:  `^outcome=failed reason=service-port live=none serving=none seen=the service port 5000 is also held by pid 77`,
			started: []string{"5001 1.0.0 r2"}, stopped: []int{p1},
			routed: haproxy.Route{},
			steps:  []string{`^switch refused: the service port 5000`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", len(w.installs), 0)
			},
		},
		{
			name: "a listener joins the service port once the proxy routes to the new release: the switch undone",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.foreignOnRoute[svcPort] = squatter
			},
			exit: protocol.ExitHealth, outcome: "failed", reason: "switch", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^after the switch: the service port 5000 is also held by pid 77`,
			record:  `^outcome=failed reason=switch live=1\.0\.0 serving=1\.0\.0 seen=after the switch: the service port 5000`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
		},
		{
			name:     "a first deploy whose port a listener joins after the gate: unrouted (nothing it could route to is trusted)",
			version:  "1.0.0",
			world:    func(w *world) { w.foreignOnRoute[p1] = squatter },
			settings: func(s *protocol.Settings) { s.RollbackVersion = "" },
			exit:     protocol.ExitHealth, outcome: "failed", reason: "switch", serving: "none",
			seen:    `^after the switch: port 5001 is also held by pid 77`,
			record:  `^outcome=failed reason=switch live=none serving=none seen=after the switch`,
			started: []string{"5001 1.0.0 r2"}, stopped: []int{p1},
			routed: haproxy.Route{},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "installs", w.installs, []haproxy.Route{{Live: p1}, {}})
			},
		},

		// --- the soak ---
		{
			name: "a soak that passes: its figures in the watch, the soak's own probes not counted",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.initial[p1] = haproxy.Counter{Requests: 40}
				w.traffic[p2] = rate{10, 0}
			},
			settings: soak(2),
			outcome:  "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^soak 2s of 2s: new 20 requests 0 errors \(0\.00%\), previous 40 requests 0 errors \(0\.00%\); limit 1\.00% \(10 x previous, maxErrorRatio\); minRequests 5$`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started watch=soak 2s of 2s: new 20 requests 0 errors`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			steps:   []string{`^soak 2s$`, `^watch passed: soak 2s of 2s`, `^soak passed$`},
		},
		{
			name: "a canary then a soak: both figures in the watch",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.traffic[p1] = rate{45, 0}
				w.traffic[p2] = rate{10, 0}
			},
			settings: both(canary(1), soak(1)),
			outcome:  "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^10% canary 1s of 1s: new 10 requests 0 errors .*; soak 1s of 1s: new 10 requests 0 errors \(0\.00%\), previous 45 requests`,
			record:  `^outcome=activated previous=1\.0\.0 mode=started watch=10% canary 1s of 1s: .*; soak 1s of 1s: `,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			then: func(t *testing.T, w *world, a *Activation) {
				ph := a.Result().WatchPhases
				if len(ph) != 2 || ph[0].Phase != "canary" || ph[1].Phase != "soak" {
					t.Errorf("watch phases %+v", ph)
				}
			},
		},
		{
			name: "the soak check fails (the release degrades through the proxy): switched back at once, failed-rolled-back reason soak",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.b("1.1.0").Degrade, w.b("1.1.0").DegradeAfter = true, 3 // the switch's three answers, then degraded
			},
			settings: soak(2),
			exit:     protocol.ExitHealth, outcome: "failed-rolled-back", reason: "soak", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^during the soak: HTTP 503 from http://127\.0\.0\.1:5000/health: status=degraded version=1\.1\.0$`,
			record:  `^outcome=failed-rolled-back reason=soak live=1\.0\.0 serving=1\.0\.0 seen=during the soak: HTTP 503`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed:  haproxy.Route{Live: p1},
			tripped: true,
			steps:   []string{`^soak failed: HTTP 503`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "flips", w.flips, [][2]int{{p1, p2}})
				eq(t, "current", w.current, "1.0.0")
			},
		},
		{
			// Issue 29 finding 9: before, a hung request counted only when HAProxy's 60 s server
			// timeout ended it, so this canary passed ("too few requests to judge").
			name: "a canary whose release hangs on every user request (its /health answers): the requests in flight past 4 s count as failed, the watch trips",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.traffic[p1] = rate{45, 0}
				w.traffic[p2] = rate{5, 0}
				w.onWatch = func(w *world, n *WatchNow) {
					if _, ok := w.hungFrom[p2]; !ok && n != nil && n.Phase == "canary" {
						w.hungFrom[p2] = w.now
					}
				}
			},
			settings: canary(30),
			exit:     protocol.ExitHealth, outcome: "rolled-back", reason: "watch", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen: `^canary 5s of 30s: new 5 requests 5 errors \(100\.00%\), previous 225 requests 0 errors \(0\.00%\); limit 1\.00% \(10 x previous, maxErrorRatio\); minRequests 5` +
				`; 5 of the new requests unanswered after 4s, counted as errors; exposed from its first request to the switch back \(5s\): `,
			record:  `^outcome=rolled-back reason=watch live=1\.0\.0 serving=1\.0\.0 seen=canary 5s of 30s: new 5 requests 5 errors .*unanswered after 4s`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed:  haproxy.Route{Live: p1},
			tripped: true,
			steps:   []string{`^watch tripped: canary 5s of 30s: new 5 requests 5 errors`},
		},
		{
			name: "a canary whose release answers, but 30 times slower than the live one in the same window: slow, the watch trips",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.traffic[p1] = rate{45, 0}
				w.traffic[p2] = rate{5, 0}
				w.rtime[p1], w.rtime[p2] = 100, 3000
			},
			settings: canary(30),
			exit:     protocol.ExitHealth, outcome: "rolled-back", reason: "watch", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^canary 1s of 30s: new 5 requests 0 errors \(0\.00%\), .*; slow: mean response 3000 ms, previous 100 ms, limit 1000 ms \(10 x previous, at least 1000 ms\); exposed`,
			record:  `^outcome=rolled-back reason=watch live=1\.0\.0 serving=1\.0\.0 seen=canary 1s of 30s: .*slow: mean response 3000 ms`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed:  haproxy.Route{Live: p1},
			tripped: true,
		},
		{
			name: "without a canary, the soak's watch compares with the previous release's figures from before the switch, trips and switches back",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.initial[p1] = haproxy.Counter{Requests: 10}
				w.traffic[p2] = rate{2, 1}
			},
			settings: soak(30),
			exit:     protocol.ExitHealth, outcome: "rolled-back", reason: "watch", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^soak \d+s of 30s: new \d+ requests \d+ errors \(\d+\.\d\d%\), previous 10 requests 0 errors \(0\.00%\); limit 1\.00% \(10 x previous, maxErrorRatio\); minRequests 5; exposed from its first request to the switch back \(\d+s\): \d+ requests \d+ errors of \d+ in all$`,
			record:  `^outcome=rolled-back reason=watch live=1\.0\.0 serving=1\.0\.0 seen=soak `,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed:  haproxy.Route{Live: p1},
			tripped: true,
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "flips", w.flips, [][2]int{{p1, p2}})
				eq(t, "current", w.current, "1.0.0")
				eq(t, "pauses", w.pauses, []string{"gate", "switch", "switch-back"})
			},
		},
		{
			name: "the soak's watch trips but the previous release does not answer: failed reason watch, could not switch back, the new one keeps serving",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.b("1.0.0").Down = true
				w.initial[p1] = haproxy.Counter{Requests: 10}
				w.traffic[p2] = rate{2, 1}
			},
			settings: soak(30),
			exit:     protocol.ExitHealth, outcome: "failed", reason: "watch", previous: "1.0.0", liveHealthy: false, serving: "1.1.0",
			seen:    `^soak \d+s of 30s: new \d+ requests \d+ errors .*; could not switch back: 1\.0\.0 on 5001 does not answer \(no answer from http://127\.0\.0\.1:5001/health: connection refused\)$`,
			record:  `^outcome=failed reason=watch live=1\.0\.0 serving=1\.1\.0 seen=soak .*could not switch back`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "flips", len(w.flips), 0)
				eq(t, "current", w.current, "1.1.0")
			},
		},

		{
			name:    "a first deploy whose soak trips: nothing to switch back to, failed reason watch, the release keeps serving",
			version: "1.0.0",
			world: func(w *world) {
				w.traffic[p1] = rate{2, 1}
			},
			settings: both(soak(30), func(s *protocol.Settings) { s.RollbackVersion = "" }),
			exit:     protocol.ExitHealth, outcome: "failed", reason: "watch", serving: "1.0.0",
			seen:    `^soak \d+s of 30s: new \d+ requests \d+ errors .*; could not switch back: nothing on no port does not answer \(\)$`,
			record:  `^outcome=failed reason=watch live=none serving=1\.0\.0 seen=soak `,
			started: []string{"5001 1.0.0 r2"},
			routed:  haproxy.Route{Live: p1},
			then:    func(t *testing.T, w *world, a *Activation) { eq(t, "flips", len(w.flips), 0) },
		},
		{
			name: "a listener joins the canary's port during the canary: failed-rolled-back reason canary, switched back at once",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.foreignOnRoute[p2] = squatter
			},
			settings: canary(30),
			exit:     protocol.ExitHealth, outcome: "failed-rolled-back", reason: "canary", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^during the canary: port 5002 is also held by pid 77 .* - not only by complinist@5002\.service: its answers are not the release's$`,
			record:  `^outcome=failed-rolled-back reason=canary live=1\.0\.0 serving=1\.0\.0 seen=during the canary: port 5002`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed:  haproxy.Route{Live: p1},
			tripped: true,
			steps:   []string{`^canary failed: port 5002 is also held`},
			then:    func(t *testing.T, w *world, a *Activation) { eq(t, "flips", w.flips, [][2]int{{p1, p2}}) },
		},
		{
			name: "the watch trips but the proxy does not confirm the flip: could not switch back, said why",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.traffic[p1] = rate{45, 0}
				w.traffic[p2] = rate{5, 5}
				w.flipErr = errors.New("the proxy did not confirm the switch to i5001")
			},
			settings: canary(30),
			exit:     protocol.ExitHealth, outcome: "failed", reason: "watch", previous: "1.0.0", liveHealthy: true, serving: "1.0.0",
			seen:    `^canary 1s of 30s: new 5 requests 5 errors .*; could not switch back: 1\.0\.0 on 5001 does not answer \(the proxy did not confirm the switch to i5001\)$`,
			record:  `^outcome=failed reason=watch live=1\.0\.0 serving=1\.0\.0 seen=canary 1s of 30s`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p1, Canary: p2, Percent: 10},
		},

		// --- interrupted ---
		{
			name: "the context ends during the canary, then Interrupted(143): every request back to the live release, the canary's instance stopped",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.traffic[p1] = rate{45, 0}
				w.traffic[p2] = rate{5, 0}
				w.onWatch = func(w *world, n *WatchNow) {
					if n.Phase == "canary" {
						w.cancel()
					}
				}
			},
			settings:  canary(600),
			exit:      exitInterrupted,
			interrupt: 143,
			outcome:   "failed", reason: "interrupted", previous: "1.0.0", liveHealthy: true,
			seen:    `^the host-side activation stopped early \(exit 143\); see journalctl and the deploy log$`,
			record:  `^outcome=failed reason=interrupted exit=143$`,
			started: []string{"5002 1.1.0 r2"}, stopped: []int{p2},
			routed: haproxy.Route{Live: p1},
			steps:  []string{`^interrupted during the canary: every request back to 1\.0\.0 on 5001$`, `^result failed: interrupted \(exit 143\)$`},
			then: func(t *testing.T, w *world, a *Activation) {
				eq(t, "flips", w.flips, [][2]int{{p1, p2}})
				eq(t, "installs", w.installs, []haproxy.Route{{Live: p1, Canary: p2, Percent: 10}, {Live: p1}})
				i, j := slices.Index(w.events, "flip 5001 5002"), slices.Index(w.events, "stop 5002")
				if i < 0 || j < i {
					t.Errorf("the canary must stop after the flip: %v", w.events)
				}
			},
		},
		{
			name: "the context ends during the soak: interrupted, not a failed soak; the switched-to release keeps serving (as the bash, killed)",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.onWatch = func(w *world, n *WatchNow) {
					if n.Phase == "soak" {
						w.cancel()
					}
				}
			},
			settings:  soak(30),
			exit:      exitInterrupted,
			interrupt: 143,
			outcome:   "failed", reason: "interrupted", previous: "1.0.0", liveHealthy: true,
			seen:    `^the host-side activation stopped early \(exit 143\)`,
			record:  `^outcome=failed reason=interrupted exit=143$`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			noSteps: []string{`^soak failed`, `^interrupted during the canary`},
			then:    func(t *testing.T, w *world, a *Activation) { eq(t, "flips", len(w.flips), 0) },
		},
		{
			name: "the context ends during the hook: nothing started, the stop recorded",
			world: func(w *world) {
				w.deployed("1.0.0", "r2", p1)
				w.hookOut = "migrated"
				w.onHook = func(w *world) { w.cancel() }
			},
			req:       func(r *Request) { r.RunHook = true },
			exit:      exitInterrupted,
			interrupt: 143,
			outcome:   "failed", reason: "interrupted", previous: "1.0.0", liveHealthy: true,
			seen:   `^the host-side activation stopped early \(exit 143\)`,
			record: `^outcome=failed reason=interrupted exit=143$`,
			routed: haproxy.Route{Live: p1},
		},
		{
			name:    "Interrupted after Done does nothing",
			world:   func(w *world) { w.deployed("1.0.0", "r2", p1) },
			outcome: "activated", previous: "1.0.0", liveHealthy: true, standby: "1.0.0", live: p2,
			watch:   `^off`,
			record:  `^outcome=activated`,
			started: []string{"5002 1.1.0 r2"},
			routed:  haproxy.Route{Live: p2},
			then: func(t *testing.T, w *world, a *Activation) {
				before := a.Result()
				n, ev, st := len(w.reports), len(w.events), len(w.steps)
				a.Interrupted(143)
				eq(t, "records", len(w.records), 1)
				eq(t, "reports", len(w.reports), n)
				eq(t, "events", len(w.events), ev)
				eq(t, "steps", len(w.steps), st)
				eq(t, "result", a.Result(), before)
			},
		},
	}

	names := map[string]bool{}
	for _, c := range arcs {
		if names[c.name] {
			t.Fatalf("two arcs named %q", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t)
		})
	}
}

func (c arc) run(t *testing.T) {
	w := newWorld(t)
	if c.world != nil {
		c.world(w)
	}
	s := base()
	if c.settings != nil {
		c.settings(&s)
	}
	version := c.version
	if version == "" {
		version = "1.1.0"
	}
	req := request(s, version)
	if c.req != nil {
		c.req(&req)
	}
	initialLive := w.route.Live

	a, err := w.activate(req)
	wantExit(t, err, c.exit)
	if c.exit == exitInterrupted {
		if len(w.records) != 0 {
			t.Errorf("an interrupted Run recorded %v", w.records)
		}
		if c.interrupt == 0 {
			t.Fatal("an interrupted arc must say its Interrupted exit")
		}
		a.Interrupted(c.interrupt)
	}
	r := a.Result()

	// The result, as reported.
	if len(w.reports) == 0 || !reflect.DeepEqual(w.reports[len(w.reports)-1], r) {
		t.Errorf("the last report is not the result:\n%+v\n%+v", w.reports, r)
	}
	eq(t, "done", r.Done, true)
	eq(t, "v", r.V, protocol.V)
	wantCode := c.exit
	if c.exit == exitInterrupted {
		wantCode = c.interrupt
	}
	eq(t, "exit", r.Exit, wantCode)
	eq(t, "outcome", r.Outcome, c.outcome)
	eq(t, "reason", r.Reason, c.reason)
	eq(t, "previous", r.Previous, c.previous)
	eq(t, "liveHealthy", r.LiveHealthy, c.liveHealthy)
	eq(t, "serving", r.Serving, c.serving)
	eq(t, "standby", r.Standby, c.standby)
	eq(t, "live", r.Live, c.live)
	matchOrEmpty(t, "seen", r.Seen, c.seen)
	matchOrEmpty(t, "watch", r.Watch, c.watch)
	if c.tripped {
		if r.TrippedAt == 0 || r.SwitchedBackAt == 0 || r.TrippedAt > r.SwitchedBackAt {
			t.Errorf("trippedAt %d switchedBackAt %d", r.TrippedAt, r.SwitchedBackAt)
		}
	} else if r.SwitchedBackAt != 0 {
		t.Errorf("switchedBackAt %d without a switch back", r.SwitchedBackAt)
	}
	if r.Outcome == "activated" || r.Outcome == "converged" {
		eq(t, "commit", r.Commit, "c-"+version)
	}

	// revisions.log: one outcome per activation, by who it was for.
	if len(w.records) != 1 {
		t.Fatalf("records %v", w.records)
	}
	rec := w.records[0]
	recVersion, recSha := version, sha
	if ra := a.Req.RollbackAll; ra != nil && r.Outcome == "rolled-back" {
		// A fleet's switch back names the release it left.
		recVersion, recSha = ra.From, ra.FromSha256
	}
	eq(t, "record fields", [3]string{rec.Version, rec.Sha, rec.Who}, [3]string{recVersion, recSha, "ci@runner"})
	match(t, "record", rec.Outcome, c.record)

	// Instances and the proxy.
	eq(t, "started", w.started, c.started)
	eq(t, "stopped", w.stopped, c.stopped)
	eq(t, "routed", w.effectiveRoute(), c.routed)
	untouchedWhileLive(t, w, initialLive)
	if n := len(w.watchNows); n > 0 && w.watchNows[n-1] != nil {
		t.Errorf("a watch left for status to show: %+v", w.watchNows[n-1])
	}

	all := strings.Join(w.steps, "\n")
	for _, re := range c.steps {
		if !regexp.MustCompile(`(?m)` + re).MatchString(all) {
			t.Errorf("no step matches %s in:\n%s", re, all)
		}
	}
	for _, re := range c.noSteps {
		if regexp.MustCompile(`(?m)` + re).MatchString(all) {
			t.Errorf("a step matches %s in:\n%s", re, all)
		}
	}
	if c.then != nil {
		c.then(t, w, a)
	}
	if t.Failed() {
		t.Logf("steps:\n%s\nevents: %v\nresult: %+v", all, w.events, r)
	}
}

// untouchedWhileLive: the instance the proxy routed to was not started or stopped while it was live.
func untouchedWhileLive(t *testing.T, w *world, live int) {
	t.Helper()
	if live == 0 {
		return
	}
	for _, e := range w.events {
		var l, c, p int
		// A reload (install) or a flip made permanent (persist) routes elsewhere: no longer live.
		if n, _ := fmt.Sscanf(strings.Replace(e, "persist ", "install ", 1), "install live=%d canary=%d percent=%d", &l, &c, &p); n == 3 && l != live {
			return
		}
		if e == fmt.Sprintf("stop %d", live) || strings.HasPrefix(e, fmt.Sprintf("start %d ", live)) {
			t.Errorf("the live instance on %d was touched while live (%s): %v", live, e, w.events)
			return
		}
	}
}

// gateTook: the gate waited its timeoutSeconds (virtual) before it gave up.
func gateTook(t *testing.T, w *world, seconds int) {
	t.Helper()
	if d := w.now.Sub(w.t0); d < time.Duration(seconds)*time.Second || d > time.Duration(seconds+1)*time.Second {
		t.Errorf("the activation took %v, want the gate's %ds", d, seconds)
	}
}

func wantExit(t *testing.T, err error, exit int) {
	t.Helper()
	var f *Failed
	switch {
	case exit == exitOK:
		if err != nil {
			t.Fatalf("Run: %v, want nil", err)
		}
	case exit == exitInterrupted:
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("Run: %v, want ErrInterrupted", err)
		}
	default:
		if !errors.As(err, &f) || f.Exit != exit {
			t.Fatalf("Run: %v, want exit %d", err, exit)
		}
	}
}

func phaseNames(a *Activation) []string {
	var names []string
	for _, p := range a.Result().PhasesMs {
		names = append(names, p.Phase)
	}
	return names
}

func phaseMs(a *Activation, name string) int64 {
	for _, p := range a.Result().PhasesMs {
		if p.Phase == name {
			return p.Ms
		}
	}
	return -1
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func match(t *testing.T, what, got, re string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(got) {
		t.Errorf("%s = %q, want it to match %s", what, got, re)
	}
}

func matchOrEmpty(t *testing.T, what, got, re string) {
	t.Helper()
	if re == "" {
		if got != "" {
			t.Errorf("%s = %q, want empty", what, got)
		}
		return
	}
	match(t, what, got, re)
}
