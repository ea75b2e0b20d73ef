package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"complinist/agent/internal/activate"
	"complinist/agent/internal/fsafe"
	"complinist/agent/internal/health"
	"complinist/agent/internal/host"
	"complinist/agent/internal/layout"
	"complinist/agent/internal/lock"
	"complinist/agent/internal/protocol"
	"complinist/agent/internal/record"
)

// realClock is the host's clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// instances adapts host.Instances to activate.Instances.
type instances struct {
	host.Instances
	user string
}

func (i instances) Start(port int, version, rev string) error {
	var prepare func() error
	if i.Runtime == "docker" {
		prepare = func() error { return host.PrepareContainerLogs(i.L, i.user) }
	}
	return i.Instances.Start(port, version, rev, prepare)
}

func (i instances) Foreign(port int) []string {
	return i.Instances.Foreign(port, func(pid, port int) bool { return host.ContainerOwnsListener(i.L, pid, port) })
}

func (i instances) Reclaim(port, other int) ([]string, string) {
	return i.Instances.Reclaim(port, other, func(pid, port int) bool { return host.ContainerOwnsListener(i.L, pid, port) })
}

func (i instances) OpenConnections(port int) int { return host.OpenConnections(port) }

func (i instances) Container(port int) *protocol.Container { return host.ContainerState(i.L, port) }

// prober adapts health.Prober.
type prober struct{ p health.Prober }

func (p prober) Probe(ctx context.Context, url, want string) (bool, string) {
	return p.p.Probe(ctx, url, want)
}
func (p prober) Serves(ctx context.Context, url string) string { return p.p.Serves(ctx, url) }
func (p prober) Smoke(ctx context.Context, port int, checks []protocol.Check) (bool, string) {
	return p.p.Smoke(ctx, port, checks)
}

// hostOps is the rest of the real host for one activation.
type hostOps struct {
	l       layout.Layout
	runtime string
	s       protocol.Settings
	log     record.Log
	result  string // the result file's name in the activations directory ("" for none)
	onStep  func(string)
}

func (h hostOps) ReleaseComplete(version string) bool { return releaseComplete(h.l, version) }

func (h hostOps) Commit(version string) string { return host.ManifestField(h.l, version, "commit") }

func (h hostOps) SwitchCurrent(version string) error {
	return fsafe.SymlinkAtomic(filepath.Dir(h.l.Current), filepath.Base(h.l.Current), "releases/"+version)
}

func (h hostOps) StartUmbrella() { _, _ = host.Systemctl("start", h.l.ServiceUnit()) }

func (h hostOps) FreeServicePort() {
	_, _ = host.Systemctl("stop", h.l.ServiceUnit())
	if h.runtime == "docker" {
		if host.LegacyContainerExists(h.l) {
			h.Step("first switch: removing the replace-in-place container " + h.l.Service + " to free the service port")
			host.RemoveLegacyContainer(h.l)
		}
	}
}

func (h hostOps) RunHook(ctx context.Context, version string) (string, error) {
	out, err := host.RunHook(ctx, h.l.Service, h.l.ReleaseDir(version), h.s.BeforeActivate, h.s.HookSecret, h.s.User, h.l.EnvFile, h.l.SharedDir, h.s.HookTimeoutSeconds)
	values := host.EnvValues(h.l.EnvFile)
	if h.s.HookSecret {
		// bash's own error text (or a traced hook) may quote the command: it is a secret too.
		values = append(values, h.s.BeforeActivate)
		values = append(values, strings.Fields(h.s.BeforeActivate)...)
	}
	return host.Redact(out, values), err
}

func (h hostOps) Record(version, sha, who, outcome string) {
	if err := h.log.Record(version, sha, who, outcome); err != nil {
		h.Step("writing revisions.log failed: " + err.Error())
	}
}

func (h hostOps) Step(text string) {
	h.log.Step(text)
	if h.result != "" {
		// An activation (it reports a result): the live view reads its phase.
		writePhase(h.l, h.log.ID, text, time.Now())
	}
	if h.onStep != nil {
		h.onStep(text)
	}
}

func (h hostOps) Report(r protocol.Result) {
	if h.result == "" {
		return
	}
	b, _ := json.Marshal(r)
	_ = fsafe.WriteFileAtomic(h.l.ActivationsDir, h.result, append(b, '\n'), 0o600)
}

func (h hostOps) WatchNow(w *activate.WatchNow) {
	if w == nil {
		_ = os.Remove(h.l.ActivationsDir + "/" + watchNowFile)
		return
	}
	b, _ := json.Marshal(w)
	_ = fsafe.WriteFileAtomic(h.l.ActivationsDir, watchNowFile, b, 0o600)
}

func (h hostOps) PausePoint(name string) { lock.PausePoint(name) }

func (h hostOps) Revisions() string {
	b, err := fsafe.ReadFile(filepath.Dir(h.l.RevisionsLog), filepath.Base(h.l.RevisionsLog), 64<<20)
	if err != nil {
		return ""
	}
	return string(b)
}

// watchNowFile holds the watch in progress (root 0600 in the activations directory).
const watchNowFile = "watch.json"

// releaseComplete: VERSION is a release version and a real directory under releases/ (never a
// link) with the manifest root wrote (a regular file).
func releaseComplete(l layout.Layout, version string) bool {
	if !layout.ValidVersion(version) {
		return false
	}
	fi, err := os.Lstat(l.ReleaseDir(version))
	if err != nil || !fi.IsDir() {
		return false
	}
	mi, err := os.Lstat(l.ReleaseDir(version) + "/" + layout.Manifest)
	return err == nil && mi.Mode().IsRegular()
}

func deps(l layout.Layout, runtime string, s protocol.Settings, log record.Log, result string, onStep func(string)) activate.Deps {
	timeout := min(s.TimeoutSeconds, 5)
	if timeout <= 0 {
		timeout = 5
	}
	return activate.Deps{
		Inst:  instances{Instances: host.Instances{L: l, Runtime: runtime}, user: s.User},
		Proxy: host.Proxy{L: l, Port: s.Port, DrainSeconds: s.DrainSeconds},
		HTTP:  prober{p: health.NewProber(time.Duration(timeout) * time.Second)},
		Clock: realClock{},
		Host:  hostOps{l: l, runtime: runtime, s: s, log: log, result: result, onStep: onStep},
	}
}
