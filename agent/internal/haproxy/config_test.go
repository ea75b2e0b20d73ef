package haproxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// params are the settings the golden files were written with by the bash program's
// proxy_config (SERVICE=complinist PORT=5000 PORTS=(5001 5002) DRAIN=30 ...).
var params = ConfigParams{
	Service:      "complinist",
	Port:         5000,
	DrainSeconds: 30,
	Ports:        [2]int{5001, 5002},
	RunDir:       "/run/complinist-proxy",
	StatsSocket:  "/run/complinist-proxy/stats.sock",
	HostProgram:  "/usr/local/sbin/complinist",
}

// goldens are the bash program's output for each route, copied byte for byte into testdata.
var goldens = []struct {
	file  string
	route Route
}{
	{"live-port1.cfg", Route{Live: 5001}},
	{"live-port2.cfg", Route{Live: 5002}},
	{"canary10.cfg", Route{Live: 5001, Canary: 5002, Percent: 10}},
	{"unrouted.cfg", Route{}},
}

func golden(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// agentParams are params with the host's own addresses and a cookie token, as the agent writes them.
var agentParams = func() ConfigParams {
	p := params
	p.HostAddrs = []string{"172.17.0.3", "fe80::42:acff:fe11:3"}
	p.CookieToken = "0123456789abcdef"
	return p
}()

// The agent's configs, one per route, in testdata/agent; the bash program's (testdata/golden) still parse back.
func TestConfigGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "agent", g.file))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := Config(agentParams, g.route), string(b); got != want {
				t.Fatalf("Config(%+v) =\n%s\nwant\n%s", g.route, got, want)
			}
			if r, ok := ParseConfigRoute(string(b)); r != g.route || ok != (g.route.Live != 0) {
				t.Fatalf("parsed back %+v %v, want %+v", r, ok, g.route)
			}
		})
	}
}

// Finding 9 of issue 29: the host's own requests never reach a canary or the judged backend;
// every server has its own maxconn and a queue timeout, so a hanging canary cannot take the
// live release's slots; the canary cookie names no guessable value.
func TestConfigHostBackendAndLimits(t *testing.T) {
	got := Config(agentParams, Route{Live: 5001, Canary: 5002, Percent: 10})
	for _, want := range []string{
		"    timeout queue 5s\n",
		"    acl from_host src 127.0.0.0/8 ::1 172.17.0.3 fe80::42:acff:fe11:3\n    use_backend complinist_host if from_host\n    default_backend complinist\n",
		"backend complinist\n    default-server maxconn 1000\n",
		"    server i5001 127.0.0.1:5001 weight 90 cookie i5001-0123456789abcdef\n    server i5002 127.0.0.1:5002 weight 10 cookie i5002-0123456789abcdef\n",
		"backend complinist_host\n    default-server maxconn 100\n    server i5001 127.0.0.1:5001\n    server i5002 127.0.0.1:5002 disabled\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "cookie i5002 ") {
		t.Errorf("a guessable canary cookie value:\n%s", got)
	}
}

// The bash program's unrouted config (testdata/golden) had both lines disabled; the agent's too.
func TestConfigUnrouted(t *testing.T) {
	unrouted := Config(agentParams, Route{})
	for _, l := range []string{"    server i5001 127.0.0.1:5001 disabled\n", "    server i5002 127.0.0.1:5002 disabled\n"} {
		if !strings.Contains(unrouted, l) {
			t.Errorf("unrouted lacks %q", l)
		}
	}
	unrouted = golden(t, "unrouted.cfg")
	for _, l := range []string{"    server i5001 127.0.0.1:5001 disabled\n", "    server i5002 127.0.0.1:5002 disabled\n"} {
		if !strings.Contains(unrouted, l) {
			t.Errorf("unrouted lacks %q", l)
		}
	}
}

func TestConfigPassesHaproxyCheck(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed")
	}
	for _, g := range goldens {
		f := filepath.Join(t.TempDir(), "haproxy.cfg")
		if err := os.WriteFile(f, []byte(Config(agentParams, g.route)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-c", "-f", f).CombinedOutput(); err != nil {
			t.Errorf("%s: haproxy -c: %v\n%s", g.file, err, out)
		}
	}
	// The check can fail: a broken server line is refused.
	f := filepath.Join(t.TempDir(), "haproxy.cfg")
	broken := strings.Replace(Config(params, Route{Live: 5001}), "127.0.0.1:5001", "127.0.0.1:notaport", 1)
	if err := os.WriteFile(f, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(bin, "-c", "-f", f).Run(); err == nil {
		t.Error("haproxy -c accepted a broken config")
	}
}

func TestParseConfigRoute(t *testing.T) {
	for _, g := range goldens {
		r, ok := ParseConfigRoute(golden(t, g.file))
		if wantOK := g.route.Live != 0; ok != wantOK || r != g.route {
			t.Errorf("%s: got %+v %v, want %+v %v", g.file, r, ok, g.route, wantOK)
		}
	}
	for _, tc := range []struct {
		name, text string
		route      Route
		ok         bool
	}{
		{"empty", "", Route{}, false},
		{"no server lines", "backend x\n    balance roundrobin\n", Route{}, false},
		{"first enabled wins", "    server i5002 127.0.0.1:5002 disabled\n    server i5001 127.0.0.1:5001\n    server i5002 127.0.0.1:5002\n", Route{Live: 5001}, true},
		{"hand-edited lines do not count", "   server i5001 127.0.0.1:5001\n    server i5001 127.0.0.1:5001 \n    server i5001 127.0.0.1:5001 check\n\tserver i5001 127.0.0.1:5001\n    server i5002 127.0.0.1:5002\n", Route{Live: 5002}, true},
		{"CRLF lines do not count", "    server i5001 127.0.0.1:5001\r\n", Route{}, false},
		{"no trailing newline", "    server i5001 127.0.0.1:5001", Route{Live: 5001}, true},
		{"one weighted only: no canary", "    server i5001 127.0.0.1:5001 weight 100 cookie i5001\n", Route{Live: 5001}, true},
		{"canary is the second weighted", "    server i5001 127.0.0.1:5001\n    server i5002 127.0.0.1:5002 weight 75 cookie i5002\n    server i5003 127.0.0.1:5003 weight 25 cookie i5003\n", Route{Live: 5001, Canary: 5003, Percent: 25}, true},
		{"a canary on port 0 is none (fuzz regression)", "    server i5 127.0.0.1:1\n    server i1 127.0.0.1:1 weight 5 cookie i1\n    server i0 127.0.0.1:1 weight 5 cookie i1\n", Route{Live: 5}, true},
		{"overflowing port ignored", "    server i99999999999999999999999 127.0.0.1:1\n    server i5001 127.0.0.1:5001\n", Route{Live: 5001}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := ParseConfigRoute(tc.text)
			if r != tc.route || ok != tc.ok {
				t.Fatalf("got %+v %v, want %+v %v", r, ok, tc.route, tc.ok)
			}
		})
	}
}

func FuzzParseConfigRoute(f *testing.F) {
	for _, g := range goldens {
		b, err := os.ReadFile(filepath.Join("testdata", "golden", g.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("    server i1 127.0.0.1:1 weight 1 cookie i1\n    server i2 127.0.0.1:2 weight 99999999999999999999 cookie i2\n")
	f.Add("    server i5 127.0.0.1:1\n    server i1 127.0.0.1:1 weight 5 cookie i1\n    server i0 127.0.0.1:1 weight 5 cookie i1\n")
	f.Fuzz(func(t *testing.T, text string) {
		r, ok := ParseConfigRoute(text)
		if r.Canary == 0 && r.Percent != 0 {
			t.Fatalf("a percent without a canary: %+v", r)
		}
		if !ok && r != (Route{}) {
			t.Fatalf("not ok but %+v", r)
		}
		if r.Canary != 0 && !ok {
			t.Fatalf("a canary without a live server: %+v", r)
		}
		// What Config writes from a parsed route parses back the same (canary routes need a Live).
		if ok && r.Live > 0 && r.Canary == 0 {
			p := params
			p.Ports = [2]int{r.Live, r.Live + 1}
			if back, ok2 := ParseConfigRoute(Config(p, r)); !ok2 || back != r {
				t.Fatalf("round trip %+v -> %+v %v", r, back, ok2)
			}
		}
	})
}
