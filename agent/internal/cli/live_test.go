package cli

import (
	"os"
	"strings"
	"testing"
	"time"

	"complinist/agent/internal/layout"
	"complinist/agent/internal/protocol"
	"complinist/agent/internal/record"
)

func liveLayout(t *testing.T) layout.Layout {
	t.Helper()
	l, err := layout.New(t.TempDir(), "/opt/complinist", "complinist")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(l.ActivationsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestEachActivationStepBeginsThePhaseAfterIt(t *testing.T) {
	// The steps as activate.go and watch.go write them, in the order of a canary deploy with a soak.
	for step, want := range map[string]string{
		"start version=1.1.0 by=ci@runner":                             "checking",
		"hook start: bin/migrate":                                      "hook",
		"hook done: migrated":                                          "starting",
		"instance start 1.1.0 on 5002":                                 "gate",
		"warm standby 1.0.0 on 5002: re-checking its health":           "gate",
		"gate passed on 5002":                                          "switching",
		"gate failed on 5002: HTTP 503":                                "failing",
		"canary: 10% of new requests to 1.1.0 on 5002 for 60s (...)":   "canary",
		"canary not started: the proxy did not take the weights":       "switching",
		"watch tripped: canary 5s of 60s: new 40 requests 12 errors":   "switching back",
		"switched back to 1.0.0 on 5001 12 ms after the watch tripped": "switched back",
		"switch failed: the proxy did not confirm":                     "failing",
		"switched to 1.1.0 on 5002":                                    "draining",
		"drained 1.0.0 on 5001":                                        "settling",
		"soak 30s":                                                     "soak",
		"soak passed":                                                  "standby",
		"standby start 1.0.0 on 5001":                                  "standby",
		"already live on 5001":                                         "converging",
		"interrupted during the canary: every request back to 1.0.0":   "interrupted",
		"result activated":                                             "done",
		"result failed: health-gate; serving 1.0.0":                    "done",
	} {
		if got := phaseOf(step); got != want {
			t.Errorf("phaseOf(%q) = %q, want %q", step, got, want)
		}
	}
	for _, step := range []string{"watch passed: canary 8s of 8s", "standby ready 1.0.0 on 5001", "10% canary 8s of 8s: new 80 requests", ""} {
		if got := phaseOf(step); got != "" {
			t.Errorf("phaseOf(%q) = %q, want no phase (the one it is in goes on)", step, got)
		}
	}
}

func TestThePhaseIsWrittenByItsStepKeptThroughOthersAndCleared(t *testing.T) {
	l := liveLayout(t)
	if a := activationNow(l); a != nil {
		t.Fatalf("no phase file: got %+v", a)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	writePhase(l, "1_1_0-abc", "canary: 10% of new requests to 1.1.0 on 5002 for 60s", at)
	writePhase(l, "1_1_0-abc", "watch passed: canary 60s of 60s", at.Add(time.Minute))
	a := activationNow(l)
	if a == nil || *a != (ActivationNow{ID: "1_1_0-abc", Phase: "canary", Step: "canary: 10% of new requests to 1.1.0 on 5002 for 60s", Since: "2026-01-02T03:04:05Z"}) {
		t.Fatalf("got %+v", a)
	}
	if fi, err := os.Stat(l.ActivationsDir + "/" + phaseFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the phase file: %v %v, want root-only 0600", fi, err)
	}
	clearPhase(l)
	if a := activationNow(l); a != nil {
		t.Fatalf("after the activation: %+v", a)
	}
}

func TestAPhaseFileThatIsNotTheAgentsIsNoPhaseAndNeverMoreThanALine(t *testing.T) {
	l := liveLayout(t)
	for _, text := range []string{"not json", `{"phase":""}`, `[1,2]`, strings.Repeat("x", 32<<10)} {
		if err := os.WriteFile(l.ActivationsDir+"/"+phaseFile, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if a := activationNow(l); a != nil {
			t.Errorf("%.40q: got %+v", text, a)
		}
	}
	hostile := `{"id":"x\u001b]52;c;ZXZpbA==\u0007","phase":"canary\nversion=9","step":"` + strings.Repeat("s", 400) + `","since":"now"}`
	if err := os.WriteFile(l.ActivationsDir+"/"+phaseFile, []byte(hostile), 0o600); err != nil {
		t.Fatal(err)
	}
	a := activationNow(l)
	if a == nil || strings.ContainsAny(a.ID+a.Phase+a.Step, "\x1b\x07\n") || len(a.Step) != 300 || a.Phase != "canary version=9" {
		t.Fatalf("got %+v", a)
	}
}

func TestOnlyAnActivationWritesAPhase(t *testing.T) {
	l := liveLayout(t)
	log := record.Log{Deploy: l.LogDir + "/deploy.log", ID: "emergency-1"}
	deps(l, "process", protocol.Settings{}, log, "", nil).Host.Step("start version=1.0.0 by=ops")
	if a := activationNow(l); a != nil {
		t.Fatalf("a command without a result wrote a phase: %+v", a)
	}
	deps(l, "process", protocol.Settings{}, log, "emergency-1.result.json", nil).Host.Step("start version=1.0.0 by=ops")
	if a := activationNow(l); a == nil || a.Phase != "checking" || a.ID != "emergency-1" {
		t.Fatalf("an activation's step: %+v", a)
	}
}
