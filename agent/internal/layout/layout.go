// Package layout is where everything lives on a host: the contract the providers
// (infra/render/layout.ts) and the agent share, derived from baseDir and the service name alone.
package layout

import (
	"fmt"
	"path/filepath"
	"regexp"
)

// Manifest marks a release directory complete; only the install writes it.
const Manifest = ".complinist-release"

var (
	serviceRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	versionRe = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$`)
)

// ValidService reports whether s is a service name the schema accepts.
func ValidService(s string) bool { return serviceRe.MatchString(s) }

// ValidVersion reports whether v is a release version (the schema's pattern).
func ValidVersion(v string) bool { return versionRe.MatchString(v) }

// Layout is every host path of one service. Root prefixes every path (tests' temp roots).
type Layout struct {
	Service        string
	BaseDir        string
	ReleasesDir    string
	Current        string
	SharedDir      string
	RevisionsLog   string
	LockFile       string
	InstancesDir   string
	ActivationsDir string
	UnitDir        string
	EnvDir         string
	EnvFile        string
	LogDir         string
	DeployLog      string
	ProxyConfig    string
	ProxyRunDir    string
	ProxySocket    string
	ProxyStats     string
	ProxyState     string
	DeployConfig   string // legacy: the bash program's sourced settings (read as data only)
	DeploySettings string // the last successful activation's settings (JSON, root 0600)
	AgentConfig    string
	HostProgram    string
	Logrotate      string
}

// New derives the layout; root is "" on a real host.
func New(root, baseDir, service string) (Layout, error) {
	if !ValidService(service) {
		return Layout{}, fmt.Errorf("service name %q is not a service name (lower-case letters, digits and -, starting with a letter, at most 32)", service)
	}
	if !filepath.IsAbs(baseDir) || filepath.Clean(baseDir) != baseDir || baseDir == "/" {
		return Layout{}, fmt.Errorf("baseDir %q is not an absolute, normalized path below /", baseDir)
	}
	r := func(p string) string { return root + p }
	etc := "/etc/" + service
	return Layout{
		Service:        service,
		BaseDir:        r(baseDir),
		ReleasesDir:    r(baseDir + "/releases"),
		Current:        r(baseDir + "/current"),
		SharedDir:      r(baseDir + "/shared"),
		RevisionsLog:   r(baseDir + "/revisions.log"),
		LockFile:       r(baseDir + "/.deploy.lock"),
		InstancesDir:   r(baseDir + "/instances"),
		ActivationsDir: r(baseDir + "/.activations"),
		UnitDir:        r("/etc/systemd/system"),
		EnvDir:         r(etc),
		EnvFile:        r(etc + "/" + service + ".env"),
		LogDir:         r("/var/log/" + service),
		DeployLog:      r("/var/log/" + service + "/deploy.log"),
		ProxyConfig:    r(etc + "/haproxy.cfg"),
		ProxyRunDir:    r("/run/" + service + "-proxy"),
		ProxySocket:    r("/run/" + service + "-proxy/admin.sock"),
		ProxyStats:     r("/run/" + service + "-proxy/stats.sock"),
		ProxyState:     r(etc + "/proxy.json"),
		DeployConfig:   r(etc + "/deploy.conf"),
		DeploySettings: r(etc + "/deploy.json"),
		AgentConfig:    r(etc + "/agent.json"),
		HostProgram:    r("/usr/local/sbin/" + service),
		Logrotate:      r("/etc/logrotate.d/" + service),
	}, nil
}

// ReleaseDir is releases/<version>.
func (l Layout) ReleaseDir(version string) string { return l.ReleasesDir + "/" + version }

// InstanceUnit is <service>@<port>.service.
func (l Layout) InstanceUnit(port int) string { return fmt.Sprintf("%s@%d.service", l.Service, port) }

// ProxyUnit is <service>-proxy.service.
func (l Layout) ProxyUnit() string { return l.Service + "-proxy.service" }

// FailoverUnit is <service>-failover.service (the failover watch).
func (l Layout) FailoverUnit() string { return l.Service + "-failover.service" }

// ServiceUnit is the umbrella <service>.service.
func (l Layout) ServiceUnit() string { return l.Service + ".service" }

// InstancePorts are the two private loopback ports behind the service port.
func InstancePorts(port int) [2]int { return [2]int{port + 1, port + 2} }
