package host

import (
	"strings"
	"testing"

	"complinist/agent/internal/layout"
)

func TestDockerRunArgsRunOnlyThePinnedImageAsTheServiceUserWithLimits(t *testing.T) {
	l, err := layout.New("", "/opt/complinist", "complinist")
	if err != nil {
		t.Fatal(err)
	}
	r := RunSettings{User: "complinist", Memory: "512m", Pids: "256", TmpSize: "64m", LogMaxSize: "10m", LogMaxFiles: "3"}
	if !r.Valid() {
		t.Fatal("the schema's forms are valid")
	}
	args := strings.Join(DockerRunArgs(l, 5001, "1.0.0", "sha256:abc", "999:999", r), " ")
	for _, want := range []string{
		"docker run --rm --name complinist-5001 ",
		"--publish 127.0.0.1:5001:5001",
		"--env PORT=5001 --env COMPLINIST_VERSION=1.0.0 --env-file /etc/complinist/instance-5001.env",
		"--mount type=volume,source=complinist-logs,target=/var/log/complinist,volume-nocopy",
		"--user 999:999 --cap-drop ALL --security-opt no-new-privileges",
		"--read-only --tmpfs /tmp:rw,nosuid,nodev,noexec,size=64m",
		"--memory 512m --memory-swap 512m --pids-limit 256",
		"--log-driver json-file --log-opt max-size=10m --log-opt max-file=3",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("docker run lacks %q: %s", want, args)
		}
	}
	if !strings.HasSuffix(args, " sha256:abc") {
		t.Errorf("the image comes last: %s", args)
	}
}

func TestRunSettingsRefuseWhatCouldReachDockersCommandLine(t *testing.T) {
	good := RunSettings{User: "complinist", Memory: "512m", Pids: "256", TmpSize: "64m", LogMaxSize: "10m", LogMaxFiles: "3"}
	for name, bad := range map[string]func(*RunSettings){
		"a user with a space":     func(r *RunSettings) { r.User = "a b" },
		"a memory flag":           func(r *RunSettings) { r.Memory = "--privileged" },
		"zero pids":               func(r *RunSettings) { r.Pids = "0" },
		"a tmp size with a comma": func(r *RunSettings) { r.TmpSize = "64m,exec" },
		"a log size without unit": func(r *RunSettings) { r.LogMaxSize = "10" },
		"no log files":            func(r *RunSettings) { r.LogMaxFiles = "" },
	} {
		r := good
		bad(&r)
		if r.Valid() {
			t.Errorf("%s is accepted", name)
		}
	}
}

func TestParseSSLineCutsTheCgroupAtWhatADelegatedUserCouldWrite(t *testing.T) {
	line := `LISTEN 0 4096 127.0.0.1:5001 0.0.0.0:* uid:999 ino:12345 sk:1 cgroup:/system.slice/complinist@5001.service <->`
	l := ParseSSLine(line)
	if l.Cgroup != "/system.slice/complinist@5001.service" || l.UID != "999" || l.Inode != "12345" {
		t.Errorf("got %+v", l)
	}
	v6 := `LISTEN 0 4096 [::]:5000 [::]:* uid:101 ino:999 sk:3 cgroup:/docker/abc/system.slice/complinist-proxy.service v6only:1 <->`
	if got := ParseSSLine(v6).Cgroup; got != "/docker/abc/system.slice/complinist-proxy.service" {
		t.Errorf("an IPv6 socket's v6only flag is no part of its cgroup: %q", got)
	}
	evil := `LISTEN 0 4096 127.0.0.1:5001 0.0.0.0:* uid:1000 ino:7 cgroup:/user.slice/user-1000.slice/x cgroup:/system.slice/complinist@5001.service`
	if got := ParseSSLine(evil).Cgroup; got != "/user.slice/user-1000.slice/x" {
		t.Errorf("a second cgroup: in a name is cut off: %q", got)
	}
}

func TestCapOutputKeepsHeadAndTailAtLineEnds(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 10000; i++ {
		b.WriteString("line with secret-value-")
		b.WriteString(strings.Repeat("x", 10))
		b.WriteString("\n")
	}
	out := CapOutput(strings.NewReader(b.String()), 1000)
	if !strings.Contains(out, "bytes of hook output left out") {
		t.Fatal("no cut line")
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(line, "line with secret-value-") && !strings.HasPrefix(line, "[... ") {
			t.Fatalf("a line was cut in the middle: %q", line)
		}
	}
	if small := CapOutput(strings.NewReader("a\nb\n"), 1000); small != "a\nb\n" {
		t.Errorf("small output kept whole: %q", small)
	}
}

func TestRedactReplacesEveryEnvValueOfFourCharactersOrMore(t *testing.T) {
	got := Redact("token s3cr3t-token and abc and s3cr3t", []string{"s3cr3t-token", "s3cr3t", "abc"})
	if got != "token *** and abc and ***" {
		t.Errorf("got %q", got)
	}
}
