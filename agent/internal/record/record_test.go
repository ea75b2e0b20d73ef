package record

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOneLine(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 0, "plain"},
		{"a\tb\nc\r", 0, "a b c "},
		{"é", 0, "  "},
		{"\x00\x1f\x20\x7e\x7f", 0, "   ~ "},
		{"abcdef", 3, "abc"},
		{"ab", 3, "ab"},
		{strings.Repeat("x", 500), 0, strings.Repeat("x", 400)},
		{strings.Repeat("x", 500), -1, strings.Repeat("x", 400)},
		{"", 5, ""},
	} {
		if got := OneLine(c.in, c.max); got != c.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

func fixed() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("x", 3600)) }

func TestRecordAndStep(t *testing.T) {
	dir := t.TempDir()
	l := Log{Revisions: filepath.Join(dir, "revisions.log"), Deploy: filepath.Join(dir, "deploy.log"), Now: fixed}
	if err := l.Record("1.2.3\n", "abc", "me@host", "outcome=activated previous=none\tx"); err != nil {
		t.Fatal(err)
	}
	if err := l.Record("2", strings.Repeat("s", 70), strings.Repeat("w", 130), "outcome=failed"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(l.Revisions)
	want := "2024-05-06T06:08:09Z\tversion=1.2.3 \tsha256=abc\tby=me@host\toutcome=activated previous=none x\n" +
		"2024-05-06T06:08:09Z\tversion=2\tsha256=" + strings.Repeat("s", 64) + "\tby=" + strings.Repeat("w", 128) + "\toutcome=failed\n"
	if string(got) != want {
		t.Errorf("revisions.log:\n%q\nwant\n%q", got, want)
	}
	fi, _ := os.Stat(l.Revisions)
	if fi.Mode().Perm()&^0o640 != 0 {
		t.Errorf("mode %v", fi.Mode())
	}
	l.Step("gate\npassed")
	l.ID = "act-1"
	l.Step("switch")
	got, _ = os.ReadFile(l.Deploy)
	want = "2024-05-06T06:08:09Z\tmanual\tgate passed\n2024-05-06T06:08:09Z\tact-1\tswitch\n"
	if string(got) != want {
		t.Errorf("deploy.log:\n%q\nwant\n%q", got, want)
	}
	// A missing log directory: Step says nothing, Record fails.
	m := Log{Revisions: filepath.Join(dir, "no", "r.log"), Deploy: filepath.Join(dir, "no", "d.log")}
	m.Step("x")
	if err := m.Record("1", "2", "3", "4"); err == nil {
		t.Error("Record into a missing directory succeeded")
	}
}

func TestRecordRefusesLinkAndFifo(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "revisions.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := (Log{Revisions: link}).Record("1", "2", "3", "4"); err == nil {
		t.Error("Record through a symlink succeeded")
	}
	(Log{Deploy: link}).Step("x")
	if b, _ := os.ReadFile(target); string(b) != "keep\n" {
		t.Errorf("the link's target changed: %q", b)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- (Log{Revisions: fifo}).Record("1", "2", "3", "4") }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Record into a FIFO succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Record blocked on a FIFO")
	}
}

func TestParseLine(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Line
		ok   bool
	}{
		{"T\tversion=1\tsha256=s\tby=w\toutcome=activated x", Line{"T", "1", "s", "w", "outcome=activated x"}, true},
		{"T\tversion=\tsha256=\tby=\t", Line{"T", "", "", "", ""}, true},
		{"T\tversion=1\tsha256=s\tby=w", Line{}, false},
		{"T\tversion=1\tsha256=s\tby=w\to\textra", Line{}, false},
		{"T\tv=1\tsha256=s\tby=w\to", Line{}, false},
		{"T\tversion=1\tsha=s\tby=w\to", Line{}, false},
		{"T\tversion=1\tsha256=s\tb=w\to", Line{}, false},
		{"T\tversion=1\tsha256=s\tby=w\to\n", Line{}, false},
		{"", Line{}, false},
	} {
		got, ok := ParseLine(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("ParseLine(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestOutcomeWord(t *testing.T) {
	for in, want := range map[string]string{
		"outcome=activated previous=none": "outcome=activated",
		"  outcome=failed  reason=x":      "outcome=failed",
		"":                                "",
		"   ":                             "",
		"outcome=activated":               "outcome=activated",
	} {
		if got := OutcomeWord(in); got != want {
			t.Errorf("OutcomeWord(%q) = %q, want %q", in, got, want)
		}
	}
}

const sample = "2024-01-01T00:00:00Z\tversion=1.0\tsha256=a\tby=w\toutcome=activated previous=none mode=started watch=off\n" +
	"2024-01-02T00:00:00Z\tversion=1.1\tsha256=b\tby=w\toutcome=failed reason=health-gate live=1.0 serving=1.0 seen=outcome=activated\n" +
	"2024-01-03T00:00:00Z\tversion=1.1\tsha256=b\tby=w\toutcome=activated previous=1.0\n" +
	"garbage line\n" +
	"2024-01-04T00:00:00Z\tversion=1.2\tsha256=c\tby=w\toutcome=activated previous=1.1\textra\n" +
	"2024-01-05T00:00:00Z\tversion=2.0\tsha256=d\tby=w\toutcome=rolled-back reason=watch canary 10% 5s of 60s: new 3/40\n" +
	"2024-01-06T00:00:00Z\tversion=3.0\tsha256=e\tby=w\toutcome=rolled-back reason=watch x\n" +
	"2024-01-07T00:00:00Z\tversion=3.0\tsha256=e\tby=w\toutcome=activated previous=1.1\n" +
	"2024-01-08T00:00:00Z\tversion=4.0\tsha256=e\tby=w\toutcome=rolled-back reason=watch\n" +
	"2024-01-09T00:00:00Z\tversion=5.0\tsha256=e\tby=w\toutcome=activated\n" +
	"2024-01-10T00:00:00Z\tversion=5.0\tsha256=e\tby=w\toutcome=rolled-back reason=switch x\n" +
	"2024-01-11T00:00:00Z\tversion=6.0\tsha256=e\tby=w\t  outcome=rolled-back  reason=watch abcdef\n" +
	"2024-01-12T00:00:00Z\tversion=7.0\tsha=e\tby=w\toutcome=activated\n"

func TestActivatedVersions(t *testing.T) {
	got := ActivatedVersions(sample)
	// 7.0 lacks sha256= but the awk only asked for version=: kept, as the bash kept it.
	want := []string{"1.0", "1.1", "3.0", "5.0", "7.0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ActivatedVersions = %q, want %q", got, want)
	}
	if got := ActivatedVersions(""); got != nil {
		t.Errorf("empty: %q", got)
	}
}

func TestRolledBackVerdict(t *testing.T) {
	for _, c := range []struct {
		version, want string
		ok            bool
	}{
		{"2.0", "2024-01-05T00:00:00Z canary 10% 5s of 60s: new 3/40", true},
		{"3.0", "", false}, // activated again afterwards
		{"4.0", "2024-01-08T00:00:00Z ", true},
		{"5.0", "", false}, // rolled back by another reason: the activation stands
		// The awk's arithmetic on a field with leading and doubled spaces.
		{"6.0", "2024-01-11T00:00:00Z ch abcdef", true},
		{"1.0", "", false},
		{"9.9", "", false},
		{"", "", false},
		{"2.0\tsha256=d", "", false},
		{"2.0\n", "", false},
	} {
		got, ok := RolledBackVerdict(sample, c.version)
		if got != c.want || ok != c.ok {
			t.Errorf("RolledBackVerdict(%q) = %q, %v; want %q, %v", c.version, got, ok, c.want, c.ok)
		}
	}
}

func TestTail(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "log")
	if err := os.WriteFile(p, []byte("one\ntwo\nthree\nfour\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		n    int
		max  int64
		want []string
	}{
		{2, 0, []string{"three", "four"}},
		{10, 0, []string{"one", "two", "three", "four"}},
		{10, 11, []string{"three", "four"}}, // "three\nfour\n" exactly: the byte before is a newline
		{10, 12, []string{"three", "four"}}, // "\nthree\nfour\n"
		{10, 13, []string{"three", "four"}}, // "o\nthree\nfour\n": the cut "o" is dropped
		{10, 3, nil},                        // within the last line
		{0, 0, nil},
	} {
		got, err := Tail(p, c.n, c.max)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Tail(%d, %d) = %q, want %q", c.n, c.max, got, c.want)
		}
	}
	if err := os.WriteFile(p, []byte("a\nno newline"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := Tail(p, 1, 0); !reflect.DeepEqual(got, []string{"no newline"}) {
		t.Errorf("last line without newline: %q", got)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Tail(link, 1, 0); err == nil {
		t.Error("Tail followed a symlink")
	}
	if _, err := Tail(filepath.Join(dir, "missing"), 1, 0); !os.IsNotExist(err) {
		t.Errorf("missing: %v", err)
	}
}

func FuzzParseLine(f *testing.F) {
	for _, l := range strings.Split(sample, "\n") {
		f.Add(l)
	}
	f.Add("\t\t\t\t")
	f.Fuzz(func(t *testing.T, s string) {
		l, ok := ParseLine(s)
		if !ok {
			return
		}
		back := l.Time + "\tversion=" + l.Version + "\tsha256=" + l.Sha256 + "\tby=" + l.By + "\t" + l.Outcome
		if back != s {
			t.Fatalf("ParseLine(%q) = %+v does not join back", s, l)
		}
		for _, fld := range []string{l.Time, l.Version, l.Sha256, l.By, l.Outcome} {
			if strings.ContainsAny(fld, "\t\n") {
				t.Fatalf("field %q holds a tab or newline", fld)
			}
		}
	})
}

func FuzzRolledBackVerdict(f *testing.F) {
	f.Add(sample, "2.0")
	f.Add(sample, "6.0")
	f.Add(sample, "2.0\tsha256=d")
	f.Add("T\tversion=a\nb\tx\ty\toutcome=rolled-back reason=watch z", "a\nb")
	f.Fuzz(func(t *testing.T, text, version string) {
		got, ok := RolledBackVerdict(text, version)
		if ok != (got != "") {
			t.Fatalf("ok %v with %q", ok, got)
		}
		if strings.ContainsAny(version, "\t\n") && ok {
			t.Fatalf("version %q with a tab or newline matched: %q", version, got)
		}
		if strings.Contains(got, "\n") {
			t.Fatalf("verdict %q spans lines", got)
		}
		_ = ActivatedVersions(text)
	})
}

// The bash's own awk programs, run on the same text: the Go reading must be theirs.
const awkActivated = `NF == 5 && substr($2, 1, 8) == "version=" { split($5, w, " "); if (w[1] == "outcome=activated") print substr($2, 9) }`
const awkRolledBack = `
        NF == 5 && $2 == v { split($5, w, " ")
            if (w[1] == "outcome=activated") last = ""
            else if (w[1] == "outcome=rolled-back" && w[2] == "reason=watch") last = $1 " " substr($5, length(w[1]) + length(w[2]) + 3) }
        END { if (last == "") exit 1; print last }`

func TestAgainstAwk(t *testing.T) {
	awk, err := exec.LookPath("awk")
	if err != nil {
		t.Skip("no awk")
	}
	p := filepath.Join(t.TempDir(), "revisions.log")
	if err := os.WriteFile(p, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(awk, "-F", "\t", awkActivated, p).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(ActivatedVersions(sample), "\n")+"\n", string(out); got != want {
		t.Errorf("ActivatedVersions %q, awk %q", got, want)
	}
	for _, v := range []string{"1.0", "1.1", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0", "9.9", ""} {
		cmd := exec.Command(awk, "-F", "\t", "-v", "v=version="+v, awkRolledBack, p)
		out, err := cmd.Output()
		awkOK := err == nil
		got, ok := RolledBackVerdict(sample, v)
		if ok != awkOK || (ok && got+"\n" != string(out)) {
			t.Errorf("RolledBackVerdict(%q) = %q, %v; awk %q, %v", v, got, ok, out, awkOK)
		}
	}
}
