package cli

import (
	"encoding/json"
	"os"
	"strings"
	"time"

	"complinist/agent/internal/fsafe"
	"complinist/agent/internal/layout"
	"complinist/agent/internal/record"
)

// ActivationNow is the phase of the activation in progress, for the live view (`npm run status
// -- --watch`, `npm run dashboard`): which step it is at and since when. The activation writes it
// at each step that begins a phase; `state` reads it only while the deploy lock is held.
type ActivationNow struct {
	ID    string `json:"id"`
	Phase string `json:"phase"`
	// Step is the deploy log's step that began the phase (one line).
	Step string `json:"step"`
	// Since is when that step was written, UTC to the second.
	Since string `json:"since"`
}

// phaseFile holds ActivationNow (root 0600 in the activations directory, beside watch.json).
const phaseFile = "phase.json"

// stepPhases: how an activation's step (activate/activate.go, watch.go) begins the phase after
// it, by the step's first words, first match wins. A step not listed begins no phase (a watch
// tick's verdict, a standby's detail): the phase it is in goes on.
var stepPhases = []struct{ prefix, phase string }{
	{"start version=", "checking"},
	{"hook start", "hook"},
	{"hook done", "starting"},
	{"instance start", "gate"},
	{"warm standby", "gate"},
	{"gate passed", "switching"},
	{"gate failed", "failing"},
	{"canary not started", "switching"},
	{"canary:", "canary"},
	{"watch tripped", "switching back"},
	{"switched back", "switched back"},
	{"switch failed", "failing"},
	{"switch undone", "failing"},
	{"switch refused", "failing"},
	{"switched to", "draining"},
	{"drained", "settling"},
	{"soak passed", "standby"},
	{"soak ", "soak"},
	{"standby start", "standby"},
	{"already live", "converging"},
	{"interrupted", "interrupted"},
	{"result ", "done"},
}

// phaseOf is the phase a step begins, "" when it begins none.
func phaseOf(step string) string {
	for _, p := range stepPhases {
		if strings.HasPrefix(step, p.prefix) {
			return p.phase
		}
	}
	return ""
}

// writePhase records the phase a step begins; a step that begins none leaves the file as it is.
// Never fails the activation: the view loses a phase, nothing else does.
func writePhase(l layout.Layout, id, step string, now time.Time) {
	phase := phaseOf(step)
	if phase == "" {
		return
	}
	b, _ := json.Marshal(ActivationNow{ID: record.OneLine(id, 100), Phase: phase, Step: record.OneLine(step, 300), Since: now.UTC().Format("2006-01-02T15:04:05Z")})
	_ = fsafe.WriteFileAtomic(l.ActivationsDir, phaseFile, b, 0o600)
}

// clearPhase removes the phase when the activation ends (before its lock is let go).
func clearPhase(l layout.Layout) { _ = os.Remove(l.ActivationsDir + "/" + phaseFile) }

// activationNow is the phase written, nil when there is none or it is not ActivationNow's JSON.
func activationNow(l layout.Layout) *ActivationNow {
	b, err := fsafe.ReadFile(l.ActivationsDir, phaseFile, 16<<10)
	if err != nil {
		return nil
	}
	var a ActivationNow
	if json.Unmarshal(b, &a) != nil || a.Phase == "" {
		return nil
	}
	a.ID, a.Phase, a.Step, a.Since = record.OneLine(a.ID, 100), record.OneLine(a.Phase, 40), record.OneLine(a.Step, 300), record.OneLine(a.Since, 40)
	return &a
}
