package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"complinist/agent/internal/activate"
	"complinist/agent/internal/failover"
	"complinist/agent/internal/fsafe"
	"complinist/agent/internal/health"
	"complinist/agent/internal/host"
	"complinist/agent/internal/layout"
	"complinist/agent/internal/lock"
	"complinist/agent/internal/protocol"
	"complinist/agent/internal/record"
)

// Release is a complete release on the host, from its manifest.
type Release struct {
	Version     string `json:"version"`
	Sha256      string `json:"sha256"`
	InstalledAt string `json:"installedAt"`
	Commit      string `json:"commit"`
	Image       string `json:"image,omitempty"`
}

// Instance is one instance slot.
type Instance struct {
	Port      int                 `json:"port"`
	Link      string              `json:"link"`
	Path      string              `json:"path"`
	Version   string              `json:"version"`
	Rev       string              `json:"rev"`
	Active    string              `json:"active"`
	Container *protocol.Container `json:"container,omitempty"`
}

// Probe is one HTTP request through the service port.
type Probe struct {
	Code    int     `json:"code"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
	Body    string  `json:"body,omitempty"`
}

// State is everything the providers' reads and `npm run status` need of a host, in one exec.
type State struct {
	V       int    `json:"v"`
	Agent   Agent  `json:"agent"`
	Service string `json:"service"`
	BaseDir string `json:"baseDir"`
	Runtime string `json:"runtime"`
	Now     string `json:"now"`
	Current struct {
		Link    string `json:"link"`
		Path    string `json:"path"`
		Version string `json:"version"`
	} `json:"current"`
	Releases    []Release         `json:"releases"`
	ReleaseDirs []string          `json:"releaseDirs"`
	Instances   []Instance        `json:"instances"`
	Units       map[string]string `json:"units"`
	Proxy       struct {
		Active  bool                        `json:"active"`
		Live    int                         `json:"live"`
		Canary  int                         `json:"canary"`
		Percent int                         `json:"percent"`
		Counts  map[string]map[string]int64 `json:"counts,omitempty"`
		// Foreign are the listeners on the service port outside the proxy's unit (either family).
		Foreign []string `json:"foreign"`
	} `json:"proxy"`
	Live struct {
		Port      int                 `json:"port"`
		Version   string              `json:"version"`
		Active    string              `json:"active"`
		Rev       string              `json:"rev"`
		Image     string              `json:"image,omitempty"`
		Container *protocol.Container `json:"container,omitempty"`
	} `json:"live"`
	StandbyVersion string             `json:"standbyVersion"`
	CanaryVersion  string             `json:"canaryVersion"`
	Served         string             `json:"served"`
	Health         *Probe             `json:"health,omitempty"`
	Root           *Probe             `json:"root,omitempty"`
	Lock           LockState          `json:"lock"`
	Watch          *activate.WatchNow `json:"watch"`
	Revisions      []string           `json:"revisions"`
	// Activation is the phase of the activation holding the lock (live.go), only while it holds it.
	Activation *ActivationNow `json:"activation,omitempty"`
	// Probe is the service port and health path the probes above used (the flags, else the
	// last deploy's settings): a reader asking for others knows to ask again.
	Probe struct {
		Port       int    `json:"port"`
		HealthPath string `json:"healthPath"`
	} `json:"probe"`
	// FailedOver: the failover the host stays on since its last deploy ("" when none).
	FailedOver string `json:"failedOver"`
}

// Agent names this agent.
type Agent struct {
	Version string `json:"version"`
	Sha256  string `json:"sha256"`
}

// LockState is the deploy lock: held yes|no|unknown, and its holder while held.
type LockState struct {
	Held  string `json:"held"`
	Owner string `json:"owner,omitempty"`
}

func selfSha256() string {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// view is the read-only look every reading command shares.
type view struct {
	l        layout.Layout
	runtime  string
	s        protocol.Settings
	hasS     bool
	inst     host.Instances
	proxy    host.Proxy
	ports    []int
	route    routeView
	liveVer  string
	stbyVer  string
	canaryV  string
	probeCap time.Duration
}

type routeView struct{ live, canary, percent int }

func (e *env) look() (view, error) {
	c, l, err := e.config()
	if err != nil {
		return view{}, err
	}
	s, ok, err := lastSettings(l)
	if err != nil {
		return view{}, err
	}
	v := view{l: l, runtime: c.Runtime, s: s, hasS: ok, inst: host.Instances{L: l, Runtime: c.Runtime}}
	v.proxy = host.Proxy{L: l, Port: s.Port, DrainSeconds: s.DrainSeconds}
	if ok {
		ps := layout.InstancePorts(s.Port)
		v.ports = ps[:]
	}
	r := v.proxy.Route()
	v.route = routeView{r.Live, r.Canary, r.Percent}
	if r.Live != 0 {
		v.liveVer = v.inst.Version(r.Live)
		if ok {
			if sb := otherPort(s.Port, r.Live); v.inst.Active(sb) {
				v.stbyVer = v.inst.Version(sb)
			}
		}
	}
	if r.Canary != 0 {
		v.canaryV = v.inst.Version(r.Canary)
	}
	timeout := 3
	if ok {
		timeout = max(min(s.TimeoutSeconds, 5), 1)
	}
	v.probeCap = time.Duration(timeout) * time.Second
	return v, nil
}

func (v view) healthPath() string {
	if v.hasS {
		return v.s.HealthPath
	}
	return "/health"
}

func (v view) served() string {
	if !v.hasS {
		return ""
	}
	return health.NewProber(v.probeCap).Serves(context.Background(), fmt.Sprintf("http://127.0.0.1:%d%s", v.s.Port, v.healthPath()))
}

func lockState(l layout.Layout) LockState {
	held, err := lock.Held(l.LockFile)
	switch {
	case err != nil:
		return LockState{Held: "unknown"}
	case held:
		owner := ""
		if b, err := fsafe.ReadFile(filepath.Dir(l.LockFile), filepath.Base(l.LockFile)+".owner", 4096); err == nil {
			owner = record.OneLine(strings.SplitN(string(b), "\n", 2)[0], 300)
		}
		return LockState{Held: "yes", Owner: owner}
	}
	return LockState{Held: "no"}
}

func watchNow(l layout.Layout) *activate.WatchNow {
	b, err := fsafe.ReadFile(l.ActivationsDir, watchNowFile, 64<<10)
	if err != nil {
		return nil
	}
	var w activate.WatchNow
	if json.Unmarshal(b, &w) != nil {
		return nil
	}
	return &w
}

// cmdStatus is the operator's look (key=value lines; --json: the whole state).
func (e *env) cmdStatus(args []string) error {
	if len(args) == 1 && args[0] == "--json" {
		return e.cmdState(nil)
	}
	if len(args) != 0 {
		return usageError{}
	}
	v, err := e.look()
	if err != nil {
		return err
	}
	out := &strings.Builder{}
	kv := func(k, val string) { fmt.Fprintf(out, "%s=%s\n", k, val) }
	cur := currentVersion(v.l)
	kv("current", cur)
	live := v.route.live
	liveActive, liveRev := "inactive", ""
	if live != 0 {
		liveActive, liveRev = v.inst.State(live), v.inst.Rev(live)
		kv("livePort", strconv.Itoa(live))
	} else {
		kv("livePort", "")
	}
	kv("liveVersion", v.liveVer)
	kv("liveActive", liveActive)
	kv("liveRev", liveRev)
	kv("standbyVersion", v.stbyVer)
	if v.runtime == "docker" {
		c, img := "", ""
		if live != 0 {
			ct := host.ContainerState(v.l, live)
			c = strings.TrimSpace(ct.State + " " + ct.ID + " " + ct.Image)
			img = host.InstanceImage(v.inst, live)
		}
		kv("liveContainer", c)
		kv("liveImage", img)
	}
	kv("proxyActive", host.UnitState(v.l.ProxyUnit()))
	kv("served", record.OneLine(v.served(), 64))
	kv("canaryVersion", v.canaryV)
	ls := lockState(v.l)
	if ls.Held == "yes" {
		kv("lock", lock.Holder(v.l.LockFile))
		w := ""
		if n := watchNow(v.l); n != nil {
			w = record.OneLine(fmt.Sprintf("phase=%s version=%s port=%d verdict=%s %s", n.Phase, n.Version, n.Port, n.Verdict, n.Figures), 600)
		}
		kv("watch", w)
	} else {
		kv("lock", "free")
		kv("watch", "")
	}
	_, err = io.WriteString(e.stdout, out.String())
	return err
}

func currentVersion(l layout.Layout) string {
	p, err := filepath.EvalSymlinks(l.Current)
	if err != nil {
		return ""
	}
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return filepath.Base(p)
}

func (e *env) cmdReleases(args []string) error {
	if len(args) != 0 {
		return usageError{}
	}
	v, err := e.look()
	if err != nil {
		return err
	}
	for _, r := range keptReleases(v.l) {
		marks := ""
		if v.liveVer != "" && v.liveVer == r {
			marks += " live"
		}
		if v.stbyVer != "" && v.stbyVer == r {
			marks += " standby"
		}
		fmt.Fprintf(e.stdout, "%-24s installed %s%s\n", r, host.ManifestField(v.l, r, "installedAt"), marks)
	}
	return nil
}

// cmdCheckCurrent: the runbook's hand rollback is `ln -sfn <previous> current && systemctl
// restart <service>`. Instances run from instances/<port>, not from `current`, so a restart would
// quietly keep serving the routed release: `<service>.service` runs this first and fails loudly
// instead, naming the command that does switch. Read-only: takes no lock.
func (e *env) cmdCheckCurrent(args []string) error {
	if len(args) != 0 {
		return usageError{}
	}
	_, l, err := e.config()
	if err != nil {
		return err
	}
	live := host.Proxy{L: l}.Route().Live
	if live == 0 {
		return nil
	}
	want := host.Instances{L: l}.Version(live)
	cur := currentVersion(l)
	if want == "" || cur == want {
		return nil
	}
	names := cur
	if names == "" {
		names = "no release"
	}
	fmt.Fprintf(e.stderr, "%s names %s but the proxy routes to %s (port %d): restarting %s does not switch releases.\n", l.Current, names, want, live, l.Service)
	if cur != "" {
		fmt.Fprintf(e.stderr, "To switch to %s: sudo %s rollback %s   (locked, gated, recorded)\n", cur, l.HostProgram, cur)
	}
	fmt.Fprintf(e.stderr, "To keep %s: sudo ln -sfn releases/%s %s\n", want, want, l.Current)
	return exitError{1}
}

// cmdState prints the whole state as one JSON object: the providers' reads and `npm run status`
// take it in one exec. `--port N --health-path P` probe the service port as the stack declares it.
func (e *env) cmdState(args []string) error {
	v, err := e.look()
	if err != nil {
		return err
	}
	port, path := v.s.Port, v.healthPath()
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return usageError{}
		}
		switch args[i] {
		case "--port":
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n < 1 || n > 65533 {
				return usageError{fmt.Sprintf("--port %q: accepted: 1 to 65533", args[i+1])}
			}
			port = n
		case "--health-path":
			if !pathRe.MatchString(args[i+1]) {
				return usageError{fmt.Sprintf("--health-path %q: accepted: an absolute URL path", args[i+1])}
			}
			path = args[i+1]
		default:
			return usageError{}
		}
	}
	st := State{V: protocol.V, Agent: Agent{Version: Version, Sha256: selfSha256()}, Service: v.l.Service, BaseDir: v.l.BaseDir, Runtime: v.runtime,
		Now: time.Now().UTC().Format("2006-01-02T15:04:05Z"), Units: map[string]string{}}
	st.Current.Link, _ = os.Readlink(v.l.Current)
	if p, err := filepath.EvalSymlinks(v.l.Current); err == nil {
		st.Current.Path = p
		st.Current.Version = currentVersion(v.l)
	}
	st.Releases = []Release{}
	for _, r := range keptReleases(v.l) {
		f := func(k string) string { return host.ManifestField(v.l, r, k) }
		st.Releases = append(st.Releases, Release{Version: r, Sha256: f("sha256"), InstalledAt: f("installedAt"), Commit: f("commit"), Image: f("image")})
	}
	st.ReleaseDirs = []string{}
	if entries, err := os.ReadDir(v.l.ReleasesDir); err == nil {
		for _, en := range entries {
			if en.IsDir() {
				st.ReleaseDirs = append(st.ReleaseDirs, en.Name())
			}
		}
	}
	ports := layout.InstancePorts(port)
	st.Instances = []Instance{}
	for _, p := range ports {
		in := Instance{Port: p, Version: v.inst.Version(p), Rev: v.inst.Rev(p), Active: v.inst.State(p)}
		in.Link, _ = os.Readlink(fmt.Sprintf("%s/%d", v.l.InstancesDir, p))
		if rp, err := filepath.EvalSymlinks(fmt.Sprintf("%s/%d", v.l.InstancesDir, p)); err == nil {
			in.Path = rp
		}
		if v.runtime == "docker" {
			in.Container = host.ContainerState(v.l, p)
		}
		st.Instances = append(st.Instances, in)
	}
	units := []string{v.l.ServiceUnit(), v.l.ProxyUnit(), v.l.FailoverUnit(), v.l.InstanceUnit(ports[0]), v.l.InstanceUnit(ports[1])}
	for _, u := range units {
		st.Units[u] = host.UnitState(u)
	}
	st.Proxy.Active = st.Units[v.l.ProxyUnit()] == "active"
	st.Proxy.Live, st.Proxy.Canary, st.Proxy.Percent = v.route.live, v.route.canary, v.route.percent
	// Only beside a running proxy is a listener someone else's: without one (a host still on the
	// single-unit layout, or the proxy stopped) the port's holder is whatever serves there.
	if st.Proxy.Active {
		st.Proxy.Foreign = host.Proxy{L: v.l, Port: port}.Foreign()
	}
	if st.Proxy.Foreign == nil {
		st.Proxy.Foreign = []string{}
	}
	if counts, err := v.proxy.Counts(); err == nil {
		st.Proxy.Counts = map[string]map[string]int64{}
		for p, c := range counts {
			// rtimeMs: the proxy's average response time of the instance's last 1024 requests (the live view's figure).
			st.Proxy.Counts[strconv.Itoa(p)] = map[string]int64{"requests": c.Requests, "errors": c.Errors, "rtimeMs": c.RtimeMs}
		}
	}
	if live := v.route.live; live != 0 {
		st.Live.Port, st.Live.Version, st.Live.Active, st.Live.Rev = live, v.liveVer, v.inst.State(live), v.inst.Rev(live)
		if v.runtime == "docker" {
			st.Live.Container = host.ContainerState(v.l, live)
			st.Live.Image = host.InstanceImage(v.inst, live)
		}
	} else {
		st.Live.Active = "inactive"
	}
	st.StandbyVersion, st.CanaryVersion = v.stbyVer, v.canaryV
	st.Probe.Port, st.Probe.HealthPath = port, path
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	st.Health = timedGet(base+path, 8192)
	st.Root = timedGet(base+"/", 0)
	if st.Health.Code != 0 {
		if _, ver, err := health.TopLevel([]byte(st.Health.Body)); err == nil {
			st.Served = ver
		}
	}
	st.Lock = lockState(v.l)
	if st.Lock.Held == "yes" {
		st.Watch = watchNow(v.l)
		st.Activation = activationNow(v.l)
	}
	st.Revisions, _ = record.Tail(v.l.RevisionsLog, 5, 1<<20)
	if lines, err := record.Tail(v.l.RevisionsLog, 2000, 0); err == nil {
		st.FailedOver = failover.Latch(strings.Join(lines, "\n"))
	}
	if st.Revisions == nil {
		st.Revisions = []string{}
	}
	sort.Strings(st.ReleaseDirs)
	return json.NewEncoder(e.stdout).Encode(st)
}

// timedGet is one bounded request (5 s, 64 KiB read, keep bytes of the body returned).
func timedGet(url string, keep int) *Probe {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return &Probe{Seconds: time.Since(start).Seconds(), Error: record.OneLine(err.Error(), 300)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 65536))
	p := &Probe{Code: resp.StatusCode, Seconds: time.Since(start).Seconds()}
	if keep > 0 {
		if len(body) > keep {
			body = body[:keep]
		}
		p.Body = string(body)
	}
	return p
}
