// Package legacy reads what hosts deployed by the bash host program still have:
// /etc/<service>/deploy.conf, the last successful activation's settings as bash assignments
// (infra/render/hostProgram.ts renderDeploySettings) that root used to `source`.
//
// The agent reads the file as data and never runs it: only the exact forms renderDeploySettings
// writes are accepted (single-quoted q() words, 0|1 flags, one CHECKS array), so a file that
// anything else wrote or edited into running code is refused rather than half-understood.
package legacy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"complinist/agent/internal/protocol"
)

// The keys renderDeploySettings writes. Canary, watch and ACKNOWLEDGED came later: a file
// without them has the defaults the bash's load_settings gave them.
var required = []string{"PORT", "APP_USER", "HEALTH_PATH", "TIMEOUT", "INTERVAL", "SOAK", "DRAIN", "CHECKS", "STANDBY", "ROLLBACK_VERSION", "HOOK", "HOOK_TIMEOUT", "REV"}

var optional = map[string]bool{"CANARY_PERCENT": true, "CANARY_SECONDS": true, "WATCH_FACTOR": true, "WATCH_MIN_REQUESTS": true, "WATCH_MAX_RATIO": true, "ACKNOWLEDGED": true}

// Defaults are load_settings' values for the keys older files lack.
var Defaults = struct {
	Canary       protocol.Canary
	Watch        protocol.Watch
	Acknowledged bool
}{protocol.Canary{Percent: 0, Seconds: 0}, protocol.Watch{ErrorRateFactor: 10, MinRequests: 20, MaxErrorRatio: 0.01}, false}

var (
	keyRe      = regexp.MustCompile(`^[A-Z][A-Z_]*$`)
	intRe      = regexp.MustCompile(`^[0-9]{1,9}$`)
	intervalRe = regexp.MustCompile(`^([0-9]{1,9})(?:\.([0-9]{1,3}))?$`)
	// JavaScript's String(number) of a finite non-negative number.
	floatRe = regexp.MustCompile(`^[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?$`)
)

type parser struct {
	s    string
	pos  int
	line int
}

func (p *parser) errorf(key, format string, a ...any) error {
	where := fmt.Sprintf("deploy.conf line %d", p.line)
	if key != "" {
		where += " (" + key + ")"
	}
	return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, a...))
}

func (p *parser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

// word reads one q() word: '…' segments joined by \' (an embedded quote is '\”).
// Newlines inside quotes are part of the value, as bash read them.
func (p *parser) word(key string) (string, error) {
	var b strings.Builder
	for {
		if p.peek() != '\'' {
			return "", p.errorf(key, "expected a single-quoted value")
		}
		p.pos++
		end := strings.IndexByte(p.s[p.pos:], '\'')
		if end < 0 {
			return "", p.errorf(key, "a quote is not closed")
		}
		seg := p.s[p.pos : p.pos+end]
		b.WriteString(seg)
		p.line += strings.Count(seg, "\n")
		p.pos += end + 1
		if strings.HasPrefix(p.s[p.pos:], `\''`) {
			b.WriteByte('\'')
			p.pos += 2 // onto the quote that reopens
			continue
		}
		return b.String(), nil
	}
}

// endOfLine accepts the end of the assignment: a newline or the end of the text.
func (p *parser) endOfLine(key string) error {
	switch {
	case p.pos == len(p.s):
		return nil
	case p.s[p.pos] == '\n':
		p.pos++
		p.line++
		return nil
	}
	return p.errorf(key, "unexpected %q after the value", p.rest())
}

func (p *parser) rest() string {
	r := p.s[p.pos:]
	if i := strings.IndexByte(r, '\n'); i >= 0 {
		r = r[:i]
	}
	if len(r) > 40 {
		r = r[:40] + "…"
	}
	return r
}

// ParseDeployConf reads a deploy.conf. Every key must appear once; an unknown key, another
// form of line, or a bad number is refused naming the line and the key.
func ParseDeployConf(text string) (protocol.Settings, error) {
	p := &parser{s: text, line: 1}
	vals := map[string]string{}
	lines := map[string]int{}
	var checks []string
	for p.pos < len(p.s) {
		// A comment or a blank line.
		if c := p.peek(); c == '#' || c == '\n' {
			if i := strings.IndexByte(p.s[p.pos:], '\n'); i >= 0 {
				p.pos += i + 1
			} else {
				p.pos = len(p.s)
			}
			p.line++
			continue
		}
		eq := strings.IndexByte(p.s[p.pos:], '=')
		nl := strings.IndexByte(p.s[p.pos:], '\n')
		if eq < 0 || (nl >= 0 && nl < eq) {
			return protocol.Settings{}, p.errorf("", "not KEY=value: %q", p.rest())
		}
		key := p.s[p.pos : p.pos+eq]
		if !keyRe.MatchString(key) {
			return protocol.Settings{}, p.errorf("", "not KEY=value: %q", p.rest())
		}
		if _, dup := vals[key]; dup {
			return protocol.Settings{}, p.errorf(key, "%s is set twice", key)
		}
		known := optional[key]
		for _, k := range required {
			known = known || k == key
		}
		if !known {
			return protocol.Settings{}, p.errorf(key, "unknown key %s", key)
		}
		p.pos += eq + 1
		lines[key] = p.line
		switch key {
		case "STANDBY", "ACKNOWLEDGED":
			c := p.peek()
			if c != '0' && c != '1' {
				return protocol.Settings{}, p.errorf(key, "%s must be 0 or 1, not %q", key, p.rest())
			}
			vals[key] = string(c)
			p.pos++
		case "CHECKS":
			if p.peek() != '(' {
				return protocol.Settings{}, p.errorf(key, "CHECKS must be an array ( '…' … )")
			}
			p.pos++
			for p.peek() != ')' {
				if len(checks) > 0 {
					if p.peek() != ' ' {
						return protocol.Settings{}, p.errorf(key, "the checks must be separated by one space")
					}
					p.pos++
				}
				w, err := p.word(key)
				if err != nil {
					return protocol.Settings{}, err
				}
				checks = append(checks, w)
			}
			p.pos++
			vals[key] = ""
		default:
			w, err := p.word(key)
			if err != nil {
				return protocol.Settings{}, err
			}
			vals[key] = w
		}
		if err := p.endOfLine(key); err != nil {
			return protocol.Settings{}, err
		}
	}
	for _, k := range required {
		if _, ok := vals[k]; !ok {
			return protocol.Settings{}, fmt.Errorf("deploy.conf: %s is missing", k)
		}
	}
	return settings(vals, lines, checks)
}

func settings(v map[string]string, lines map[string]int, checks []string) (protocol.Settings, error) {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("deploy.conf line %d (%s): %s", lines[key], key, fmt.Sprintf(format, a...)))
	}
	num := func(key string) int {
		n, err := parseInt(v[key])
		if err != nil {
			bad(key, "%v", err)
		}
		return n
	}
	optNum := func(key string, def int) int {
		if _, ok := v[key]; !ok {
			return def
		}
		return num(key)
	}
	optFloat := func(key string, def float64) float64 {
		s, ok := v[key]
		if !ok {
			return def
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !floatRe.MatchString(s) {
			bad(key, "%q is not a number", s)
		}
		return f
	}
	s := protocol.Settings{
		Port:               num("PORT"),
		User:               v["APP_USER"],
		HealthPath:         v["HEALTH_PATH"],
		TimeoutSeconds:     num("TIMEOUT"),
		SoakSeconds:        num("SOAK"),
		DrainSeconds:       num("DRAIN"),
		Checks:             []protocol.Check{},
		Standby:            v["STANDBY"] == "1",
		RollbackVersion:    v["ROLLBACK_VERSION"],
		BeforeActivate:     v["HOOK"],
		HookTimeoutSeconds: num("HOOK_TIMEOUT"),
		Canary: protocol.Canary{
			Percent: optNum("CANARY_PERCENT", Defaults.Canary.Percent),
			Seconds: optNum("CANARY_SECONDS", Defaults.Canary.Seconds),
		},
		Watch: protocol.Watch{
			ErrorRateFactor: optFloat("WATCH_FACTOR", Defaults.Watch.ErrorRateFactor),
			MinRequests:     optNum("WATCH_MIN_REQUESTS", Defaults.Watch.MinRequests),
			MaxErrorRatio:   optFloat("WATCH_MAX_RATIO", Defaults.Watch.MaxErrorRatio),
		},
		Acknowledged: Defaults.Acknowledged,
		Revision:     v["REV"],
	}
	if a, ok := v["ACKNOWLEDGED"]; ok {
		s.Acknowledged = a == "1"
	}
	if m := intervalRe.FindStringSubmatch(v["INTERVAL"]); m != nil {
		whole, _ := strconv.Atoi(m[1])
		frac := (m[2] + "000")[:3]
		ms, _ := strconv.Atoi(frac)
		s.IntervalMs = whole*1000 + ms
	} else {
		bad("INTERVAL", "%q is not seconds with at most 3 decimals", v["INTERVAL"])
	}
	for _, c := range checks {
		// IFS='|' read -r path want maxms: the path ends at the first |, the rest is maxMs.
		path, rest, ok1 := strings.Cut(c, "|")
		status, maxMs, ok2 := strings.Cut(rest, "|")
		st, err1 := parseInt(status)
		mx, err2 := parseInt(maxMs)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			bad("CHECKS", "%q is not path|status|maxMs", c)
			continue
		}
		s.Checks = append(s.Checks, protocol.Check{Path: path, Status: st, MaxMs: mx})
	}
	if len(errs) > 0 {
		return protocol.Settings{}, errs[0]
	}
	return s, nil
}

func parseInt(s string) (int, error) {
	if !intRe.MatchString(s) {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return strconv.Atoi(s)
}
