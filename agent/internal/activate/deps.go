// Package activate is the one way a release becomes live: start it beside the live one, gate
// it before it takes a request, (canary), switch the proxy, drain the old instance, soak, then
// keep the pinned rollback target warm. The fallback is always what was serving, checked to be
// healthy; nothing here ever stops the service.
//
// The live instance is the one the proxy routes to, never inferred from a probe: a live
// instance that does not answer is never stopped or restarted here, and the new release always
// starts on the other port. Everything it touches goes through Deps, so every arc is table-tested
// with fakes (activate_test.go).
package activate

import (
	"context"
	"time"

	"complinist/agent/internal/haproxy"
	"complinist/agent/internal/protocol"
)

// Instances are the app instance slots.
type Instances interface {
	Version(port int) string
	Rev(port int) string
	Active(port int) bool
	Start(port int, version, rev string) error
	Stop(port int)
	SetWanted(port int, wanted bool)
	// Foreign are the listeners on port its own unit did not open, one line each.
	Foreign(port int) []string
	// Reclaim frees the idle port before its instance starts: a listener of this service's other
	// instance unit there is ended (done says how); anyone else's is refused (refused names it).
	Reclaim(port, other int) (done []string, refused string)
	OpenConnections(port int) int
	// Container is the slot's container (nil in release mode).
	Container(port int) *protocol.Container
}

// Proxy is the local proxy on the service port.
type Proxy interface {
	Route() haproxy.Route
	ConfigExists() bool
	Active() bool
	Install(r haproxy.Route) error
	// Persist writes the config for r without loading it (the runtime API already routes so).
	Persist(r haproxy.Route) error
	Workers() int
	Counts() (map[int]haproxy.Counter, error)
	// InFlight are the ages of the requests in flight now per instance port (users' requests only).
	InFlight() (map[int][]time.Duration, error)
	Flip(to, from int) error
	WaitWeight(ctx context.Context, port, weight int, deadline time.Time) bool
	APIError() string
	// Foreign are the listeners on the service port outside the proxy's unit, one line each.
	Foreign() []string
}

// Prober is the HTTP side: the health contract and the smoke checks.
type Prober interface {
	Probe(ctx context.Context, url, want string) (bool, string)
	Serves(ctx context.Context, url string) string
	Smoke(ctx context.Context, port int, checks []protocol.Check) (bool, string)
}

// Clock is time: real on a host, stepped in tests.
type Clock interface {
	Now() time.Time
	// Sleep returns early when ctx ends.
	Sleep(ctx context.Context, d time.Duration)
}

// Host is the rest of the host: releases, links, units, the hook, the records.
type Host interface {
	ReleaseComplete(version string) bool
	Commit(version string) string
	SwitchCurrent(version string) error
	StartUmbrella()
	// FreeServicePort stops what served the port before the proxy (the restart-in-place unit or container).
	FreeServicePort()
	RunHook(ctx context.Context, version string) (output string, err error)
	Record(version, sha, who, outcome string)
	Step(text string)
	Report(r protocol.Result)
	WatchNow(w *WatchNow)
	PausePoint(name string)
	// Revisions is revisions.log's text (what root wrote), for the watch's verdicts.
	Revisions() string
}

// Deps are everything an activation touches.
type Deps struct {
	Inst  Instances
	Proxy Proxy
	HTTP  Prober
	Clock Clock
	Host  Host
}

// WatchNow is what `status` shows of a watch in progress, rewritten every tick.
type WatchNow struct {
	Phase   string `json:"phase"`
	Version string `json:"version"`
	Port    int    `json:"port"`
	Verdict string `json:"verdict"`
	Figures string `json:"figures"`
}
