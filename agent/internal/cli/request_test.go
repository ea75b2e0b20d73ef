package cli

import (
	"bytes"
	"strings"
	"testing"

	"complinist/agent/internal/protocol"
)

func goodRequest() protocol.ActivateRequest {
	return protocol.ActivateRequest{
		V: 1, ID: "1_1_0-abc-def", Version: "1.1.0", Sha256: strings.Repeat("a", 64), Who: "ci@runner", BudgetSeconds: 600,
		Settings: protocol.Settings{
			Port: 5000, User: "complinist", HealthPath: "/health", TimeoutSeconds: 30, IntervalMs: 500, DrainSeconds: 30,
			Checks: []protocol.Check{{Path: "/", Status: 200, MaxMs: 2000}}, Standby: true, RollbackVersion: "1.0.0", HookTimeoutSeconds: 600,
			Watch: protocol.Watch{ErrorRateFactor: 10, MinRequests: 20, MaxErrorRatio: 0.01}, Revision: "0123456789abcdef",
		},
	}
}

func TestCheckRequestNamesTheFieldAndWhatIsAccepted(t *testing.T) {
	if err := checkRequest(goodRequest()); err != nil {
		t.Fatalf("a good request: %v", err)
	}
	for field, bad := range map[string]func(r *protocol.ActivateRequest){
		"id":                         func(r *protocol.ActivateRequest) { r.ID = "../../etc/x" },
		"version":                    func(r *protocol.ActivateRequest) { r.Version = "../shared/x" },
		"sha256":                     func(r *protocol.ActivateRequest) { r.Sha256 = "ABC" },
		"who":                        func(r *protocol.ActivateRequest) { r.Who = "ci\nversion=9.9.9" },
		"settings.port":              func(r *protocol.ActivateRequest) { r.Settings.Port = 65535 },
		"settings.user":              func(r *protocol.ActivateRequest) { r.Settings.User = "root;id" },
		"settings.healthPath":        func(r *protocol.ActivateRequest) { r.Settings.HealthPath = "health check" },
		"settings.rollbackVersion":   func(r *protocol.ActivateRequest) { r.Settings.RollbackVersion = "a/b" },
		"settings.beforeActivate":    func(r *protocol.ActivateRequest) { r.RunHook = true },
		"settings.canary.percent":    func(r *protocol.ActivateRequest) { r.Settings.Canary.Percent = 60 },
		"settings.canary.seconds":    func(r *protocol.ActivateRequest) { r.Settings.Canary = protocol.Canary{Percent: 10, Seconds: 4} },
		"settings.watch.minRequests": func(r *protocol.ActivateRequest) { r.Settings.Watch.MinRequests = 0 },
		"settings.revision":          func(r *protocol.ActivateRequest) { r.Settings.Revision = "xyz" },
		"settings.checks[0]":         func(r *protocol.ActivateRequest) { r.Settings.Checks[0].Status = 99 },
	} {
		t.Run(field, func(t *testing.T) {
			r := goodRequest()
			bad(&r)
			err := checkRequest(r)
			if err == nil || !strings.Contains(err.Error(), "request field "+field+" is ") || !strings.Contains(err.Error(), "accepted:") || !strings.HasSuffix(err.Error(), "Nothing was changed") {
				t.Fatalf("want a refusal naming %s, got %v", field, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("the refusal is one line: %q", err)
			}
		})
	}
}

func TestUnknownCommandsAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	e := &env{prog: "/usr/local/sbin/complinist", service: "complinist", stdout: &out, stderr: &errb}
	if err := e.dispatch([]string{"--help"}); err != nil || !strings.HasPrefix(out.String(), "usage: /usr/local/sbin/complinist status") {
		t.Fatalf("help: %v %q", err, out.String())
	}
	if _, ok := e.dispatch([]string{"frobnicate"}).(usageError); !ok {
		t.Fatal("an unknown command is a usage error")
	}
	if _, ok := (&env{prog: "/x/Bad Name", service: "Bad Name", stdout: &out, stderr: &errb}).dispatch([]string{"status"}).(usageError); !ok {
		t.Fatal("a program name that is no service name is refused")
	}
}

func TestRollbackAllRefusesBadArgumentsBeforeTouchingTheHost(t *testing.T) {
	var out, errb bytes.Buffer
	e := &env{prog: "/usr/local/sbin/complinist", service: "complinist", stdout: &out, stderr: &errb}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"missing flags": {[]string{"rollback-all", "--from", "2.0.0"}, "usage: /usr/local/sbin/complinist rollback-all --from VERSION --failed-host NAME --who WHO"},
		"unknown flag":  {[]string{"rollback-all", "--from", "2.0.0", "--failed-host", "web-3", "--to", "1.0.0"}, "usage: "},
		"bad version":   {[]string{"rollback-all", "--from", "../shared/x", "--failed-host", "web-3", "--who", "ci@runner"}, "refused: --from ../shared/x is not a release version; nothing was changed"},
		"bad host":      {[]string{"rollback-all", "--from", "2.0.0", "--failed-host", "web 3\nversion=9", "--who", "ci@runner"}, "refused: --failed-host web 3 version=9 is not a host name"},
		"two-line who":  {[]string{"rollback-all", "--from", "2.0.0", "--failed-host", "web-3", "--who", "ci\noutcome=activated"}, "refused: --who must be one printable line"},
		"empty who":     {[]string{"rollback-all", "--from", "2.0.0", "--failed-host", "web-3", "--who", ""}, "refused: --who must be one printable line"},
	} {
		t.Run(name, func(t *testing.T) {
			err := e.dispatch(c.args)
			ue, ok := err.(usageError)
			if !ok || !strings.Contains(ue.Error(), c.want) {
				t.Fatalf("want a usage error with %q, got %v", c.want, err)
			}
		})
	}
}
