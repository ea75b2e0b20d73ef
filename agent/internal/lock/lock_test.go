package lock

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTakeExcludesWithinOneProcess(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".deploy.lock")
	a, err := Take(p, "first", 0)
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := os.ReadFile(p + ".owner")
	if !regexp.MustCompile(fmt.Sprintf(`^first pid %d since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$`, os.Getpid())).Match(owner) {
		t.Errorf("owner %q", owner)
	}
	if held, err := Held(p); err != nil || !held {
		t.Errorf("Held = %v, %v while held", held, err)
	}
	start := time.Now()
	_, err = Take(p, "second", 200*time.Millisecond)
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("second Take: %v", err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond || waited > 2*time.Second {
		t.Errorf("waited %v", waited)
	}
	want := fmt.Sprintf("the deploy lock %s is held by first pid %d since ", p, os.Getpid())
	if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), " (still running); waited 0.2 s. The lock frees itself when that process ends.") {
		t.Errorf("error %q", err)
	}
	// Freed while the other waits: it gets the lock.
	go func() { time.Sleep(150 * time.Millisecond); a.Release() }()
	b, err := Take(p, "second", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	if held, err := Held(p); err != nil || held {
		t.Errorf("Held = %v, %v after release", held, err)
	}
	a.Release() // twice: harmless
}

func TestHeldErrorText(t *testing.T) {
	e := &HeldError{Path: "/srv/app/.deploy.lock", Holder: "ci@h pid 12 since 2024-01-01T00:00:00Z (no longer running)", Waited: 120 * time.Second}
	want := "the deploy lock /srv/app/.deploy.lock is held by ci@h pid 12 since 2024-01-01T00:00:00Z (no longer running); waited 120 s. The lock frees itself when that process ends."
	if e.Error() != want {
		t.Errorf("%q\nwant %q", e.Error(), want)
	}
}

func deadPid(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1)")
	}
	return cmd.Process.Pid
}

func TestHolder(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "l")
	if got := Holder(p); got != "unknown holder (no longer running)" {
		t.Errorf("missing owner: %q", got)
	}
	dead := deadPid(t)
	for _, c := range []struct{ owner, want string }{
		{fmt.Sprintf("ci pid %d since T\n", dead), fmt.Sprintf("ci pid %d since T (no longer running)", dead)},
		{fmt.Sprintf("ci pid %d since T\n\n", os.Getpid()), fmt.Sprintf("ci pid %d since T (still running)", os.Getpid())},
		{"ci pid 1 since T", "ci pid 1 since T (still running)"},
		{"ci pid 0 since T", "ci pid 0 since T (no longer running)"},
		{"ci pid 1", "ci pid 1 (no longer running)"}, // no space after the pid: the sed did not match
		{"ci pid 99999999999999999999 since T", "ci pid 99999999999999999999 since T (no longer running)"},
		{"a pid 1 x\nb pid 1 y", "a pid 1 x\nb pid 1 y (no longer running)"},
		{"", " (no longer running)"},
	} {
		if err := os.WriteFile(p+".owner", []byte(c.owner), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := Holder(p); got != c.want {
			t.Errorf("Holder with %q = %q, want %q", c.owner, got, c.want)
		}
	}
}

func TestHeldDoesNotCreate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	if held, err := Held(p); err != nil || held {
		t.Errorf("Held = %v, %v", held, err)
	}
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("Held created the file: %v", err)
	}
}

func TestTakeRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	p := filepath.Join(dir, "l")
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if l, err := Take(p, "x", 0); err == nil {
		l.Release()
		t.Fatal("Take followed a symlink")
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Error("the symlink's target was created")
	}
	if _, err := Held(p); err == nil {
		t.Error("Held followed a symlink")
	}
}

func TestTakeNotInherited(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	l, err := Take(p, "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	// A child started while the lock is held; after Release the lock must be free even though
	// the child still runs.
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep(1)")
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	l.Release()
	if held, err := Held(p); err != nil || held {
		t.Errorf("the child kept the lock: %v, %v", held, err)
	}
}

func TestInteropWithFlock1(t *testing.T) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("flock(1) not installed")
	}
	p := filepath.Join(t.TempDir(), "l")
	// Its own process group: flock(1) runs sleep as a child that holds the lock too, and
	// both must end.
	cmd := exec.Command(flock, "-x", p, "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }
	defer stop()
	for i := 0; ; i++ {
		if held, _ := Held(p); held {
			break
		}
		if i > 100 {
			t.Fatal("flock(1) never took the lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err = Take(p, "agent", 300*time.Millisecond)
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("Take while flock(1) holds it: %v", err)
	}
	stop()
	l, err := Take(p, "agent", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// And the other way round: flock(1) -n fails while the agent holds it.
	if err := exec.Command(flock, "-n", p, "true").Run(); err == nil {
		t.Error("flock(1) -n took the lock the agent holds")
	}
	l.Release()
	if err := exec.Command(flock, "-n", p, "true").Run(); err != nil {
		t.Errorf("flock(1) -n after Release: %v", err)
	}
}

func TestPausePoint(t *testing.T) {
	dir := t.TempDir()
	old := FaultsDir
	FaultsDir = dir
	defer func() { FaultsDir = old }()

	start := time.Now()
	PausePoint("extract") // no trigger: inert
	if time.Since(start) > time.Second {
		t.Error("an inert pause point waited")
	}
	if _, err := os.Lstat(filepath.Join(dir, "extract.reached")); !os.IsNotExist(err) {
		t.Error("an inert pause point wrote .reached")
	}

	trigger := filepath.Join(dir, "extract")
	if err := os.WriteFile(trigger, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { PausePoint("extract"); close(done) }()
	var reached []byte
	for i := 0; ; i++ {
		var err error
		if reached, err = os.ReadFile(trigger + ".reached"); err == nil && len(reached) > 0 {
			break
		}
		if i > 100 {
			t.Fatal("never reached")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(reached) != fmt.Sprintf("%d\n", os.Getpid()) {
		t.Errorf("reached %q", reached)
	}
	select {
	case <-done:
		t.Fatal("returned with the trigger present")
	case <-time.After(300 * time.Millisecond):
	}
	os.Remove(trigger)
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("still paused after the trigger went")
	}

	// Bounded: at most PauseMax.
	oldMax := PauseMax
	PauseMax = 300 * time.Millisecond
	defer func() { PauseMax = oldMax }()
	if err := os.WriteFile(trigger, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	PausePoint("extract")
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("paused %v", d)
	}
}
