package protocol

import (
	"strings"
	"testing"
)

func version(r *ActivateRequest) int { return r.V }

const good = `{"v":1,"id":"1_1_0-abc","version":"1.1.0","sha256":"` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `","who":"ci@runner","runHook":false,"budgetSeconds":600,
"settings":{"port":5000,"user":"complinist","healthPath":"/health","timeoutSeconds":30,"intervalMs":500,"soakSeconds":0,"drainSeconds":30,"checks":[],
"standby":true,"rollbackVersion":"1.0.0","beforeActivate":"","hookSecret":false,"hookTimeoutSeconds":600,"canary":{"percent":0,"seconds":0},
"watch":{"errorRateFactor":10,"minRequests":20,"maxErrorRatio":0.01},"acknowledged":false,"revision":"0123456789abcdef"}}`

func TestDecodeTakesOneRequestAndRefusesAnythingElse(t *testing.T) {
	var r ActivateRequest
	if err := Decode(strings.NewReader(good), &r, version); err != nil {
		t.Fatalf("a good request: %v", err)
	}
	if r.Version != "1.1.0" || r.Settings.Port != 5000 || r.Settings.Watch.MinRequests != 20 {
		t.Fatalf("decoded %+v", r)
	}
	for name, c := range map[string]struct{ in, want string }{
		"an unknown field":          {strings.Replace(good, `"runHook"`, `"runHooks":true,"runHook"`, 1), `unknown field "runHooks"`},
		"an unknown settings field": {strings.Replace(good, `"standby"`, `"standbyPort":1,"standby"`, 1), `unknown field "standbyPort"`},
		"another protocol version":  {strings.Replace(good, `"v":1`, `"v":2`, 1), "protocol version v is 2; this agent speaks v 1"},
		"no version":                {strings.Replace(good, `"v":1,`, ``, 1), "protocol version v is 0"},
		"two objects":               {good + good, "data after its JSON object"},
		"a wrong type":              {strings.Replace(good, `"port":5000`, `"port":"5000"`, 1), "settings.port"},
		"not JSON":                  {"port=5000", "not a valid JSON request"},
		"too large":                 {`{"v":1,"who":"` + strings.Repeat("x", MaxRequestBytes) + `"}`, "over 1048576 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			var r ActivateRequest
			err := Decode(strings.NewReader(c.in), &r, version)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error with %q, got %v", c.want, err)
			}
		})
	}
}

// FuzzDecode: the request is what a deploy sends root; whatever arrives, Decode never panics, and
// what it accepts carries this protocol's version.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"settings":{"checks":[{"path":"/","status":200,"maxMs":0}]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r ActivateRequest
		if err := Decode(strings.NewReader(string(data)), &r, version); err == nil && r.V != V {
			t.Fatalf("accepted version %d", r.V)
		}
	})
}
