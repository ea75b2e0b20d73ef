// Package health is the health contract of a release, as the bash host program's health.sh
// had it: GET <healthPath> answers 200 with a JSON object whose top-level "status" is
// "healthy" and whose "version" is the release. The body is parsed, never grepped (a nested
// {"db":{"status":"healthy"}} does not count), and read whole only up to a byte cap (a larger
// one fails the probe, unread). Every probe is bounded in time and bytes, and every text it
// returns is one printable line: the operator reads it in the activation's result and log.
package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"complinist/agent/internal/protocol"
)

// MaxBytes is the default cap on a health body (PROBE_MAX_BYTES): a release answering 300 MB
// costs 64 KiB and a closed connection, never the host's memory.
const MaxBytes = 65536

// TopLevel reads the health body's top-level "status" and "version", so that only what the
// release says of itself as a whole counts, never a nested component's status.
//
// The body must be exactly one JSON object (JSON whitespace around it allowed, nothing after
// it), else err is set. A key whose value is not a JSON string counts as "". When a key occurs
// more than once the LAST occurrence wins, as the perl parser of the bash program had it (and
// as encoding/json does for maps). Every byte of the decoded values outside 0x20..0x7e becomes
// '?', so nothing a release answers can start a line of its own downstream; a non-ASCII
// character therefore becomes one '?' per UTF-8 byte.
func TopLevel(body []byte) (status, version string, err error) {
	if !json.Valid(body) {
		return "", "", errors.New("the body is not valid JSON")
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "", "", errors.New("the body is not a JSON object")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return "", "", fmt.Errorf("the body is not a JSON object: %w", err)
	}
	return stringField(top, "status"), stringField(top, "version"), nil
}

// stringField is top[key] when it is a JSON string, made printable; "" otherwise.
func stringField(top map[string]json.RawMessage, key string) string {
	raw, ok := top[key]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return ""
	}
	return printable(s, '?')
}

// printable replaces every byte outside 0x20..0x7e with repl.
func printable(s string, repl byte) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = repl
		}
	}
	return string(b)
}

// cut is the first n bytes of s (cut -c1-n on a printable line).
func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Prober bounds every health request: Timeout is the whole request's (connect, headers and
// body; PROBE_TIMEOUT), MaxBytes the body's cap (PROBE_MAX_BYTES). A zero Timeout means no
// time limit beyond the context's; MaxBytes <= 0 means the default MaxBytes.
type Prober struct {
	Timeout  time.Duration
	MaxBytes int64
}

// NewProber is the prober the gate uses: the bash program's bounds, with a timeout the
// caller derives from the settings (min(timeoutSeconds, 5) there).
func NewProber(timeout time.Duration) Prober {
	return Prober{Timeout: timeout, MaxBytes: MaxBytes}
}

func (p Prober) maxBytes() int64 {
	if p.MaxBytes <= 0 {
		return MaxBytes
	}
	return p.MaxBytes
}

// client asks the instance itself: no proxy from the environment (an http_proxy set for the
// host's egress must not see or answer a loopback health check), no redirect followed (the
// answer of the URL asked is what counts), no connection kept.
func (p Prober) client() *http.Client {
	return &http.Client{
		Timeout: p.Timeout,
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// reason is err as one printable line of at most 200 bytes, without the "Get URL:" prefix
// the texts already carry.
func reason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return cut(printable(err.Error(), ' '), 200)
}

// answer is one bounded GET: code and body, or seen saying why not.
type answer struct {
	code int
	body []byte
	seen string
}

func (p Prober) get(ctx context.Context, u string) (answer, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return answer{seen: "no answer from " + u + ": " + reason(err)}, false
	}
	resp, err := p.client().Do(req)
	if err != nil {
		return answer{seen: "no answer from " + u + ": " + reason(err)}, false
	}
	defer resp.Body.Close()
	limit := p.maxBytes()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if int64(len(body)) > limit {
		return answer{seen: fmt.Sprintf("the answer of %s is over %d bytes: not read", u, limit)}, false
	}
	if err != nil {
		return answer{seen: "no answer from " + u + ": " + reason(err)}, false
	}
	return answer{code: resp.StatusCode, body: body}, true
}

// snippet is what the operator sees of a body that is not a JSON object: its first 200 bytes,
// non-printables as spaces. As the bash program's command substitution did, NUL bytes are
// dropped and trailing newlines are not part of the body.
func snippet(body []byte) string {
	b := bytes.ReplaceAll(body, []byte{0}, nil)
	b = bytes.TrimRight(b, "\n")
	if len(b) > 400 {
		b = b[:400]
	}
	return cut(printable(string(b), ' '), 200)
}

// Probe is one health check of url: ok only when it answers 200 with status "healthy" and
// version want. seen is one printable line saying what answered either way, for the
// operator's log and the activation's result.
func (p Prober) Probe(ctx context.Context, url, want string) (ok bool, seen string) {
	a, got := p.get(ctx, url)
	if !got {
		return false, a.seen
	}
	status, version, err := TopLevel(a.body)
	if err != nil {
		return false, fmt.Sprintf("HTTP %d from %s, not a JSON object: %s", a.code, url, snippet(a.body))
	}
	seen = fmt.Sprintf("HTTP %d from %s: status=%s version=%s", a.code, url, cut(status, 100), cut(version, 100))
	return a.code == http.StatusOK && status == "healthy" && version == want, seen
}

// Serves is the version answering url, whatever its status code, or "" when nothing answers
// a JSON object there (proxy_serves): what the proxy actually routes to, as `status` shows it.
func (p Prober) Serves(ctx context.Context, url string) string {
	a, got := p.get(ctx, url)
	if !got {
		return ""
	}
	_, version, err := TopLevel(a.body)
	if err != nil {
		return ""
	}
	return version
}

// Smoke runs every configured check against the instance on port, before it takes any user
// request: each must answer its status code, within its maxMs when that is not 0. Bodies are
// discarded as they arrive (bounded by the timeout, never held in memory); the time is the
// whole request's, body included. seen names the first check that failed.
func (p Prober) Smoke(ctx context.Context, port int, checks []protocol.Check) (ok bool, seen string) {
	c := p.client()
	for _, ch := range checks {
		u := "http://127.0.0.1:" + strconv.Itoa(port) + ch.Path
		start := time.Now()
		code, err := func() (int, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return 0, err
			}
			resp, err := c.Do(req)
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				return 0, err
			}
			return resp.StatusCode, nil
		}()
		ms := time.Since(start).Milliseconds()
		if err != nil {
			return false, fmt.Sprintf("check GET %s: no answer: %s", ch.Path, reason(err))
		}
		if code != ch.Status {
			return false, fmt.Sprintf("check GET %s: HTTP %d, wanted %d", ch.Path, code, ch.Status)
		}
		if ch.MaxMs > 0 && ms > int64(ch.MaxMs) {
			return false, fmt.Sprintf("check GET %s: answered in %d ms, wanted at most %d ms", ch.Path, ms, ch.MaxMs)
		}
	}
	return true, ""
}

// Gate polls the instance on port, before it takes any user request, until it is healthy on
// want at path and passes every check, or deadline has passed (or ctx is done): a release
// that is still starting gets until the deadline, one that never comes up fails with the last
// thing seen. sleep waits interval between tries (nil: a sleep that ends early when ctx is
// done); tests pass their own. On success seen is the healthy probe's text.
func (p Prober) Gate(ctx context.Context, port int, path, want string, checks []protocol.Check, deadline time.Time, interval time.Duration, sleep func(time.Duration)) (ok bool, seen string) {
	if sleep == nil {
		sleep = func(d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
	}
	seen = "no answer"
	u := "http://127.0.0.1:" + strconv.Itoa(port) + path
	for {
		if ctx.Err() != nil {
			return false, seen
		}
		var healthy bool
		healthy, seen = p.Probe(ctx, u, want)
		if healthy {
			var smokeSeen string
			if healthy, smokeSeen = p.Smoke(ctx, port, checks); healthy {
				return true, seen
			}
			seen = smokeSeen
		}
		if !time.Now().Before(deadline) {
			return false, seen
		}
		sleep(interval)
	}
}
