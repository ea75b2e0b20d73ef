package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"complinist/agent/internal/protocol"
)

func TestTopLevel(t *testing.T) {
	for _, tc := range []struct {
		name, body      string
		status, version string
		err             bool
	}{
		{"healthy", `{"status":"healthy","version":"1.0.0"}`, "healthy", "1.0.0", false},
		{"whitespace around", " \n\t{ \"status\" : \"healthy\" , \"version\" : \"2\" }\r\n ", "healthy", "2", false},
		{"nested status does not count", `{"status":"degraded","db":{"status":"healthy"},"version":"1.0.0"}`, "degraded", "1.0.0", false},
		{"only nested", `{"db":{"status":"healthy","version":"1.0.0"}}`, "", "", false},
		{"array holding objects", `{"checks":[{"status":"healthy"}],"version":"1"}`, "", "1", false},
		{"non-string values count as empty", `{"status":true,"version":1.5}`, "", "", false},
		{"null", `{"status":null,"version":"x"}`, "", "x", false},
		{"object value", `{"status":{"a":"healthy"},"version":["1"]}`, "", "", false},
		{"duplicate keys: the last wins", `{"status":"down","status":"healthy","version":"1","version":"2"}`, "healthy", "2", false},
		{"escapes decoded", `{"status":"heal\u0074hy","version":"1\/2\"3\\4"}`, "healthy", `1/2"3\4`, false},
		{"control characters become ?", `{"status":"healthy\noutcome=activated","version":"1.0.0\u0007\t"}`, "healthy?outcome=activated", "1.0.0??", false},
		{"non-ASCII becomes ? per byte", `{"status":"h\u00e9","version":"é"}`, "h??", "??", false},
		{"key escape", `{"st\u0061tus":"healthy"}`, "healthy", "", false},
		{"empty object", `{}`, "", "", false},
		{"not JSON", "healthy 1.0.0", "", "", true},
		{"empty", "", "", "", true},
		{"array", `[{"status":"healthy"}]`, "", "", true},
		{"string", `"healthy"`, "", "", true},
		{"trailing data", `{"status":"healthy"} {}`, "", "", true},
		{"trailing garbage", `{"status":"healthy"}x`, "", "", true},
		{"unterminated", `{"status":"healthy"`, "", "", true},
		{"raw control character in a string", "{\"status\":\"a\nb\"}", "", "", true},
		{"missing colon", `{"status" "healthy"}`, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, v, err := TopLevel([]byte(tc.body))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if s != tc.status || v != tc.version {
				t.Fatalf("got status %q version %q, want %q %q", s, v, tc.status, tc.version)
			}
		})
	}
}

func FuzzTopLevel(f *testing.F) {
	for _, s := range []string{
		`{"status":"healthy","version":"1.0.0"}`,
		`{"status":"healthy","status":"x"}`,
		`{"db":{"status":"healthy"}}`,
		`{"status":"\u0000\ud800","version":"\xff"}`,
		` {} `, `[]`, `"x"`, `{"a":1}{}`, `{"a":[1,2,{"b":null}]}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		status, version, err := TopLevel(body)
		if !json.Valid(body) && err == nil {
			t.Fatalf("invalid JSON %q accepted", body)
		}
		if err != nil {
			if status != "" || version != "" {
				t.Fatalf("error %v with values %q %q", err, status, version)
			}
			return
		}
		for _, s := range []string{status, version} {
			for i := 0; i < len(s); i++ {
				if s[i] < 0x20 || s[i] > 0x7e {
					t.Fatalf("non-printable byte %#x in %q", s[i], s)
				}
			}
		}
	})
}

// app is the instance stand-in: one handler per path.
func app(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	js := func(code int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprint(w, body)
		}
	}
	mux.HandleFunc("/health", js(200, `{"status":"healthy","version":"1.0.0"}`))
	mux.HandleFunc("/old", js(200, `{"status":"healthy","version":"0.9.0"}`))
	mux.HandleFunc("/nested", js(200, `{"status":"degraded","db":{"status":"healthy"},"version":"1.0.0"}`))
	mux.HandleFunc("/unavailable", js(503, `{"status":"healthy","version":"1.0.0"}`))
	mux.HandleFunc("/error", js(500, `{"status":"healthy","version":"1.0.0"}`))
	mux.HandleFunc("/text", js(200, "healthy 1.0.0\n"))
	mux.HandleFunc("/binary", js(200, "a\x00b\x01c\td\n\ne"))
	mux.HandleFunc("/long", js(200, strings.Repeat("y", 1000)))
	mux.HandleFunc("/odd", js(200, `{"status":"healthy\noutcome=activated","version":"1.0.0\u0007"}`))
	mux.HandleFunc("/long-version", js(200, `{"status":"`+strings.Repeat("s", 150)+`","version":"`+strings.Repeat("v", 150)+`"}`))
	mux.HandleFunc("/huge", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(200)
		fmt.Fprint(w, `{"status":"healthy","version":"1.0.0","pad":"`+strings.Repeat("x", 300*1024)+`"}`)
	})
	mux.HandleFunc("/exact", func(w http.ResponseWriter, _ *http.Request) {
		head := `{"status":"healthy","version":"1.0.0","pad":"`
		fmt.Fprint(w, head+strings.Repeat("x", MaxBytes-len(head)-2)+`"}`)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/health", http.StatusFound)
	})
	mux.HandleFunc("/hang", func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/slow-body", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		fmt.Fprint(w, `{"status":"healthy",`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "home")
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestProbe(t *testing.T) {
	s := app(t)
	p := NewProber(time.Second)
	ctx := context.Background()
	closed := "http://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/health"
	for _, tc := range []struct {
		name, url string
		ok        bool
		seen      string // exact, or a prefix when it ends in "…"
	}{
		{"healthy", s.URL + "/health", true, "HTTP 200 from " + s.URL + "/health: status=healthy version=1.0.0"},
		{"wrong version", s.URL + "/old", false, "HTTP 200 from " + s.URL + "/old: status=healthy version=0.9.0"},
		{"nested status", s.URL + "/nested", false, "HTTP 200 from " + s.URL + "/nested: status=degraded version=1.0.0"},
		{"503 with a healthy body", s.URL + "/unavailable", false, "HTTP 503 from " + s.URL + "/unavailable: status=healthy version=1.0.0"},
		{"500 code", s.URL + "/error", false, "HTTP 500 from " + s.URL + "/error: status=healthy version=1.0.0"},
		{"not JSON", s.URL + "/text", false, "HTTP 200 from " + s.URL + "/text, not a JSON object: healthy 1.0.0"},
		{"binary body", s.URL + "/binary", false, "HTTP 200 from " + s.URL + "/binary, not a JSON object: ab c d  e"},
		{"long non-JSON body cut at 200", s.URL + "/long", false, "HTTP 200 from " + s.URL + "/long, not a JSON object: " + strings.Repeat("y", 200)},
		{"control characters", s.URL + "/odd", false, "HTTP 200 from " + s.URL + "/odd: status=healthy?outcome=activated version=1.0.0?"},
		{"long values cut at 100", s.URL + "/long-version", false, "HTTP 200 from " + s.URL + "/long-version: status=" + strings.Repeat("s", 100) + " version=" + strings.Repeat("v", 100)},
		{"too large body", s.URL + "/huge", false, "the answer of " + s.URL + "/huge is over 65536 bytes: not read"},
		{"body exactly at the cap", s.URL + "/exact", true, "HTTP 200 from " + s.URL + "/exact: status=healthy version=1.0.0"},
		{"redirect not followed", s.URL + "/redirect", false, "HTTP 302 from " + s.URL + "/redirect, not a JSON object: <a href=\"/health\">Found</a>."},
		{"nothing listening", closed, false, "no answer from " + closed + ": …"},
		{"hanging server", s.URL + "/hang", false, "no answer from " + s.URL + "/hang: …"},
		{"hanging body", s.URL + "/slow-body", false, "no answer from " + s.URL + "/slow-body: …"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			ok, seen := p.Probe(ctx, tc.url, "1.0.0")
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %v: not bounded by the timeout", time.Since(start))
			}
			if ok != tc.ok {
				t.Errorf("ok = %v, want %v (seen %q)", ok, tc.ok, seen)
			}
			if prefix, isPrefix := strings.CutSuffix(tc.seen, "…"); isPrefix {
				if !strings.HasPrefix(seen, prefix) || len(seen) == len(prefix) {
					t.Errorf("seen = %q, want %q and a reason", seen, prefix)
				}
				if len(seen)-len(prefix) > 200 {
					t.Errorf("reason longer than 200: %q", seen)
				}
			} else if seen != tc.seen {
				t.Errorf("seen = %q\n  want %q", seen, tc.seen)
			}
			for i := 0; i < len(seen); i++ {
				if seen[i] < 0x20 || seen[i] > 0x7e {
					t.Fatalf("seen is not one printable line: %q", seen)
				}
			}
		})
	}
}

// Go's ProxyFromEnvironment already skips loopback; the transport must not consult the
// environment at all, whatever address it is given.
func TestNoProxyFromEnvironment(t *testing.T) {
	c := NewProber(time.Second).client()
	tr, ok := c.Transport.(*http.Transport)
	if !ok || tr.Proxy != nil || !tr.DisableKeepAlives {
		t.Fatalf("transport %#v", c.Transport)
	}
	if c.Timeout != time.Second || c.CheckRedirect == nil {
		t.Fatalf("client %#v", c)
	}
}

func TestServes(t *testing.T) {
	s := app(t)
	p := NewProber(time.Second)
	ctx := context.Background()
	for path, want := range map[string]string{
		"/health": "1.0.0", "/old": "0.9.0", "/unavailable": "1.0.0", "/text": "", "/huge": "", "/hang": "", "/redirect": "",
	} {
		if got := p.Serves(ctx, s.URL+path); got != want {
			t.Errorf("Serves(%s) = %q, want %q", path, got, want)
		}
	}
}

func TestSmoke(t *testing.T) {
	s := app(t)
	port := s.Listener.Addr().(*net.TCPAddr).Port
	p := NewProber(time.Second)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		checks []protocol.Check
		ok     bool
		seen   string
	}{
		{"no checks", nil, true, ""},
		{"passes", []protocol.Check{{Path: "/", Status: 200, MaxMs: 2000}}, true, ""},
		{"wrong code", []protocol.Check{{Path: "/", Status: 200}, {Path: "/missing", Status: 200}}, false, "check GET /missing: HTTP 404, wanted 200"},
		{"wanted 404", []protocol.Check{{Path: "/missing", Status: 404}}, true, ""},
		{"redirect not followed", []protocol.Check{{Path: "/redirect", Status: 200}}, false, "check GET /redirect: HTTP 302, wanted 200"},
		{"slow", []protocol.Check{{Path: "/", Status: 200, MaxMs: 2000}, {Path: "/slow", Status: 200, MaxMs: 100}}, false, "check GET /slow: answered in … ms, wanted at most 100 ms"},
		{"slow without a limit", []protocol.Check{{Path: "/slow", Status: 200, MaxMs: 0}}, true, ""},
		{"large body is fine", []protocol.Check{{Path: "/huge", Status: 200}}, true, ""},
		{"hanging", []protocol.Check{{Path: "/hang", Status: 200}}, false, "check GET /hang: no answer: …"},
		{"hanging body", []protocol.Check{{Path: "/slow-body", Status: 200}}, false, "check GET /slow-body: no answer: …"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, seen := p.Smoke(ctx, port, tc.checks)
			if ok != tc.ok {
				t.Errorf("ok = %v, want %v (%q)", ok, tc.ok, seen)
			}
			if before, after, found := strings.Cut(tc.seen, "…"); found {
				if !strings.HasPrefix(seen, before) || !strings.HasSuffix(seen, after) || len(seen) <= len(before)+len(after) {
					t.Errorf("seen = %q, want %q…%q", seen, before, after)
				}
			} else if seen != tc.seen {
				t.Errorf("seen = %q, want %q", seen, tc.seen)
			}
		})
	}
	_, seen := p.Smoke(ctx, port, []protocol.Check{{Path: "/slow", Status: 200, MaxMs: 100}})
	var ms int
	if _, err := fmt.Sscanf(seen, "check GET /slow: answered in %d ms", &ms); err != nil || ms < 300 {
		t.Errorf("the time is the whole request's: %q", seen)
	}
}

func TestGate(t *testing.T) {
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/booting", func(w http.ResponseWriter, _ *http.Request) {
		if hits.Add(1) < 3 {
			w.WriteHeader(503)
			fmt.Fprint(w, `{"status":"starting","version":"1.0.0"}`)
			return
		}
		fmt.Fprint(w, `{"status":"healthy","version":"1.0.0"}`)
	})
	mux.HandleFunc("/old", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"status":"healthy","version":"0.9.0"}`)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"status":"healthy","version":"1.0.0"}`)
	})
	s := httptest.NewServer(mux)
	defer s.Close()
	port := s.Listener.Addr().(*net.TCPAddr).Port
	p := NewProber(time.Second)
	ctx := context.Background()
	var sleeps int
	sleep := func(time.Duration) { sleeps++ }

	ok, seen := p.Gate(ctx, port, "/booting", "1.0.0", nil, time.Now().Add(time.Minute), time.Millisecond, sleep)
	if !ok || hits.Load() != 3 || sleeps != 2 {
		t.Fatalf("booting: ok %v hits %d sleeps %d seen %q", ok, hits.Load(), sleeps, seen)
	}
	if want := "HTTP 200 from http://127.0.0.1:" + strconv.Itoa(port) + "/booting: status=healthy version=1.0.0"; seen != want {
		t.Errorf("seen = %q, want %q", seen, want)
	}

	sleeps = 0
	deadline := time.Now().Add(150 * time.Millisecond)
	ok, seen = p.Gate(ctx, port, "/old", "1.0.0", nil, deadline, 20*time.Millisecond, nil)
	if ok || !strings.HasSuffix(seen, "version=0.9.0") || time.Now().Before(deadline) {
		t.Fatalf("old: ok %v seen %q", ok, seen)
	}

	ok, seen = p.Gate(ctx, port, "/health", "1.0.0", []protocol.Check{{Path: "/missing", Status: 200}}, time.Now(), time.Millisecond, sleep)
	if ok || seen != "check GET /missing: HTTP 404, wanted 200" {
		t.Fatalf("smoke: ok %v seen %q", ok, seen)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	ok, seen = p.Gate(cancelled, port, "/health", "1.0.0", nil, time.Now().Add(time.Minute), time.Millisecond, sleep)
	if ok || seen != "no answer" {
		t.Fatalf("cancelled: ok %v seen %q", ok, seen)
	}
}
