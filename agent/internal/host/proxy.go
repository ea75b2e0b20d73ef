package host

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	"complinist/agent/internal/fsafe"
	"complinist/agent/internal/haproxy"
	"complinist/agent/internal/layout"
	"complinist/agent/internal/record"
)

// Proxy is the local HAProxy on the service port, in master-worker mode. A switch writes the
// config with one enabled server and reloads: the new worker takes the listening socket over
// from the old one (expose-fd listeners), so no connection is refused.
type Proxy struct {
	L            layout.Layout
	Port         int
	DrainSeconds int
}

// proxyState is what the agent last routed (the config it wrote), kept beside the config: the
// routing is read from here or from the runtime API, never recovered from the config's text.
type proxyState struct {
	V       int `json:"v"`
	Live    int `json:"live"`
	Canary  int `json:"canary"`
	Percent int `json:"percent"`
}

func (p Proxy) client() haproxy.Client {
	return haproxy.Client{Socket: p.L.ProxySocket, Timeout: 2 * time.Second}
}

// Active reports whether the proxy's unit runs.
func (p Proxy) Active() bool { return UnitActive(p.L.ProxyUnit()) }

// ConfigExists reports whether a proxy config was ever written on this host.
func (p Proxy) ConfigExists() bool {
	_, err := os.Lstat(p.L.ProxyConfig)
	return err == nil
}

// Written is the route of the config last written: the agent's state file, or, on a host the
// bash program configured (no state file yet), the route read back from its config.
func (p Proxy) Written() (haproxy.Route, bool) {
	if b, err := fsafe.ReadFile(p.L.EnvDir, filepath.Base(p.L.ProxyState), 4096); err == nil {
		var s proxyState
		if json.Unmarshal(b, &s) == nil && s.V == 1 {
			return haproxy.Route{Live: s.Live, Canary: s.Canary, Percent: s.Percent}, true
		}
	}
	if b, err := fsafe.ReadFile(p.L.EnvDir, filepath.Base(p.L.ProxyConfig), 1<<20); err == nil {
		return haproxy.ParseConfigRoute(string(b))
	}
	return haproxy.Route{}, false
}

// Route is what the proxy routes to now: the running proxy's own servers (runtime API) when it
// answers, else what was last written. The live server is the one taking requests; during a
// canary (two take requests) the written live one.
func (p Proxy) Route() haproxy.Route {
	written, _ := p.Written()
	servers, err := p.client().Servers(p.L.Service)
	if err != nil || len(servers) == 0 {
		return written
	}
	var up []haproxy.Server
	for _, s := range servers {
		if s.Status != "MAINT" && s.Weight > 0 {
			up = append(up, s)
		}
	}
	switch len(up) {
	case 0:
		return haproxy.Route{}
	case 1:
		return haproxy.Route{Live: up[0].Port}
	}
	r := haproxy.Route{Live: up[0].Port, Canary: up[1].Port, Percent: up[1].Weight}
	if written.Live == up[1].Port {
		r = haproxy.Route{Live: up[1].Port, Canary: up[0].Port, Percent: up[0].Weight}
	}
	return r
}

// Install writes the config for route r, checked by haproxy -c before it replaces the old one,
// then loads it (a reload, or the proxy's start). An error says what haproxy refused: the old
// config stays.
func (p Proxy) Install(r haproxy.Route) error {
	if err := p.Persist(r); err != nil {
		return err
	}
	verb := "start"
	if p.Active() {
		verb = "reload"
	}
	if _, err := Systemctl(verb, p.L.ProxyUnit()); err != nil {
		return fmt.Errorf("systemctl %s %s: %s", verb, p.L.ProxyUnit(), record.OneLine(err.Error(), 300))
	}
	return nil
}

// Persist writes the config and the route's state file for r, checked by haproxy -c, without
// reloading: after a switch through the runtime API the running proxy already routes so, and
// its next start or reload reads the same route.
func (p Proxy) Persist(r haproxy.Route) error {
	text := haproxy.Config(haproxy.ConfigParams{
		Service:      p.L.Service,
		Port:         p.Port,
		DrainSeconds: p.DrainSeconds,
		Ports:        layout.InstancePorts(p.Port),
		RunDir:       p.L.ProxyRunDir,
		StatsSocket:  p.L.ProxyStats,
		HostProgram:  p.L.HostProgram,
		HostAddrs:    HostAddrs(),
		CookieToken:  cookieToken(),
	}, r)
	dir, name := p.L.EnvDir, filepath.Base(p.L.ProxyConfig)
	check := fmt.Sprintf(".%s.check.%d", name, os.Getpid())
	// The proxy runs as haproxy and reads it; it holds no secret.
	if err := fsafe.WriteFileAtomic(dir, check, []byte(text), 0o644); err != nil {
		return err
	}
	defer os.Remove(dir + "/" + check)
	if out, err := run(30*time.Second, "haproxy", "-c", "-q", "-f", dir+"/"+check); err != nil {
		return fmt.Errorf("haproxy refused the generated config: %s", record.OneLine(out+" "+err.Error(), 300))
	}
	if err := fsafe.WriteFileAtomic(dir, name, []byte(text), 0o644); err != nil {
		return err
	}
	state, _ := json.Marshal(proxyState{V: 1, Live: r.Live, Canary: r.Canary, Percent: r.Percent})
	if err := fsafe.WriteFileAtomic(dir, filepath.Base(p.L.ProxyState), state, 0o600); err != nil {
		return err
	}
	return nil
}

// Foreign are the listeners on the service port outside the proxy's unit (one line each): whoever
// holds it beside the proxy answers users, on either family.
func (p Proxy) Foreign() []string {
	return ForeignListeners(p.Port, UnitProperty(p.L.ProxyUnit(), "ControlGroup"), nil)
}

// Counts are the proxy's counters per instance port (runtime API `show stat`).
func (p Proxy) Counts() (map[int]haproxy.Counter, error) { return p.client().Counts(p.L.Service) }

// InFlight are the ages of users' requests in flight per instance port (runtime API `show sess`).
func (p Proxy) InFlight() (map[int][]time.Duration, error) { return p.client().InFlight(p.L.Service) }

// Flip sends every new request to TO and none to FROM at once, through the runtime API.
func (p Proxy) Flip(to, from int) error { return p.client().Flip(p.L.Service, to, from) }

// WaitWeight waits until the reloaded proxy shows PORT ready with WEIGHT (the new worker serves).
func (p Proxy) WaitWeight(ctx context.Context, port, weight int, deadline time.Time) bool {
	return p.client().WaitWeight(ctx, p.L.Service, port, weight, deadline)
}

// Workers counts the proxy's workers (more than one: an old one still finishes its requests).
func (p Proxy) Workers() int { return ProxyWorkers(p.L.ProxyUnit()) }

// APIError explains why the runtime API gave no counters.
func (p Proxy) APIError() string {
	return fmt.Sprintf("the proxy's runtime API (%s) gave no counters", p.L.ProxySocket)
}

// HostAddrs are the host's own addresses but loopback's (the config always lists those), as the
// kernel has them when the config is written: a request from one of them comes from the host
// itself. An address the host gains later counts as the host's from the next config written.
func HostAddrs() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() {
			continue
		}
		s := ipn.IP.String()
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// cookieToken is a new random token for the canary cookie's values, every config written.
func cookieToken() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return ""
	}
	return hex.EncodeToString(b)
}
