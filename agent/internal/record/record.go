// Package record writes and reads the host's two append-only logs in the bash host program's
// formats (infra/render/host/record.sh), so a host's existing revisions.log and deploy.log
// keep their meaning across the switch to the agent: revisions.log, one line per outcome (the
// runbook's record and the source of the emergency rollback's choices), and deploy.log, one
// line per step.
//
// Every field goes through OneLine: what a release or a hook prints is data, and can never add
// a line or a field that a reader would then take for one root wrote.
package record

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// DefaultMax is one_line's default cut.
const DefaultMax = 400

// TimeFormat is `date -u +%Y-%m-%dT%H:%M:%SZ`.
const TimeFormat = "2006-01-02T15:04:05Z"

// OneLine is one_line: each byte outside printable ASCII becomes a space (LC_ALL=C tr -c
// '[:print:]' ' '), then the text is cut to max bytes (cut -c counts bytes), 400 when max <= 0.
// Working on bytes, not runes, is what the bash did and keeps every line plain ASCII.
func OneLine(s string, max int) string {
	if max <= 0 {
		max = DefaultMax
	}
	n := len(s)
	if n > max {
		n = max
	}
	b := make([]byte, n)
	for i := 0; i < n; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = ' '
		}
		b[i] = c
	}
	return string(b)
}

// Log names the two log files of one service and the activation writing them.
type Log struct {
	Revisions string // <baseDir>/revisions.log
	Deploy    string // /var/log/<service>/deploy.log
	ID        string // the activation's id; "" is a hand-run operation ("manual")
	Now       func() time.Time
}

func (l Log) now() string {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	return now().UTC().Format(TimeFormat)
}

// Record appends one outcome to revisions.log. The line goes out in a single write(2) on an
// O_APPEND descriptor, so concurrent readers (and a writer killed half-way) never see half a
// line interleaved with another; O_NOFOLLOW because root must never append through a link.
func (l Log) Record(version, sha, who, outcome string) error {
	line := fmt.Sprintf("%s\tversion=%s\tsha256=%s\tby=%s\t%s\n", l.now(), OneLine(version, 64), OneLine(sha, 64), OneLine(who, 128), OneLine(outcome, 1000))
	if err := appendLine(l.Revisions, line); err != nil {
		return fmt.Errorf("recording in %s: %w", l.Revisions, err)
	}
	return nil
}

// Step appends one step to deploy.log. It never fails the operation: the log directory may
// not exist before the service's first apply, and a missing step line loses nothing the
// revisions.log or the result does not also say.
func (l Log) Step(text string) {
	id := l.ID
	if id == "" {
		id = "manual"
	}
	_ = appendLine(l.Deploy, l.now()+"\t"+OneLine(id, 0)+"\t"+OneLine(text, 1000)+"\n")
}

func appendLine(path, line string) error {
	// O_NONBLOCK: a FIFO planted at the name must not hang root (it is refused below);
	// it changes nothing for a regular file.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := regular(f); err != nil {
		return err
	}
	n, err := syscall.Write(int(f.Fd()), []byte(line))
	if err != nil {
		return err
	}
	if n != len(line) {
		return fmt.Errorf("short write (%d of %d bytes)", n, len(line))
	}
	return nil
}

func regular(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", f.Name(), fi.Mode().Type())
	}
	return nil
}

// Line is one revisions.log line, split as the bash's awk split it.
type Line struct {
	Time, Version, Sha256, By, Outcome string
}

// ParseLine splits a revisions.log line (without its newline): exactly five tab-separated
// fields, the middle three with their prefixes. Anything else is not a line root wrote.
func ParseLine(line string) (Line, bool) {
	if strings.IndexByte(line, '\n') >= 0 {
		return Line{}, false
	}
	f := strings.Split(line, "\t")
	if len(f) != 5 {
		return Line{}, false
	}
	v, ok1 := strings.CutPrefix(f[1], "version=")
	s, ok2 := strings.CutPrefix(f[2], "sha256=")
	b, ok3 := strings.CutPrefix(f[3], "by=")
	if !ok1 || !ok2 || !ok3 {
		return Line{}, false
	}
	return Line{Time: f[0], Version: v, Sha256: s, By: b, Outcome: f[4]}, true
}

// words is awk's split(s, w, " "): runs of blanks separate, leading and trailing ones vanish.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' })
}

// OutcomeWord is the outcome field's first word ("outcome=activated"), the only part of the
// field root alone decides: what a release answered comes after it.
func OutcomeWord(outcome string) string {
	w := words(outcome)
	if len(w) == 0 {
		return ""
	}
	return w[0]
}

// awkLines are awk's records of text: split on newlines, the empty one after a final newline
// is no record.
func awkLines(text string) []string {
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// ActivatedVersions is activated_versions: the version of every line whose outcome's first
// word is exactly outcome=activated, oldest first. Like the awk, only the version prefix is
// required of the middle fields.
func ActivatedVersions(text string) []string {
	var out []string
	for _, rec := range awkLines(text) {
		f := strings.Split(rec, "\t")
		if len(f) != 5 || !strings.HasPrefix(f[1], "version=") {
			continue
		}
		if OutcomeWord(f[4]) == "outcome=activated" {
			out = append(out, f[1][len("version="):])
		}
	}
	return out
}

// RolledBackVerdict is rolled_back_verdict: when the last activated-or-rolled-back line for
// version is a rolled-back one of the watch, "<time> <the outcome after its first two words>"
// and true. The cut is the awk's own arithmetic (the two words' lengths plus two separators),
// so a line with odd spacing reads exactly as the bash read it.
func RolledBackVerdict(text, version string) (string, bool) {
	want := "version=" + version
	last := ""
	for _, rec := range awkLines(text) {
		f := strings.Split(rec, "\t")
		if len(f) != 5 || f[1] != want {
			continue
		}
		w := words(f[4])
		w1, w2 := "", ""
		if len(w) > 0 {
			w1 = w[0]
		}
		if len(w) > 1 {
			w2 = w[1]
		}
		switch {
		case w1 == "outcome=activated":
			last = ""
		case w1 == "outcome=rolled-back" && w2 == "reason=watch":
			rest := ""
			if start := len(w1) + len(w2) + 2; start < len(f[4]) {
				rest = f[4][start:]
			}
			last = f[0] + " " + rest
		}
	}
	return last, last != ""
}

// DefaultTailMax bounds what Tail reads when max <= 0.
const DefaultTailMax = 1 << 20

// Tail is the last n lines of the regular file at path (without their newlines), reading at
// most max bytes from its end, so a huge log costs a bounded read; a line cut by that bound
// is dropped, never returned in part. O_NOFOLLOW, and a FIFO is refused rather than waited on.
func Tail(path string, n int, max int64) ([]string, error) {
	if max <= 0 {
		max = DefaultTailMax
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := regular(f); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	size := fi.Size()
	start := size - max
	cut := false
	if start > 0 {
		// One byte more: whether the first byte read starts a line.
		start--
		cut = true
	} else {
		start = 0
	}
	buf := make([]byte, size-start)
	m, err := f.ReadAt(buf, start)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	buf = buf[:m]
	if cut {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		} else {
			buf = nil
		}
	}
	lines := awkLines(string(buf))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}
