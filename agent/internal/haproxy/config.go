// Package haproxy is the local proxy on the service port, as the bash host program's proxy.sh
// and watch.sh drove it: the config a switch writes (HAProxy in master-worker mode, reloaded
// seamlessly: the new worker takes the listening socket over), reading the route back out of
// such a config, and the runtime API on the admin socket (the watch's counters, the canary's
// weights, the instant flip).
package haproxy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Route is where the proxy sends new requests: every one to Live, or Percent of them to
// Canary and the rest to Live. Live 0 routes nothing (every request gets a 503: nothing it
// could route to is trusted); Canary 0 is no canary.
type Route struct {
	Live, Canary, Percent int
}

// ConfigParams are the host's settings the config is written from: they are the same for
// every switch of one service, only the Route changes.
type ConfigParams struct {
	// Service names the frontend and the backend (the runtime API's pxname) and the cookie.
	Service string
	// Port is the service port the proxy listens on.
	Port int
	// DrainSeconds bounds the old worker's in-flight requests after a reload (hard-stop-after).
	DrainSeconds int
	// Ports are the two instance slots (port+1, port+2).
	Ports [2]int
	// RunDir holds the admin socket (<RunDir>/admin.sock), the runtime API.
	RunDir string
	// StatsSocket is the socket of the stats page.
	StatsSocket string
	// HostProgram is named in the header comment: who writes the file.
	HostProgram string
	// HostAddrs are the host's own addresses (besides loopback, always included): a request from
	// one of them is the host's own — the release's, the agent's probes — and is served by the
	// <service>_host backend, whose counters the watch never judges.
	HostAddrs []string
	// CookieToken makes the canary's persistence cookie values unguessable (i5002-<token>): a
	// client is on the canary only when the proxy put it there, it cannot pin itself by naming a
	// port. Empty: the bash program's plain iPORT values.
	CookieToken string
}

// Limits of the config: each instance server takes at most ServerMaxconn concurrent requests
// from users (HostMaxconn from the host itself); more wait in the queue at most QueueSeconds,
// then get a 503. A canary whose requests hang fills only its own slots: the live release's
// stay free, and a request not pinned to the full server goes to the other one.
const (
	ServerMaxconn = 1000
	HostMaxconn   = 100
	QueueSeconds  = 5
)

// HostBackend is the backend serving the host's own requests: routed like the service's
// backend but never to a canary, and never judged by the watch.
func HostBackend(service string) string { return service + "_host" }

// Config is the proxy's whole config for route r. It is the bash program's proxy_config's text
// plus what the agent adds (both families bound, per-server maxconn, the queue timeout, the
// host's own requests on their own backend, the cookie token), and a config of either parses
// back (ParseConfigRoute). Without a canary both slots' server lines are written, every one but
// Live's disabled; with one, Live and Canary are weighted (Live first, which is what makes it the
// live one when read back) and each client is kept on the release it first got by a cookie the
// proxy inserts (<service>_release). Requests from the host itself (loopback, HostAddrs) go to
// HostBackend, which never routes to a canary: the release cannot dilute its own error ratio, and
// the agent's probes through the proxy are not users' requests.
func Config(p ConfigParams, r Route) string {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	line("# Managed by the CompliNist Pulumi stack: written by %s on every switch.", p.HostProgram)
	line("global")
	line("    maxconn 4096")
	line("    hard-stop-after %ds", p.DrainSeconds)
	line("    stats socket %s/admin.sock mode 600 level admin expose-fd listeners", p.RunDir)
	line("defaults")
	line("    mode http")
	line("    timeout connect 5s")
	line("    timeout client 60s")
	line("    timeout server 60s")
	line("    timeout http-request 15s")
	line("    timeout queue %ds", QueueSeconds)
	line("frontend %s", p.Service)
	// Both families: a listener of anyone else's on [::]:PORT (IPV6_V6ONLY) would answer every
	// IPv6 client, and after a proxy restart or at boot could take IPv4 too.
	line("    bind :%d", p.Port)
	line("    bind :::%d v6only", p.Port)
	line("    acl from_host src %s", strings.Join(append([]string{"127.0.0.0/8", "::1"}, p.HostAddrs...), " "))
	line("    use_backend %s if from_host", HostBackend(p.Service))
	line("    default_backend %s", p.Service)
	line("backend %s", p.Service)
	// Each server's own limit, as a default: the server lines keep the form the runbook's tools read.
	line("    default-server maxconn %d", ServerMaxconn)
	if r.Canary != 0 {
		line("    cookie %s_release insert indirect nocache httponly", p.Service)
		line("    server i%d 127.0.0.1:%d weight %d cookie %s", r.Live, r.Live, 100-r.Percent, p.cookie(r.Live))
		line("    server i%d 127.0.0.1:%d weight %d cookie %s", r.Canary, r.Canary, r.Percent, p.cookie(r.Canary))
	} else {
		servers(line, p.Ports, r.Live)
	}
	// Both slots' lines here too, the canary's disabled, so that a flip works on both backends alike.
	line("backend %s", HostBackend(p.Service))
	line("    default-server maxconn %d", HostMaxconn)
	servers(line, p.Ports, r.Live)
	line("listen stats")
	line("    bind %s mode 600", p.StatsSocket)
	line("    stats enable")
	line("    stats uri /")
	return b.String()
}

// servers writes both slots' server lines, every one but live's disabled.
func servers(line func(string, ...any), ports [2]int, live int) {
	for _, port := range ports {
		state := ""
		if port != live {
			state = " disabled"
		}
		line("    server i%d 127.0.0.1:%d%s", port, port, state)
	}
}

func (p ConfigParams) cookie(port int) string {
	if p.CookieToken == "" {
		return fmt.Sprintf("i%d", port)
	}
	return fmt.Sprintf("i%d-%s", port, p.CookieToken)
}

var (
	// An enabled server line, either form (proxy_live_port's sed).
	// The agent's may carry a cookie token (and, written by an agent of this round's first builds, " maxconn N").
	enabledServerRe = regexp.MustCompile(`^    server i([0-9]+) 127\.0\.0\.1:[0-9]+( weight ([0-9]+) cookie i[0-9]+(-[0-9a-f]+)?)?( maxconn [0-9]+)?$`)
)

// ParseConfigRoute reads the route back out of a config Config (or the bash program, same
// format) wrote: on a host the bash program configured, the config is the only record of which
// slot is live. The first enabled server line is Live; the second weighted one
// (`server iN 127.0.0.1:N weight W cookie iN`) is the Canary and its weight the Percent. Only
// lines exactly in the generated forms count (a hand-edited line does not); ok is false when no
// server line matched at all. A second weighted line for port 0 is no canary (Route's Canary 0).
func ParseConfigRoute(text string) (r Route, ok bool) {
	weighted, backends := 0, 0
	for _, l := range strings.Split(text, "\n") {
		// Only the first backend routes users: the host's own (the agent's second) does not count.
		if strings.HasPrefix(l, "backend ") {
			if backends++; backends > 1 {
				break
			}
		}
		m := enabledServerRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		port, err := strconv.Atoi(m[1])
		if err != nil {
			continue // more digits than a port has: not a line this package wrote
		}
		isWeighted := m[2] != ""
		weight := 0
		if isWeighted {
			if weight, err = strconv.Atoi(m[3]); err != nil {
				continue
			}
		}
		if !ok {
			r.Live, ok = port, true
		}
		if isWeighted {
			weighted++
			if weighted == 2 && port != 0 {
				// Port 0 is no canary in a Route: its weight is not a canary's percent either.
				r.Canary, r.Percent = port, weight
			}
		}
	}
	return r, ok
}
