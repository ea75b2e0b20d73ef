package legacy

import (
	"fmt"
	"math"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"complinist/agent/internal/protocol"
)

// q is infra/render/shell.ts q().
func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// jsNumber is JavaScript's String(number) for a finite number.
func jsNumber(f float64) string {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		m, e, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
		sign, digits := e[:1], strings.TrimLeft(e[1:], "0")
		return m + "e" + sign + digits
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// render is infra/render/hostProgram.ts renderDeploySettings, line for line.
func render(s protocol.Settings) string {
	var checks []string
	for _, c := range s.Checks {
		checks = append(checks, q(fmt.Sprintf("%s|%d|%d", c.Path, c.Status, c.MaxMs)))
	}
	return strings.Join([]string{
		"# Managed by the CompliNist Pulumi stack: the settings of the last successful activation.",
		"PORT=" + q(strconv.Itoa(s.Port)),
		"APP_USER=" + q(s.User),
		"HEALTH_PATH=" + q(s.HealthPath),
		"TIMEOUT=" + q(strconv.Itoa(s.TimeoutSeconds)),
		"INTERVAL=" + q(strconv.FormatFloat(float64(s.IntervalMs)/1000, 'f', 3, 64)),
		"SOAK=" + q(strconv.Itoa(s.SoakSeconds)),
		"DRAIN=" + q(strconv.Itoa(s.DrainSeconds)),
		"CHECKS=(" + strings.Join(checks, " ") + ")",
		"STANDBY=" + b01(s.Standby),
		"ROLLBACK_VERSION=" + q(s.RollbackVersion),
		"HOOK=" + q(s.BeforeActivate),
		"HOOK_TIMEOUT=" + q(strconv.Itoa(s.HookTimeoutSeconds)),
		"CANARY_PERCENT=" + q(strconv.Itoa(s.Canary.Percent)),
		"CANARY_SECONDS=" + q(strconv.Itoa(s.Canary.Seconds)),
		"WATCH_FACTOR=" + q(jsNumber(s.Watch.ErrorRateFactor)),
		"WATCH_MIN_REQUESTS=" + q(strconv.Itoa(s.Watch.MinRequests)),
		"WATCH_MAX_RATIO=" + q(jsNumber(s.Watch.MaxErrorRatio)),
		"ACKNOWLEDGED=" + b01(s.Acknowledged),
		"REV=" + q(s.Revision),
		"",
	}, "\n")
}

var sampleA = protocol.Settings{
	Port: 3000, User: "complinist", HealthPath: "/health?x='y'", TimeoutSeconds: 60, IntervalMs: 500, SoakSeconds: 30, DrainSeconds: 10,
	Checks:  []protocol.Check{{Path: "/api/ping", Status: 200, MaxMs: 800}, {Path: "/it's", Status: 204, MaxMs: 0}},
	Standby: true, RollbackVersion: "1.2.3", BeforeActivate: "npm run migrate -- --env 'prod'\nsecond line", HookTimeoutSeconds: 300,
	Canary: protocol.Canary{Percent: 10, Seconds: 120}, Watch: protocol.Watch{ErrorRateFactor: 2.5, MinRequests: 50, MaxErrorRatio: 1e-7},
	Acknowledged: true, Revision: "abc123",
}

var sampleB = protocol.Settings{
	Port: 8080, User: "app", HealthPath: "/health", TimeoutSeconds: 5, IntervalMs: 1234, Checks: []protocol.Check{},
	Watch: protocol.Watch{ErrorRateFactor: 10, MinRequests: 20, MaxErrorRatio: 0.01},
}

// Both printed by the TypeScript renderDeploySettings itself (node), for sampleA and sampleB.
const goldenA = `# Managed by the CompliNist Pulumi stack: the settings of the last successful activation.
PORT='3000'
APP_USER='complinist'
HEALTH_PATH='/health?x='\''y'\'''
TIMEOUT='60'
INTERVAL='0.500'
SOAK='30'
DRAIN='10'
CHECKS=('/api/ping|200|800' '/it'\''s|204|0')
STANDBY=1
ROLLBACK_VERSION='1.2.3'
HOOK='npm run migrate -- --env '\''prod'\''
second line'
HOOK_TIMEOUT='300'
CANARY_PERCENT='10'
CANARY_SECONDS='120'
WATCH_FACTOR='2.5'
WATCH_MIN_REQUESTS='50'
WATCH_MAX_RATIO='1e-7'
ACKNOWLEDGED=1
REV='abc123'
`

const goldenB = `# Managed by the CompliNist Pulumi stack: the settings of the last successful activation.
PORT='8080'
APP_USER='app'
HEALTH_PATH='/health'
TIMEOUT='5'
INTERVAL='1.234'
SOAK='0'
DRAIN='0'
CHECKS=()
STANDBY=0
ROLLBACK_VERSION=''
HOOK=''
HOOK_TIMEOUT='0'
CANARY_PERCENT='0'
CANARY_SECONDS='0'
WATCH_FACTOR='10'
WATCH_MIN_REQUESTS='20'
WATCH_MAX_RATIO='0.01'
ACKNOWLEDGED=0
REV=''
`

func TestRoundTrip(t *testing.T) {
	for _, c := range []struct {
		s      protocol.Settings
		golden string
	}{{sampleA, goldenA}, {sampleB, goldenB}} {
		if got := render(c.s); got != c.golden {
			t.Errorf("render differs from renderDeploySettings:\n%s\nwant\n%s", got, c.golden)
		}
		got, err := ParseDeployConf(c.golden)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.s) {
			t.Errorf("ParseDeployConf:\n%+v\nwant\n%+v", got, c.s)
		}
	}
	odd := sampleA
	odd.User, odd.HealthPath, odd.Revision = "'", "''", `a\'b"$(rm -rf /)`
	odd.Checks = []protocol.Check{{Path: "/x y'z", Status: 500, MaxMs: 1}}
	odd.IntervalMs = 100000
	odd.Watch.ErrorRateFactor = 3e21
	got, err := ParseDeployConf(render(odd))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, odd) {
		t.Errorf("ParseDeployConf:\n%+v\nwant\n%+v", got, odd)
	}
}

// TestAsBashReadsIt sources the golden text in bash, as root used to: every value the parser
// gives is the one bash had.
func TestAsBashReadsIt(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := goldenA + `
printf '%s\0' "$PORT" "$APP_USER" "$HEALTH_PATH" "$TIMEOUT" "$INTERVAL" "$SOAK" "$DRAIN" "$STANDBY" "$ROLLBACK_VERSION" "$HOOK" "$HOOK_TIMEOUT" "$CANARY_PERCENT" "$CANARY_SECONDS" "$WATCH_FACTOR" "$WATCH_MIN_REQUESTS" "$WATCH_MAX_RATIO" "$ACKNOWLEDGED" "$REV" "${#CHECKS[@]}" "${CHECKS[@]}"`
	out, err := exec.Command(bash, "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	v := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	s := sampleA
	want := []string{"3000", s.User, s.HealthPath, "60", "0.500", "30", "10", "1", s.RollbackVersion, s.BeforeActivate, "300", "10", "120", "2.5", "50", "1e-7", "1", s.Revision, "2", "/api/ping|200|800", "/it's|204|0"}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("bash read\n%q\nwant\n%q", v, want)
	}
}

func TestDefaultsForOlderFiles(t *testing.T) {
	var lines []string
	for _, l := range strings.Split(goldenB, "\n") {
		if strings.HasPrefix(l, "CANARY_") || strings.HasPrefix(l, "WATCH_") || strings.HasPrefix(l, "ACKNOWLEDGED=") {
			continue
		}
		lines = append(lines, l)
	}
	got, err := ParseDeployConf(strings.Join(lines, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := sampleB
	want.Canary = protocol.Canary{Percent: 0, Seconds: 0}
	want.Watch = protocol.Watch{ErrorRateFactor: 10, MinRequests: 20, MaxErrorRatio: 0.01}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%+v\nwant\n%+v", got, want)
	}
}

func TestRefusals(t *testing.T) {
	repl := func(old, new string) string {
		if !strings.Contains(goldenA, old) {
			t.Fatalf("no %q in the golden text", old)
		}
		return strings.Replace(goldenA, old, new, 1)
	}
	for _, c := range []struct {
		why, text, want string
	}{
		{"unknown key", goldenA + "EVIL='x'\n", "line 22 (EVIL): unknown key EVIL"},
		{"command", repl("PORT='3000'", "PORT='3000'; rm -rf /"), "line 2 (PORT): unexpected"},
		{"substitution", repl("PORT='3000'", "PORT=$(id)"), "line 2 (PORT): expected a single-quoted value"},
		{"double quotes", repl("APP_USER='complinist'", `APP_USER="complinist"`), "line 3 (APP_USER)"},
		{"bare word", repl("APP_USER='complinist'", `APP_USER=complinist`), "line 3 (APP_USER)"},
		{"export", repl("REV='abc123'", "export REV='abc123'"), "line 21: not KEY=value"},
		{"no equals", goldenA + "source /tmp/x\n", "line 22: not KEY=value"},
		{"leading space", repl("PORT=", " PORT="), "line 2: not KEY=value"},
		{"open quote", repl("REV='abc123'", "REV='abc123"), "line 21 (REV): a quote is not closed"},
		{"bad port", repl("PORT='3000'", "PORT='30x0'"), "line 2 (PORT): \"30x0\" is not a whole number"},
		{"negative", repl("TIMEOUT='60'", "TIMEOUT='-1'"), "line 5 (TIMEOUT)"},
		{"bad interval", repl("INTERVAL='0.500'", "INTERVAL='0.5000'"), "line 6 (INTERVAL)"},
		{"bad float", repl("WATCH_FACTOR='2.5'", "WATCH_FACTOR='NaN'"), "line 17 (WATCH_FACTOR)"},
		{"hex float", repl("WATCH_FACTOR='2.5'", "WATCH_FACTOR='0x1p3'"), "line 17 (WATCH_FACTOR)"},
		{"standby 2", repl("STANDBY=1", "STANDBY=2"), "line 10 (STANDBY): STANDBY must be 0 or 1"},
		{"standby quoted", repl("STANDBY=1", "STANDBY='1'"), "line 10 (STANDBY)"},
		{"ack trailing", repl("ACKNOWLEDGED=1", "ACKNOWLEDGED=10"), "line 20 (ACKNOWLEDGED): unexpected"},
		{"checks not array", repl("CHECKS=('/api/ping|200|800' '/it'\\''s|204|0')", "CHECKS='/x|200|0'"), "line 9 (CHECKS)"},
		{"checks two spaces", repl("'/api/ping|200|800' ", "'/api/ping|200|800'  "), "line 9 (CHECKS)"},
		{"checks bad", repl("'/api/ping|200|800'", "'/api/ping|200'"), "line 9 (CHECKS)"},
		{"checks bad number", repl("'/api/ping|200|800'", "'/api/ping|200|8|0'"), "line 9 (CHECKS)"},
		{"checks unclosed", repl("|204|0')", "|204|0'"), "line 9 (CHECKS)"},
		{"twice", goldenA + "PORT='1'\n", "line 22 (PORT): PORT is set twice"},
		{"missing", strings.Replace(goldenA, "REV='abc123'\n", "", 1), "REV is missing"},
		{"lower-case key", goldenA + "port='1'\n", "line 22: not KEY=value"},
	} {
		_, err := ParseDeployConf(c.text)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want …%s…", c.why, err, c.want)
		}
	}
}

func FuzzParseDeployConf(f *testing.F) {
	f.Add(goldenA)
	f.Add(goldenB)
	f.Add("CHECKS=(''\\''' '')\n")
	f.Add("HOOK='\n\n'\\''\n")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseDeployConf(text)
		if err != nil {
			return
		}
		// What parses renders back to settings that parse the same.
		again, err := ParseDeployConf(render(s))
		if err != nil {
			t.Fatalf("the render of %+v does not parse: %v", s, err)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip:\n%+v\n%+v", s, again)
		}
	})
}
