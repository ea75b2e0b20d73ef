package activate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"complinist/agent/internal/haproxy"
	"complinist/agent/internal/protocol"
	"complinist/agent/internal/record"
)

// An in-memory host for the activation: two instance slots behind a proxy on the service
// port, an HTTP side that answers as the instances would, a virtual clock and a host that
// records every call. Nothing here sleeps or touches the machine, so every arc runs in
// microseconds whatever the load.

// The service port and its two instance ports (layout.InstancePorts).
const (
	svcPort = 5000
	p1      = 5001
	p2      = 5002
)

// behaviour is how a release's instance answers, by version (like the bash stand-in's files).
type behaviour struct {
	// Unhealthy answers 503 {"status":"starting"}.
	Unhealthy bool
	// Down: nothing answers (connection refused) although the unit is active.
	Down bool
	// HealthyAfter: the first N probes of an instance after its start answer "starting".
	HealthyAfter int
	// Paths are the health paths it serves (default /health); any other answers 404.
	Paths []string
	// Degrade: through the proxy, the first DegradeAfter answers are healthy, then 503 degraded.
	Degrade      bool
	DegradeAfter int
	// SmokeFail fails every smoke check with this text.
	SmokeFail string
}

type slot struct {
	version, rev string
	active       bool
	wanted       bool
	probes       int // direct and proxied probes since its start
	proxied      int // probes through the proxy since its start
	failNext     int // the next N probes time out
}

// rate is the user traffic a port takes while the proxy sends it requests, per second.
type rate struct{ req, err int64 }

type recordCall struct{ Version, Sha, Who, Outcome string }

type world struct {
	t *testing.T

	now, t0 time.Time
	sleeps  int
	probesN int

	slots    map[int]*slot
	beh      map[string]*behaviour
	complete map[string]bool

	// The proxy.
	configExists, proxyActive bool
	route                     haproxy.Route
	flipTo                    int
	maint                     map[int]bool
	installErr                func(haproxy.Route) error
	noWeight                  bool
	noCounts                  bool
	rtime                     map[int]int64   // each port's mean response time, ms
	squat                     map[int][]squat // listeners on a port before the activation starts anything
	flipErr                   error
	persistErr                error
	busy                      map[int]time.Duration // a port keeps an in-flight request this long after traffic leaves it
	busyUntil                 map[int]time.Time
	traffic                   map[int]rate
	took                      map[int]time.Duration // how long each port took user requests
	initial                   map[int]haproxy.Counter
	extra                     map[int]haproxy.Counter // probes through the proxy: the host backend's, never judged
	hungFrom                  map[int]time.Time       // PORT hangs every user request from this time on
	foreign                   map[int][]string
	foreignOnRoute            map[int]string // a listener joins PORT when the proxy first routes to it

	// The host.
	hookOut  string
	hookErr  error
	hookRuns int
	current  string
	freed    int
	umbrella int

	events    []string // start/stop/install/flip, in order
	started   []string // "PORT VERSION REV"
	stopped   []int
	wantedSet []string // "PORT yes|no"
	installs  []haproxy.Route
	flips     [][2]int
	records   []recordCall
	revisions strings.Builder
	steps     []string
	reports   []protocol.Result
	watchNows []*WatchNow
	pauses    []string

	// Hooks a case sets: on every WatchNow (e.g. cancel the context during the canary).
	onWatch func(w *world, n *WatchNow)
	onHook  func(w *world)
	cancel  context.CancelFunc
}

func newWorld(t *testing.T) *world {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &world{
		t: t, now: t0, t0: t0,
		slots:          map[int]*slot{p1: {}, p2: {}},
		beh:            map[string]*behaviour{},
		complete:       map[string]bool{"1.0.0": true, "1.1.0": true},
		maint:          map[int]bool{},
		traffic:        map[int]rate{},
		took:           map[int]time.Duration{},
		initial:        map[int]haproxy.Counter{},
		extra:          map[int]haproxy.Counter{},
		hungFrom:       map[int]time.Time{},
		rtime:          map[int]int64{},
		squat:          map[int][]squat{},
		foreign:        map[int][]string{},
		foreignOnRoute: map[int]string{},
		busy:           map[int]time.Duration{},
		busyUntil:      map[int]time.Time{},
	}
}

// deployed: VERSION (revision REV) runs on LIVE behind the active proxy.
func (w *world) deployed(version, rev string, live int) *world {
	w.run(live, version, rev)
	w.route = haproxy.Route{Live: live}
	w.configExists, w.proxyActive = true, true
	w.current = version
	return w
}

// run: VERSION (revision REV) runs on PORT, routed or not.
func (w *world) run(port int, version, rev string) *world {
	*w.slots[port] = slot{version: version, rev: rev, active: true, wanted: true}
	return w
}

func (w *world) b(version string) *behaviour {
	if w.beh[version] == nil {
		w.beh[version] = &behaviour{}
	}
	return w.beh[version]
}

func (w *world) deps() Deps {
	return Deps{Inst: fakeInst{w}, Proxy: fakeProxy{w}, HTTP: fakeHTTP{w}, Clock: fakeClock{w}, Host: fakeHost{w}}
}

// takes: the proxy sends PORT user requests now.
func (w *world) takes(port int) bool {
	if !w.proxyActive || w.maint[port] {
		return false
	}
	return port == w.route.Live || port == w.route.Canary || port == w.flipTo
}

// routedTo is where a request to the service port goes now (the live server, as the bash
// stand-in's curl answered from the first enabled server).
func (w *world) routedTo() int {
	if !w.proxyActive {
		return 0
	}
	if w.flipTo != 0 {
		return w.flipTo
	}
	if w.maint[w.route.Live] {
		return 0
	}
	return w.route.Live
}

// effectiveRoute is what the runtime API shows: the config's route, a flip applied.
func (w *world) effectiveRoute() haproxy.Route {
	if w.flipTo != 0 {
		return haproxy.Route{Live: w.flipTo}
	}
	return w.route
}

func (w *world) event(format string, args ...any) {
	w.events = append(w.events, fmt.Sprintf(format, args...))
}

// --- Instances ---

type fakeInst struct{ w *world }

func (f fakeInst) Version(port int) string { return f.w.slots[port].version }
func (f fakeInst) Rev(port int) string     { return f.w.slots[port].rev }
func (f fakeInst) Active(port int) bool    { return f.w.slots[port].active }

func (f fakeInst) Start(port int, version, rev string) error {
	f.w.event("start %d %s %s", port, version, rev)
	f.w.started = append(f.w.started, fmt.Sprintf("%d %s %s", port, version, rev))
	s := f.w.slots[port]
	*s = slot{version: version, rev: rev, active: true, wanted: s.wanted}
	return nil
}

func (f fakeInst) Stop(port int) {
	f.w.event("stop %d", port)
	f.w.stopped = append(f.w.stopped, port)
	// A stopped instance lets go of its release (instance_stop): link, rev, wanted.
	*f.w.slots[port] = slot{}
}

func (f fakeInst) SetWanted(port int, wanted bool) {
	f.w.slots[port].wanted = wanted
	f.w.wantedSet = append(f.w.wantedSet, fmt.Sprintf("%d %v", port, wanted))
}

func (f fakeInst) Foreign(port int) []string { return slices.Clone(f.w.foreign[port]) }

func (f fakeInst) OpenConnections(port int) int { return f.w.inFlight(port) }

// inFlight: the request a port with a busy time still serves after traffic left it.
func (w *world) inFlight(port int) int {
	if w.now.Before(w.busyUntil[port]) {
		return 1
	}
	return 0
}

// leaves: new requests stop going to port now; its busy time starts.
func (w *world) leaves(port int) {
	if d, ok := w.busy[port]; ok && port != 0 {
		w.busyUntil[port] = w.now.Add(d)
	}
}

// squat is a listener on an idle port: Ours when in the service's other instance unit.
type squat struct {
	Pid  int
	Ours bool
}

func (f fakeInst) Reclaim(port, other int) (done []string, refused string) {
	w := f.w
	var left []string
	for _, s := range w.squat[port] {
		if s.Ours {
			done = append(done, fmt.Sprintf("killed pid %d (python3) of complinist@%d.service, which listened on the idle port %d", s.Pid, other, port))
			continue
		}
		left = append(left, fmt.Sprintf("pid %d (nc, uid 1000, cgroup /user.slice/user-1000.slice/session-3.scope)", s.Pid))
	}
	if len(w.squat[port]) > 0 {
		w.event("reclaim %d", port)
	}
	delete(w.squat, port)
	if len(left) > 0 {
		return done, strings.Join(left, "; ") + " - not this service's own units, so not ended here"
	}
	return done, ""
}

func (f fakeInst) Container(port int) *protocol.Container {
	s := f.w.slots[port]
	if !s.active {
		return &protocol.Container{State: "missing"}
	}
	return &protocol.Container{State: "running", ID: fmt.Sprintf("id-%d", port), Image: "app:" + s.version}
}

// --- Proxy ---

type fakeProxy struct{ w *world }

func (f fakeProxy) Route() haproxy.Route { return f.w.effectiveRoute() }
func (f fakeProxy) ConfigExists() bool   { return f.w.configExists }
func (f fakeProxy) Active() bool         { return f.w.proxyActive }

func (f fakeProxy) Install(r haproxy.Route) error {
	w := f.w
	if w.installErr != nil {
		if err := w.installErr(r); err != nil {
			w.event("install refused live=%d canary=%d", r.Live, r.Canary)
			return err
		}
	}
	w.event("install live=%d canary=%d percent=%d", r.Live, r.Canary, r.Percent)
	w.installs = append(w.installs, r)
	if old := w.effectiveRoute().Live; old != r.Live && old != r.Canary {
		w.leaves(old)
	}
	w.route, w.flipTo, w.maint = r, 0, map[int]bool{}
	w.configExists, w.proxyActive = true, true
	for _, p := range []int{r.Live, r.Canary} {
		if who, ok := w.foreignOnRoute[p]; ok && p != 0 {
			w.foreign[p] = append(w.foreign[p], who)
			delete(w.foreignOnRoute, p)
		}
	}
	return nil
}

func (f fakeProxy) Persist(r haproxy.Route) error {
	w := f.w
	if w.persistErr != nil {
		w.event("persist refused live=%d", r.Live)
		return w.persistErr
	}
	// The running proxy already routes so (a flip): only the config and the state file change.
	w.event("persist live=%d canary=%d percent=%d", r.Live, r.Canary, r.Percent)
	w.route, w.flipTo, w.maint = r, 0, map[int]bool{}
	return nil
}

func (f fakeProxy) Workers() int { return 1 }

func (f fakeProxy) Foreign() []string {
	w := f.w
	if who, ok := w.foreignOnRoute[svcPort]; ok && w.proxyActive && len(w.installs) > 0 {
		w.foreign[svcPort] = append(w.foreign[svcPort], who)
		delete(w.foreignOnRoute, svcPort)
	}
	return slices.Clone(w.foreign[svcPort])
}

func (f fakeProxy) Counts() (map[int]haproxy.Counter, error) {
	w := f.w
	if w.noCounts || !w.proxyActive {
		return nil, errors.New("no answer")
	}
	out := map[int]haproxy.Counter{}
	for _, p := range []int{p1, p2} {
		tr, took := w.traffic[p], w.took[p]
		c := w.initial[p]
		c.Requests += tr.req * int64(took) / int64(time.Second)
		c.Errors += tr.err * int64(took) / int64(time.Second)
		c.Sessions = int64(w.inFlight(p))
		if from, ok := w.hungFrom[p]; ok {
			// Requests that hang are not answered: not in the counters.
			c.Requests -= tr.req * int64(w.now.Sub(from)) / int64(time.Second)
			c.Requests = max(c.Requests, w.initial[p].Requests)
		}
		c.RtimeMs = w.rtime[p]
		out[p] = c
	}
	return out, nil
}

// InFlight: a port that hangs holds every user request it took since hungFrom, at its rate,
// each as old as it is (one per 1/rate seconds); the oldest ones are aged past HungAfter.
func (f fakeProxy) InFlight() (map[int][]time.Duration, error) {
	w := f.w
	if w.noCounts || !w.proxyActive {
		return nil, errors.New("no answer")
	}
	out := map[int][]time.Duration{}
	for p, from := range w.hungFrom {
		tr := w.traffic[p]
		if tr.req == 0 || w.took[p] == 0 {
			continue
		}
		n := tr.req * int64(w.now.Sub(from)) / int64(time.Second)
		for i := int64(0); i < n; i++ {
			out[p] = append(out[p], time.Duration(i)*time.Second/time.Duration(tr.req))
		}
	}
	return out, nil
}

func (f fakeProxy) Flip(to, from int) error {
	w := f.w
	w.event("flip %d %d", to, from)
	w.flips = append(w.flips, [2]int{to, from})
	if w.flipErr != nil {
		return w.flipErr
	}
	w.flipTo = to
	w.leaves(from)
	w.maint[from] = true
	delete(w.maint, to)
	return nil
}

func (f fakeProxy) WaitWeight(_ context.Context, port, weight int, deadline time.Time) bool {
	w := f.w
	if w.noWeight {
		w.now = deadline
		return false
	}
	return w.route.Canary == port && w.route.Percent == weight
}

func (f fakeProxy) APIError() string {
	return "the proxy's runtime API (/run/complinist-proxy/admin.sock) gave no counters"
}

// --- HTTP ---

type fakeHTTP struct{ w *world }

type answer struct {
	code            int
	status, version string
	json            bool
	body            string
	noAnswer        string // why nothing answered ("" when something did)
}

func (f fakeHTTP) get(ctx context.Context, raw string) answer {
	w := f.w
	if w.probesN++; w.probesN > 1_000_000 {
		panic("a million probes: the activation loops without its clock moving")
	}
	u, err := url.Parse(raw)
	if err != nil {
		w.t.Fatalf("bad url %q", raw)
	}
	if ctx.Err() != nil {
		return answer{noAnswer: ctx.Err().Error()}
	}
	port, _ := strconv.Atoi(u.Port())
	path := u.Path
	via := false
	if port == svcPort {
		if !w.proxyActive {
			return answer{noAnswer: "connection refused"}
		}
		port = w.routedTo()
		if port == 0 {
			return answer{code: 503, body: "<html><body><h1>503 Service Unavailable</h1>No server is available to handle this request.</body></html>"}
		}
		via = true
	}
	s, ok := w.slots[port]
	if !ok || !s.active {
		return answer{noAnswer: "connection refused"}
	}
	if s.failNext > 0 {
		s.failNext--
		return answer{noAnswer: "Operation timed out after 5000 milliseconds"}
	}
	b := w.b(s.version)
	if b.Down {
		return answer{noAnswer: "connection refused"}
	}
	s.probes++
	a := answer{code: 200, status: "healthy", version: s.version, json: true}
	paths := b.Paths
	if len(paths) == 0 {
		paths = []string{"/health"}
	}
	switch {
	case !slices.Contains(paths, path):
		a = answer{code: 404, json: true}
	case b.Unhealthy || s.probes <= b.HealthyAfter:
		a.code, a.status = 503, "starting"
	}
	if via {
		s.proxied++
		if b.Degrade && s.proxied > b.DegradeAfter && a.code == 200 {
			a.code, a.status = 503, "degraded"
		}
		c := w.extra[port]
		c.Requests++
		if a.code >= 500 {
			c.Errors++
		}
		w.extra[port] = c
	}
	return a
}

func (f fakeHTTP) Probe(ctx context.Context, u, want string) (bool, string) {
	a := f.get(ctx, u)
	switch {
	case a.noAnswer != "":
		return false, fmt.Sprintf("no answer from %s: %s", u, a.noAnswer)
	case !a.json:
		return false, fmt.Sprintf("HTTP %d from %s, not a JSON object: %s", a.code, u, record.OneLine(a.body, 200))
	}
	return a.code == 200 && a.status == "healthy" && a.version == want, fmt.Sprintf("HTTP %d from %s: status=%s version=%s", a.code, u, a.status, a.version)
}

func (f fakeHTTP) Serves(ctx context.Context, u string) string {
	a := f.get(ctx, u)
	if a.noAnswer != "" || !a.json {
		return ""
	}
	return a.version
}

func (f fakeHTTP) Smoke(ctx context.Context, port int, checks []protocol.Check) (bool, string) {
	if len(checks) == 0 {
		return true, ""
	}
	if ctx.Err() != nil {
		return false, "check GET " + checks[0].Path + ": no answer: " + ctx.Err().Error()
	}
	if msg := f.w.b(f.w.slots[port].version).SmokeFail; msg != "" {
		return false, msg
	}
	return true, ""
}

// --- Clock ---

type fakeClock struct{ w *world }

func (f fakeClock) Now() time.Time { return f.w.now }

// Sleep advances the virtual time; the proxy's ports take their traffic meanwhile. Like the real
// one it returns at once when ctx has ended.
func (f fakeClock) Sleep(ctx context.Context, d time.Duration) {
	w := f.w
	if w.sleeps++; w.sleeps > 1_000_000 {
		panic("a million sleeps: the activation never ends")
	}
	if ctx.Err() != nil || d <= 0 {
		return
	}
	for _, p := range []int{p1, p2} {
		if w.takes(p) {
			w.took[p] += d
		}
	}
	w.now = w.now.Add(d)
}

// --- Host ---

type fakeHost struct{ w *world }

func (f fakeHost) ReleaseComplete(version string) bool { return f.w.complete[version] }
func (f fakeHost) Commit(version string) string        { return "c-" + version }

func (f fakeHost) SwitchCurrent(version string) error {
	f.w.event("current %s", version)
	f.w.current = version
	return nil
}

func (f fakeHost) StartUmbrella() { f.w.umbrella++ }

func (f fakeHost) FreeServicePort() {
	f.w.event("free service port")
	f.w.freed++
}

func (f fakeHost) RunHook(context.Context, string) (string, error) {
	f.w.event("hook")
	f.w.hookRuns++
	if f.w.onHook != nil {
		f.w.onHook(f.w)
	}
	return f.w.hookOut, f.w.hookErr
}

// Record keeps the call and appends the line to revisions.log's text as record.Log writes it.
func (f fakeHost) Record(version, sha, who, outcome string) {
	w := f.w
	w.records = append(w.records, recordCall{version, sha, who, outcome})
	fmt.Fprintf(&w.revisions, "%s\tversion=%s\tsha256=%s\tby=%s\t%s\n", w.now.UTC().Format(record.TimeFormat),
		record.OneLine(version, 64), record.OneLine(sha, 64), record.OneLine(who, 128), record.OneLine(outcome, 1000))
}

func (f fakeHost) Step(text string) { f.w.steps = append(f.w.steps, text) }

func (f fakeHost) Report(r protocol.Result) {
	r.WatchPhases = slices.Clone(r.WatchPhases)
	f.w.reports = append(f.w.reports, r)
}

func (f fakeHost) WatchNow(n *WatchNow) {
	w := f.w
	if n != nil {
		c := *n
		n = &c
	}
	w.watchNows = append(w.watchNows, n)
	if n != nil && w.onWatch != nil {
		w.onWatch(w, n)
	}
}

func (f fakeHost) PausePoint(name string) { f.w.pauses = append(f.w.pauses, name) }
func (f fakeHost) Revisions() string      { return f.w.revisions.String() }
