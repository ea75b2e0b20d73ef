package host

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"complinist/agent/internal/layout"
)

// Run runs a system tool by its absolute path with a time bound.
func Run(timeout time.Duration, name string, args ...string) (string, error) {
	return run(timeout, name, args...)
}

// CleanLeftovers removes what interrupted operations left; safe only under the host lock, where
// no other writer runs. Every temp name carries its writer's pid, and a writer holds the lock
// while its temp exists, so under the lock each one is dead. A complete upload waits for its
// install outside the lock for at most the lock's wait; one ten minutes old has lost its install.
// Activation files are read within the activation's budget; a day-old one never will be.
func CleanLeftovers(l layout.Layout) {
	now := time.Now()
	remove := func(pattern string, olderThan time.Duration, all bool) {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			fi, err := os.Lstat(m)
			if err != nil || (olderThan > 0 && now.Sub(fi.ModTime()) < olderThan) {
				continue
			}
			if all {
				_ = os.RemoveAll(m)
			} else if !fi.IsDir() {
				_ = os.Remove(m)
			}
		}
	}
	remove(l.ReleasesDir+"/.tmp-*", 0, true)
	remove(l.ReleasesDir+"/.download-*", 0, true)
	remove(l.ReleasesDir+"/.upload-*", 10*time.Minute, false)
	remove(l.ReleasesDir+"/.upload.*", 10*time.Minute, false)
	for _, p := range []string{
		filepath.Dir(l.Current) + "/current.tmp.*", l.InstancesDir + "/.tmp-*", l.EnvDir + "/*.tmp", l.EnvDir + "/*.tmp.*", l.EnvDir + "/.*.tmp.*",
		l.HostProgram + ".tmp.*", l.Logrotate + ".tmp.*", l.ProxyConfig + ".tmp.*", l.EnvDir + "/.haproxy.cfg.check.*",
		l.InstancesDir + "/.*.tmp.*", filepath.Dir(l.Current) + "/.current.tmp.*",
		l.UnitDir + "/" + l.Service + ".service.tmp.*", l.UnitDir + "/" + l.Service + "@.service.tmp.*", l.UnitDir + "/" + l.Service + "-proxy.service.tmp.*",
	} {
		remove(p, 0, false)
	}
	if entries, err := os.ReadDir(l.ActivationsDir); err == nil {
		for _, e := range entries {
			fi, err := e.Info()
			if err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > 24*time.Hour && !strings.HasPrefix(e.Name(), ".") {
				_ = os.Remove(l.ActivationsDir + "/" + e.Name())
			}
		}
	}
}
