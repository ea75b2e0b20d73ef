// Package protocol is the typed contract between the providers and the agent: one JSON
// request in, one JSON answer out, versioned, unknown fields refused. The TypeScript side
// mirrors these types in infra/agent/protocol.ts.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// V is the protocol version every request and answer carries.
const V = 1

// Exit codes (infra/agent/protocol.ts EXIT, the README's table).
const (
	ExitOK         = 0
	ExitFailed     = 1
	ExitChecksum   = 3
	ExitIncomplete = 4
	ExitHook       = 5
	ExitHealth     = 6
	ExitRefused    = 7
	ExitUsage      = 64
	ExitLocked     = 75
)

// Check is one smoke check of the gate.
type Check struct {
	Path   string `json:"path"`
	Status int    `json:"status"`
	MaxMs  int    `json:"maxMs"`
}

// Canary is the share of new requests the gated release gets, and for how long (percent 0: none).
type Canary struct {
	Percent int `json:"percent"`
	Seconds int `json:"seconds"`
}

// Watch is the error-rate watch's rule.
type Watch struct {
	ErrorRateFactor float64 `json:"errorRateFactor"`
	MinRequests     int     `json:"minRequests"`
	MaxErrorRatio   float64 `json:"maxErrorRatio"`
}

// Settings are what the gate and the switch need per activation; the last successful one is kept
// (deploy.json) for the emergency rollback and for the live instance's own health path.
type Settings struct {
	Port            int     `json:"port"`
	User            string  `json:"user"`
	HealthPath      string  `json:"healthPath"`
	TimeoutSeconds  int     `json:"timeoutSeconds"`
	IntervalMs      int     `json:"intervalMs"`
	SoakSeconds     int     `json:"soakSeconds"`
	DrainSeconds    int     `json:"drainSeconds"`
	Checks          []Check `json:"checks"`
	Standby         bool    `json:"standby"`
	RollbackVersion string  `json:"rollbackVersion"`
	BeforeActivate  string  `json:"beforeActivate"`
	// HookSecret: the stack holds beforeActivate as a secret: never logged, never in an argv.
	HookSecret         bool   `json:"hookSecret"`
	HookTimeoutSeconds int    `json:"hookTimeoutSeconds"`
	Canary             Canary `json:"canary"`
	Watch              Watch  `json:"watch"`
	Acknowledged       bool   `json:"acknowledged"`
	Revision           string `json:"revision"`

	// FailoverAfterSeconds: the failover watch switches to the warm standby when the live
	// instance fails its health this long (0: off).
	FailoverAfterSeconds int `json:"failoverAfterSeconds"`
}

// ActivateRequest starts one host-side activation (`agent start-activation`, JSON on stdin).
type ActivateRequest struct {
	V             int      `json:"v"`
	ID            string   `json:"id"`
	Version       string   `json:"version"`
	Sha256        string   `json:"sha256"`
	Who           string   `json:"who"`
	RunHook       bool     `json:"runHook"`
	BudgetSeconds int      `json:"budgetSeconds"`
	Settings      Settings `json:"settings"`
}

// Phase figures of the error-rate watch (canary or soak).
type WatchPhase struct {
	Phase        string `json:"phase"`
	Seconds      int    `json:"seconds"`
	Elapsed      int    `json:"elapsed"`
	Verdict      string `json:"verdict"` // ok | few | trip | undecided
	NewRequests  int64  `json:"newRequests"`
	NewErrors    int64  `json:"newErrors"`
	PrevRequests int64  `json:"prevRequests"`
	PrevErrors   int64  `json:"prevErrors"`
	// Text is the figures as one line, as revisions.log records them.
	Text string `json:"text"`
}

// Result is what an activation (or the emergency rollback) reports. Written by the agent
// (<activations>/<id>.result.json, root 0600) and read by the provider's poll.
type Result struct {
	V    int  `json:"v"`
	Done bool `json:"done"`
	// Outcome: activated | converged | failed | failed-rolled-back | rolled-back | refused | locked.
	Outcome string `json:"outcome,omitempty"`
	// Reason is the stable code of a failure: release-incomplete, beforeActivate-hook, health-gate,
	// canary, switch, soak, watch, watch-rolled-back, interrupted.
	Reason         string       `json:"reason,omitempty"`
	Exit           int          `json:"exit"`
	Previous       string       `json:"previous"`
	LiveHealthy    bool         `json:"liveHealthy"`
	Serving        string       `json:"serving,omitempty"`
	Seen           string       `json:"seen,omitempty"`
	Hook           string       `json:"hook,omitempty"`
	Standby        string       `json:"standby"`
	StandbyProblem string       `json:"standbyProblem,omitempty"`
	Live           int          `json:"live,omitempty"`
	Commit         string       `json:"commit,omitempty"`
	Container      *Container   `json:"container,omitempty"`
	Holder         string       `json:"holder,omitempty"`
	Watch          string       `json:"watch,omitempty"`
	WatchPhases    []WatchPhase `json:"watchPhases,omitempty"`
	TrippedAt      int64        `json:"trippedAt,omitempty"`
	SwitchedBackAt int64        `json:"switchedBackAt,omitempty"`
	// PhasesMs are the milliseconds each phase of the activation took on the host (recheck or
	// gate, switch, config, drain, standby, total), in the order they ran.
	PhasesMs []PhaseMs `json:"phasesMs,omitempty"`
	// Unit is the transient activation unit's state, added by the poll (`agent activation-result`).
	Unit string `json:"unit,omitempty"`
	// FailedOver: the host failed over to its standby since its last deploy (the failover's
	// time, target and outcome line), said when a deploy fails there.
	FailedOver string `json:"failedOver,omitempty"`
}

// PhaseMs is one phase of an activation and the milliseconds it took on the host.
type PhaseMs struct {
	Phase string `json:"phase"`
	Ms    int64  `json:"ms"`
}

// Container is a slot's container as Docker sees it (container mode).
type Container struct {
	State string `json:"state"` // running | exited | … | missing
	ID    string `json:"id"`
	Image string `json:"image"`
}

// Error is the answer of a command that failed before it had an outcome (bad input, a refusal).
type Error struct {
	V       int    `json:"v"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// MaxRequestBytes bounds a request read from stdin.
const MaxRequestBytes = 1 << 20

// Decode reads exactly one JSON value of type T from r: unknown fields, trailing data, a
// missing or other protocol version are refused with an error naming the field.
func Decode[T any](r io.Reader, v *T, version func(*T) int) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	if len(data) > MaxRequestBytes {
		return fmt.Errorf("the request is over %d bytes", MaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the request is not a valid JSON request: %w", err)
	}
	if dec.More() {
		return errors.New("the request has data after its JSON object")
	}
	if got := version(v); got != V {
		return fmt.Errorf("the request's protocol version v is %d; this agent speaks v %d (install the agent of this stack's version)", got, V)
	}
	return nil
}
