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

func TestConfigGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			if got, want := Config(params, g.route), golden(t, g.file); got != want {
				t.Fatalf("Config(%+v) =\n%s\nwant (bash proxy_config)\n%s", g.route, got, want)
			}
		})
	}
}

// The text inline as well: the golden files are what the bash program printed.
func TestConfigCanaryText(t *testing.T) {
	want := `# Managed by the CompliNist Pulumi stack: written by /usr/local/sbin/complinist on every switch.
global
    maxconn 4096
    hard-stop-after 30s
    stats socket /run/complinist-proxy/admin.sock mode 600 level admin expose-fd listeners
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 15s
frontend complinist
    bind :5000
    bind :::5000 v6only
    default_backend complinist
backend complinist
    cookie complinist_release insert indirect nocache httponly
    server i5001 127.0.0.1:5001 weight 90 cookie i5001
    server i5002 127.0.0.1:5002 weight 10 cookie i5002
listen stats
    bind /run/complinist-proxy/stats.sock mode 600
    stats enable
    stats uri /
`
	if got := Config(params, Route{Live: 5001, Canary: 5002, Percent: 10}); got != want {
		t.Fatalf("got\n%s", got)
	}
	unrouted := golden(t, "unrouted.cfg")
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
		if err := os.WriteFile(f, []byte(Config(params, g.route)), 0o644); err != nil {
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
